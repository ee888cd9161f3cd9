"""Step 08 (`08_analysis`): every table, figure and the tidy metrics file from the cached results."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xqg.io import write_csv, write_text_atomic
from xqg.paths import PROJECT_ROOT
from xqg.study.ceiling import curve_finding, save_curve
from xqg.study.config import Count, StepConfig, arg
from xqg.study.provenance import machines
from xqg.study.report import (
    ablation_figure,
    alpha_figure,
    per_language_table,
    save_table,
    significance_table,
    update_readme,
)
from xqg.study.research_questions import (
    robustness_figure,
    robustness_table,
    rq1_figure,
    rq1_findings,
    rq1_gains_table,
    rq1_significance,
    rq1_table,
    rq2_findings,
    write_table,
)
from xqg.study.systems import family_suffix
from xqg.study.workspace import Workspace


@dataclass(frozen=True, kw_only=True)
class Config(StepConfig):
    """Parameters of step 08."""

    STEP = "08_analysis"
    n_queries: Count = arg("the xQG configuration shown in the tables")
    table_metrics: list[str] = arg("one per-language table each")
    ablation_metrics: list[str] = arg("panels of the query-count ablation figure")
    alpha_metric: str = arg("metric of the alpha-sweep figure")
    update_readme: bool = arg("write the README results section (the mini profile)")
    unseen_languages: list[str] = arg("RQ1: the languages the seen-only generator never saw")
    rq1_metrics: list[str] = arg("RQ1 tables and figure panels")
    robustness_metrics: list[str] = arg("RQ2 tables and figure rows")


RESULT_FILES = ("metrics_retrieval.csv", "metrics_qa.csv", "metrics_robustness.csv")
PER_QUERY_FILES = ("per_query_retrieval.csv.gz", "per_query_qa.csv.gz", "per_query_robustness.csv.gz")


def _read_all(results: Path, names: Sequence[str]) -> pd.DataFrame:
    frames = [
        pd.read_csv(results / f, keep_default_na=False, na_values=[""], dtype={"gen_languages": str})
        for f in names
        if (results / f).exists()
    ]
    if not frames:
        raise FileNotFoundError(f"{results}: none of {list(names)} found; run the earlier steps first")
    df = pd.concat(frames, ignore_index=True)
    df["gen_languages"] = df["gen_languages"].fillna("")
    df["generator"] = df["generator"].fillna("full") if "generator" in df else "full"
    df["passage_format"] = (
        df["passage_format"].fillna("title+text") if "passage_format" in df else "title+text"
    )
    return df


def collect(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All metrics rows and per-query scores the steps wrote."""
    return _read_all(results, RESULT_FILES), _read_all(results, PER_QUERY_FILES)


def run(workspace: Workspace, config: Config) -> dict:
    """Write metrics.csv, tables, significance, figures, the RQ1/RQ2 answers (and the README
    section); return the paths."""
    c, results, figures = config, workspace.results, workspace.figures
    n_queries, unseen_languages = c.n_queries, c.unseen_languages
    metrics, per_query = collect(results)
    write_csv(metrics, workspace.result("metrics.csv"))
    tables_dir = workspace.tables
    tables, sig_parts = [], []
    for metric in c.table_metrics:
        if metric not in set(metrics.metric):
            continue
        table = per_language_table(metrics, metric, per_query, n_queries)
        sig = significance_table(per_query, metric, n_queries)
        if not sig.empty:
            sig.insert(1, "metric", metric)
            sig_parts.append(sig)
            marked = {r.xqg_system for r in sig.itertuples() if r.significant}
            table.index = [f"{i} †" if i in marked else i for i in table.index]
        save_table(
            table,
            tables_dir / f"retrieval_{metric.replace('@', '_at_')}",
            caption=f"{metric} (%) per language; † xQG differs significantly from the same encoder "
            "without it in at least one language (paired t-test, Holm over languages; "
            "see significance.csv)",
        )
        tables.append(tables_dir / f"retrieval_{metric.replace('@', '_at_')}.csv")
    significance = pd.concat(sig_parts, ignore_index=True) if sig_parts else pd.DataFrame()
    write_csv(significance, tables_dir / "significance.csv")
    sig_md = tables_dir / "significance.md"
    write_text_atomic(
        sig_md,
        (significance.round(4).to_markdown(index=False) if len(significance) else "no paired comparisons")
        + "\n",
    )
    figs = []
    if len(per_query):
        figs += ablation_figure(
            metrics,
            per_query,
            [m for m in c.ablation_metrics if m in set(per_query.metric)],
            workspace.figure("ablation_n_queries"),
        )
    if (metrics.split == "tuning").any():
        figs += alpha_figure(metrics, c.alpha_metric, workspace.figure("alpha_sweep"))
    rq = write_research_questions(
        tables_dir,
        figures,
        metrics,
        per_query,
        n_queries,
        unseen_languages,
        c.rq1_metrics,
        c.robustness_metrics,
    )
    figs += rq["figures"]
    quality = workspace.result("generation_quality.csv")
    ceiling = ceiling_section(workspace)
    if ceiling:
        rq["findings"] += "\n" + ceiling + "\n"
        write_text_atomic(tables_dir / "findings.md", rq["findings"])
    if c.update_readme:
        section = readme_section(tables, quality, figures, significance, rq, machines(workspace.work))
        update_readme(PROJECT_ROOT / "README.md", section)
    return {
        "tables": tables + rq["tables"],
        "significance": sig_md,
        "figures": figs,
        "findings": rq["findings"],
    }


