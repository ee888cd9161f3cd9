"""Step 08's answers to the two research questions: tables, figures and the sentences that state them.

RQ1 (generalisation): per-language gains of xQG over the same encoder without it, for the full
generator and for the generator that never saw the held-out (unseen) languages, retrieval and QA
side by side. RQ2 (robustness): the metric lost from the clean to the perturbed queries, per
family and severity, without and with xQG, with paired tests on the per-query drops.
Uncertainty: 95% bootstrap intervals of paired mean differences (queries resampled within
language, 1,000 draws, seed 0) and paired t-tests with Holm's correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xqg.metrics.significance import bootstrap_macro_mean, holm, paired_t
from xqg.study.report import save_figure, save_table, set_style
from xqg.study.systems import family_suffix

RQ1_SYSTEMS = {  # (generator, gen_languages is all?) -> short name in tables and figures
    ("full", True): "xQG",
    ("full", False): "xQG, seen languages' queries only",
    ("seen-only", False): "seen-only generator, seen languages' queries",
    ("seen-only", True): "seen-only generator, asked for every language",
}


def _paired(base: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Per-query (language, base, other) joined on the query id."""
    b = base.set_index("query_id")[["language", "value"]]
    o = other.set_index("query_id")["value"].rename("other")
    return b.join(o, how="inner").rename(columns={"value": "base"})


def bootstrap_delta(pairs: pd.DataFrame, draws: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5%) of the macro-over-languages mean of other - base, in points."""
    groups = [(g["other"] - g["base"]).to_numpy() for _, g in pairs.groupby("language")]
    return bootstrap_macro_mean(groups, draws, seed, scale=100)


def main_training(per_query: pd.DataFrame) -> str:
    """The retriever the RQ answers speak of: a fine-tuned one when the study has it, else zero-shot."""
    return "fine-tuned" if (per_query.training == "fine-tuned").any() else "zero-shot"


def _rq1_slices(per_query: pd.DataFrame, metric: str, n_queries: int) -> tuple[pd.DataFrame, dict]:
    """The baseline's per-query rows and {system name: rows} of the RQ1 systems."""
    pq = per_query[
        (per_query.metric == metric)
        & (per_query.split == "test")
        & (per_query.perturbation == "none")
        & (per_query.training == main_training(per_query))
        & (per_query.encoder != "gold passage")
    ]
    if pq.xqg.any():  # the baseline that reads passages as the xQG systems do
        pq = pq[pq.passage_format == pq[pq.xqg].passage_format.iloc[0]]
    base = pq[~pq.xqg]
    systems = {}
    for mode in dict.fromkeys(pq[pq.xqg]["mode"]):  # folded first, then routed (step 05's order)
        suffix = family_suffix(mode)
        for (generator, every), name in RQ1_SYSTEMS.items():
            rows = pq[
                pq.xqg & (pq["mode"] == mode) & (pq.n_queries == n_queries) & (pq.generator == generator)
            ]
            rows = rows[(rows.gen_languages == "") if every else (rows.gen_languages != "")]
            if len(rows):
                systems[name + suffix] = rows
    return base, systems


def rq1_table(per_query: pd.DataFrame, metric: str, n_queries: int, unseen: Sequence[str]) -> pd.DataFrame:
    """Rows: no xQG and each RQ1 system; columns: languages (seen, then unseen), the mean over the
    seen and over the unseen languages, and the paired change of those means with its 95% CI."""
    base, systems = _rq1_slices(per_query, metric, n_queries)
    if base.empty:
        return pd.DataFrame()
    langs = sorted(base.language.unique(), key=lambda lang: (lang == "en", lang in unseen, lang))
    seen = [lang for lang in langs if lang not in unseen and lang != "en"]
    held = [lang for lang in langs if lang in unseen]
    out = {}
    for name, rows in {"no xQG": base, **systems}.items():
        by_lang = 100 * rows.groupby("language")["value"].mean()
        row = {lang: by_lang.get(lang, np.nan) for lang in langs}
        row["seen avg"] = by_lang.reindex(seen).mean()
        row["unseen avg"] = by_lang.reindex(held).mean()
        if name != "no xQG":
            pairs = _paired(base, rows)
            for label, group in (("seen", seen), ("unseen", held)):
                part = pairs[pairs.language.isin(group)]
                if len(part):
                    mean, lo, hi = bootstrap_delta(part)
                    row[f"Δ {label} [95% CI]"] = f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        out[name] = row
    return pd.DataFrame.from_dict(out, orient="index")


