"""Step 01 (`01_data`): the data each later step uses, with the leakage-free split written down.

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
from dataclasses import dataclass
from pathlib import Path

from xqg.data.mlqa import load_mlqa
from xqg.data.schema import Benchmark, Passage, Query
from xqg.data.splits import (
    article_side,
    drop_shared_articles,
    reserve_questions,
    sample_queries,
    split_by_article,
)
from xqg.data.squad_dev import load_squad_dev, load_squad_es_dev
from xqg.data.xquad import load_xquad
from xqg.generation.prompts import check_languages, triples
from xqg.io import write_json, write_jsonl
from xqg.paths import data_dir
from xqg.study.config import Amount, Count, GeneratorData, ReaderData, Share, StepConfig, arg
from xqg.study.provenance import Recipe, claim, code_version, file_identity
from xqg.study.workspace import Workspace, save_passages, save_queries, save_triples


@dataclass(frozen=True, kw_only=True)
class Config(StepConfig):
    """Parameters of step 01."""

    STEP = "01_data"
    seed: int = arg("seed of every split and sample")
    train_benchmark: str = arg("trains the generator and the retriever (xquad, or xor-tydi-tevatron)")
    eval_benchmark: str = arg("evaluates; its questions are never trained on (mlqa, xquad, xor-tydi)")
    eval_languages: list[str] = arg("question languages evaluated")
    generator_languages: list[str] = arg("languages the generator writes")
    max_passages: Amount = arg("cap on the collection size, 0 for all (smoke runs use a few dozen)")
    queries_per_language: Amount = arg("subsample of evaluation queries per language, 0 for all")
    generator_eval_fraction: Share = arg("share of eval-benchmark articles given to generator training")
    alpha_tuning_fraction: Share = arg("share of evaluation articles whose queries tune alpha")
    heldout_passages: Amount = arg("passages (never trained on) for the generator's checkpoint selection")
    train_fraction: Share = arg(
        "when train_benchmark == eval_benchmark: share of its articles that train (the rest evaluate)",
        default=0.5,
    )
    ceiling_fraction: Share = arg(
        "share of the training benchmark's articles (XQuAD) held out from generator and retriever "
        "training as the human-question ceiling collection (0: none)",
        default=0.0,
    )
    ceiling_queries: Count = arg(
        "human questions reserved per ceiling paragraph (and language) to augment it; the "
        "generator writes as many for the generated comparison",
        default=2,
    )
    reader_data: list[ReaderData] = arg(
        "extra reader training data beyond the training benchmark: squad (SQuAD v1.1 dev, English), "
        "squad-es (its Spanish questions on the English paragraphs); articles shared with the "
        "evaluation collection are dropped",
        default_factory=list,
    )
    generator_data: list[GeneratorData] = arg(
        "extra generator training pairs: squad-es (SQuAD-es dev's Spanish questions on SQuAD's English "
        "paragraphs), without the articles of the evaluation and ceiling collections",
        default_factory=list,
    )
    collection_file: str = arg(
        "xor-tydi: XOR's enwiki_20190201_w100.tsv (DPR layout) or the authors' augmented corpus", default=""
    )
    train_file: str = arg("xor-tydi: Tevatron's training file with positive passages (JSONL)", default="")
    generator_file: str = arg(
        "xor-tydi: the generator's pairs from XOR's gold paragraphs, as DSI-QG trains it "
        "(tydi_xor_gp/gp_squad_train_data.json); empty: each training question's first Tevatron positive",
        default="",
    )
    generator_dev_file: str = arg(
        "xor-tydi: the generator's dev pairs for checkpoint selection (gp_squad_dev_data.json); "
        "empty: every 20th training pair",
        default="",
    )


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
) -> tuple[Benchmark, Benchmark, dict]:
    """XOR-Retrieve dev against the English Wikipedia collection, Tevatron's training data and its
    groups of positive and negative passages."""
    from xqg.data.xor_tydi import iter_augmented_corpus, iter_dpr_tsv, load_tevatron_train, load_xor_queries

    if not collection_file:
        raise ValueError("xor-tydi needs collection_file (enwiki_20190201_w100.tsv or the augmented JSONL)")
    path = Path(collection_file)
    rows = iter_dpr_tsv(path) if ".tsv" in path.name else (p for p, _ in iter_augmented_corpus(path))
    passages = {p.id: p for p in rows}
    queries = [q for q in load_xor_queries("dev") if q.language in set(languages)]
    train_langs = {q.qid: q.language for q in load_xor_queries("train")}
    if not train_file:
        raise ValueError("xor-tydi needs train_file (Tevatron's XOR-TyDi training file, JSON Lines)")
    train_passages, train_queries, groups = load_tevatron_train(train_file, train_langs)
    return (
        Benchmark("xor-tydi", "dev", passages, queries),
        Benchmark("xor-tydi-train", "train", train_passages, train_queries),
        groups,
    )


def recipe(config: Config) -> Recipe:
    """What the prepared data is made from: this step's code and parameters, the verified raw
    files (their manifest) and any collection or training file a parameter names."""
    manifest = data_dir() / "MANIFEST.json"
    inputs = {"raw data": file_identity(manifest) if manifest.exists() else "no manifest"}
    for name in ("collection_file", "train_file"):
        if path := getattr(config, name):
            inputs[name] = file_identity(path)
    return Recipe(code_version(__name__), config.params(), inputs)


def reader_training(
    training: Benchmark, train_queries: list[Query], extra: Sequence[str], held_out: Sequence[Benchmark]
) -> tuple[dict[str, Passage], list[Query]]:
    """The reader's training questions and passages: the training benchmark's, plus each of
    `extra` (SQuAD dev, SQuAD-es dev) without the articles of `held_out` collections and without
    questions the training benchmark already holds (XQuAD's English questions are SQuAD's)."""
    passages, queries = dict(training.passages), list(train_queries)
    for bench in extra_questions(extra, held_out, {q.id for q in queries}):
        queries += bench.queries
        passages.update(bench.passages)
    return passages, queries


def extra_questions(extra: Sequence[str], held_out: Sequence[Benchmark], have: set[str]) -> list[Benchmark]:
    """Each of `extra` (SQuAD dev, SQuAD-es dev) without the articles of `held_out` collections
    and without the question ids in `have` (XQuAD's English questions are SQuAD's), holding only
    the passages its remaining questions ask about; `have` grows with what is returned."""
    if not extra:
        return []
    squad = load_squad_dev()
    sources = {"squad": squad, "squad-es": load_squad_es_dev(squad)}
    out = []
    for name in extra:
        bench = sources[name]
        for other in held_out:
            bench = drop_shared_articles(bench, other)
        new = [q for q in bench.queries if q.id not in have]
        have.update(q.id for q in new)
        kept = {q.gold_passage: bench.passages[q.gold_passage] for q in new}
        out.append(Benchmark(bench.name, bench.split, kept, new))
    return out


def write_ceiling(ws: Workspace, config: Config, ceiling: Benchmark) -> dict:
    """The ceiling collection and its human questions in the generator's languages: per paragraph
    `ceiling_queries` reserved to augment it (`reserve_questions`), the rest split by article into
    alpha-tuning and test questions as the evaluation queries are. Returns its counts."""
    languages = set(config.generator_languages)
    ceiling = Benchmark(
        ceiling.name, ceiling.split, ceiling.passages, [q for q in ceiling.queries if q.language in languages]
    )
    passages, reserved, rest = reserve_questions(ceiling, config.ceiling_queries, config.seed)
    tuning = [
        q
        for q in rest
        if article_side(q.article or q.qid, config.alpha_tuning_fraction, config.seed + 1) == "eval"
    ]
    tuning_ids = {q.id for q in tuning}
    test = [q for q in rest if q.id not in tuning_ids]
    save_passages(ws.ceiling_collection, passages)
    for name, queries in (("augment", reserved), ("tuning", tuning), ("test", test)):
        save_queries(ws.ceiling_queries(name), queries)
    return {
        "ceiling passages": len(passages),
        "ceiling articles": len({p.title for p in passages.values()}),
        "ceiling augmenting questions": len(reserved),
        "ceiling tuning questions": len(tuning),
        "ceiling test questions": len(test),
    }


def run(workspace: Workspace, config: Config) -> dict:
    """Write the prepared data under ``workspace.data`` and return a summary of counts.

    XOR-TyDi (``eval_benchmark: xor-tydi``) reads `collection_file` (the English Wikipedia
    passages) and `train_file` (Tevatron's training file with positive passages)."""
    ws, c, seed = workspace, config, config.seed
    claim(ws.data, recipe(c))  # every later artefact names this recipe's key as its input
    max_passages = c.max_passages or None
    eval_languages = check_languages(c.eval_languages)
    generator_languages = check_languages(c.generator_languages)
    if c.ceiling_fraction > 0 and (c.eval_benchmark == "xor-tydi" or c.train_benchmark == c.eval_benchmark):
        raise ValueError(
            f"ceiling_fraction {c.ceiling_fraction}: the ceiling needs a training benchmark with parallel "
            f"questions other than the evaluated one (mini: xquad), not {c.train_benchmark!r}"
        )
    summary_ceiling: dict = {}
    ceiling: Benchmark | None = None  # XQuAD articles no model trains on (mini's human-question ceiling)
    groups: dict = {}  # Tevatron's positives and negatives per training query (XOR-TyDi only)
    if c.eval_benchmark == "xor-tydi":
        evaluation, training, groups = _xor_benchmarks(eval_languages, c.collection_file, c.train_file)
    elif c.train_benchmark == c.eval_benchmark:  # one benchmark: its articles are split, not dropped
        languages = sorted(set(eval_languages) | set(generator_languages) | {"en"})
        training, evaluation = split_by_article(
            _load(c.eval_benchmark, languages), 1 - c.train_fraction, seed
        )
        evaluation = Benchmark(
            evaluation.name,
            evaluation.split,
            evaluation.passages,
            [q for q in evaluation.queries if q.language in set(eval_languages)],
        )
        evaluation = _limit_passages(evaluation, max_passages, seed)
        training = _limit_passages(training, max_passages, seed)
    else:
        evaluation = _limit_passages(_load(c.eval_benchmark, eval_languages), max_passages, seed)
        training = drop_shared_articles(_load(c.train_benchmark, generator_languages + ["en"]), evaluation)
        if c.ceiling_fraction > 0:  # held out before the generator trains: it never sees these articles
            training, ceiling = split_by_article(training, c.ceiling_fraction, seed + 2)
            summary_ceiling = write_ceiling(ws, c, _limit_passages(ceiling, max_passages, seed))
        training = _limit_passages(training, max_passages, seed)

    gen_triples = triples(training, generator_languages)
    held_out = [evaluation, *([ceiling] if ceiling is not None else [])]
    have = {q.id for q in training.queries}
    for bench in extra_questions(c.generator_data, held_out, have):
        gen_triples += triples(_limit_passages(bench, max_passages, seed), generator_languages)
    dev_triples = []
    if c.generator_file or c.generator_dev_file:  # DSI-QG's pairs: XOR's gold paragraphs
        if c.eval_benchmark != "xor-tydi" or not c.generator_file:
            raise ValueError(
                "generator_file (and generator_dev_file) are XOR-TyDi's gold paragraphs: "
                "eval_benchmark xor-tydi with generator_file set"
            )
        from xqg.data.xor_tydi import load_xor_gold_paragraphs

        seen: set[str] = set()  # a question id in both files trains only (DSI-QG drops it from dev)
        gen_triples = triples(load_xor_gold_paragraphs(c.generator_file, seen), generator_languages)
        if c.generator_dev_file:
            dev_triples = triples(load_xor_gold_paragraphs(c.generator_dev_file, seen), generator_languages)
    eval_queries = evaluation.queries
    if c.generator_eval_fraction > 0:  # the evaluation benchmark's other articles also train the generator
        gen_part, eval_part = split_by_article(evaluation, 1 - c.generator_eval_fraction, seed)
        gen_triples += triples(gen_part, generator_languages)
        eval_queries = eval_part.queries
    eval_queries = sample_queries(eval_queries, c.queries_per_language or None, seed)
    gen_passages = {t.passage_id for t in gen_triples}
    heldout = [p for pid, p in evaluation.passages.items() if pid not in gen_passages][: c.heldout_passages]

    # XOR-TyDi questions carry no article: they split by question id instead.
    tuning = [
        q
        for q in eval_queries
        if article_side(q.article or q.qid, c.alpha_tuning_fraction, seed + 1) == "eval"
    ]
    tuning_ids = {q.id for q in tuning}
    test = [q for q in eval_queries if q.id not in tuning_ids]

    save_passages(ws.collection, evaluation.passages)
    save_queries(ws.queries_file("eval"), test)
    save_queries(ws.queries_file("tuning"), tuning)
    save_triples(ws.generator_train, gen_triples)
    save_triples(ws.generator_dev, dev_triples)
    save_passages(ws.generator_heldout, {p.id: p for p in heldout})
    save_passages(ws.train_collection, training.passages)
    train_queries = [q for q in training.queries if q.language in set(generator_languages) | {"en"}]
    save_queries(ws.queries_file("train"), train_queries)
    write_jsonl(
        ws.train_groups,
        (
            {
                "query_id": q.id,
                "positives": list(groups[q.id].positives),
                "negatives": list(groups[q.id].negatives),
            }
            for q in train_queries
            if q.id in groups
        ),
    )
    # the reader is evaluated on the evaluation questions only: the ceiling (a retrieval
    # experiment) does not constrain its training data
    reader_passages, reader_queries = reader_training(training, train_queries, c.reader_data, [evaluation])
    save_passages(ws.reader_collection, reader_passages)
    save_queries(ws.queries_file("reader"), reader_queries)
    summary = {
        "collection passages": len(evaluation.passages),
        "evaluation queries (test)": len(test),
        "alpha-tuning queries": len(tuning),
        "generator training triples": len(gen_triples),
        "generator dev triples": len(dev_triples),
        "generator training passages": len(gen_passages),
        "held-out passages (checkpoint selection)": len(heldout),
        "retriever training queries": len(training.queries),
        "training collection passages": len(training.passages),
        "reader training questions": len(reader_queries),
        "test queries per language": {lang: sum(q.language == lang for q in test) for lang in eval_languages},
        **summary_ceiling,
    }
    write_json(ws.data_summary, summary)
    return summary