def _write_rq_tables(tables: dict[str, pd.DataFrame], prefix: Path, caption: str) -> list[Path]:
    """Each metric's table as `<prefix>_<metric>.{csv,tex,md}`; returns the CSV paths."""
    out = []
    for m, t in tables.items():
        path = prefix.with_name(f"{prefix.name}_{re.sub(r'[^A-Za-z0-9]+', '_', m.replace('@', '_at_'))}")
        write_table(t, path, caption=caption.format(m=m))
        out.append(path.with_suffix(".csv"))
    return out


def write_research_questions(
    tables_dir: Path,
    figures: Path,
    metrics: pd.DataFrame,
    per_query: pd.DataFrame,
    n_queries: int,
    unseen: Sequence[str],
    rq1_metrics: Sequence[str],
    robustness_metrics: Sequence[str],
) -> dict:
    """RQ1 and RQ2 tables, figures and findings (findings.md) from whatever steps 05-07 wrote."""
    tables, figs = [], []
    available = set(per_query.metric)
    rq1 = {m: rq1_table(per_query, m, n_queries, unseen) for m in rq1_metrics if m in available}
    rq1 = {m: t for m, t in rq1.items() if len(t)}
    sig = (
        pd.concat([rq1_significance(per_query, m, n_queries) for m in rq1], ignore_index=True)
        if rq1
        else pd.DataFrame()
    )
    tables += _write_rq_tables(
        rq1,
        tables_dir / "rq1",
        "RQ1: {m} (%) per language; Δ = paired change of the mean over the seen / unseen languages "
        "against no xQG, with its 95% bootstrap interval",
    )
    if len(sig):
        write_csv(sig, tables_dir / "rq1_significance.csv")
        gains = rq1_gains_table(rq1, sig)
        if len(gains.columns):
            write_table(
                gains,
                tables_dir / "rq1_gains",
                caption="RQ1: per-language change with xQG (full generator), retrieval and QA side by "
                "side; p: paired t-test, Holm over languages",
            )
            tables.append(tables_dir / "rq1_gains.csv")
    if rq1:
        figs += rq1_figure(per_query, list(rq1), n_queries, unseen, figures / "rq1_per_language_gains")
    robust = per_query[(per_query.split == "robustness") & per_query.xqg]
    rq2 = {
        m + family_suffix(mode): robustness_table(per_query, m, mode)
        for m in robustness_metrics
        if m in available
        for mode in dict.fromkeys(robust["mode"])
    }
    rq2 = {m: t for m, t in rq2.items() if len(t)}
    tables += _write_rq_tables(
        rq2,
        tables_dir / "rq2",
        "RQ2: {m} (%) lost from clean to perturbed queries, without and with xQG; p: paired t-test "
        "on per-query drops, Holm over cells",
    )
    if rq2:  # one row per metric: each panel draws the folded and the routed system
        modes = list(dict.fromkeys(robust["mode"]))
        shown = [m for m in robustness_metrics if any(m + family_suffix(mode) in rq2 for mode in modes)]
        figs += robustness_figure(metrics, shown, figures / "rq2_robustness")
    findings = ""
    if rq1:
        findings += "**RQ1 (generalisation)**\n\n" + rq1_findings(rq1, sig, unseen) + "\n\n"
    if rq2:
        findings += "**RQ2 (robustness)**\n\n" + rq2_findings(rq2) + "\n"
    write_text_atomic(tables_dir / "findings.md", findings or "no RQ1/RQ2 results yet\n")
    return {"tables": tables, "figures": figs, "findings": findings}


