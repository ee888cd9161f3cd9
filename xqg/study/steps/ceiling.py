"""Step 05b (`05b_ceiling`): the human-question ceiling and the quality-to-gain curve.

The ceiling collection (step 01: XQuAD paragraphs of articles neither generator nor retriever
trained on) is augmented with `ceiling_queries` queries per paragraph and language from each source of
`xqg.study.ceiling`: the reserved human questions (``generator = human``), the generator's
queries (step 03), and mixtures of both at `human_shares`. For each source and each family of
modes (folded: ``sum``/``mean``; language-routed: ``routed-sum``/``routed-mean``, see
`xqg.retrieval.routing`), alpha and mode are chosen on the tuning questions as step 05 chooses
them, then scored on the test questions. Writes ``metrics_ceiling.csv``, the per-query scores,
``ceiling_quality.csv`` (round-trip Recall@10 of every source) and ``ceiling_curve.csv`` (step 08
draws its table and figure); the TREC runs go to ``runs/ceiling/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from xqg.data.schema import Benchmark, Passage, Query
from xqg.io import iter_jsonl, write_csv, write_json
from xqg.retrieval.dense import evaluate_run
from xqg.retrieval.routing import augmented_run, round_trip_recall, sums_by_language
from xqg.retrieval.search import retrieve, write_trec_qrels, write_trec_run
from xqg.study.ceiling import (
    GENERATED,
    HUMAN,
    QuerySource,
    curve_table,
    families,
    generated_queries,
    mixture,
)
from xqg.study.checks import check_before_work
from xqg.study.config import Alphas, Count, EncodingConfig, Modes, Share, Training, arg
from xqg.study.encoding import EmbeddingCache
from xqg.study.systems import System, tidy
from xqg.study.workspace import Workspace, load_queries

BENCHMARK = "xquad-ceiling"


@dataclass(frozen=True, kw_only=True)
class Config(EncodingConfig):
    """Parameters of step 05b."""

    STEP = "05b_ceiling"
    seed: int = arg("seed of the mixtures' slot choice")
    encoder: str = arg("the encoder as loaded (as in step 05)")
    base_training: Training = arg("how the encoder as loaded was trained")
    ceiling_queries: Count = arg("queries per paragraph and language (as step 01 reserved)", default=2)
    alphas: Alphas = arg("alpha sweep")
    ceiling_modes: Modes = arg("modes swept: sum, mean (folded) and routed-sum, routed-mean (routed)")
    human_shares: list[Share] = arg("shares of human questions in the mixtures (0 and 1 are always run)")
    select_metric: str = arg("metric that picks alpha and mode on the tuning questions")
    measures: list[str] = arg("gold-passage measures")
    curve_metric: str = arg("the gain plotted against query quality")


@dataclass
class _Split:
    name: str
    queries: list[Query]
    emb: np.ndarray


def _score(
    system: System,
    passages: dict[str, Passage],
    pids: list[str],
    pemb: np.ndarray,
    sums: dict | None,
    split: _Split,
    measures: Sequence[str],
) -> tuple[dict, dict]:
    """(run, per-query metrics) of one system on one split."""
    if sums is None:
        run = retrieve(pids, pemb, [q.id for q in split.queries], split.emb, 100)
    else:
        run = augmented_run(pids, pemb, sums, split.queries, split.emb, system.alpha, system.mode)
    bench = Benchmark(BENCHMARK, split.name, passages, list(split.queries))
    return run, evaluate_run(bench, split.queries, run, measures)


def run(workspace: Workspace, config: Config) -> dict:
    """Every source's chosen systems on the ceiling test questions; a summary of what ran."""
    check_before_work(workspace, config)
    ws, c = workspace, config
    if not ws.ceiling_collection.exists():
        return {"skipped": "no ceiling collection (step 01's ceiling_fraction is 0)"}
    cache = EmbeddingCache.for_step(ws, c)
    training = c.base_training
    passages = ws.passages(ws.ceiling_collection)
    pids, pemb = cache.other_passages(c.encoder, passages, "ceiling", training)

    def source(name: str, share: float, queries: list[Query]) -> QuerySource:
        return QuerySource(
            name, share, queries, cache.queries(c.encoder, queries, f"ceiling-{name}", training)
        )

    human = source(HUMAN, 1.0, load_queries(ws.ceiling_queries("augment")))
    generated = source(GENERATED, 0.0, generated_queries(list(iter_jsonl(ws.ceiling_generated))))
    shares = sorted({s for s in c.human_shares if 0 < s < 1})
    sources = [generated, *(mixture(human, generated, s, c.seed) for s in shares), human]
    splits = {
        name: _Split(name, qs, cache.queries(c.encoder, qs, f"ceiling-{name}", training))
        for name in ("tuning", "test")
        for qs in [load_queries(ws.ceiling_queries(name))]
    }

    base = System(c.encoder, training)
    rows, per_query, quality, chosen = [], [], [], {}

    def record(system: System, sums: dict | None, split: _Split) -> float:
        run, scores = _score(system, passages, pids, pemb, sums, split, c.measures)
        agg, pq = tidy(system, scores, split.queries, BENCHMARK, split.name)
        rows.append(agg)
        if split.name == "test":
            per_query.append(pq)
            write_trec_run(ws.run_file("ceiling", system.tag), run, system.tag)
        return agg[(agg.language == "macro") & (agg.metric == c.select_metric)]["value"].iloc[0]

    for split in splits.values():
        record(base, None, split)
    for src in sources:
        sums = sums_by_language(pids, src.queries, src.emb)
        recall = round_trip_recall(pids, pemb, src.queries, src.emb, 10)
        quality += [
            {"generator": src.name, "human_share": src.human_share, "language": lang, "recall": r}
            for lang, r in recall.items()
        ]
        for family, modes in families(c.ceiling_modes).items():
            xqg = replace(base, xqg=True, n_queries=c.ceiling_queries, generator=src.name)
            sweep = [
                (record(s, sums, splits["tuning"]), s.alpha, s.mode)
                for mode in modes
                for alpha in c.alphas
                for s in [replace(xqg, alpha=alpha, mode=mode)]
            ]
            _, alpha, mode = sorted(sweep, key=lambda t: (-round(t[0], 6), t[1]))[0]
            chosen[f"{src.name} {family}"] = {"alpha": alpha, "mode": mode}
            record(replace(xqg, alpha=alpha, mode=mode), sums, splits["test"])

    test = splits["test"].queries
    write_trec_qrels(ws.qrels_file("ceiling"), {q.id: {q.gold_passage: 1} for q in test})
    metrics = pd.concat(rows, ignore_index=True)
    pq = pd.concat(per_query, ignore_index=True)
    quality_df = pd.DataFrame(quality)
    write_csv(metrics, ws.result("metrics_ceiling.csv"))
    write_csv(pq, ws.result("per_query_ceiling.csv.gz"))
    write_csv(quality_df, ws.result("ceiling_quality.csv"))
    curve = curve_table(pq, quality_df, c.curve_metric)
    write_csv(curve, ws.result("ceiling_curve.csv"))
    write_json(ws.work / "ceiling_choice.json", chosen)
    return {"chosen": chosen, "curve": curve}
