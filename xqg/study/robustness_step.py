"""Step 07 (RQ2): retrieval and end-to-end QA under adversarial query perturbations.

A seeded subsample of the test queries (`per_language` per language) is perturbed by each family
at each severity (`xqg.perturb`; gold answers protected) and run through the encoder without and
with xQG (step 05's alpha and mode, n queries) and the reader of step 06. Severity 0 is the clean
subsample. ``code_switch`` runs on the languages with a FreeDict dictionary in `dictionary_dir`
(Debian's ``dict-freedict-*``); the coverage table says which, and the languages without one are
left out of that family's rows rather than counted unperturbed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from xqg.data.splits import sample_queries
from xqg.io import read_json
from xqg.perturb import FAMILIES, load_dictd, perturb
from xqg.study.artifacts import load_passages, load_queries
from xqg.study.qa_step import ReadCache, answer_queries, load_reader, qa_scores, reader_dir
from xqg.study.retrieve_step import System, chosen_path, query_embeddings, score_run, system_run, tidy

FREEDICT = {
    "ar": "ara",
    "de": "deu",
    "es": "spa",
    "hi": "hin",
    "vi": "vie",
    "zh": "zho",
    "fr": "fra",
    "ru": "rus",
    "ja": "jpn",
    "fi": "fin",
}


def dictionaries(languages: Sequence[str], dictionary_dir: str) -> tuple[dict[str, dict], pd.DataFrame]:
    """{language: word -> English} for the languages FreeDict covers here, and a coverage table."""
    found, rows = {}, []
    for lang in languages:
        if lang == "en":
            continue
        prefix = Path(dictionary_dir) / f"freedict-{FREEDICT.get(lang, lang)}-eng"
        try:
            found[lang] = load_dictd(prefix)
            rows.append({"language": lang, "dictionary": str(prefix), "headwords": len(found[lang])})
        except FileNotFoundError:
            rows.append({"language": lang, "dictionary": f"missing: {prefix}", "headwords": 0})
    return found, pd.DataFrame(rows, columns=["language", "dictionary", "headwords"])


def perturbed_queries(queries, family: str, severity: float, seed: int, dicts: dict[str, dict]) -> list:
    """The queries under one family and severity (code_switch: only languages with a dictionary)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown perturbation family {family!r}; families are {FAMILIES}")
    if family == "code_switch":
        queries = [q for q in queries if q.language in dicts]
    return [
        replace(q, text=perturb(q.text, family, severity, seed, q.answers, dicts.get(q.language)))
        for q in queries
    ]


def run_robustness_study(
    work: Path,
    results: Path,
    benchmark: str,
    encoder: str,
    n_queries: int,
    families: Sequence[str],
    severities: Sequence[float],
    per_language: int,
    top_k: int,
    measures: Sequence[str],
    budgets: Sequence[int],
    max_length: int,
    batch_size: int,
    dtype: str,
    dictionary_dir: str,
    seed: int,
    base_training: str = "zero-shot",
) -> dict:
    """Metrics of the clean and perturbed subsample, without and with xQG; writes
    metrics_robustness.csv, per_query_robustness.csv.gz, perturbation_samples.csv and
    perturbation_coverage.csv."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"perturbation_families: unknown {unknown}; families are {FAMILIES}")
    if any(not 0 < s <= 1 for s in severities):
        raise ValueError(f"perturbation_severities must lie in (0, 1], got {list(severities)}")
    test = [q for q in load_queries(work / "data" / "eval_queries.jsonl") if q.answers]
    sample = sample_queries(test, per_language or None, seed)
    passages = load_passages(work / "data" / "collection.jsonl")
    # the retriever step 04 trained, when there is one (as the paper's xDR), else the encoder as loaded
    training = "fine-tuned" if (work / "models" / "retriever" / "final").exists() else base_training
    cfg = read_json(chosen_path(work))[training]
    base = System(encoder, training)
    systems = [base, replace(base, xqg=True, n_queries=n_queries, alpha=cfg["alpha"], mode=cfg["mode"])]
    dicts, coverage = dictionaries(sorted({q.language for q in sample}), dictionary_dir)
    reader = load_reader(work, max_length)
    cache = ReadCache(reader_dir(work) / "reads.jsonl")
    variants = [("none", 0.0, sample)] + [
        (f, s, perturbed_queries(sample, f, s, seed, dicts)) for f in families for s in severities
    ]
    rows, per_query, examples = [], [], []
    for family, severity, queries in variants:
        if not queries:
            continue
        name = "robustness-clean" if family == "none" else f"robustness-{family}-{severity:g}"
        emb = query_embeddings(work, encoder, queries, name, training)
        for system in systems:
            labelled = replace(system, perturbation=family, severity=severity)
            run = system_run(work, system, queries, name, k=100, query_emb=emb)
            scores = score_run(work, queries, run, measures, budgets)
            answers = answer_queries(cache, reader, queries, run, passages, top_k, batch_size, dtype)
            scores.update(qa_scores(queries, answers))
            agg, pq = tidy(labelled, scores, queries, benchmark, "robustness")
            rows.append(agg)
            per_query.append(pq)
        clean = {q.id: q.text for q in sample}
        examples += [
            {
                "perturbation": family,
                "severity": severity,
                "language": q.language,
                "query_id": q.id,
                "clean": clean[q.id],
                "perturbed": q.text,
                "changed": q.text != clean[q.id],
            }
            for q in queries
        ]
    results.mkdir(parents=True, exist_ok=True)
    metrics = pd.concat(rows, ignore_index=True)
    metrics.to_csv(results / "metrics_robustness.csv", index=False)
    pd.concat(per_query, ignore_index=True).to_csv(results / "per_query_robustness.csv.gz", index=False)
    samples = pd.DataFrame(examples)
    samples.to_csv(results / "perturbation_samples.csv", index=False)
    changed = samples[samples.perturbation != "none"].groupby(["perturbation", "severity", "language"])[
        "changed"
    ]
    coverage.to_csv(results / "perturbation_coverage.csv", index=False)
    return {
        "queries": len(sample),
        "variants": len(variants),
        "changed": changed.mean().unstack("language").round(3),
        "coverage": coverage,
    }
