"""faiss search over passage embeddings, and TREC run files.

Exact inner-product search (`IndexFlatIP`) is the default, as the paper uses. For collections
that do not fit in memory, `ivf`, `hnsw` and `ivfpq` trade exactness for memory and speed;
`recall_against_exact` measures what they lose. `search_blocks` is the exact search of a
collection read a block of rows at a time (an augmented 18.2M-passage matrix need never be in
memory), merging each block's top k.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from xqg.io import atomic_path

INDEX_TYPES = ("flat", "ivf", "hnsw", "ivfpq")
SEARCH_BLOCK = 1 << 18  # passages per block: 0.8 GB of float32 at 768 dimensions


def build_index(
    emb: np.ndarray, kind: str = "flat", nlist: int = 1024, m: int = 32, nprobe: int = 32, seed: int = 0
) -> faiss.Index:
    """An inner-product index over `emb` (float32 [n, d]); d is taken from the data."""
    if kind not in INDEX_TYPES:
        raise ValueError(f"unknown index type {kind!r}; use one of {INDEX_TYPES}")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    d = emb.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
    else:
        nlist = max(1, min(nlist, len(emb) // 39))  # faiss wants ~39 training points per list
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            sub = next(s for s in (m, 16, 8, 4, 2, 1) if d % s == 0)
            index = faiss.IndexIVFPQ(quantizer, d, nlist, sub, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(emb)
        index.nprobe = min(nprobe, nlist)
    index.add(emb)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, row indices) per query; k is capped at the collection size."""
    k = min(k, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def search_blocks(blocks: Iterable[np.ndarray], queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, row indices) of inner-product search over a collection given as
    consecutive row blocks, rows numbered across blocks; memory is one block and its index.

    Each block is searched with a flat index and the blocks' top k are merged (faiss's
    `ResultHeap`). faiss scores a query block against 1,024 database rows per BLAS call, so blocks
    of a multiple of 1,024 rows (all but the last) give the bits one flat index gives (tested)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    start = 0
    for block in blocks:
        if block.ndim != 2 or block.shape[1] != queries.shape[1]:
            raise ValueError(f"dimension mismatch: passages {block.shape}, queries {queries.shape}")
        scores, rows = search(build_index(block), queries, k)
        heap.add_result(scores, np.where(rows >= 0, rows + start, -1))
        start += len(block)
    heap.finalize()
    found = min(k, start)
    return heap.D[:, :found], heap.I[:, :found]


def retrieve(
    passage_ids: Sequence[str],
    passage_emb: np.ndarray | Iterable[np.ndarray],
    query_ids: Sequence[str],
    query_emb: np.ndarray,
    k: int,
    kind: str = "flat",
) -> dict[str, list[tuple[str, float]]]:
    """Run: query id -> [(passage id, score)] in rank order. `passage_emb` is one matrix, or (for
    exact search only) an iterable of its consecutive row blocks (`search_blocks`)."""
    if len(query_ids) != len(query_emb):
        raise ValueError(f"{len(query_ids)} query ids but {len(query_emb)} embeddings")
    if isinstance(passage_emb, np.ndarray):
        if len(passage_ids) != len(passage_emb):
            raise ValueError(f"{len(passage_ids)} passage ids but {len(passage_emb)} embeddings")
        if passage_emb.shape[1] != query_emb.shape[1]:
            raise ValueError(
                f"dimension mismatch: passages {passage_emb.shape[1]}, queries {query_emb.shape[1]}"
            )
        scores, rows = search(build_index(passage_emb, kind), query_emb, k)
    elif kind != "flat":
        raise ValueError(f"a collection in blocks is searched exactly (kind 'flat'), not {kind!r}")
    else:
        scores, rows = search_blocks(passage_emb, query_emb, k)
        if int(rows.max(initial=-1)) >= len(passage_ids):
            raise ValueError(f"{len(passage_ids)} passage ids but more embeddings in the blocks")
    return {
        q: trec_order([(passage_ids[r], float(s)) for r, s in zip(rrow, srow) if r >= 0])
        for q, rrow, srow in zip(query_ids, rows, scores)
    }


def trec_order(hits: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Hits ranked as trec_eval ranks them: score descending, ties by document id descending
    (its ``comp_sim_docno``), so the project's metrics and trec_eval/ir_measures/ranx agree."""
    by_docno = sorted(hits, key=lambda h: h[0], reverse=True)
    return sorted(by_docno, key=lambda h: -h[1])  # stable: ties keep the descending docno order


def ranked_ids(run: dict[str, list[tuple[str, float]]]) -> dict[str, list[str]]:
    """Drop the scores of a run."""
    return {q: [p for p, _ in hits] for q, hits in run.items()}


def recall_against_exact(approx: dict[str, list[str]], exact: dict[str, list[str]], k: int) -> float:
    """Mean share of the exact top-k that an approximate index also returns in its top-k."""
    return float(
        np.mean([len(set(approx[q][:k]) & set(exact[q][:k])) / max(1, len(exact[q][:k])) for q in exact])
    )


def write_trec_run(path: str | Path, run: dict[str, list[tuple[str, float]]], tag: str) -> None:
    """TREC run format: ``qid Q0 docid rank score tag``, atomically, queries in sorted order.

    Scores are written in full precision (``repr`` of the float: it reads back to the same
    number), so no tie appears that the search did not have; ranks follow `trec_order`."""
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be one word, got {tag!r}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q in sorted(run):
            for rank, (p, s) in enumerate(trec_order(run[q]), 1):
                f.write(f"{q} Q0 {p} {rank} {float(s)!r} {tag}\n")


def write_trec_qrels(path: str | Path, qrels: dict[str, dict[str, int]]) -> None:
    """TREC qrels format: ``qid 0 docid relevance``, atomically, in sorted order."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q in sorted(qrels):
            for p in sorted(qrels[q]):
                f.write(f"{q} 0 {p} {qrels[q][p]}\n")


def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """Read a TREC run back, ranked by the rank column."""
    rows: dict[str, list[tuple[int, str, float]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 6:
                raise ValueError(f"{path}:{lineno}: expected 6 columns, got {len(parts)}")
            q, _, p, rank, score, _ = parts
            rows.setdefault(q, []).append((int(rank), p, float(score)))
    return {q: [(p, s) for _, p, s in sorted(hits)] for q, hits in rows.items()}
