"""Per-passage running sums of generated-query embeddings, built in one streaming pass.

xQG adds ``alpha * sum_i q_i`` to each passage (Zhuang et al., 2023). Keeping one vector per
generated query grows with the queries (637M x 768 floats, about 2 TB, at the paper's scale),
while augmentation needs only their sums. `build_query_sums` reads the generated queries in
chunks of `chunk_size`, encodes a chunk and folds it into running sums kept as memory-mapped
arrays: for all languages together one sum per query count n in `counts` (the ablation's
1..N), and for each language subset asked for (RQ1's seen languages, one language for routing)
the sums at its counts. Memory is one chunk plus the page cache; disk is
(sums) x passages x dim whatever the number of queries per passage.

Each chunk is summed per passage in float64 and added to the stored sums, kept in `dtype`:
float64 (the default) makes, for a file that fits one chunk, exactly the additions
`xqg.retrieval.augment.augment` makes, so both give the same bits (across chunks they differ in
the last bits only); float32 or float16 cut the disk at paper scale (error ~1e-7 and ~1e-3
relative).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from xqg.io import atomic_dir, read_json
from xqg.retrieval.augment import MODES

META = "meta.json"
COUNTS = "counts.npy"
MAX_SAMPLES = 63  # sample indices are tracked as bits of an int64 per passage and language


@dataclass(frozen=True)
class SumGroup:
    """One family of sums: the queries of `languages` (all when None), first n samples per
    language for each n of `counts`."""

    languages: tuple[str, ...] | None
    counts: tuple[int, ...]

    @property
    def name(self) -> str:
        """``all`` or the languages joined by ``+`` (sorted)."""
        return "all" if self.languages is None else "+".join(sorted(self.languages))


def passage_digest(passage_ids: Sequence[str]) -> str:
    """Hash of the passage order the sums' rows follow."""
    return hashlib.sha1("\n".join(passage_ids).encode()).hexdigest()


def build_query_sums(
    records: Iterable[dict],
    passage_ids: Sequence[str],
    encode: Callable[[list[str]], np.ndarray],
    groups: Sequence[SumGroup],
    out_dir: str | Path,
    *,
    languages: Sequence[str],
    dim: int,
    dtype: str = "float64",
    chunk_size: int = 1 << 15,
    on_chunk: Callable[[list[dict], np.ndarray], None] | None = None,
) -> QuerySums:
    """Stream `records` (``passage_id``, ``language``, ``sample``, ``text``), encode them `chunk_size`
    at a time with `encode` (an empty text is encoded as "?"), and write the sums of `groups` to
    `out_dir` (complete or absent: built in a temporary folder). `on_chunk` sees each chunk's
    records and embeddings (the quality report keeps a sample of them)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    row_of = {pid: i for i, pid in enumerate(passage_ids)}
    lang_of = {lang: i for i, lang in enumerate(languages)}
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        sums = {
            g.name: np.lib.format.open_memmap(
                tmp / f"{g.name}.npy", mode="w+", dtype=dtype, shape=(len(g.counts), len(passage_ids), dim)
            )
            for g in groups
        }
        seen = np.zeros((len(passage_ids), len(languages)), dtype=np.int64)  # bit s: sample s folded
        chunk: list[dict] = []
        bar = tqdm(desc="encode and sum generated queries", unit=" queries", leave=False)

        def fold(part: list[dict]) -> None:
            rows = np.array([row_of[r["passage_id"]] for r in part], dtype=np.int64)
            langs = np.array([lang_of[r["language"]] for r in part], dtype=np.int64)
            samples = np.array([r["sample"] for r in part], dtype=np.int64)
            bits = np.left_shift(np.int64(1), samples)
            if np.any(seen[rows, langs] & bits) or len(set(zip(rows, langs, samples))) != len(part):
                raise ValueError(f"{out_dir}: a generated query occurs twice (passage, language, sample)")
            np.bitwise_or.at(seen, (rows, langs), bits)
            emb = encode([r["text"] if r["text"].strip() else "?" for r in part])
            if on_chunk is not None:
                on_chunk(part, emb)
            wide = emb.astype(np.float64)
            for g in groups:
                in_group = (
                    np.ones(len(part), bool)
                    if g.languages is None
                    else np.isin(langs, [lang_of[x] for x in g.languages])
                )
                for k, n in enumerate(g.counts):
                    keep = in_group & (samples < n)
                    touched, chunk_sums = per_passage_sums(rows[keep], wide[keep])
                    sums[g.name][k][touched] += chunk_sums.astype(dtype, copy=False)
            bar.update(len(part))

        for i, r in enumerate(records, 1):
            _check_record(r, i, row_of, lang_of, out_dir)
            chunk.append(r)
            if len(chunk) == chunk_size:
                fold(chunk)
                chunk = []
        if chunk:
            fold(chunk)
        bar.close()
        counts = _contiguous_counts(seen, out_dir)
        for array in sums.values():
            array.flush()
        sums.clear()  # close the memmaps before the folder is renamed
        np.save(tmp / COUNTS, counts)
        meta = {
            "passages": len(passage_ids),
            "passage_digest": passage_digest(passage_ids),
            "dim": dim,
            "dtype": dtype,
            "languages": list(languages),
            "groups": [asdict(g) for g in groups],
        }
        (tmp / META).write_text(json.dumps(meta, indent=1))
    return QuerySums(out_dir)


def per_passage_sums(rows: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, the sum of each row's embeddings), adding a row's embeddings in their
    order (a stable sort, then sequential reduction): the additions `np.add.at` would make, at a
    fraction of its cost."""
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    if not len(ordered):
        return ordered, emb[:0]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.add.reduceat(emb[order], starts, axis=0)


