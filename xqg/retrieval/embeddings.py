"""Embeddings saved together with their ids, so order can never silently drift; sharding.

A file is one ``.npz`` with ``ids`` (strings) and ``emb`` (float32 [n, d]), both stored
uncompressed, so `open_embeddings` can memory-map ``emb`` (an 18.2M x 768 float32 collection is
56 GB: searched in blocks, it never needs to be in memory) and `save_embedding_blocks` can write
it a block at a time. Shard i of n is the i-th contiguous block of the input order, so merging
the shards in index order restores the input order exactly (what a cluster job array over an
18M-passage collection needs).
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from xqg.io import atomic_path

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed member date: the same embeddings give the same bytes


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
    _check_ids(path, ids)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, ids=np.asarray(ids, dtype=str), emb=np.asarray(emb, np.float32))


def save_embedding_blocks(
    path: str | Path, ids: Sequence[str], blocks: Iterable[np.ndarray], dim: int
) -> None:
    """Write ids and embeddings as `save_embeddings` does, the embeddings arriving in row blocks
    (memory: one block); atomically, and refusing blocks that do not add up to the ids."""
    _check_ids(path, ids)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        with z.open(zipfile.ZipInfo("ids.npy", _ZIP_TIME), "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asarray(ids, dtype=str), allow_pickle=False)
        rows = 0
        with z.open(zipfile.ZipInfo("emb.npy", _ZIP_TIME), "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {**header, "shape": (len(ids), dim)})
            for block in blocks:
                block = np.ascontiguousarray(block, dtype=np.float32)
                if block.ndim != 2 or block.shape[1] != dim or rows + len(block) > len(ids):
                    raise ValueError(
                        f"{path}: block {block.shape} does not fit {len(ids)} x {dim} embeddings"
                    )
                f.write(block.tobytes())
                rows += len(block)
        if rows != len(ids):
            raise ValueError(f"{path}: {len(ids)} ids but {rows} embeddings")


def open_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Ids and a read-only memory map of the embeddings of a file `save_embeddings` or
    `save_embedding_blocks` wrote (pages are read as rows are used)."""
    with zipfile.ZipFile(path) as z:
        try:
            info = z.getinfo("emb.npy")
            with z.open("ids.npy") as f:
                ids = np.lib.format.read_array(f, allow_pickle=False).tolist()
        except KeyError:
            raise ValueError(f"{path}: not an embeddings file (needs 'ids' and 'emb')") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{path}: 'emb' is compressed; it cannot be memory-mapped")
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)  # the local header's name and extra-field lengths
        name_len, extra_len = struct.unpack("<HH", f.read(4))
        f.seek(info.header_offset + 30 + name_len + extra_len)
        major, _ = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran or len(shape) != 2:
        raise ValueError(f"{path}: 'emb' must be a C-ordered matrix, got shape {shape}")
    if len(ids) != shape[0]:
        raise ValueError(f"{path}: {len(ids)} ids but {shape[0]} embeddings")
    return ids, np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _check_ids(path: str | Path, ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate ids")


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
