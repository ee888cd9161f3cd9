"""Step 03 (`03_generate`): generated queries for the whole collection, and their quality report.

`n_queries` questions per passage and language by top-k sampling (resumable JSON Lines), or the
authors' released queries imported; then language and script shares, duplicates, lengths and
round-trip Recall@10 under the zero-shot retriever, with sample queries beside their passage.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from xqg.generation.quality import report, round_trip, samples
from xqg.generation.quality_table import held_out_columns, with_macro
from xqg.generation.run import (
    QueryGenerator,
    done_marker,
    generate_collection,
    import_released_queries,
    merge_shards,
    shard_file,
)
from xqg.io import iter_jsonl, write_csv, write_text_atomic
from xqg.retrieval.search import retrieve
from xqg.study.checks import check_before_work
from xqg.study.config import Amount, Count, EncodingConfig, Executor, GeneratorKind, arg
from xqg.study.encoding import EmbeddingCache
from xqg.study.generators import generator_variants, load_trained_generator
from xqg.study.jobs import JobSettings, run_jobs
from xqg.study.provenance import Recipe, claim, code_version, file_identity, key_of
from xqg.study.workspace import PassageRows, Workspace


@dataclass(frozen=True, kw_only=True)
class Config(EncodingConfig):
    """Parameters of step 03."""

    STEP = "03_generate"
    seed: int = arg("seed of sampling")
    encoder: str = arg("retriever for the round-trip check")
    generator_kind: GeneratorKind = arg("e5-decoder | seq2seq (as in step 02)")
    generator_languages: list[str] = arg("languages to generate in")
    n_queries: Count = arg("queries per passage per language")
    top_k: Count = arg("top-k sampling")
    max_new_tokens: Count = arg("maximum question length in tokens")
    generation_batch_size: Count = arg("passages per generation batch")
    released_queries_file: str = arg(
        "import the authors' generated queries (augmented corpus JSONL)", default=""
    )
    unseen_languages: list[str] = arg("RQ1: the seen-only generator writes these too (never trained on them)")
    ceiling_queries: Count = arg(
        "queries per ceiling paragraph and language (as many as the human questions reserved in step 01)",
        default=2,
    )
    generation_shards: Count = arg(
        "passage shards generated as independent jobs (merged in order: the same file as one job)",
        default=1,
    )
    executor: Executor = arg(
        "runs the shard jobs: inline (in this process), local (submitit, concurrent processes on this "
        "machine) or slurm (a submitit job array)",
        default="inline",
    )
    job_gpus: Amount = arg("GPUs per shard job (local and slurm executors)", default=0)
    job_cpus: Count = arg("CPU cores per shard job", default=1)
    job_timeout_min: Count = arg("time limit of a shard job, minutes", default=24 * 60)
    slurm_partition: str = arg("SLURM partition of the shard jobs (empty: the cluster's default)", default="")


def run(workspace: Workspace, config: Config) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Generate (or import) every variant's queries; {variant: (quality table, sample queries)}."""
    check_before_work(workspace, config)
    cache = EmbeddingCache.for_step(workspace, config)
    variants = generator_variants(config.generator_languages, config.unseen_languages)
    for variant in variants:
        generate(workspace, config, variant)
    reports = {v: quality(workspace, cache, config.encoder, v) for v in variants}
    if workspace.ceiling_collection.exists():
        generate_ceiling(workspace, config)
    return reports


# the parameters the queries depend on (the round-trip check's encoder and dtype are not among them)
QUERY_PARAMS = (
    "seed",
    "generator_kind",
    "generator_languages",
    "n_queries",
    "top_k",
    "max_new_tokens",
    "generation_batch_size",
    "released_queries_file",
)


def queries_recipe(ws: Workspace, config: Config, source: dict[str, str]) -> Recipe:
    """What one variant's generated queries are made from: the sampling code and parameters, the
    generator (or the released file) and the collection."""
    inputs = {"data": key_of(ws.data, "01_data"), **source}
    code = code_version("xqg.generation.run", "xqg.study.generators", "xqg.data.xor_tydi")
    return Recipe(code, config.params(*QUERY_PARAMS), inputs)


