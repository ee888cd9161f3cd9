"""Embeddings saved together with their ids, so order can never silently drift; sharding.

A shard file is one ``.npz`` with ``ids`` (strings) and ``emb`` (float32 [n, d]). Shard i of n is
the i-th contiguous block of the input order, so merging the shards in index order restores the
input order exactly (what a cluster job array over an 18M-passage collection needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xqg.io import atomic_path


def shard_bounds(n_items: int, shard: int, num_shards: int) -> tuple[int, int]:
    """[start, end) of contiguous shard `shard` of `num_shards` over `n_items` items."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range for {num_shards} shards")
    per, extra = divmod(n_items, num_shards)
    start = shard * per + min(shard, extra)
    return start, start + per + (1 if shard < extra else 0)


def save_embeddings(path: str | Path, ids: Sequence[str], emb: np.ndarray) -> None:
    """Write ids and embeddings together, atomically; refuse misaligned arrays."""
    if len(ids) != len(emb):
        raise ValueError(f"{path}: {len(ids)} ids but {len(emb)} embeddings")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate ids")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.asarray(ids, dtype=str), emb=np.asarray(emb, np.float32))


def load_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read ids and embeddings written by `save_embeddings`."""
    with np.load(path, allow_pickle=False) as z:
        if "ids" not in z or "emb" not in z:
            raise ValueError(f"{path}: not an embeddings file (needs 'ids' and 'emb')")
        ids, emb = z["ids"].tolist(), z["emb"]
    if len(ids) != len(emb):
        raise ValueError(f"{path}: {len(ids)} ids but {len(emb)} embeddings")
    return ids, emb


def merge_shards(paths: Sequence[str | Path]) -> tuple[list[str], np.ndarray]:
    """Concatenate shard files in the order given (shard 0 first); ids must stay unique."""
    parts = [load_embeddings(p) for p in paths]
    ids = [i for part_ids, _ in parts for i in part_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("shards overlap: duplicate ids after merging")
    return ids, np.concatenate([e for _, e in parts])
