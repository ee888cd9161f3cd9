"""Step 07 (`07_robustness`, RQ2): retrieval and end-to-end QA under adversarial query perturbations.

A seeded subsample of the test queries (`per_language` per language) is perturbed by each family
at each severity (`xqg.data.perturb`; gold answers protected) and run through the encoder without and
with xQG (step 05's alpha and mode, n queries) and the reader of step 06. Severity 0 is the clean
subsample. ``code_switch`` runs on the languages FreeDict has a dictionary for (Debian's
``dict-freedict-*-eng``, which must be in `dictionary_dir`: a missing one stops the step before any
work); the coverage table says which, and the languages with none published are left out of that
family's rows rather than counted unperturbed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from xqg.data.perturb import FAMILIES, load_dictd, perturb
from xqg.data.splits import sample_queries
from xqg.io import write_csv
from xqg.study.checks import check_before_work
from xqg.study.config import (
    Amount,
    Count,
    Dtype,
    EncodingConfig,
    Severity,
    Training,
    arg,
)
from xqg.study.encoding import EmbeddingCache
from xqg.study.reading import answer_queries, load_reader, open_reads, qa_scores
from xqg.study.systems import System, chosen_systems, tidy, xqg_choice
from xqg.study.workspace import Workspace


@dataclass(frozen=True, kw_only=True)
class Config(EncodingConfig):
    """Parameters of step 07."""

    STEP = "07_robustness"
    seed: int = arg("seed of the subsample and of every perturbation")
    encoder: str = arg("the retriever (as in step 05)")
    eval_benchmark: str = arg("benchmark name written into the results")
    n_queries: Count = arg("generated queries per language used by xQG")
    base_training: Training = arg("how the encoder as loaded was trained")
    perturbation_families: list[str] = arg("families swept (xqg.data.perturb.FAMILIES)")
    perturbation_severities: list[Severity] = arg("share of letters or words changed, in (0, 1]")
    robustness_queries_per_language: Amount = arg("test questions perturbed per language (0 for all)")
    qa_top_k: Count = arg("passages the reader reads per question (as in step 06)")
    measures: list[str] = arg("gold-passage measures")
    token_budgets: list[Count] = arg("R@kt budgets")
    reader_max_length: Count = arg("as in step 06")
    reader_dtype: Dtype = arg("as in step 06")
    read_batch_size: Count = arg("(question, passage) pairs per forward pass")
    dictionary_dir: str = arg("FreeDict dictd files for code_switch")


# FreeDict xxx-eng dictionaries Debian publishes (``dict-freedict-<code>-eng``), by ISO 639-1 code;
# a language missing here has none to install, so code_switch cannot cover it anywhere.
FREEDICT = {
    "af": "afr", "ar": "ara", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell",
    "eo": "epo", "es": "spa", "fi": "fin", "fr": "fra", "ga": "gle", "hr": "hrv", "hu": "hun",
    "is": "isl", "it": "ita", "ja": "jpn", "la": "lat", "lt": "lit", "nl": "nld", "pl": "pol",
    "pt": "por", "sk": "slk", "sl": "slv", "sr": "srp", "sv": "swe", "sw": "swh", "tr": "tur",
}  # fmt: skip


def dictionaries(languages: Sequence[str], dictionary_dir: str) -> tuple[dict[str, dict], pd.DataFrame]:
    """{language: word -> English} and a coverage table for code_switch.

    A language FreeDict publishes a dictionary for must have it in `dictionary_dir`: a missing one
    is an error naming the folder and the package, so that no machine silently runs fewer cells;
    a language with no published dictionary is reported as such and left out of code_switch."""
    found, rows, missing = {}, [], []
    for lang in languages:
        if lang == "en":
            continue
        if lang not in FREEDICT:
            rows.append({"language": lang, "dictionary": "none published", "headwords": 0})
            continue
        prefix = Path(dictionary_dir) / f"freedict-{FREEDICT[lang]}-eng"
        try:
            found[lang] = load_dictd(prefix)
        except FileNotFoundError:
            missing.append(f"dict-freedict-{FREEDICT[lang]}-eng")
            continue
        rows.append({"language": lang, "dictionary": str(prefix), "headwords": len(found[lang])})
    if missing:
        raise FileNotFoundError(
            f"dictionary_dir {dictionary_dir}: no FreeDict dictionary for code_switch in "
            f"{', '.join(missing)}; install them (`apt-get install {' '.join(missing)}`) or drop "
            "code_switch from perturbation_families"
        )
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


def run(workspace: Workspace, config: Config) -> dict:
    """Metrics of the clean and perturbed subsample, without and with xQG; writes
    metrics_robustness.csv, per_query_robustness.csv.gz, perturbation_samples.csv and
    perturbation_coverage.csv."""
    check_before_work(workspace, config)
    c, ws = config, workspace
    families, severities = c.perturbation_families, c.perturbation_severities
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"perturbation_families: unknown {unknown}; families are {FAMILIES}")
    if any(not 0 < s <= 1 for s in severities):
        raise ValueError(f"perturbation_severities must lie in (0, 1], got {list(severities)}")
    test = [q for q in ws.queries("eval") if q.answers]
    sample = sample_queries(test, c.robustness_queries_per_language or None, c.seed)
    cache = EmbeddingCache.for_step(ws, c)
    # the retriever step 04 trained, when there is one (as the paper's xDR), else the encoder as loaded
    training = ws.trainings(c.base_training)[-1]
    base = System(c.encoder, training, xqg_choice(ws, training)["passage_format"])
    systems = [base, *chosen_systems(ws, c.encoder, training, c.n_queries)]
    languages = sorted({q.language for q in sample})
    dicts, coverage = dictionaries(languages if "code_switch" in families else [], c.dictionary_dir)
    reader = load_reader(ws, c.reader_max_length, c.device)
    reads = open_reads(ws, c.reader_max_length, c.reader_dtype, c.read_batch_size)
    variants = [("none", 0.0, sample)] + [
        (f, s, perturbed_queries(sample, f, s, c.seed, dicts)) for f in families for s in severities
    ]
    rows, per_query, examples = [], [], []
    for family, severity, queries in variants:
        if not queries:
            continue
        name = "robustness-clean" if family == "none" else f"robustness-{family}-{severity:g}"
        emb = cache.queries(c.encoder, queries, name, training)
        for system in systems:
            labelled = replace(system, perturbation=family, severity=severity)
            run = cache.run(system, queries, name, k=100, query_emb=emb)
            scores = cache.score_run(queries, run, c.measures, c.token_budgets)
            answers = answer_queries(
                reads, reader, queries, run, cache.collection, c.qa_top_k, c.read_batch_size, c.reader_dtype
            )
            scores.update(qa_scores(queries, answers))
            agg, pq = tidy(labelled, scores, queries, c.eval_benchmark, "robustness")
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
    write_csv(pd.concat(rows, ignore_index=True), ws.result("metrics_robustness.csv"))
    write_csv(pd.concat(per_query, ignore_index=True), ws.result("per_query_robustness.csv.gz"))
    samples = pd.DataFrame(examples)
    write_csv(samples, ws.result("perturbation_samples.csv"))
    changed = samples[samples.perturbation != "none"].groupby(["perturbation", "severity", "language"])[
        "changed"
    ]
    write_csv(coverage, ws.result("perturbation_coverage.csv"))
    return {
        "queries": len(sample),
        "variants": len(variants),
        "changed": changed.mean().unstack("language").round(3),
        "coverage": coverage,
    }