def ceiling_section(ws: Workspace) -> str:
    """The ceiling's finding, table and figure (step 05b), or "" when it did not run."""
    path = ws.result("ceiling_curve.csv")
    if not path.exists():
        return ""
    curve = pd.read_csv(path)
    metric = next(c for c in curve.columns if c.endswith(" gain")).removesuffix(" gain")
    save_curve(curve, metric, ws.tables / "ceiling_curve", ws.figure("ceiling_curve"))
    table = (ws.tables / "ceiling_curve").with_suffix(".md")
    rel = ws.figures.relative_to(PROJECT_ROOT) if ws.figures.is_relative_to(PROJECT_ROOT) else ws.figures
    return "\n\n".join(
        [
            "**The human-question ceiling and the quality-to-gain curve** (XQuAD paragraphs of held-out "
            "articles; gain over no xQG on their test questions, 95% bootstrap interval)",
            curve_finding(curve, metric),
            table.read_text(),
            f"![Ceiling curve]({rel}/ceiling_curve.png)",
        ]
    )


def finding(significance: pd.DataFrame) -> str:
    """One sentence per metric: the macro change and the languages that differ after correction."""
    lines = []
    for (system, metric), g in significance.groupby(["xqg_system", "metric"], sort=False):
        sig = g[g.significant]
        where = ", ".join(f"{r.language} ({100 * r.delta:+.1f})" for r in sig.itertuples()) or "none"
        lines.append(
            f"- {system}, {metric}: mean change over languages {100 * g.delta.mean():+.2f} "
            f"[{g.macro_low.iloc[0]:+.2f}, {g.macro_high.iloc[0]:+.2f}] points (95% bootstrap); "
            f"languages with a significant change (paired t-test, Holm over languages): {where}."
        )
    return "\n".join(lines)


def readme_section(
    tables: list[Path],
    quality: Path,
    figures: Path,
    significance: pd.DataFrame,
    rq: dict | None = None,
    made_on: dict[str, int] | None = None,
) -> str:
    """The README's generated results section (mini run); `made_on` (`provenance.machines`)
    names the machines that made the run's artefacts."""
    parts = ["_Generated by `make figures` from the `mini` run; do not edit by hand._", ""]
    if made_on and set(made_on) != {"unrecorded"}:  # a run older than the records says nothing
        parts += [
            "Artefacts made on: "
            + "; ".join(f"{name} ({n} of {sum(made_on.values())})" for name, n in made_on.items())
            + ".",
            "",
        ]
    if rq and rq["findings"]:
        parts += [rq["findings"], ""]
    if len(significance):
        parts += ["**xQG against the same encoder without it** (test queries)", "", finding(significance), ""]
    for t in tables + (rq["tables"] if rq else []):
        name = (
            t.stem.replace("retrieval_", "")
            .replace("_at_", "@")
            .replace("rq1_", "RQ1, ")
            .replace("rq2_", "RQ2, ")
        )
        parts += [
            f"**{name}** (%, MLQA dev test queries; English passages)",
            "",
            t.with_suffix(".md").read_text(),
            "",
        ]
    if quality.exists():
        q = pd.read_csv(quality, index_col=0)
        parts += ["**Generated queries** (quality report)", "", q.round(1).to_markdown(), ""]
    rel = figures.relative_to(PROJECT_ROOT) if figures.is_absolute() else figures
    parts += [
        f"![Query-count ablation]({rel}/ablation_n_queries.png)",
        f"![Alpha sweep]({rel}/alpha_sweep.png)",
    ]
    if rq:
        parts += [f"![{f.stem}]({rel}/{f.name})" for f in rq["figures"] if f.suffix == ".png"]
    return "\n".join(parts)
