"""xQG passage augmentation: ``p' = (1 - alpha) * p + alpha * sum_i q_i`` (Zhuang et al., 2023).

The authors' code sums the embeddings of all a passage's generated queries (it does not
average); ``mode="mean"`` is offered as the variant. Subsets are chosen without re-encoding:
the first `n` samples per language (the query-count ablation) and a set of languages (the
generalisation study). Every passage must get the same number of queries per language, or
the passages with more queries would pull every query towards them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MODES = ("sum", "mean")


@dataclass
class GeneratedEmbeddings:
    """Embeddings of generated queries with, per row, their passage, language and sample index."""

    passage_ids: list[str]
    languages: list[str]
    samples: np.ndarray  # int sample index per row
    emb: np.ndarray  # float32 [n_rows, d]

    def __post_init__(self) -> None:
        n = len(self.emb)
        if not len(self.passage_ids) == len(self.languages) == len(self.samples) == n:
            raise ValueError(
                f"generated-query arrays misaligned: {len(self.passage_ids)} passage ids, "
                f"{len(self.languages)} languages, {len(self.samples)} samples, {n} embeddings"
            )
        self.samples = np.asarray(self.samples)

    def select(self, n: int | None = None, languages: Sequence[str] | None = None) -> GeneratedEmbeddings:
        """The first `n` samples per passage and language, of the given languages."""
        keep = np.ones(len(self.emb), dtype=bool)
        if n is not None:
            keep &= self.samples < n
        if languages is not None:
            keep &= np.isin(np.asarray(self.languages), list(languages))
        idx = np.flatnonzero(keep)
        return GeneratedEmbeddings(
            [self.passage_ids[i] for i in idx],
            [self.languages[i] for i in idx],
            self.samples[idx],
            self.emb[idx],
        )


def augment(
    passage_ids: Sequence[str],
    passage_emb: np.ndarray,
    generated: GeneratedEmbeddings,
    alpha: float = 0.01,
    mode: str = "sum",
    on_missing: str = "error",
    on_unknown: str = "error",
) -> np.ndarray:
    """Augmented passage embeddings (a new array; the input is not changed).

    `on_missing`: "error" or "keep" (a passage without generated queries keeps its embedding);
    `on_unknown`: "error" or "ignore" (queries of passages not in the collection).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(passage_ids) != len(passage_emb):
        raise ValueError(f"{len(passage_ids)} passage ids but {len(passage_emb)} embeddings")
    if len(generated.emb) and generated.emb.shape[1] != passage_emb.shape[1]:
        raise ValueError(
            f"dimension mismatch: passages {passage_emb.shape[1]}, queries {generated.emb.shape[1]}"
        )
    row_of = {pid: i for i, pid in enumerate(passage_ids)}
    rows = np.array([row_of.get(pid, -1) for pid in generated.passage_ids], dtype=np.int64)
    unknown = rows < 0
    if unknown.any() and on_unknown != "ignore":
        first = generated.passage_ids[int(np.flatnonzero(unknown)[0])]
        raise KeyError(
            f"{int(unknown.sum())} generated queries belong to passages not in the "
            f"collection (e.g. {first!r}); pass on_unknown='ignore' to drop them"
        )
    counts = np.bincount(rows[~unknown], minlength=len(passage_ids))
    _check_even(generated, rows, unknown)
    if (counts == 0).any() and on_missing != "keep":
        first = passage_ids[int(np.flatnonzero(counts == 0)[0])]
        raise KeyError(
            f"{int((counts == 0).sum())} passages have no generated queries (e.g. {first!r}); "
            "pass on_missing='keep' to leave them unchanged"
        )
    total = np.zeros_like(passage_emb, dtype=np.float64)
    np.add.at(total, rows[~unknown], generated.emb[~unknown].astype(np.float64))
    if mode == "mean":
        total /= np.maximum(counts, 1)[:, None]
    out = (1.0 - alpha) * passage_emb.astype(np.float64) + alpha * total
    has = counts > 0
    out[~has] = passage_emb[~has]  # passages without queries are left exactly as they were
    return out.astype(np.float32)


def _check_even(generated: GeneratedEmbeddings, rows: np.ndarray, unknown: np.ndarray) -> None:
    """Every augmented passage must have the same number of queries in each language."""
    per: dict[tuple[int, str], int] = {}
    for r, lang in zip(rows[~unknown].tolist(), np.asarray(generated.languages)[~unknown].tolist()):
        per[(r, lang)] = per.get((r, lang), 0) + 1
    langs = sorted({lang for _, lang in per})
    passages = {r for r, _ in per}
    counts = {per.get((r, lang), 0) for r in passages for lang in langs}
    if len(counts) > 1:
        raise ValueError(
            f"uneven numbers of generated queries per passage and language: {sorted(counts)}; "
            "select the same n for every passage (GeneratedEmbeddings.select)"
        )