def generate(ws: Workspace, config: Config, variant: str = "full") -> None:
    """Generate `n_queries` per passage and language for the whole collection (resumable), or
    import the authors' released queries when `released_queries_file` is given."""
    out = ws.generated_queries(variant)
    source = (
        {"released queries": file_identity(config.released_queries_file)}
        if config.released_queries_file
        else {"generator": key_of(ws.generator_dir(variant), "02_train_generator")}
    )
    recipe = queries_recipe(ws, config, source)
    claim(out, recipe)
    if config.released_queries_file:
        import_released_queries(
            config.released_queries_file, config.generator_languages, config.n_queries, out
        )
        return
    _sample(ws, config, variant, ws.collection, config.n_queries, out, recipe)


def sample_collection(
    generator: QueryGenerator,
    config: Config,
    collection: Path,
    n: int,
    out: Path,
    shard: int = 0,
    num_shards: int = 1,
) -> Path:
    """`n` questions per passage of `collection` and generator language by `generator`, with
    step 03's sampling settings, into `out` (shard `shard` of `num_shards`)."""
    return generate_collection(
        generator,
        PassageRows(collection),  # the shard's rows are read, not the collection
        config.generator_languages,
        n,
        out,
        top_k=config.top_k,
        max_new_tokens=config.max_new_tokens,
        batch_size=config.generation_batch_size,
        seed=config.seed,
        shard=shard,
        num_shards=num_shards,
    )


@dataclass(frozen=True)
class ShardJob:
    """One shard of a generation run, as a picklable job: loads the collection and the generator
    itself (in whatever process or cluster node runs it), skips a shard that finished before, and
    writes its done marker last. Returns the marker's record (timings, lines)."""

    ws: Workspace
    config: Config
    variant: str
    collection: Path
    n: int
    out: Path

    def __call__(self, shard: int) -> dict:
        c, num_shards = self.config, self.config.generation_shards
        path = shard_file(self.out, shard, num_shards)
        marker = done_marker(path)
        if marker.exists():  # finished before: not touched again
            return json.loads(marker.read_text())
        started = time.time()
        if c.executor != "inline":  # a job process uses the cores it was given, not the machine's
            torch.set_num_threads(c.job_cpus)
        sample_collection(
            load_trained_generator(self.ws, c.generator_kind, self.variant, c.device),
            c,
            self.collection,
            self.n,
            path,
            shard,
            num_shards,
        )
        with open(path, "rb") as f:
            lines = sum(1 for _ in f)
        record = {
            "shard": shard,
            "lines": lines,
            "started": started,
            "finished": time.time(),
            "pid": os.getpid(),
        }
        write_text_atomic(marker, json.dumps(record))
        return record


def job_settings(ws: Workspace, config: Config) -> JobSettings:
    """The executor and resources of step 03's shard jobs."""
    return JobSettings(
        executor=config.executor,
        folder=ws.work / "jobs" / "03_generate",
        timeout_min=config.job_timeout_min,
        gpus_per_node=config.job_gpus,
        cpus_per_task=config.job_cpus,
        slurm_partition=config.slurm_partition,
    )


def _sample(
    ws: Workspace, config: Config, variant: str, collection: Path, n: int, out: Path, recipe: Recipe
) -> None:
    """`n` top-k-sampled queries per passage and language of `collection` by one variant's
    generator: `generation_shards` shard jobs (each resumable; finished ones are skipped), then
    their files merged in order into `out` (which `recipe` claimed; present means complete)."""
    if out.exists():
        return
    shards = shard_file(out, 0, config.generation_shards).parent
    claim(
        shards,
        Recipe(recipe.code, {**recipe.params, "generation_shards": config.generation_shards}, recipe.inputs),
    )
    job = ShardJob(ws, config, variant, collection, n, out)
    run_jobs(job, list(range(config.generation_shards)), job_settings(ws, config))
    merge_shards(out, config.generation_shards)


