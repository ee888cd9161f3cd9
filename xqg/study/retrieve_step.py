"""Step 05: encode, augment, search and score; the alpha sweep and the query-count ablation.

Every number lands in ``results/<profile>/metrics.csv`` (tidy, one row per system x language x
metric, values in percent) and the per-query scores behind it in ``per_query.csv.gz``, which the
significance tests read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from xqg.augment import GeneratedEmbeddings, augment
from xqg.data.schema import Benchmark, Query
from xqg.embeddings import load_embeddings, save_embeddings
from xqg.generation.run import load_generated
from xqg.io import read_json, write_json
from xqg.retrieval import dense_retrieve, encode_passages, evaluate_run
from xqg.study.artifacts import load_passages, load_queries
from xqg.study.models import load_encoder

METRIC_COLUMNS = [
    "benchmark",
    "split",
    "encoder",
    "training",
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
    xqg: bool = False
    n_queries: int = 0
    alpha: float = 0.0
    mode: str = "sum"
    gen_languages: str = ""  # "+"-joined languages whose generated queries augment, "" = all
    generator: str = "full"  # generator variant: full, or seen-only (RQ1's unseen languages)
    perturbation: str = "none"
    severity: float = 0.0

    @property
    def label(self) -> str:
        """Row label in tables."""
        base = f"{self.encoder} ({self.training})"
        if not self.xqg:
            return base
        extra = "" if self.generator == "full" else f", {self.generator} generator"
        extra += f", {self.gen_languages.replace('+', ' ')}" if self.gen_languages else ""
        return base + f" + xQG (n={self.n_queries}, α={self.alpha:g}, {self.mode}{extra})"


def _tag(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def encoder_source(work: Path, encoder: str, training: str) -> str:
    """What to load for an encoder and training regime (a model step 04 trained, if there is one)."""
    trained = work / "models" / "retriever" / "final"
    return str(trained) if training == "fine-tuned" and trained.exists() else encoder


ENCODE_DTYPE = {"value": "float32"}  # set by `set_encode_dtype`; part of every cache path


def set_encode_dtype(dtype: str) -> None:
    """Encode in float32 or bfloat16 (CPU autocast; see `python -m xqg.bench_encode`)."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"encode dtype must be float32 or bfloat16, got {dtype!r}")
    ENCODE_DTYPE["value"] = dtype


def _emb_dir(work: Path, encoder: str, training: str = "zero-shot") -> Path:
    return work / "emb" / f"{_tag(encoder)}-{training}-{ENCODE_DTYPE['value']}"


_ENCODERS: dict[str, object] = {}
_FILES: dict[tuple[str, int], object] = {}


def _collection(work: Path) -> dict:
    """The prepared collection, read once per file version (every system of a step reuses it)."""
    path = work / "data" / "collection.jsonl"
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _FILES:
        _FILES[key] = load_passages(path)
    return _FILES[key]


def _encoder(work: Path, encoder: str, training: str):
    key = encoder_source(work, encoder, training)
    if key not in _ENCODERS:
        _ENCODERS.clear()  # one model in memory at a time
        _ENCODERS[key] = load_encoder(key, work)
    return _ENCODERS[key]


def passage_embeddings(
    work: Path, encoder: str, training: str = "zero-shot", max_len: int = 256
) -> tuple[list[str], np.ndarray]:
    """Collection embeddings, computed once per encoder and cached with their ids."""
    path = _emb_dir(work, encoder, training) / "passages.npz"
    return encode_passages(
        lambda: _encoder(work, encoder, training),
        _collection(work),
        path,
        max_len,
        dtype=ENCODE_DTYPE["value"],
    )


def query_embeddings(
    work: Path,
    encoder: str,
    queries: Sequence[Query],
    name: str,
    training: str = "zero-shot",
) -> np.ndarray:
    """Embeddings of a query set, cached by name and the texts' hash, and checked against the ids."""
    digest = hashlib.sha1("\n".join(q.text for q in queries).encode()).hexdigest()[:10]
    path = _emb_dir(work, encoder, training) / f"queries-{_tag(name)}-{digest}.npz"
    ids = [q.id for q in queries]
    if path.exists():
        got, emb = load_embeddings(path)
        if got == ids:
            return emb
    emb = _encoder(work, encoder, training).encode(
        [q.text for q in queries], "query", max_length=64, batch_size=128, dtype=ENCODE_DTYPE["value"]
    )
    save_embeddings(path, ids, emb)
    return emb