def _check_record(r: dict, i: int, row_of: dict, lang_of: dict, where: Path) -> None:
    for key in ("passage_id", "language", "sample", "text"):
        if key not in r:
            raise ValueError(f"{where}: generated query {i}: field '{key}' missing")
    if r["passage_id"] not in row_of:
        raise KeyError(
            f"{where}: generated query {i} belongs to passage {r['passage_id']!r}, not in the collection"
        )
    if r["language"] not in lang_of:
        raise ValueError(
            f"{where}: generated query {i}: language {r['language']!r} not among {sorted(lang_of)}"
        )
    if not isinstance(r["sample"], int) or not 0 <= r["sample"] < MAX_SAMPLES:
        raise ValueError(f"{where}: generated query {i}: field 'sample' must be an int in [0, {MAX_SAMPLES})")


def _contiguous_counts(seen: np.ndarray, where: Path) -> np.ndarray:
    """Queries per passage and language, refusing gaps (samples 0..c-1 must all be there)."""
    counts = np.zeros(seen.shape, dtype=np.int32)
    for c in range(MAX_SAMPLES + 1):
        counts[seen == np.int64((1 << c) - 1)] = c
    gaps = (counts == 0) & (seen != 0)
    if gaps.any():
        raise ValueError(
            f"{where}: {int(gaps.sum())} (passage, language) pairs miss samples below their last one"
        )
    return counts


class QuerySums:
    """The sums `build_query_sums` wrote: `total(n, languages)` and how many queries it holds."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / META).exists():
            raise FileNotFoundError(f"{self.folder}: no query sums ({META} missing)")
        self.meta = read_json(self.folder / META)
        self.groups = [
            SumGroup(tuple(g["languages"]) if g["languages"] else None, tuple(g["counts"]))
            for g in self.meta["groups"]
        ]
        self.languages: list[str] = self.meta["languages"]
        self.counts = np.load(self.folder / COUNTS)  # [passages, languages]

    def check_passages(self, passage_ids: Sequence[str]) -> None:
        """Refuse a collection other than the one the sums were built over."""
        if passage_digest(passage_ids) != self.meta["passage_digest"]:
            raise ValueError(f"{self.folder}: built over another collection or passage order")

    def _group(self, languages: Sequence[str] | None, n: int) -> tuple[SumGroup, int]:
        name = SumGroup(None if languages is None else tuple(languages), ()).name
        for g in self.groups:
            if g.name == name and n in g.counts:
                return g, g.counts.index(n)
        have = ", ".join(f"{g.name} at n={list(g.counts)}" for g in self.groups)
        raise KeyError(f"{self.folder}: no sums for {name} at n={n} (it has {have})")

    def total(self, n: int, languages: Sequence[str] | None = None) -> np.ndarray:
        """[passages, dim] sums of the first `n` queries per language of `languages` (all: None)."""
        g, k = self._group(languages, n)
        return np.load(self.folder / f"{g.name}.npy", mmap_mode="r")[k]

    def per_passage(self, n: int, languages: Sequence[str] | None = None) -> np.ndarray:
        """Queries each passage's sum holds; refuses uneven numbers per language across passages
        (a passage with more queries would pull every query towards it)."""
        cols = (
            range(len(self.languages)) if languages is None else [self.languages.index(x) for x in languages]
        )
        used = np.minimum(self.counts[:, list(cols)], n)
        has = used.sum(axis=1) > 0
        if has.any() and len(np.unique(used[has], axis=0)) > 1:
            raise ValueError(
                f"{self.folder}: uneven numbers of generated queries per passage and language at n={n}; "
                "every passage needs the same number per language"
            )
        return used.sum(axis=1)


def augment_with_sums(
    passage_emb: np.ndarray,
    total: np.ndarray,
    counts: np.ndarray,
    alpha: float,
    mode: str = "sum",
    block: int = 1 << 16,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``(1 - alpha) * p + alpha * s`` with s the sum (or the mean) of a passage's queries, in
    float64 as `xqg.retrieval.augment.augment` computes it, `block` passages at a time (the
    float64 temporaries stay small). The float32 result goes to `out`, which may be
    `passage_emb` itself (no second O(passages) array). A passage without queries is an error:
    augmentation must be uniform."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if total.shape != passage_emb.shape:
        raise ValueError(f"sums {total.shape} do not match passages {passage_emb.shape}")
    if (counts == 0).any():
        raise KeyError(f"{int((counts == 0).sum())} passages have no generated queries")
    if out is None:
        out = np.empty(passage_emb.shape, np.float32)
    elif out.shape != passage_emb.shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {passage_emb.shape}, got {out.dtype} {out.shape}")
    for s in range(0, len(out), block):
        wide = np.array(total[s : s + block], dtype=np.float64)
        if mode == "mean":
            wide /= counts[s : s + block, None]
        out[s : s + block] = (1.0 - alpha) * passage_emb[s : s + block].astype(np.float64) + alpha * wide
    return out
