"""The systems the study compares, their labels, and the tidy rows their scores become.

A `System` is one retrieval configuration (encoder, training regime, xQG settings, perturbation);
every results file has one column per field (`METRIC_COLUMNS`), so a row names its system and a
label can be rebuilt from any row (`System.from_row`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import pandas as pd

from xqg.data.schema import Query
from xqg.io import read_json
from xqg.retrieval.routing import split_mode
from xqg.study.provenance import params_of, recipe_file
from xqg.study.workspace import Workspace, file_tag

METRIC_COLUMNS = [
    "benchmark",
    "split",
    "encoder",
    "training",
    "passage_format",
    "xqg",
    "n_queries",
    "alpha",
    "mode",
    "gen_languages",
    "generator",
    "perturbation",
    "severity",
    "language",
    "metric",
    "value",
    "n",
]


@dataclass(frozen=True)
class System:
    """One retrieval configuration whose scores go into the results."""

    encoder: str
    training: str = "zero-shot"  # or "fine-tuned"
    passage_format: str = "title+text"  # what the encoder reads of a passage (or "text" alone)
    xqg: bool = False
    n_queries: int = 0
    alpha: float = 0.0
    mode: str = "sum"
    gen_languages: str = ""  # "+"-joined languages whose generated queries augment, "" = all
    generator: str = "full"  # generator variant: full, or seen-only (RQ1's unseen languages)
    perturbation: str = "none"
    severity: float = 0.0

    @classmethod
    def from_row(cls, row: Mapping) -> System:
        """The system a metrics or per-query row describes."""
        kwargs = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        kwargs["gen_languages"] = "" if pd.isna(kwargs.get("gen_languages", "")) else kwargs["gen_languages"]
        if pd.isna(kwargs.get("passage_format", "")):  # rows written before the format was a column
            kwargs.pop("passage_format")
        return cls(**kwargs)

    @property
    def label(self) -> str:
        """Row label in tables."""
        base = (
            f"{self.encoder} ({self.training}{'' if self.passage_format == 'title+text' else ', text only'})"
        )
        if not self.xqg:
            return base
        extra = "" if self.generator == "full" else f", {self.generator} generator"
        extra += f", {self.gen_languages.replace('+', ' ')}" if self.gen_languages else ""
        return base + f" + xQG (n={int(self.n_queries)}, α={self.alpha:g}, {self.mode}{extra})"

    @property
    def tag(self) -> str:
        """A one-word name (TREC run tag and file name), unique among the study's systems."""
        parts = [self.encoder, self.training] + ([] if self.passage_format == "title+text" else ["text-only"])
        if self.xqg:
            parts.append(f"xqg-n{int(self.n_queries)}-a{self.alpha:g}-{self.mode}")
            parts += [self.generator] if self.generator != "full" else []
            parts += [self.gen_languages] if self.gen_languages else []
        if self.perturbation != "none":
            parts.append(f"{self.perturbation}-{self.severity:g}")
        return file_tag(".".join(parts))

    def columns(self) -> dict:
        """The system's fields as results columns."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


GOLD = System("gold passage", "oracle")  # the reader on the gold passage alone (upper bound)


def family(mode: str) -> str:
    """``routed`` for a language-routed mode (``routed-sum``, ``routed-mean``), else ``folded``."""
    return "routed" if split_mode(mode)[0] else "folded"


def family_suffix(mode: str) -> str:
    """What a system name gains for its family: nothing for the folded (the paper's), ", routed"."""
    return "" if family(mode) == "folded" else ", routed"


def xqg_choice(ws: Workspace, training: str) -> dict:
    """Step 05's choices for one training regime: the passage format and, per family of modes
    present in the sweep, alpha and mode: {"passage_format": ..., "xqg": {"folded": {"alpha",
    "mode"}, "routed": {...}}}."""
    path = ws.xqg_choice
    if not path.exists():
        raise FileNotFoundError(f"{path}: no alpha/mode choice yet; run step 05_retrieve first")
    choice = read_json(path)
    if training not in choice:
        raise KeyError(f"{path}: no choice for training regime {training!r} (has {sorted(choice)})")
    return choice[training]


def chosen_systems(ws: Workspace, encoder: str, training: str, n_queries: int) -> list[System]:
    """One xQG system per family of modes, with step 05's alpha and mode (folded first)."""
    choice = xqg_choice(ws, training)
    base = System(encoder, training, choice["passage_format"])
    return [
        replace(base, xqg=True, n_queries=n_queries, alpha=c["alpha"], mode=c["mode"])
        for c in choice["xqg"].values()
    ]


def seen_languages(ws: Workspace) -> list[str] | None:
    """RQ1: the languages the seen-only generator trained on (sorted), None when step 02 trained
    none. Read from the generator, not from its queries, so that step 03 builds the same query
    sums whichever variant it generates first."""
    generator = ws.generator_dir("seen-only")
    if not (generator.exists() and recipe_file(generator).exists()):
        return None
    return sorted(params_of(generator, "02_train_generator")["train_languages"])


def evaluation_systems(
    ws: Workspace, encoder: str, training: str, n_queries: int, unseen: Sequence[str] = ()
) -> list[System]:
    """The systems scored on the test queries for one encoder: no xQG, then per family of modes
    (folded, routed) xQG with 1..n queries and (RQ1) the full and seen-only generators restricted
    to the seen languages, and the seen-only generator asked for every language. Alpha and mode
    are step 05's choice per family."""
    base = System(encoder, training, xqg_choice(ws, training)["passage_format"])
    systems = [base]
    seen = seen_languages(ws)
    for xqg in chosen_systems(ws, encoder, training, n_queries):
        systems += [replace(xqg, n_queries=n) for n in range(1, n_queries + 1)]
        if unseen and seen:
            languages = "+".join(seen)
            systems += [
                replace(xqg, gen_languages=languages),
                replace(xqg, generator="seen-only", gen_languages=languages),
                replace(xqg, generator="seen-only"),
            ]
    return systems


def tidy(
    system: System,
    per_query: dict[str, dict[str, float]],
    queries: Sequence[Query],
    benchmark: str,
    split: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(aggregate rows for the metrics files, per-query rows) of one scored system."""
    lang = {q.id: q.language for q in queries}
    base = {"benchmark": benchmark, "split": split, **system.columns()}
    pq = pd.DataFrame(
        [
            {**base, "query_id": q, "language": lang[q], "metric": m, "value": v}
            for m, scores in per_query.items()
            for q, v in scores.items()
        ]
    )
    rows = []
    for m, g in pq.groupby("metric"):
        by_lang = g.groupby("language")["value"].agg(["mean", "size"])
        for language, r in by_lang.iterrows():
            rows.append(
                {**base, "language": language, "metric": m, "value": 100 * r["mean"], "n": int(r["size"])}
            )
        rows.append(
            {
                **base,
                "language": "macro",
                "metric": m,
                "value": 100 * by_lang["mean"].mean(),
                "n": int(by_lang["size"].sum()),
            }
        )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS), pq


def evaluation_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Macro test scores, one row per system (baseline, xQG at each n, RQ1's systems), one column
    per metric: the closing table of step 05. Reads "" in ``gen_languages`` as a value, so the
    rows of systems using every language (the baseline among them) are kept."""
    test = metrics[(metrics.split == "test") & (metrics.language == "macro")]
    test = test.assign(gen_languages=test.gen_languages.fillna("").astype(str))
    index = ["training", "passage_format", "xqg", "mode", "n_queries", "generator", "gen_languages"]
    return test.pivot_table(index=index, columns="metric", values="value", sort=False).round(1)