def encode_generated(
    work: Path, encoder: str, training: str = "zero-shot", variant: str = "full"
) -> GeneratedEmbeddings:
    """Generated-query embeddings of one generator variant, cached on disk and, per file version,
    in memory (an empty generation is embedded as "?")."""
    from xqg.study.generator_step import generated_path

    source = generated_path(work, variant)
    key = (f"{source}|{_emb_dir(work, encoder, training)}", source.stat().st_mtime_ns)
    if key in _FILES:
        return _FILES[key]
    records = load_generated(source)
    ids = [f"{r['passage_id']}|{r['language']}|{r['sample']}" for r in records]
    path = _emb_dir(work, encoder, training) / source.with_suffix(".npz").name.replace("queries", "generated")
    emb = None
    if path.exists():
        got, cached = load_embeddings(path)
        emb = cached if got == ids else None
    if emb is None:
        texts = [r["text"] if r["text"].strip() else "?" for r in records]
        emb = _encoder(work, encoder, training).encode(
            texts, "query", max_length=64, batch_size=128, dtype=ENCODE_DTYPE["value"]
        )
        save_embeddings(path, ids, emb)
    _FILES[key] = GeneratedEmbeddings(
        [r["passage_id"] for r in records],
        [r["language"] for r in records],
        np.array([r["sample"] for r in records]),
        emb,
    )
    return _FILES[key]


def system_passages(work: Path, system: System) -> tuple[list[str], np.ndarray]:
    """The passage ids and (augmented, for xQG) embeddings a system searches."""
    pids, pemb = passage_embeddings(work, system.encoder, system.training)
    if system.xqg:
        gen = encode_generated(work, system.encoder, system.training, system.generator)
        langs = system.gen_languages.split("+") if system.gen_languages else None
        pemb = augment(pids, pemb, gen.select(system.n_queries, langs), system.alpha, system.mode)
    return pids, pemb