def generate_ceiling(ws: Workspace, config: Config) -> None:
    """The full generator's `ceiling_queries` per paragraph and language of the ceiling collection
    (step 01 held its articles out of the generator's training), for step 05b's comparison with
    the human questions reserved there."""
    out = ws.ceiling_generated
    params = {**config.params(*QUERY_PARAMS), "n_queries": config.ceiling_queries}
    inputs = {
        "data": key_of(ws.data, "01_data"),
        "generator": key_of(ws.generator_dir(), "02_train_generator"),
    }
    recipe = Recipe(code_version("xqg.generation.run", "xqg.study.generators"), params, inputs)
    claim(out, recipe)
    _sample(ws, config, "full", ws.ceiling_collection, config.ceiling_queries, out, recipe)


QUALITY_PASSAGES = 2000  # the quality report reads the queries of at most this many passages


def quality_sample(passage_ids: list[str], limit: int = QUALITY_PASSAGES) -> set[str]:
    """The passages whose queries the quality report reads: all of a small collection, else a
    fixed hash-ordered sample (the same on any machine)."""
    if len(passage_ids) <= limit:
        return set(passage_ids)
    return set(sorted(passage_ids, key=lambda p: hashlib.sha1(p.encode()).hexdigest())[:limit])


def never_trained_on(ws: Workspace, passage_ids: set[str]) -> set[str]:
    """Those of `passage_ids` no generator trained on (in any language) and step 02 did not use
    to choose its checkpoint: the report's held-out passages."""
    trained = {t.passage_id for t in ws.triples()}
    selection = set(ws.passages(ws.generator_heldout)) if ws.generator_heldout.exists() else set()
    return set(passage_ids) - trained - selection


def quality(
    ws: Workspace, cache: EmbeddingCache, encoder: str, variant: str = "full"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quality table (with round-trip Recall@10 under the zero-shot encoder) and sample queries of
    the queries of `quality_sample` passages, written to ``generation_quality[-variant].{csv,json}``
    and ``generation_samples[-variant].csv``. The embeddings come from the pass that builds the
    zero-shot query sums (or are encoded for the sample when the sums were built before)."""
    sample = quality_sample(list(cache.collection))
    records: list[dict] = []
    parts: list[np.ndarray] = []

    def keep(chunk: list[dict], emb: np.ndarray) -> None:
        rows = [i for i, r in enumerate(chunk) if r["passage_id"] in sample]
        records.extend(chunk[i] for i in rows)
        parts.append(emb[rows])

    cache.query_sums(encoder, "zero-shot", variant, on_chunk=keep)
    if not records:  # the sums were on disk already
        records = [r for r in iter_jsonl(ws.generated_queries(variant)) if r["passage_id"] in sample]
        parts = [cache.encode_generated(encoder, records)]
    emb = np.concatenate(parts)
    table = report(records)
    pids, pemb = cache.passages(encoder)
    nonempty = [i for i, r in enumerate(records) if r["text"].strip()]
    run = retrieve(pids, pemb, [str(i) for i in nonempty], emb[nonempty], 10)
    for i, _ in enumerate(records):
        run.setdefault(str(i), [])
    table["round-trip R@10"] = round_trip(records, run, 10)
    table = with_macro(table.join(held_out_columns(records, run, never_trained_on(ws, sample), 10)))
    examples = samples(records, cache.collection, per_language=3, seed=0)
    ws.results.mkdir(parents=True, exist_ok=True)
    write_csv(table, ws.result("generation_quality.csv", variant), index=True)
    write_csv(examples, ws.result("generation_samples.csv", variant))
    # pandas writes a missing value (no held-out passage) as null, where json.dumps would write NaN
    write_text_atomic(ws.result("generation_quality.json", variant), table.round(2).to_json(orient="index"))
    return table, examples
