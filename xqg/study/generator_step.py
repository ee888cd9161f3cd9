"""Steps 02 and 03: train the generator, then generate queries for the collection and report on them.

Two generator variants: ``full`` learns every generator language; ``seen-only`` (RQ1, trained
only when `unseen_languages` is given) learns the others and is then asked for all of them, so
the unseen languages' queries come from a model that never saw a training question in them. Its
vocabulary and language start tokens are those of the full model (the pretrained model's, as
mT5's would be); only the training questions differ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xqg.generation.e5_generator import E5QuestionGenerator, build_generator, param_count
from xqg.generation.quality import report, round_trip, samples
from xqg.generation.run import generate_collection, load_generated
from xqg.generation.seq2seq import Seq2SeqGenerator, Seq2SeqTrainingArgs, fine_tune
from xqg.generation.train_e5 import GeneratorTrainingArgs, train_e5_generator
from xqg.study.artifacts import load_passages, load_triples
from xqg.study.models import encoder_path, generator_path

KINDS = ("e5-decoder", "seq2seq")
VARIANTS = ("full", "seen-only")


def _suffix(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"generator variant must be one of {VARIANTS}, got {variant!r}")
    return "" if variant == "full" else f"-{variant}"


def generator_variants(languages: Sequence[str], unseen_languages: Sequence[str]) -> dict[str, list[str]]:
    """{variant: the languages it trains on}; ``seen-only`` only when some languages are held out."""
    languages, unseen = list(languages), list(unseen_languages)
    unknown = [lang for lang in unseen if lang not in languages]
    if unknown:
        raise ValueError(f"unseen_languages {unknown} are not among generator_languages {languages}")
    seen = [lang for lang in languages if lang not in unseen]
    if unseen and not seen:
        raise ValueError("unseen_languages holds out every generator language; keep at least one seen")
    return {"full": languages, **({"seen-only": seen} if unseen else {})}


def generator_dir(work: Path, variant: str = "full") -> Path:
    """Where step 02 puts a trained generator."""
    return work / "models" / f"generator{_suffix(variant)}"


def train_generators(
    work: Path,
    kind: str,
    model: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    eval_every: int,
    decoder_layers: int,
    copy_gate: bool,
    seed: int,
    unseen_languages: Sequence[str] = (),
) -> dict[str, dict]:
    """Train the full generator and, with `unseen_languages`, the seen-only one: {variant: info}."""
    data = work / "data"
    train = load_triples(data / "generator_train.jsonl")
    languages = sorted({t.language for t in train})
    out = {}
    for variant, langs in generator_variants(languages, unseen_languages).items():
        if variant != "full" and kind == "seq2seq" and steps == 0:
            raise ValueError("a seen-only generator needs training: set generator_steps > 0")
        out[variant] = train_generator(
            work,
            kind,
            model,
            steps,
            batch_size,
            learning_rate,
            eval_every,
            decoder_layers,
            copy_gate,
            seed,
            variant,
            langs,
        )
    return out


def train_generator(
    work: Path,
    kind: str,
    model: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    eval_every: int,
    decoder_layers: int,
    copy_gate: bool,
    seed: int,
    variant: str = "full",
    train_languages: Sequence[str] | None = None,
) -> dict:
    """Build or load one generator and train it on the triples of `train_languages` (all when None);
    returns {"history": [...], "parameters": n}."""
    if kind not in KINDS:
        raise ValueError(f"generator_kind must be one of {KINDS}, got {kind!r}")
    data = work / "data"
    every = load_triples(data / "generator_train.jsonl")
    train = [t for t in every if train_languages is None or t.language in train_languages]
    heldout = list(load_passages(data / "generator_heldout.jsonl").values())
    collection = list(load_passages(data / "collection.jsonl").values())
    out = generator_dir(work, variant)
    if kind == "e5-decoder":
        enc_path = encoder_path(model, work)
        # vocabulary and start tokens from every language: the same model as the full variant
        vocab_texts = (
            [t.question for t in every]
            + [f"{p.title} {p.text}" for p in collection]
            + [f"{t.title} {t.passage}" for t in every]
        )
        languages = sorted({t.language for t in every})
        gen = build_generator(
            enc_path, languages, vocab_texts, n_layers=decoder_layers, copy_gate=copy_gate, seed=seed
        )
        args = GeneratorTrainingArgs(
            output_dir=str(out),
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            eval_every=eval_every,
            seed=seed,
        )
        history = train_e5_generator(gen, train, heldout, collection, args)
        return {"history": history, "parameters": param_count(gen), "vocabulary": gen.vocab_size}
    gen = Seq2SeqGenerator.from_pretrained(generator_path(model, work))
    history = []
    if steps > 0:
        dev = train[::20]
        rest = [t for i, t in enumerate(train) if i % 20]
        history = fine_tune(
            gen,
            rest,
            dev,
            Seq2SeqTrainingArgs(
                output_dir=str(out),
                steps=steps,
                batch_size=batch_size,
                learning_rate=learning_rate,
                eval_every=eval_every,
                seed=seed,
            ),
        )
    else:  # a released checkpoint used as is (the paper profile's shortcut)
        gen.save(out / "best")
    return {"history": history, "parameters": sum(p.numel() for p in gen.model.parameters())}


def load_trained_generator(work: Path, kind: str, variant: str = "full"):
    """The generator step 02 selected (``best``)."""
    best = generator_dir(work, variant) / "best"
    if kind == "e5-decoder":
        return E5QuestionGenerator.load(best)
    return Seq2SeqGenerator.from_pretrained(best)


def generated_path(work: Path, variant: str = "full") -> Path:
    """The generated queries of the collection (JSON Lines)."""
    return work / "generated" / f"queries{_suffix(variant)}.jsonl"


def generate(
    work: Path,
    kind: str,
    languages: list[str],
    n_queries: int,
    top_k: int,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    released_queries_file: str = "",
    variant: str = "full",
) -> Path:
    """Generate `n_queries` per passage and language for the whole collection (resumable), or
    import the authors' released queries when `released_queries_file` is given."""
    if released_queries_file:
        from xqg.generation.run import import_released_queries

        return import_released_queries(released_queries_file, languages, n_queries, generated_path(work))
    gen = load_trained_generator(work, kind, variant)
    passages = list(load_passages(work / "data" / "collection.jsonl").values())
    return generate_collection(
        gen,
        passages,
        languages,
        n_queries,
        generated_path(work, variant),
        top_k=top_k,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )


def quality(
    work: Path, encoder_name: str, results: Path, variant: str = "full"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quality table (with round-trip Recall@10 under the zero-shot encoder) and sample queries."""
    from xqg.study.retrieve_step import encode_generated, passage_embeddings

    records = load_generated(generated_path(work, variant))
    passages = load_passages(work / "data" / "collection.jsonl")
    table = report(records)
    pids, pemb = passage_embeddings(work, encoder_name)
    gen = encode_generated(work, encoder_name, variant=variant)
    from xqg.search import retrieve

    nonempty = [i for i, r in enumerate(records) if r["text"].strip()]
    run = retrieve(pids, pemb, [str(i) for i in nonempty], gen.emb[nonempty], 10)
    for i, _ in enumerate(records):
        run.setdefault(str(i), [])
    table["round-trip R@10"] = round_trip(records, run, 10)
    examples = samples(records, passages, per_language=3, seed=0)
    results.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(variant)
    table.to_csv(results / f"generation_quality{suffix}.csv")
    examples.to_csv(results / f"generation_samples{suffix}.csv", index=False)
    (results / f"generation_quality{suffix}.json").write_text(
        json.dumps(table.round(2).to_dict(orient="index"))
    )
    return table, examples
