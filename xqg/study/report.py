"""Step 08: tables (CSV, LaTeX, Markdown), figures (PDF and PNG), significance, README results."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from xqg.io import atomic_path, write_csv, write_text_atomic  # noqa: E402
from xqg.metrics.significance import (  # noqa: E402
    bootstrap_macro_mean,
    compare,
    holm,
    paired_t,
    paired_vectors,
)
from xqg.study.systems import System  # noqa: E402


def set_style() -> None:
    """One style for every figure."""
    sns.set_theme(context="paper", style="ticks", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42})


def save_figure(fig, out: Path) -> list[Path]:
    """PDF (byte-stable: no creation date) and PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf, png = out.with_suffix(".pdf"), out.with_suffix(".png")
    for path, metadata in ((pdf, {"CreationDate": None, "ModDate": None}), (png, {"Software": None})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], metadata=metadata)
    plt.close(fig)
    return [pdf, png]


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# symbols the tables use that pdflatex's UTF-8 input does not know (or knows only with packages)
LATEX_UNICODE = {
    "α": r"$\alpha$",
    "Δ": r"$\Delta$",
    "†": r"\dag{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "–": "--",
    "—": "---",
}


def latex_escape(text: object) -> str:
    """`text` as LaTeX source: special characters escaped, the tables' Greek and symbols as
    math or macros, so a table compiles with pdflatex as well as with XeLaTeX/LuaLaTeX."""
    return "".join(LATEX_SPECIAL.get(ch, LATEX_UNICODE.get(ch, ch)) for ch in str(text))


def to_latex(df: pd.DataFrame, bold_max: bool, caption: str, precision: int = 1) -> str:
    """A booktabs table (best value per numeric column in bold), every label and text escaped."""
    numeric = list(df.select_dtypes("number").columns)
    shown = df.copy()
    for c in shown.columns:
        if c not in numeric:
            shown[c] = [v if pd.isna(v) else latex_escape(v) for v in shown[c]]
    shown.index = [latex_escape(i) for i in shown.index]
    shown.columns = [latex_escape(c) for c in shown.columns]
    styler = shown.style.format(precision=precision, na_rep="--")
    if bold_max and numeric:
        cols = [latex_escape(c) for c in numeric]
        styler = styler.highlight_max(subset=cols, props="font-weight: bold;")
    return styler.to_latex(hrules=True, convert_css=True, caption=latex_escape(caption) if caption else None)


def save_table(
    df: pd.DataFrame, out: Path, bold_max: bool = True, caption: str = "", precision: int = 1
) -> list[Path]:
    """CSV, LaTeX (booktabs, best value per column in bold) and Markdown versions of a table,
    numbers shown with `precision` decimals."""
    out.parent.mkdir(parents=True, exist_ok=True)
    csv, tex, md = out.with_suffix(".csv"), out.with_suffix(".tex"), out.with_suffix(".md")
    write_csv(df, csv, index=True)
    numeric = df.select_dtypes("number")
    write_text_atomic(tex, to_latex(df, bold_max, caption, precision))
    shown = df.copy()
    for c in numeric.columns:
        best = numeric[c].max()
        shown[c] = [
            f"**{v:.{precision}f}**"
            if bold_max and np.isclose(v, best)
            else ("–" if pd.isna(v) else f"{v:.{precision}f}")
            for v in numeric[c]
        ]
    write_text_atomic(md, shown.to_markdown() + "\n")
    return [csv, tex, md]


def per_language_table(
    metrics: pd.DataFrame, metric: str, per_query: pd.DataFrame | None, n_queries: int
) -> pd.DataFrame:
    """Rows = systems (each encoder with and without xQG at full n), columns = languages + macro.

    A dagger marks an xQG value that differs from its baseline under the paired t-test with Holm
    correction across languages (p < 0.05); the markers go in a second frame of strings.
    """
    test = metrics[(metrics.split == "test") & (metrics.metric == metric) & (metrics.perturbation == "none")]
    test = test[(~test.xqg) | (test.n_queries == n_queries)]
    test = test[(test.gen_languages == "") & (test.generator == "full")]
    table = test.assign(system=test.apply(lambda r: System.from_row(r).label, axis=1)).pivot_table(
        index="system", columns="language", values="value", sort=False
    )
    cols = [c for c in table.columns if c != "macro"] + ["macro"]
    return table[cols]


