"""Dense retrieval on a benchmark: encode (cached), search, and per-query passage metrics."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from xqg.data.schema import Benchmark, Passage, Query
from xqg.metrics import passage as pm
from xqg.metrics.xor_retrieve import aggregate_by_language, hit_at_tokens
from xqg.models.encoder import Encoder
from xqg.retrieval.embeddings import open_embeddings, save_embedding_blocks
from xqg.retrieval.search import ranked_ids, retrieve

DEFAULT_MEASURES = ("Recall@1", "Recall@5", "Recall@20", "MRR@10")


PASSAGE_FORMATS = ("title+text", "text")
ENCODE_BLOCK = 1 << 16  # passages tokenised and encoded at a time (length-sorted within a block)


def passage_text(title: str, text: str, passage_format: str = "title+text") -> str:
    """What the encoder reads for a passage: title and text, as DPR and Tevatron do
    (``title+text``), or the text alone (``text``)."""
    if passage_format not in PASSAGE_FORMATS:
        raise ValueError(f"passage format must be one of {PASSAGE_FORMATS}, got {passage_format!r}")
    return (f"{title} {text}" if passage_format == "title+text" else text).strip()


def collection_key(bench: Benchmark) -> str:
    """A short hash of the collection's ids and texts (cache key for its embeddings)."""
    h = hashlib.sha1()
    for pid, p in bench.passages.items():
        h.update(f"{pid}\t{p.title}\t{p.text}\n".encode())
    return h.hexdigest()[:12]


def encode_passages(
    get_encoder: Callable[[], Encoder],
    passages: dict[str, Passage],
    cache: Path | None,
    max_length: int,
    batch_size: int = 32,
    dtype: str = "float32",
    passage_format: str = "title+text",
    block: int = ENCODE_BLOCK,
) -> tuple[list[str], np.ndarray]:
    """Passage embeddings of a collection, read from `cache` when it holds exactly these ids
    (the encoder is only loaded, through `get_encoder`, when they must be computed);
    `passage_format` as `passage_text`.

    `block` passages are tokenised and encoded at a time and, with a cache, written as they come
    (`save_embedding_blocks`): memory is one block, whatever the collection's size. With a cache
    the embeddings are returned memory-mapped (read-only)."""
    ids = list(passages)
    if cache is not None and cache.exists():
        cached_ids, emb = open_embeddings(cache)
        if cached_ids == ids:
            return ids, emb

    encoder = get_encoder()
    blocks = (
        encoder.encode(
            [passage_text(passages[i].title, passages[i].text, passage_format) for i in ids[s : s + block]],
            "passage",
            max_length=max_length,
            batch_size=batch_size,
            dtype=dtype,
        )
        for s in range(0, len(ids), block)
    )
    if cache is None:
        return ids, np.concatenate(list(blocks))
    save_embedding_blocks(cache, ids, blocks, encoder.model.config.hidden_size)
    return open_embeddings(cache)


def encode_queries(
    encoder: Encoder, queries: Sequence[Query], max_length: int, batch_size: int = 128, dtype: str = "float32"
) -> np.ndarray:
    """Query embeddings in the order of `queries`."""
    return encoder.encode(
        [q.text for q in queries], "query", max_length=max_length, batch_size=batch_size, dtype=dtype
    )


def evaluate_run(
    bench: Benchmark,
    queries: Sequence[Query],
    run: dict[str, list[tuple[str, float]]],
    measures: Sequence[str] = DEFAULT_MEASURES,
    token_budgets: Sequence[int] = (),
) -> dict[str, dict[str, float]]:
    """{metric: {query id: value in [0, 1]}}: gold-passage measures where the benchmark has gold
    passages, answer recall within token budgets (R@kt) where asked."""
    ranked = ranked_ids(run)
    out: dict[str, dict[str, float]] = {}
    qrels = {q.id: {q.gold_passage: 1} for q in queries if q.gold_passage is not None}
    if qrels:
        out.update(pm.per_query({q: ranked[q] for q in qrels}, qrels, measures))
    for budget in token_budgets:
        scores = {}
        for q in queries:
            texts = [bench.passages[p].text for p in ranked[q.id]]
            hit = hit_at_tokens(texts, q.answers, budget)
            if hit is not None:
                scores[q.id] = float(hit)
        out[f"R@{budget // 1000}kt"] = scores
    return out


def summarise(
    per_query: dict[str, dict[str, float]], queries: Sequence[Query]
) -> dict[str, dict[str, float]]:
    """{metric: {language: percent, ..., "macro": percent}}."""
    langs = {q.id: q.language for q in queries}
    return {m: aggregate_by_language(v, langs) for m, v in per_query.items()}


def dense_retrieve(
    passage_ids: list[str],
    passage_emb: np.ndarray | Iterable[np.ndarray],
    queries: Sequence[Query],
    query_emb: np.ndarray,
    k: int,
) -> dict[str, list[tuple[str, float]]]:
    """Exact inner-product search of the queries over the passages (one matrix, or its
    consecutive row blocks: `xqg.retrieval.search.search_blocks`)."""
    return retrieve(passage_ids, passage_emb, [q.id for q in queries], query_emb, k)
