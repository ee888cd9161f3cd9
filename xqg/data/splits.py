"""Leakage-free splits: which data trains the generator, retriever and reader, and which evaluates.

Default (``mini``): XQuAD (48 articles) trains everything; MLQA dev evaluates, so no MLQA
question is seen in training. Where one benchmark is reused for both, it is split by article
with a salted hash, so every paragraph and every translation of a question sits on one side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from xqg.data.schema import Benchmark, Passage, Query


def article_side(article: str, eval_fraction: float, seed: int) -> str:
    """'eval' or 'train' for an article, from a salted hash (stable across runs and machines)."""
    h = int(hashlib.sha1(f"{seed}:{article}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval" if h < eval_fraction else "train"


def split_by_article(bench: Benchmark, eval_fraction: float, seed: int = 0) -> tuple[Benchmark, Benchmark]:
    """Split queries and passages by article into (train, eval) benchmarks."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in (0, 1), got {eval_fraction}")
    sides: dict[str, dict] = {"train": {}, "eval": {}}
    for pid, p in bench.passages.items():
        sides[article_side(p.title, eval_fraction, seed)][pid] = p
    parts = []
    for side in ("train", "eval"):
        qs = [q for q in bench.queries if q.gold_passage in sides[side]]
        parts.append(Benchmark(f"{bench.name}-{side}", bench.split, sides[side], qs))
    return parts[0], parts[1]


def shared_articles(a: Iterable[Passage], b: Iterable[Passage]) -> set[str]:
    """Article titles that occur in both collections (a leakage check)."""
    norm = lambda t: t.replace("_", " ").strip().lower()  # noqa: E731
    return {norm(p.title) for p in a} & {norm(p.title) for p in b}


def sample_queries(queries: list[Query], per_language: int | None, seed: int) -> list[Query]:
    """Deterministic subsample of at most `per_language` queries per language (None keeps all)."""
    if per_language is None:
        return list(queries)
    rank = {q.id: i for i, q in enumerate(queries)}
    keep: set[str] = set()
    for lang in dict.fromkeys(q.language for q in queries):
        qs = [q for q in queries if q.language == lang]
        qs.sort(key=lambda q: hashlib.sha1(f"{seed}:{q.id}".encode()).hexdigest())
        keep.update(q.id for q in qs[:per_language])
    return sorted((q for q in queries if q.id in keep), key=lambda q: rank[q.id])


def drop_shared_articles(train: Benchmark, evaluation: Benchmark) -> Benchmark:
    """`train` without the articles that also occur in `evaluation` (XQuAD and MLQA dev share
    "Harvard University" and "Prime number", both drawn from Wikipedia)."""
    shared = shared_articles(train.passages.values(), evaluation.passages.values())
    norm = lambda t: t.replace("_", " ").strip().lower()  # noqa: E731
    passages = {pid: p for pid, p in train.passages.items() if norm(p.title) not in shared}
    queries = [q for q in train.queries if q.gold_passage in passages]
    return Benchmark(train.name, train.split, passages, queries)


def reserve_questions(
    bench: Benchmark, per_passage: int, seed: int
) -> tuple[dict[str, Passage], list[Query], list[Query]]:
    """(passages, reserved, rest): for every passage, `per_passage` of its questions (by the
    benchmark's parallel id, so every translation of a reserved question is reserved with it) are
    set aside to augment it, the others evaluate. Passages with fewer than ``per_passage + 1``
    questions are dropped, so every kept passage has exactly `per_passage` reserved questions per
    language it is asked in and at least one question to evaluate: uniform augmentation, and no
    test question (or a translation of it) ever augments its own passage."""
    if per_passage < 1:
        raise ValueError(f"per_passage must be at least 1, got {per_passage}")
    qids: dict[str, set[str]] = {}
    for q in bench.queries:
        qids.setdefault(q.gold_passage or "", set()).add(q.qid)
    reserved: set[str] = set()
    kept: dict[str, Passage] = {}
    for pid, p in bench.passages.items():
        mine = sorted(qids.get(pid, ()), key=lambda qid: hashlib.sha1(f"{seed}:{qid}".encode()).hexdigest())
        if len(mine) > per_passage:
            kept[pid] = p
            reserved.update(mine[:per_passage])
    queries = [q for q in bench.queries if q.gold_passage in kept]
    return (
        kept,
        [q for q in queries if q.qid in reserved],
        [q for q in queries if q.qid not in reserved],
    )
