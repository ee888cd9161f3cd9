"""Paired significance tests on per-query scores, corrected across languages and cutoffs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests


def paired_vectors(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Align two per-query score dicts; they must cover the same queries."""
    if set(a) != set(b):
        raise KeyError(f"paired test needs the same queries: {len(set(a) ^ set(b))} differ")
    keys = sorted(a)
    return np.array([a[k] for k in keys], float), np.array([b[k] for k in keys], float)


def paired_t(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test p-value (1.0 when the two systems never differ)."""
    d = b - a
    if np.allclose(d, 0):
        return 1.0
    return float(stats.ttest_rel(b, a).pvalue)


def wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value on the differences.

    Ties (zero differences, most pairs of 0/1 outcomes) are kept with Pratt's method rather
    than dropped, so the test sees how many queries did not change.
    """
    d = b - a
    if np.allclose(d, 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="pratt").pvalue)


def bootstrap_macro_mean(
    groups: Sequence[np.ndarray], draws: int = 1000, seed: int = 0, scale: float = 1.0
) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5%) of the unweighted mean over groups (languages) of each group's mean,
    times `scale`: a percentile bootstrap (`scipy.stats.bootstrap`, `draws` resamples) that
    resamples values within each group, independently across groups (stratified)."""
    groups = [np.asarray(g, float) for g in groups]
    mean = scale * float(np.mean([g.mean() for g in groups]))
    varying = [g for g in groups if len(g) > 1 and np.ptp(g) > 0]
    if not varying:  # nothing to resample: a point interval
        return mean, mean, mean
    fixed = sum(g.mean() for g in groups if not (len(g) > 1 and np.ptp(g) > 0))

    def macro(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return scale * (fixed + np.sum([x.mean(axis=axis) for x in samples], axis=0)) / len(groups)

    result = stats.bootstrap(
        varying,
        macro,
        n_resamples=draws,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
        paired=False,
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error), by `statsmodels`."""
    p = np.asarray(pvalues, float)
    return multipletests(p, method="holm")[1] if len(p) else p


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate)."""
    p = np.asarray(pvalues, float)
    return stats.false_discovery_control(p) if len(p) else p


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg, "none": lambda p: np.asarray(p, float)}


def compare(
    baseline: Mapping[str, Mapping[str, float]],
    system: Mapping[str, Mapping[str, float]],
    correction: str = "holm",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Tidy table of paired tests, one row per group (e.g. language x metric).

    `baseline[group]` and `system[group]` are per-query scores of the same queries. Columns:
    group, n, baseline, system, delta (means, in the scores' unit), p_t, p_wilcoxon, their
    corrected versions over all groups, and `significant` (corrected t-test p < alpha).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use one of {list(CORRECTIONS)}")
    rows = []
    for group in baseline:
        a, b = paired_vectors(baseline[group], system[group])
        rows.append(
            {
                "group": group,
                "n": len(a),
                "baseline": a.mean(),
                "system": b.mean(),
                "delta": (b - a).mean(),
                "p_t": paired_t(a, b),
                "p_wilcoxon": wilcoxon(a, b),
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["p_t_adj"] = CORRECTIONS[correction](df["p_t"].to_numpy())
    df["p_wilcoxon_adj"] = CORRECTIONS[correction](df["p_wilcoxon"].to_numpy())
    df["significant"] = df["p_t_adj"] < alpha
    return df
