"""The human-question ceiling and the quality-to-gain curve (step 05b).

On a collection neither generator nor retriever trained on (XQuAD paragraphs of held-out
articles, step 01), every paragraph is augmented with the same number of queries per language
from one *source*: the human questions reserved for it (``generator = human``), the generator's
queries (``full``), or
a mixture with an exact share of human questions (``human-50%``). Each source's gain over no
augmentation, with a 95% bootstrap interval, is set against the round-trip Recall@10 of the
queries it used: how good must a generator be for xQG to pay?
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xqg.data.schema import Query
from xqg.study.report import save_figure, save_table, set_style
from xqg.study.research_questions import bootstrap_delta
from xqg.study.systems import family as mode_family

HUMAN = "human"
GENERATED = "full"  # the generator variant whose queries the ceiling compares


@dataclass(frozen=True)
class QuerySource:
    """The augmenting queries of one source, with their embeddings (rows aligned)."""

    name: str  # the results' `generator` column
    human_share: float
    queries: list[Query]
    emb: np.ndarray


def generated_queries(records: Sequence[dict]) -> list[Query]:
    """Generated-query records (step 03) as queries of their passage (an empty one reads "?")."""
    return [
        Query(
            f"gen-{r['passage_id']}-{r['language']}-{r['sample']}",
            f"gen-{r['passage_id']}-{r['sample']}",
            r["language"],
            r["text"] if r["text"].strip() else "?",
            (),
            r["passage_id"],
        )
        for r in records
    ]


def _slots(source: QuerySource) -> dict[tuple[str, str], list[int]]:
    """{(passage, language): the rows of its queries, in a fixed order}."""
    slots: dict[tuple[str, str], list[int]] = {}
    for i, q in enumerate(source.queries):
        slots.setdefault((q.gold_passage or "", q.language), []).append(i)
    return {key: sorted(rows, key=lambda i: source.queries[i].id) for key, rows in slots.items()}


def mixture(human: QuerySource, generated: QuerySource, share: float, seed: int) -> QuerySource:
    """Exactly ``round(share * slots)`` of the (passage, language, position) slots take the human
    question, the rest the generated one, the slots chosen by a salted hash: every passage keeps
    the same number of queries per language, whatever the share."""
    h, g = _slots(human), _slots(generated)
    if {k: len(v) for k, v in h.items()} != {k: len(v) for k, v in g.items()}:
        raise ValueError("human and generated queries differ in number per passage and language")
    slots = sorted(
        ((key, pos) for key, rows in h.items() for pos in range(len(rows))),
        key=lambda s: hashlib.sha1(f"{seed}:{s[0][0]}:{s[0][1]}:{s[1]}".encode()).hexdigest(),
    )
    n_human = round(share * len(slots))
    queries, emb = [], []
    for i, (key, pos) in enumerate(slots):
        source, rows = (human, h) if i < n_human else (generated, g)
        queries.append(source.queries[rows[key][pos]])
        emb.append(source.emb[rows[key][pos]])
    return QuerySource(f"{HUMAN}-{100 * share:g}%", share, queries, np.stack(emb))


def families(modes: Sequence[str]) -> dict[str, list[str]]:
    """{"folded": [...], "routed": [...]}: the modes of each family present in `modes`."""
    out: dict[str, list[str]] = {}
    for mode in modes:
        out.setdefault(mode_family(mode), []).append(mode)
    return out


def curve_table(
    per_query: pd.DataFrame, quality: pd.DataFrame, metric: str, draws: int = 1000
) -> pd.DataFrame:
    """One row per (family, source): human share, round-trip Recall@10 of its queries (macro, %),
    and the gain in `metric` over no augmentation (macro, points) with its 95% bootstrap
    interval (queries resampled within language). `per_query` holds the test rows of every
    system and the baseline (``xqg`` False); `quality` is {generator, language, recall}."""
    pq = per_query[per_query.metric == metric]
    base = pq[~pq.xqg].set_index("query_id")["value"]
    rows = []
    for (mode, generator), g in pq[pq.xqg].groupby(["mode", "generator"], sort=False):
        pairs = g.assign(base=g.query_id.map(base), other=g["value"])
        mean, lo, hi = bootstrap_delta(pairs[["language", "base", "other"]], draws)
        q = quality[quality.generator == generator]
        rows.append(
            {
                "family": mode_family(mode),
                "generator": generator,
                "human share": float(q.human_share.iloc[0]),
                "mode": mode,
                "alpha": float(g.alpha.iloc[0]),
                "round-trip R@10": 100 * q.recall.mean(),
                f"{metric} gain": mean,
                "low": lo,
                "high": hi,
            }
        )
    return pd.DataFrame(rows).sort_values(["family", "human share"], kind="stable").reset_index(drop=True)


def draw_curve(table: pd.DataFrame, metric: str):
    """Gain in `metric` (95% interval) against the round-trip Recall@10 of the augmenting
    queries, one line per family, each point labelled with its share of human questions."""
    import matplotlib.pyplot as plt

    set_style()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for family, g in table.groupby("family", sort=False):
        x, y = g["round-trip R@10"], g[f"{metric} gain"]
        ax.errorbar(x, y, yerr=[y - g.low, g.high - y], marker="o", capsize=3, label=family)
        for xi, yi, share in zip(x, y, g["human share"], strict=True):
            ax.annotate(f"{100 * share:g}%", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("round-trip Recall@10 of the augmenting queries (%)")
    ax.set_ylabel(f"{metric} gain over no xQG (points)")
    ax.legend(title="augmentation", frameon=False)
    return fig


def save_curve(table: pd.DataFrame, metric: str, table_out: Path, figure_out: Path) -> list[Path]:
    """The curve as a table (CSV, Markdown, LaTeX) and a figure (PDF, PNG)."""
    shown = table.set_index(table.family + ", " + table.generator).drop(columns=["family", "generator"])
    shown["alpha"] = shown["alpha"].map("{:g}".format)  # 0.003 would print as 0.0
    shown["human share"] = shown["human share"].map(lambda v: f"{100 * v:g}%")
    caption = f"Gain in {metric} over no xQG on the ceiling collection against query quality (95% CI)."
    return save_table(shown, table_out, bold_max=False, caption=caption) + save_figure(
        draw_curve(table, metric), figure_out
    )


def curve_finding(table: pd.DataFrame, metric: str) -> str:
    """The sentence the findings carry: the gains of human and generated queries and how the
    gain moves with the queries' quality."""
    parts = []
    for family, g in table.groupby("family", sort=False):
        by = g.set_index("generator")
        human, gen = by.loc[HUMAN], by.loc[GENERATED]
        slope = np.polyfit(g["round-trip R@10"], g[f"{metric} gain"], 1)[0] if len(g) > 2 else float("nan")
        parts.append(
            f"{family}: human questions (round-trip R@10 {human['round-trip R@10']:.1f}%) change {metric} by "
            f"{human[f'{metric} gain']:+.1f} [{human.low:+.1f}, {human.high:+.1f}], the generator's "
            f"({gen['round-trip R@10']:.1f}%) by {gen[f'{metric} gain']:+.1f} "
            f"[{gen.low:+.1f}, {gen.high:+.1f}]; "
            f"over the mixtures the gain moves {slope:+.2f} points per point of round-trip recall"
        )
    return "On the ceiling collection, " + "; ".join(parts) + "."