def rq1_significance(per_query: pd.DataFrame, metric: str, n_queries: int) -> pd.DataFrame:
    """Per system and language: change against no xQG, paired t-test p, Holm over languages."""
    base, systems = _rq1_slices(per_query, metric, n_queries)
    rows = []
    for name, sys_rows in systems.items():
        pairs = _paired(base, sys_rows)
        part = []
        for lang, g in pairs.groupby("language"):
            part.append(
                {
                    "system": name,
                    "metric": metric,
                    "language": lang,
                    "n": len(g),
                    "delta": 100 * (g["other"] - g["base"]).mean(),
                    "p": paired_t(g["base"].to_numpy(), g["other"].to_numpy()),
                }
            )
        adj = holm([r["p"] for r in part])
        for r, a in zip(part, adj):
            r.update(p_holm=float(a), significant=bool(a < 0.05))
        rows += part
    return pd.DataFrame(rows)


def rq1_gains_table(
    tables: dict[str, pd.DataFrame], significance: pd.DataFrame, system: str = "xQG"
) -> pd.DataFrame:
    """Languages as rows; per metric, no xQG, `system` and the change with its Holm-corrected p:
    retrieval and QA side by side."""
    parts = {}
    for metric, table in tables.items():
        if system not in table.index:
            continue
        langs = [c for c in table.columns if c not in ("seen avg", "unseen avg") and not c.startswith("Δ")]
        sig = significance[(significance.metric == metric) & (significance.system == system)].set_index(
            "language"
        )
        parts[(metric, "no xQG")] = table.loc["no xQG", langs]
        parts[(metric, system)] = table.loc[system, langs]
        parts[(metric, "Δ")] = table.loc[system, langs] - table.loc["no xQG", langs]
        parts[(metric, "p (Holm)")] = sig["p_holm"].reindex(langs)
    out = pd.DataFrame(parts)
    out.columns = [f"{m} {c}" for m, c in out.columns]
    return out


def rq1_figure(
    per_query: pd.DataFrame, metrics_shown: Sequence[str], n_queries: int, unseen: Sequence[str], out: Path
) -> list[Path]:
    """`draw_rq1`, saved as PDF and PNG."""
    return save_figure(draw_rq1(per_query, metrics_shown, n_queries, unseen), out)


