"""Steps 02 and 03: train the generator, then generate queries for the collection and report on them."""

from __future__ import annotations

import json
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


def generator_dir(work: Path) -> Path:
    """Where step 02 puts the trained generator."""
    return work / "models" / "generator"


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
) -> dict:
    """Build or load the generator and train it; returns {"history": [...], "parameters": n}."""
    if kind not in KINDS:
        raise ValueError(f"generator_kind must be one of {KINDS}, got {kind!r}")
    data = work / "data"
    train = load_triples(data / "generator_train.jsonl")
    heldout = list(load_passages(data / "generator_heldout.jsonl").values())
    collection = list(load_passages(data / "collection.jsonl").values())
    out = generator_dir(work)
    if kind == "e5-decoder":
        enc_path = encoder_path(model, work)
        vocab_texts = (
            [t.question for t in train]
            + [f"{p.title} {p.text}" for p in collection]
            + [f"{t.title} {t.passage}" for t in train]
        )
        languages = sorted({t.language for t in train})
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


def load_trained_generator(work: Path, kind: str):
    """The generator step 02 selected (``best``)."""
    best = generator_dir(work) / "best"
    if kind == "e5-decoder":
        return E5QuestionGenerator.load(best)
    return Seq2SeqGenerator.from_pretrained(best)


def generated_path(work: Path) -> Path:
    """The generated queries of the collection (JSON Lines)."""
    return work / "generated" / "queries.jsonl"


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
) -> Path:
    """Generate `n_queries` per passage and language for the whole collection (resumable), or
    import the authors' released queries when `released_queries_file` is given."""
    if released_queries_file:
        from xqg.generation.run import import_released_queries

        return import_released_queries(released_queries_file, languages, n_queries, generated_path(work))
    gen = load_trained_generator(work, kind)
    passages = list(load_passages(work / "data" / "collection.jsonl").values())
    return generate_collection(
        gen,
        passages,
        languages,
        n_queries,
        generated_path(work),
        top_k=top_k,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )


def quality(work: Path, encoder_name: str, results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quality table (with round-trip Recall@10 under the zero-shot encoder) and sample queries."""
    from xqg.study.retrieve_step import encode_generated, passage_embeddings

    records = load_generated(generated_path(work))
    passages = load_passages(work / "data" / "collection.jsonl")
    table = report(records)
    pids, pemb = passage_embeddings(work, encoder_name)
    gen = encode_generated(work, encoder_name)
    from xqg.search import retrieve

    nonempty = [i for i, r in enumerate(records) if r["text"].strip()]
    run = retrieve(pids, pemb, [str(i) for i in nonempty], gen.emb[nonempty], 10)
    for i, _ in enumerate(records):
        run.setdefault(str(i), [])
    table["round-trip R@10"] = round_trip(records, run, 10)
    examples = samples(records, passages, per_language=3, seed=0)
    results.mkdir(parents=True, exist_ok=True)
    table.to_csv(results / "generation_quality.csv")
    examples.to_csv(results / "generation_samples.csv", index=False)
    (results / "generation_quality.json").write_text(json.dumps(table.round(2).to_dict(orient="index")))
    return table, examples
