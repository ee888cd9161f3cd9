"""Passage-ranking metrics per query: Success/Recall@k, MRR@k, nDCG@k, answer containment.

With one relevant passage per query, Recall@k equals Success@k (ir_measures' naming note);
both are given so tables can use the name a benchmark's literature uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

Run = Mapping[str, Sequence[str]]  # query id -> passage ids in rank order
Qrels = Mapping[str, Mapping[str, int]]  # query id -> {passage id: relevance}


def check_keys(run: Run, qrels: Qrels) -> None:
    """Run and qrels must describe the same queries (no silent change of denominator)."""
    if set(run) != set(qrels):
        only_run, only_qrels = set(run) - set(qrels), set(qrels) - set(run)
        raise KeyError(
            f"run and qrels differ: {len(only_run)} queries only in the run "
            f"{sorted(only_run)[:3]}, {len(only_qrels)} only in the qrels {sorted(only_qrels)[:3]}"
        )


def recall_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """Share of relevant passages found in the top k."""
    relevant = {p for p, r in rel.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def success_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """1 if any relevant passage is in the top k."""
    return float(any(rel.get(p, 0) > 0 for p in ranked[:k]))


def rr_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant passage within the top k (0 if none)."""
    for i, p in enumerate(ranked[:k], 1):
        if rel.get(p, 0) > 0:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], rel: Mapping[str, int], k: int) -> float:
    """nDCG@k with graded gains rel / log2(rank + 1)."""
    dcg = sum(rel.get(p, 0) / math.log2(i + 1) for i, p in enumerate(ranked[:k], 1))
    ideal = sorted((r for r in rel.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 1) for i, r in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0


MEASURES: dict[str, Callable[[Sequence[str], Mapping[str, int], int], float]] = {
    "Recall": recall_at,
    "Success": success_at,
    "MRR": rr_at,
    "nDCG": ndcg_at,
}


def parse_measure(name: str) -> tuple[str, int]:
    """'MRR@10' -> ('MRR', 10), with a clear error for unknown names."""
    base, _, k = name.partition("@")
    if base not in MEASURES or not k.isdigit():
        raise ValueError(f"unknown measure {name!r}; use one of {list(MEASURES)} with @k")
    return base, int(k)


def per_query(run: Run, qrels: Qrels, measures: Sequence[str]) -> dict[str, dict[str, float]]:
    """{measure: {query id: value in [0, 1]}} for every query of the qrels."""
    check_keys(run, qrels)
    out: dict[str, dict[str, float]] = {}
    for m in measures:
        base, k = parse_measure(m)
        fn = MEASURES[base]
        out[m] = {q: fn(run[q], qrels[q], k) for q in qrels}
    return out


def answer_recall_at(
    run: Run, passages: Mapping[str, str], answers: Mapping[str, Sequence[str]], k: int
) -> dict[str, float]:
    """Per query: 1 if any gold answer string occurs in one of the top-k passage texts."""
    check_keys(run, answers)  # type: ignore[arg-type]
    return {q: float(any(a in passages[p] for p in run[q][:k] for a in answers[q] if a)) for q in answers}