def draw_rq1(per_query: pd.DataFrame, metrics_shown: Sequence[str], n_queries: int, unseen: Sequence[str]):
    """Per-language change of each RQ1 system against no xQG (95% bootstrap CI), one panel per
    metric; the unseen languages are shaded; the legend sits below the panels, clear of the bars."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    set_style()
    fig, axes = plt.subplots(1, len(metrics_shown), figsize=(4.6 * len(metrics_shown), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics_shown):
        base, systems = _rq1_slices(per_query, metric, n_queries)
        langs = sorted(base.language.unique(), key=lambda lang: (lang == "en", lang in unseen, lang))
        width = 0.8 / max(1, len(systems))
        for j, (name, rows) in enumerate(systems.items()):
            pairs = _paired(base, rows)
            stats = [bootstrap_delta(pairs[pairs.language == lang]) for lang in langs]
            x = np.arange(len(langs)) + (j - (len(systems) - 1) / 2) * width
            mean = np.array([s[0] for s in stats])
            err = np.array([[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]])
            ax.bar(x, mean, width, yerr=err, capsize=2, label=name, color=f"C{j}")
        for i, lang in enumerate(langs):
            if lang in unseen:
                ax.axvspan(i - 0.45, i + 0.45, color="0.9", zorder=-1)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_ylabel(f"Δ {metric} vs no xQG (points)")
        ax.set_title(f"{metric} (shaded: unseen by the seen-only generator)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    sns.despine(fig)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.legend(
        handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 0)
    )
    return fig


def robustness_table(per_query: pd.DataFrame, metric: str, mode: str | None = None) -> pd.DataFrame:
    """Per family and severity: the macro clean and perturbed values and drops without and with
    xQG (the system of `mode`, default the first), the difference of the drops, and a paired
    t-test on the per-query drops (Holm over cells)."""
    pq = per_query[(per_query.metric == metric) & (per_query.split == "robustness")]
    if pq.empty:
        return pd.DataFrame()
    mode = mode or pq[pq.xqg]["mode"].iloc[0]
    pq = pq[~pq.xqg | (pq["mode"] == mode)]
    clean = pq[pq.perturbation == "none"]
    rows = []
    for (family, severity), g in pq[pq.perturbation != "none"].groupby(["perturbation", "severity"]):
        drops = {}
        for xqg in (False, True):
            c = clean[clean.xqg == xqg].set_index("query_id")["value"]
            p = g[g.xqg == xqg].set_index("query_id")
            drops[xqg] = (c.reindex(p.index) - p["value"]).rename("drop").to_frame().join(p["language"])
        macro = {x: 100 * d.groupby("language")["drop"].mean().mean() for x, d in drops.items()}
        a, b = drops[False]["drop"], drops[True]["drop"].reindex(drops[False].index)
        rows.append(
            {
                "family": family,
                "severity": severity,
                "n": len(a),
                "languages": "+".join(sorted(drops[False].language.unique())),
                "no xQG: perturbed": 100 * g[~g.xqg].groupby("language")["value"].mean().mean(),
                "xQG: perturbed": 100 * g[g.xqg].groupby("language")["value"].mean().mean(),
                "no xQG: drop": macro[False],
                "xQG: drop": macro[True],
                "drop difference (xQG - no xQG)": macro[True] - macro[False],
                "p": paired_t(a.to_numpy(), b.to_numpy()),
            }
        )
    table = pd.DataFrame(rows)
    table["p (Holm)"] = holm(table["p"].tolist())
    table.index = [f"{r.family} {r.severity:g}" for r in table.itertuples()]
    return table


def robustness_figure(metrics: pd.DataFrame, metrics_shown: Sequence[str], out: Path) -> list[Path]:
    """Macro metric against severity (0 = clean), one panel per family and metric, without xQG and
    with each family of modes (folded, routed) as its own line."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    set_style()
    m = metrics[(metrics.split == "robustness") & (metrics.language != "macro")]
    families = [f for f in dict.fromkeys(m.perturbation) if f != "none"]
    if not families:
        return []
    unknown = [name for name in metrics_shown if name not in set(m.metric)]
    if unknown:  # a table's name ("F1, routed") is not a metric: its panels would be empty
        raise ValueError(f"robustness_figure: no robustness rows for metric(s) {unknown}")
    fig, axes = plt.subplots(
        len(metrics_shown),
        len(families),
        figsize=(2.6 * len(families), 2.4 * len(metrics_shown)),
        squeeze=False,
    )
    for r, metric in enumerate(metrics_shown):
        for c, family in enumerate(families):
            ax = axes[r][c]
            rows = m[(m.metric == metric) & (m.perturbation == family)]
            langs = set(rows.language)  # code_switch covers only the languages with a dictionary
            modes = list(dict.fromkeys(m[m.xqg]["mode"]))
            lines = [(None, dict(color="C0", marker="o", label="no xQG"))] + [
                (mode, dict(color=f"C{i + 1}", marker="s", ls="--", label=f"xQG ({mode})"))
                for i, mode in enumerate(modes)
            ]
            for mode, style in lines:
                system = ~m.xqg if mode is None else m.xqg & (m["mode"] == mode)
                cells = m[
                    (m.metric == metric)
                    & system
                    & m.language.isin(langs)
                    & m.perturbation.isin(["none", family])
                ]
                macro = cells.groupby("severity")["value"].mean()  # macro over the family's languages
                ax.plot(macro.index, macro.values, **style)
            ax.set_title(family, fontsize=8)
            ax.set_xlabel("severity")
            if c == 0:
                ax.set_ylabel(f"{metric} (macro, %)")
    axes[0][0].legend(fontsize=7, frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return save_figure(fig, out)


def write_table(table: pd.DataFrame, out: Path, caption: str) -> list[Path]:
    """CSV, LaTeX and Markdown of an RQ table (no bold: its columns mix values and changes)."""
    return save_table(table, out, bold_max=False, caption=caption, precision=2)


def rq1_findings(tables: dict[str, pd.DataFrame], significance: pd.DataFrame, unseen: Sequence[str]) -> str:
    """Sentences answering RQ1 from the RQ1 tables (one per metric) and the per-language tests."""
    lines = []
    for metric, table in tables.items():
        if table.empty:
            continue
        for name in table.index[1:]:
            parts = [
                f"{label} languages {table.loc[name, f'Δ {label} [95% CI]']}"
                for label in ("seen", "unseen")
                if f"Δ {label} [95% CI]" in table and pd.notna(table.loc[name, f"Δ {label} [95% CI]"])
            ]
            sig = significance[
                (significance.metric == metric) & (significance.system == name) & significance.significant
            ]
            where = ", ".join(f"{r.language} ({r.delta:+.1f})" for r in sig.itertuples()) or "none"
            lines.append(
                f"- {metric}, {name}: change against no xQG on the "
                + "; ".join(parts)
                + f" points; languages significant after Holm: {where}."
            )
    held = ", ".join(unseen) or "none"
    return f"Unseen languages (held out of the seen-only generator's training): {held}.\n" + "\n".join(lines)


def rq2_findings(tables: dict[str, pd.DataFrame]) -> str:
    """Sentences answering RQ2 from the robustness tables (one per metric)."""
    lines = []
    for metric, t in tables.items():
        if t.empty:
            continue
        diff = t["drop difference (xQG - no xQG)"]
        sig = t[t["p (Holm)"] < 0.05]
        worst = t.loc[t["no xQG: drop"].idxmax()]
        lines.append(
            f"- {metric}: over {len(t)} family x severity cells the drop with xQG minus the drop without "
            f"averages {diff.mean():+.2f} points (from {diff.min():+.2f} to {diff.max():+.2f}; "
            "negative = xQG "
            f"loses less); {len(sig)} cell(s) differ significantly after Holm. The largest drop without xQG: "
            f"{worst.family} at severity {worst.severity:g}, {worst['no xQG: drop']:.1f} points "
            f"(with xQG {worst['xQG: drop']:.1f})."
        )
    return "\n".join(lines)
