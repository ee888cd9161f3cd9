"""Questions of e5-decoder generators on passages they never trained on, next to human ones (issue 12).

    python -m xqg.benchmarks.generator_quality CHECKPOINT [CHECKPOINT ...] [--profile mini]
        [--passages 200] [--out benchmarks/generator_quality] [--restrict] [--script-budget]

Passages: the first ``--passages`` of the profile's evaluation collection that no generator
triple names (step 01's prepared data; step 02's held-out passages are the first of them). Per
checkpoint and language, one question per passage (top-k sampling as step 03 samples), retrieved
from the whole collection with the generator's own e5 as training's round trip retrieves. Per
language and macro: Recall@10; Recall@10 counting only questions in the requested language;
``in language %`` (`xqg.generation.quality.in_language`); ``script %`` (mean share of letters in
the language's script); ``passage words %`` (mean share of a question's words of four or more
characters found in its English passage: what it copies). Row ``human``: the profile's evaluation
questions (tuning and test) asked of the same passages, at most ``--passages`` per language.
``--restrict`` and ``--script-budget`` sample with step 02's settings of those names (settings of
sampling, not of the weights). Writes ``quality.csv`` and ``quality.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from xqg.benchmarks import save_table
from xqg.data.schema import Passage
from xqg.generation.e5_generator import E5QuestionGenerator
from xqg.generation.quality import in_language, passage_word_share, script_share
from xqg.languages import script_of
from xqg.models.encoder import Encoder
from xqg.retrieval.dense import passage_text
from xqg.retrieval.search import retrieve
from xqg.study.workspace import Workspace


def score(
    encoder: Encoder,
    collection: tuple[list[str], np.ndarray],
    asked: list[tuple[str, Passage]],
    language: str,
) -> dict[str, float]:
    """The measures of (question, its passage) pairs in one language; an empty question misses."""
    keep = [i for i, (text, _) in enumerate(asked) if text.strip()]
    qemb = encoder.encode([asked[i][0] for i in keep], "query", max_length=64, progress=False)
    run = retrieve(collection[0], collection[1], [str(i) for i in keep], qemb, 10)
    hit = [str(i) in run and p.id in [pid for pid, _ in run[str(i)]] for i, (_, p) in enumerate(asked)]
    good = [in_language(text, language) for text, _ in asked]
    return {
        "Recall@10": 100 * float(np.mean(hit)),
        "Recall@10 in language": 100 * float(np.mean([h and g for h, g in zip(hit, good)])),
        "in language %": 100 * float(np.mean(good)),
        "script %": 100 * float(np.mean([script_share(t, script_of(language)) for t, _ in asked])),
        "passage words %": 100
        * float(np.mean([passage_word_share(t, f"{p.title} {p.text}") for t, p in asked])),
    }


def quality(
    checkpoints: list[Path],
    profile: str,
    passages: int,
    seed: int = 0,
    ws: Workspace | None = None,
    restrict: bool = False,
    script_budget: bool = False,
) -> pd.DataFrame:
    """One row per source (each checkpoint, then ``human``) and language, with a ``macro`` row each;
    the data of `ws` (default: the profile's). `restrict` samples each checkpoint with per-language
    vocabularies from the profile's training triples (as step 02's ``restrict_vocabulary``);
    `script_budget` samples them with step 02's ``script_budget``."""
    ws = ws or Workspace(profile)
    if not ws.generator_train.exists():
        raise FileNotFoundError(f"{ws.generator_train}: run step 01 of profile {profile!r} first")
    by_id = ws.passages()
    trained = {t.passage_id for t in ws.triples()}
    pool = [p for pid, p in by_id.items() if pid not in trained][:passages]
    in_pool = {p.id for p in pool}
    first = E5QuestionGenerator.load(checkpoints[0])
    encoder, coll = first.encoder, list(by_id.values())  # one e5 retrieves for every checkpoint
    passage_texts = [passage_text(p.title, p.text) for p in coll]
    emb = encoder.encode(passage_texts, "passage", max_length=256, progress=False)
    rows = []
    for path in [*checkpoints, None]:
        gen = (E5QuestionGenerator.load(path, encoder=encoder) if path else first).eval()
        if restrict and path is not None:
            gen.restrict_vocabulary(ws.triples())
        if script_budget and path is not None:
            gen.config.script_budget = True
        if gen.config.encoder_path != first.config.encoder_path:
            raise ValueError(
                f"{path}: encoder {gen.config.encoder_path!r}, not {first.config.encoder_path!r}"
            )
        for lang in gen.languages:
            if path is None:  # the humans: evaluation questions on the same passages
                asked = [
                    (q.text, by_id[q.gold_passage])
                    for name in ("tuning", "eval")
                    for q in ws.queries(name)
                    if q.language == lang and q.gold_passage in in_pool
                ][:passages]
            else:
                texts = []
                for s in range(0, len(pool), 32):
                    texts += [q[0] for q in gen.generate(pool[s : s + 32], lang, 1, seed=seed)]
                asked = list(zip(texts, pool))
            settings = [
                name for name, on in (("restricted", restrict), ("script budget", script_budget)) if on
            ]
            source = "human" if path is None else " ".join([str(path), *settings])
            rows.append({"source": source, "language": lang, "questions": len(asked)})
            rows[-1].update(score(encoder, ([p.id for p in coll], emb), asked, lang))
    df = pd.DataFrame(rows)
    macro = df.groupby("source", sort=False).mean(numeric_only=True).reset_index().assign(language="macro")
    return pd.concat([df, macro], ignore_index=True)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="e5-decoder generator folders (step 02's best)")
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--passages", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/generator_quality"))
    ap.add_argument(
        "--restrict", action="store_true", help="per-language vocabularies from the training triples"
    )
    ap.add_argument("--script-budget", action="store_true", help="sample with step 02's script_budget")
    args = ap.parse_args(argv)
    df = quality(
        args.checkpoints,
        args.profile,
        args.passages,
        restrict=args.restrict,
        script_budget=args.script_budget,
    )
    print(save_table(df, args.out, "quality"))
    return df


if __name__ == "__main__":
    main()
