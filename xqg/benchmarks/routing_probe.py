"""Issue 15's probe, rerun with the project's code: folded against language-routed augmentation
with human questions on every XQuAD paragraph, at the probe's fixed settings.

    python -m xqg.benchmarks.routing_probe [--alpha 0.2] [--mode mean] [--reserve 2]

All 240 English XQuAD paragraphs with at least ``reserve + 1`` questions; per paragraph
``reserve`` question ids (every translation) augment it and are never asked
(`xqg.data.splits.reserve_questions`); multilingual-e5-small zero-shot, bfloat16 encoding,
``title text`` passages. Rows: no augmentation; the mean over all 7 languages' reserved questions
(folded); the query's language only (routed). Recall@1 per question language (ar de es hi vi zh),
each paired change with a 95% bootstrap interval. The study's own ceiling (step 05b) differs:
the held-out half of the articles, the generator's six languages, alpha and mode chosen on
tuning questions.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from xqg.data.splits import reserve_questions
from xqg.data.xquad import load_xquad
from xqg.retrieval.dense import encode_passages
from xqg.retrieval.routing import augmented_run, sums_by_language
from xqg.retrieval.search import retrieve
from xqg.study.named_models import OFFLINE_E5, load_encoder
from xqg.study.research_questions import bootstrap_delta
from xqg.study.workspace import Workspace

AUGMENT = ["en", "ar", "de", "es", "hi", "vi", "zh"]
ASKED = ["ar", "de", "es", "hi", "vi", "zh"]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--alpha", type=float, default=0.2)
    ap.add_argument("--mode", choices=["sum", "mean"], default="mean")
    ap.add_argument("--reserve", type=int, default=2, help="human questions per paragraph and language")
    args = ap.parse_args(argv)
    bench = load_xquad(AUGMENT)
    passages, reserved, rest = reserve_questions(bench, args.reserve, seed=0)
    test = [q for q in rest if q.language in ASKED]
    encoder = load_encoder(OFFLINE_E5, Workspace("mini"))
    pids, pemb = encode_passages(lambda: encoder, passages, None, 256, dtype="bfloat16")

    def encode(queries):
        return encoder.encode([q.text for q in queries], "query", max_length=64, dtype="bfloat16")

    qemb, aemb = encode(test), encode(reserved)
    sums = sums_by_language(pids, reserved, aemb)
    runs = {
        "none": retrieve(pids, pemb, [q.id for q in test], qemb, 1),
        "folded": augmented_run(pids, pemb, sums, test, qemb, args.alpha, args.mode, 1),
        "routed": augmented_run(pids, pemb, sums, test, qemb, args.alpha, f"routed-{args.mode}", 1),
    }
    hit = {
        name: pd.DataFrame(
            [
                {"query_id": q.id, "language": q.language, "value": float(run[q.id][0][0] == q.gold_passage)}
                for q in test
            ]
        )
        for name, run in runs.items()
    }
    rows = {}
    for name, df in hit.items():
        row = (100 * df.groupby("language")["value"].mean()).to_dict()
        row["macro"] = float(np.mean([row[lang] for lang in ASKED]))
        if name != "none":
            pairs = hit["none"].rename(columns={"value": "base"}).assign(other=df["value"])
            mean, lo, hi = bootstrap_delta(pairs)
            row["Δ macro [95% CI]"] = f"{mean:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    print(
        f"{len(passages)} paragraphs, {len(test)} test questions ({len(test) // len(ASKED)} per language), "
        f"alpha {args.alpha:g}, {args.mode}, {args.reserve} reserved questions per paragraph and language"
    )
    print(table.round(1).to_markdown())
    return table


if __name__ == "__main__":
    main()
