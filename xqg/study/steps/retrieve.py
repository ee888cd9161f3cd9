"""Step 05 (`05_retrieve`): encode, augment, search and score; the alpha sweep and the n ablation.

Alpha and mode are chosen per training regime on the tuning queries (``ws.xqg_choice``); the test
queries then score every system of `xqg.study.systems.evaluation_systems`, whose rankings are also
written as TREC runs (``runs/test/<system tag>.trec``, full-precision scores, trec_eval's tie
order) with the gold passages as ``runs/test/qrels.txt``, for trec_eval, ir_measures or ranx.
Every number lands in ``metrics_retrieval.csv`` (tidy, one row per system x language x metric,
values in percent) and the per-query scores behind it in ``per_query_retrieval.csv.gz``, which
the significance tests read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from xqg.data.schema import Query
from xqg.io import write_csv, write_json
from xqg.retrieval.search import write_trec_qrels, write_trec_run
from xqg.study.checks import check_before_work
from xqg.study.config import Alphas, Count, EncodingConfig, Modes, PassageFormat, Training, arg
from xqg.study.encoding import EmbeddingCache
from xqg.study.systems import System, evaluation_systems, family, tidy
from xqg.study.workspace import Workspace


@dataclass(frozen=True, kw_only=True)
class Config(EncodingConfig):
    """Parameters of step 05."""

    STEP = "05_retrieve"
    encoder: str = arg("the encoder as loaded (a retriever step 04 trained is scored as well)")
    eval_benchmark: str = arg("benchmark name written into the results")
    n_queries: Count = arg("generated queries per language used by xQG (the ablation runs 1..n)")
    alphas: Alphas = arg("alpha sweep")
    modes: Modes = arg("sum (the authors' code) or mean of the query embeddings")
    select_metric: str = arg("metric that picks alpha on the tuning queries")
    measures: list[str] = arg("gold-passage measures")
    token_budgets: list[Count] = arg("R@kt budgets (answer in the first k tokens)")
    base_training: Training = arg("how the encoder as loaded was trained (zero-shot or fine-tuned)")
    passage_formats: list[PassageFormat] = arg(
        "what the encoder reads of a passage (title+text, text), compared on the tuning queries; the "
        "best is used and every one is reported",
        default_factory=lambda: ["title+text"],
    )
    unseen_languages: list[str] = arg("RQ1: score the seen-only generator's queries too")


def _tuning_score(agg: pd.DataFrame, metric: str) -> float:
    return agg[(agg.language == "macro") & (agg.metric == metric)]["value"].iloc[0]


def choose_format(
    cache: EmbeddingCache, config: Config, training: str, tuning: Sequence[Query]
) -> tuple[str, list[pd.DataFrame]]:
    """The passage format whose baseline (no xQG) scores best on the tuning queries (ties: the
    first listed), and the baselines' tuning rows (the chosen format's is the last)."""
    c = config
    scored = []
    for fmt in c.passage_formats if tuning else []:
        s = System(c.encoder, training, fmt)
        agg, _ = tidy(
            s,
            cache.score(s, tuning, "tuning", c.measures, c.token_budgets),
            tuning,
            c.eval_benchmark,
            "tuning",
        )
        scored.append((_tuning_score(agg, c.select_metric), fmt, agg))
    if not scored:
        return c.passage_formats[0], []
    best = sorted(scored, key=lambda t: -round(t[0], 6))[0]
    return best[1], [agg for _, fmt, agg in scored if fmt != best[1]] + [best[2]]


def choose_xqg(
    cache: EmbeddingCache, config: Config, training: str, tuning: Sequence[Query], passage_format: str
) -> tuple[dict[str, dict], list[pd.DataFrame]]:
    """The sweep on the tuning queries: ({family: {"alpha", "mode"}}, its metrics rows), one choice
    per family of modes present (folded: sum, mean; routed: routed-sum, routed-mean). Best tuning
    score wins; ties go to the sum mode (the authors') and then the smaller alpha. The
    baseline's tuning rows are `choose_format`'s."""
    c = config
    base = System(c.encoder, training, passage_format)
    rows, sweep = [], []
    if not tuning:
        return {family(m): {"alpha": c.alphas[0], "mode": m} for m in reversed(c.modes)}, rows
    for mode in c.modes:
        for alpha in c.alphas:
            s = replace(base, xqg=True, n_queries=c.n_queries, alpha=alpha, mode=mode)
            agg, _ = tidy(
                s,
                cache.score(s, tuning, "tuning", c.measures, c.token_budgets),
                tuning,
                c.eval_benchmark,
                "tuning",
            )
            rows.append(agg)
            sweep.append((_tuning_score(agg, c.select_metric), alpha, mode))
    chosen = {}
    for fam in dict.fromkeys(family(m) for m in c.modes):
        part = [s for s in sweep if family(s[2]) == fam]
        best = sorted(part, key=lambda s: (-round(s[0], 6), not s[2].endswith("sum"), s[1]))[0]
        chosen[fam] = {"alpha": best[1], "mode": best[2]}
    return dict(sorted(chosen.items())), rows


def run(workspace: Workspace, config: Config) -> dict:
    """Alpha sweep on the tuning queries, then baseline vs xQG, the n ablation and (RQ1) the
    seen-only generator on the test queries. `base_training` labels the encoder as loaded
    ("fine-tuned" for a released xDR checkpoint); a model step 04 trained is scored as well."""
    check_before_work(workspace, config)
    c = config
    cache = EmbeddingCache.for_step(workspace, c)
    tuning = workspace.queries("tuning")
    test = workspace.queries("eval")
    all_rows, all_pq, chosen = [], [], {}
    for training in workspace.trainings(c.base_training):
        fmt, format_rows = choose_format(cache, c, training, tuning)
        choice, rows = choose_xqg(cache, c, training, tuning, fmt)
        chosen[training] = {"passage_format": fmt, "xqg": choice}
        all_rows += format_rows + rows
        write_json(workspace.xqg_choice, chosen)
        other_formats = [System(c.encoder, training, f) for f in c.passage_formats if f != fmt]
        systems = evaluation_systems(workspace, c.encoder, training, c.n_queries, c.unseen_languages)
        for s in systems + other_formats:  # every format's baseline is reported beside the chosen one
            run = cache.run(s, test, "test")
            write_trec_run(workspace.run_file("test", s.tag), run, s.tag)
            scores = cache.score_run(test, run, c.measures, c.token_budgets)
            rows, pq = tidy(s, scores, test, c.eval_benchmark, "test")
            all_rows.append(rows)
            all_pq.append(pq)
    qrels = {q.id: {q.gold_passage: 1} for q in test if q.gold_passage}
    if qrels:  # XOR-Retrieve has answers, not gold passages: its runs are scored by R@kt only
        write_trec_qrels(workspace.qrels_file("test"), qrels)
    metrics = pd.concat(all_rows, ignore_index=True)
    write_csv(metrics, workspace.result("metrics_retrieval.csv"))
    write_csv(pd.concat(all_pq, ignore_index=True), workspace.result("per_query_retrieval.csv.gz"))
    return {"chosen": chosen, "rows": len(metrics)}
