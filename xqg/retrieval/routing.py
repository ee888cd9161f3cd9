"""Folded and language-routed augmentation of a small in-memory collection.

Folded (the paper): one vector per passage, ``(1 - alpha) * p + alpha * s`` with s the sum (or
mean) of the embeddings of *all* its queries. Routed (``routed-sum``, ``routed-mean``): one
vector per passage *and language*, s over that language's queries only; a query searches the
index of its own language. A language with no queries of its own (English, when the generator
does not write it) searches the folded index: that fallback is part of the routed system.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xqg.data.schema import Query
from xqg.retrieval.augment import MODES
from xqg.retrieval.query_sums import augment_with_sums, per_passage_sums
from xqg.retrieval.search import retrieve

ROUTED_PREFIX = "routed-"
Run = dict[str, list[tuple[str, float]]]


def split_mode(mode: str) -> tuple[bool, str]:
    """(routed?, the fold: sum or mean) of a mode such as ``mean`` or ``routed-mean``."""
    routed = mode.startswith(ROUTED_PREFIX)
    fold = mode.removeprefix(ROUTED_PREFIX)
    if fold not in MODES:
        raise ValueError(f"mode must be sum, mean, routed-sum or routed-mean, got {mode!r}")
    return routed, fold


def sums_by_language(
    passage_ids: Sequence[str], queries: Sequence[Query], emb: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{language: (float64 sums [passages, dim], counts [passages])} of the augmenting queries'
    embeddings per passage (each query augments its ``gold_passage``)."""
    row = {pid: i for i, pid in enumerate(passage_ids)}
    missing = [q.id for q in queries if q.gold_passage not in row]
    if missing:
        raise KeyError(
            f"{len(missing)} augmenting queries name a passage outside the collection: {missing[:3]}"
        )
    out = {}
    for lang in sorted({q.language for q in queries}):
        idx = np.array([i for i, q in enumerate(queries) if q.language == lang])
        rows = np.array([row[queries[i].gold_passage] for i in idx])
        at, summed = per_passage_sums(rows, emb[idx].astype(np.float64))
        total = np.zeros((len(passage_ids), emb.shape[1]), np.float64)
        counts = np.zeros(len(passage_ids), np.int64)
        total[at] = summed
        counts[at] = np.bincount(rows, minlength=len(passage_ids))[at]
        out[lang] = (total, counts)
    return out


def folded(sums: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The sums and counts over every language."""
    totals, counts = zip(*sums.values(), strict=True)
    return np.sum(totals, axis=0), np.sum(counts, axis=0)


def augmented_run(
    passage_ids: list[str],
    passage_emb: np.ndarray,
    sums: dict[str, tuple[np.ndarray, np.ndarray]],
    queries: Sequence[Query],
    query_emb: np.ndarray,
    alpha: float,
    mode: str,
    k: int = 100,
) -> Run:
    """Top-k exact inner-product run of `queries` over the passages augmented by `mode`: folded,
    or routed by each query's language (its benchmark language) with the folded index for a
    language that has no queries of its own."""
    routed, fold = split_mode(mode)
    everything = augment_with_sums(passage_emb, *folded(sums), alpha, fold)
    run: Run = {}
    for lang in sorted({q.language for q in queries}):
        idx = [i for i, q in enumerate(queries) if q.language == lang]
        index = (
            augment_with_sums(passage_emb, *sums[lang], alpha, fold)
            if routed and lang in sums
            else everything
        )
        run.update(retrieve(passage_ids, index, [queries[i].id for i in idx], query_emb[idx], k))
    return run


def round_trip_recall(
    passage_ids: list[str], passage_emb: np.ndarray, queries: Sequence[Query], emb: np.ndarray, k: int = 10
) -> dict[str, float]:
    """{language: share of the queries that retrieve their own passage in the top k}, over the
    un-augmented collection: how good a set of augmenting queries is as queries."""
    run = retrieve(passage_ids, passage_emb, [str(i) for i in range(len(queries))], emb, k)
    hits: dict[str, list[bool]] = {}
    for i, q in enumerate(queries):
        hits.setdefault(q.language, []).append(any(pid == q.gold_passage for pid, _ in run[str(i)][:k]))
    return {lang: float(np.mean(h)) for lang, h in sorted(hits.items())}