def significance_table(
    per_query: pd.DataFrame, metric: str, n_queries: int, correction: str = "holm"
) -> pd.DataFrame:
    """Paired tests of xQG (n = n_queries) against the same encoder without it, per language, and
    the 95% bootstrap interval of the change's macro mean (`macro_low`, `macro_high`, points)."""
    pq = per_query[
        (per_query.metric == metric) & (per_query.split == "test") & (per_query.perturbation == "none")
    ]
    out = []
    for (encoder, training), g in pq.groupby(["encoder", "training"]):
        xqg = g[g.xqg & (g.n_queries == n_queries) & (g.gen_languages == "") & (g.generator == "full")]
        for _, sys_ in xqg.groupby("mode", sort=False):  # one xQG system per family of modes
            base = g[~g.xqg & (g.passage_format == sys_.passage_format.iloc[0])]  # same passages read
            if base.empty:
                continue
            a = {lang: dict(zip(d.query_id, d.value)) for lang, d in base.groupby("language")}
            b = {lang: dict(zip(d.query_id, d.value)) for lang, d in sys_.groupby("language")}
            df = compare(a, b, correction=correction)
            # the macro change's 95% bootstrap interval (questions resampled within language)
            diffs = [np.subtract(*paired_vectors(b[lang], a[lang])) for lang in a]
            _, df["macro_low"], df["macro_high"] = bootstrap_macro_mean(diffs, scale=100)
            df.insert(0, "encoder", f"{encoder} ({training})")
            df.insert(1, "xqg_system", System.from_row(sys_.iloc[0]).label)
            out.append(df.rename(columns={"group": "language"}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def ablation_figure(
    metrics: pd.DataFrame,
    per_query: pd.DataFrame,
    metrics_shown: Sequence[str],
    out: Path,
    training: str = "zero-shot",
) -> list[Path]:
    """`draw_ablation`, saved as PDF and PNG."""
    return save_figure(draw_ablation(per_query, metrics_shown, training), out)


def draw_ablation(per_query: pd.DataFrame, metrics_shown: Sequence[str], training: str = "zero-shot"):
    """Metric vs number of generated queries per language, 95% bootstrap bands (percentile bootstrap
    of the macro mean, queries resampled within language), stars where n differs
    significantly from n = 0 (paired t-test, Holm over n); the legend names the band."""
    set_style()
    pq = per_query[
        (per_query.split == "test")
        & (per_query.perturbation == "none")
        & (per_query.training == training)
        & (per_query.gen_languages == "")
        & (per_query.generator == "full")
    ]
    fig, axes = plt.subplots(1, len(metrics_shown), figsize=(3.2 * len(metrics_shown), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics_shown):
        g = pq[pq.metric == metric]
        if g.xqg.any():  # the baseline that reads passages as the xQG systems do
            g = g[g.passage_format == g[g.xqg].passage_format.iloc[0]]
        base = g[~g.xqg]
        modes = list(dict.fromkeys(g[g.xqg]["mode"]))  # one line per family of modes (folded, routed)
        for color, mode in enumerate(modes):
            cur_rows = pd.concat([base, g[g.xqg & (g["mode"] == mode)]])
            ns, means, lo, hi, pvals = _ablation_line(cur_rows)
            adj = holm(pvals) if pvals else []
            ax.plot(ns, means, marker="o", color=f"C{color}", label=f"{mode}: macro mean over languages")
            ax.fill_between(ns, lo, hi, alpha=0.2, color=f"C{color}", label=f"{mode}: 95% bootstrap CI")
            for n, m, p in zip(ns[1:], means[1:], adj):
                if p < 0.05:
                    ax.annotate("*", (n, m), textcoords="offset points", xytext=(0, 4), ha="center")
            ax.set_xticks(ns)
        ax.set_xlabel("generated queries per language (n)")
        ax.set_ylabel(f"{metric} (macro, %)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    sns.despine(fig)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=2,
        fontsize=7,
        frameon=False,
        bbox_to_anchor=(0.5, 0),
        title="* n differs from n = 0 (paired t-test, Holm)",
        title_fontsize=7,
    )
    return fig


def _ablation_line(rows: pd.DataFrame) -> tuple[list, list, list, list, list]:
    """(n values, macro means, CI lows, CI highs, paired-t p against n = 0 for n > 0) of one
    family's per-query rows (the baseline's among them at n = 0)."""
    ns = sorted(rows.n_queries.unique())
    means, lo, hi, pvals = [], [], [], []
    base = rows[rows.n_queries == 0].set_index("query_id")["value"]
    for n in ns:
        cur = rows[rows.n_queries == n]
        by_lang = [d["value"].to_numpy() for _, d in cur.groupby("language")]
        mean, low, high = bootstrap_macro_mean(by_lang, scale=100)
        means.append(mean)
        lo.append(low)
        hi.append(high)
        if n:
            s = cur.set_index("query_id")["value"].reindex(base.index)
            pvals.append(paired_t(base.to_numpy(), s.to_numpy()))
    return ns, means, lo, hi, pvals


def alpha_figure(metrics: pd.DataFrame, metric: str, out: Path) -> list[Path]:
    """The alpha sweep on the tuning queries: metric vs alpha, one line per mode and training."""
    set_style()
    tune = metrics[(metrics.split == "tuning") & (metrics.metric == metric) & (metrics.language == "macro")]
    fig, ax = plt.subplots(figsize=(4.2, 3))
    for (training, mode), g in tune[tune.xqg].groupby(["training", "mode"]):
        g = g.sort_values("alpha")
        ax.plot(g.alpha, g.value, marker="o", label=f"{training}, {mode}")
    for training, g in tune[~tune.xqg].groupby("training"):
        ax.axhline(g.value.iloc[0], ls="--", color="grey", lw=1, label=f"{training}, no xQG")
    ax.set_xscale("log")
    ax.set_xlabel("α")
    ax.set_ylabel(f"{metric} (macro, %) on tuning queries")
    ax.legend(fontsize=7, frameon=False)
    sns.despine(fig)
    fig.tight_layout()
    return save_figure(fig, out)


def update_readme(readme: Path, section: str) -> None:
    """Replace the text between the results markers of the README."""
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{readme}: results markers missing")
    new = re.sub(
        re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{section}\n{end}", text, flags=re.S
    )
    write_text_atomic(readme, new)