def system_run(
    work: Path,
    system: System,
    queries: Sequence[Query],
    query_name: str,
    k: int = 100,
    query_emb: np.ndarray | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """A system's ranking (top k) of one query set."""
    pids, pemb = system_passages(work, system)
    if query_emb is None:
        query_emb = query_embeddings(work, system.encoder, queries, query_name, system.training)
    return dense_retrieve(pids, pemb, queries, query_emb, k)


def score_run(
    work: Path,
    queries: Sequence[Query],
    run: dict[str, list[tuple[str, float]]],
    measures: Sequence[str],
    budgets: Sequence[int],
) -> dict[str, dict[str, float]]:
    """Per-query retrieval metrics of a run over the prepared collection."""
    bench = Benchmark("eval", "prepared", _collection(work), list(queries))
    return evaluate_run(bench, queries, run, measures, budgets)


def score_system(
    work: Path,
    system: System,
    queries: Sequence[Query],
    query_name: str,
    measures: Sequence[str],
    budgets: Sequence[int],
    k: int = 100,
    query_emb: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Per-query metrics of one system on one query set."""
    run = system_run(work, system, queries, query_name, k, query_emb)
    return score_run(work, queries, run, measures, budgets)


def chosen_path(work: Path) -> Path:
    """Where step 05 records the alpha and mode it chose per training regime."""
    return work / "xqg_config.json"


def test_systems(
    work: Path, encoder: str, training: str, n_queries: int, unseen: Sequence[str] = ()
) -> list[System]:
    """The test-query systems of one encoder: no xQG, xQG with 1..n queries, and (RQ1) the
    full and seen-only generators restricted to the seen languages, and the seen-only generator
    asked for every language. Alpha and mode are step 05's choice."""
    from xqg.study.generator_step import generated_path

    cfg = read_json(chosen_path(work))[training]
    base = System(encoder, training)
    xqg = replace(base, xqg=True, n_queries=n_queries, alpha=cfg["alpha"], mode=cfg["mode"])
    systems = [base] + [replace(xqg, n_queries=n) for n in range(1, n_queries + 1)]
    if unseen and generated_path(work, "seen-only").exists():
        langs = sorted({r["language"] for r in load_generated(generated_path(work, "seen-only"))})
        seen = "+".join(lang for lang in langs if lang not in unseen)
        systems += [
            replace(xqg, gen_languages=seen),
            replace(xqg, generator="seen-only", gen_languages=seen),
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
    """(aggregate rows for metrics.csv, per-query rows) of one scored system."""
    lang = {q.id: q.language for q in queries}
    base = {
        "benchmark": benchmark,
        "split": split,
        "encoder": system.encoder,
        "training": system.training,
        "xqg": system.xqg,
        "n_queries": system.n_queries,
        "alpha": system.alpha,
        "mode": system.mode,
        "gen_languages": system.gen_languages,
        "generator": system.generator,
        "perturbation": system.perturbation,
        "severity": system.severity,
    }
    pq = pd.DataFrame(
        [
            {**base, "query_id": q, "language": lang[q], "metric": m, "value": v}
            for m, scores in per_query.items()
            for q, v in scores.items()
        ]
    )
    agg = pq.groupby("metric")
    rows = []
    for m, g in agg:
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


def run_retrieval_study(
    work: Path,
    results: Path,
    benchmark: str,
    encoder: str,
    alphas: Sequence[float],
    modes: Sequence[str],
    select_metric: str,
    n_queries: int,
    measures: Sequence[str],
    budgets: Sequence[int],
    base_training: str = "zero-shot",
    unseen_languages: Sequence[str] = (),
) -> dict:
    """Alpha sweep on the tuning queries, then baseline vs xQG, the n ablation and (RQ1) the
    seen-only generator on the test queries.

    `base_training` labels the encoder as loaded ("fine-tuned" for a released xDR checkpoint);
    a model trained by step 04 is scored as well, labelled "fine-tuned".
    """
    tuning = load_queries(work / "data" / "tuning_queries.jsonl")
    test = load_queries(work / "data" / "eval_queries.jsonl")
    trainings = [base_training] + (
        ["fine-tuned"] if (work / "models" / "retriever" / "final").exists() else []
    )
    all_rows, all_pq, chosen = [], [], {}
    for training in trainings:
        base = System(encoder, training)
        sweep = []
        if tuning:
            for mode in modes:
                for alpha in alphas:
                    s = replace(base, xqg=True, n_queries=n_queries, alpha=alpha, mode=mode)
                    rows, _ = tidy(
                        s,
                        score_system(work, s, tuning, "tuning", measures, budgets),
                        tuning,
                        benchmark,
                        "tuning",
                    )
                    all_rows.append(rows)
                    sweep.append(
                        (
                            rows.query("language == 'macro' and metric == @select_metric")["value"].iloc[0],
                            alpha,
                            mode,
                        )
                    )
            rows, _ = tidy(
                base,
                score_system(work, base, tuning, "tuning", measures, budgets),
                tuning,
                benchmark,
                "tuning",
            )
            all_rows.append(rows)
        # best tuning score; ties go to the sum mode (the authors') and then the smaller alpha
        ranked = sorted(sweep, key=lambda s: (-round(s[0], 6), s[2] != "sum", s[1]))
        best_alpha, best_mode = (ranked[0][1], ranked[0][2]) if sweep else (alphas[0], modes[0])
        chosen[training] = {"alpha": best_alpha, "mode": best_mode}
        write_json(chosen_path(work), chosen)
        for s in test_systems(work, encoder, training, n_queries, unseen_languages):
            rows, pq = tidy(
                s, score_system(work, s, test, "test", measures, budgets), test, benchmark, "test"
            )
            all_rows.append(rows)
            all_pq.append(pq)
    results.mkdir(parents=True, exist_ok=True)
    metrics = pd.concat(all_rows, ignore_index=True)
    metrics.to_csv(results / "metrics_retrieval.csv", index=False)
    pd.concat(all_pq, ignore_index=True).to_csv(results / "per_query_retrieval.csv.gz", index=False)
    return {"chosen": chosen, "rows": len(metrics)}
