"""Step 01: the data each later step uses, with the leakage-free split written down.

- the evaluation collection (English passages) and evaluation queries;
- the generator's training triples and held-out passages for checkpoint selection;
- the retriever's training queries (with gold passages) and their collection;
- the alpha-tuning / test split of the evaluation queries, by article.

Nothing that evaluates is ever trained on: generator and retriever train on the training
benchmark (XQuAD in `mini`, minus articles shared with MLQA), optionally plus an article split
of the evaluation benchmark whose queries are then removed from evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from xqg.data.mlqa import load_mlqa
from xqg.data.schema import Benchmark
from xqg.data.splits import article_side, drop_shared_articles, sample_queries, split_by_article
from xqg.data.xquad import load_xquad
from xqg.generation.prompts import check_languages, triples
from xqg.io import write_json
from xqg.study.artifacts import save_passages, save_queries, save_triples

LOADERS = {"mlqa": lambda langs: load_mlqa("dev", langs), "xquad": lambda langs: load_xquad(langs)}


def _load(name: str, languages: Sequence[str]) -> Benchmark:
    if name not in LOADERS:
        raise ValueError(f"unknown benchmark {name!r}; this step knows {sorted(LOADERS)}")
    return LOADERS[name](list(languages))


def _limit_passages(bench: Benchmark, max_passages: int | None, seed: int) -> Benchmark:
    """Keep the passages of the first `max_passages` articles-worth of queries (smoke runs)."""
    if max_passages is None or len(bench.passages) <= max_passages:
        return bench
    ranked = sorted(bench.passages, key=lambda pid: hashlib.sha1(f"{seed}:{pid}".encode()).hexdigest())
    keep = set(ranked[:max_passages])
    return Benchmark(
        bench.name,
        bench.split,
        {k: v for k, v in bench.passages.items() if k in keep},
        [q for q in bench.queries if q.gold_passage in keep],
    )


def _xor_benchmarks(
    languages: Sequence[str], collection_file: str, train_file: str
) -> tuple[Benchmark, Benchmark]:
    """XOR-Retrieve dev against the English Wikipedia collection, and Tevatron's training data."""
    from xqg.data.xor_tydi import iter_augmented_corpus, iter_dpr_tsv, load_tevatron_train, load_xor_queries

    if not collection_file:
        raise ValueError("xor-tydi needs collection_file (DPR psgs_w100.tsv[.gz] or the augmented JSONL)")
    path = Path(collection_file)
    rows = iter_dpr_tsv(path) if ".tsv" in path.name else (p for p, _ in iter_augmented_corpus(path))
    passages = {p.id: p for p in rows}
    queries = [q for q in load_xor_queries("dev") if q.language in set(languages)]
    train_langs = {q.qid: q.language for q in load_xor_queries("train")}
    train_passages, train_queries = load_tevatron_train(train_file, train_langs)
    return (
        Benchmark("xor-tydi", "dev", passages, queries),
        Benchmark("xor-tydi-train", "train", train_passages, train_queries),
    )


def prepare(
    work: Path,
    train_benchmark: str,
    eval_benchmark: str,
    eval_languages: Sequence[str],
    generator_languages: Sequence[str],
    max_passages: int | None,
    queries_per_language: int | None,
    generator_eval_fraction: float,
    alpha_tuning_fraction: float,
    heldout_passages: int,
    seed: int,
    collection_file: str = "",
    train_file: str = "",
) -> dict:
    """Write the prepared data under ``work/data`` and return a summary of counts.

    `collection_file` and `train_file` are used by XOR-TyDi (``eval_benchmark: xor-tydi``): the
    English Wikipedia passages and Tevatron's training file with positive passages.
    """
    eval_languages = check_languages(eval_languages)
    generator_languages = check_languages(generator_languages)
    if eval_benchmark == "xor-tydi":
        evaluation, training = _xor_benchmarks(eval_languages, collection_file, train_file)
    else:
        evaluation = _limit_passages(_load(eval_benchmark, eval_languages), max_passages, seed)
        training = drop_shared_articles(_load(train_benchmark, generator_languages + ["en"]), evaluation)
        training = _limit_passages(training, max_passages, seed)

    gen_triples = triples(training, generator_languages)
    eval_queries = evaluation.queries
    if generator_eval_fraction > 0:  # the evaluation benchmark's other articles also train the generator
        gen_part, eval_part = split_by_article(evaluation, 1 - generator_eval_fraction, seed)
        gen_triples += triples(gen_part, generator_languages)
        eval_queries = eval_part.queries
    eval_queries = sample_queries(eval_queries, queries_per_language, seed)
    gen_passages = {t.passage_id for t in gen_triples}
    heldout = [p for pid, p in evaluation.passages.items() if pid not in gen_passages][:heldout_passages]

    # XOR-TyDi questions carry no article: they split by question id instead.
    tuning = [
        q for q in eval_queries if article_side(q.article or q.qid, alpha_tuning_fraction, seed + 1) == "eval"
    ]
    tuning_ids = {q.id for q in tuning}
    test = [q for q in eval_queries if q.id not in tuning_ids]

    data = work / "data"
    save_passages(data / "collection.jsonl", evaluation.passages)
    save_queries(data / "eval_queries.jsonl", test)
    save_queries(data / "tuning_queries.jsonl", tuning)
    save_triples(data / "generator_train.jsonl", gen_triples)
    save_passages(data / "generator_heldout.jsonl", {p.id: p for p in heldout})
    save_passages(data / "train_collection.jsonl", training.passages)
    save_queries(
        data / "train_queries.jsonl",
        [q for q in training.queries if q.language in set(generator_languages) | {"en"}],
    )
    summary = {
        "collection passages": len(evaluation.passages),
        "evaluation queries (test)": len(test),
        "alpha-tuning queries": len(tuning),
        "generator training triples": len(gen_triples),
        "generator training passages": len(gen_passages),
        "held-out passages (checkpoint selection)": len(heldout),
        "retriever training queries": len(training.queries),
        "training collection passages": len(training.passages),
        "test queries per language": {lang: sum(q.language == lang for q in test) for lang in eval_languages},
    }
    write_json(data / "summary.json", summary)
    return summary
