"""`Workspace`: every artefact path of one profile, named once, and the schema files' readers/writers.

Steps ask the workspace where a thing lives (``ws.collection``, ``ws.generated_queries("full")``,
``ws.retriever_checkpoint``) instead of joining paths themselves, so a path is spelled in exactly
one place. The three roots (work, results, figures) follow `xqg.paths`, which the environment
can redirect (the tests run the smoke profile in temporary folders that way).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import overload

import numpy as np

from xqg.data.schema import Passage, Query
from xqg.generation.prompts import Triple
from xqg.io import iter_jsonl, write_jsonl
from xqg.paths import figures_dir, results_dir, work_dir

GENERATOR_VARIANTS = ("full", "seen-only")
QUERY_SETS = ("eval", "tuning", "train", "reader")  # test, alpha-tuning, training, reader training
CEILING_SETS = ("augment", "tuning", "test")  # the ceiling collection's human questions


def _suffix(variant: str) -> str:
    if variant not in GENERATOR_VARIANTS:
        raise ValueError(f"generator variant must be one of {GENERATOR_VARIANTS}, got {variant!r}")
    return "" if variant == "full" else f"-{variant}"


def file_tag(name: str) -> str:
    """`name` made safe as one path component (model names carry slashes)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclass(frozen=True)
class Workspace:
    """The folders and files of one profile's run."""

    profile: str
    work: Path = None  # type: ignore[assignment]  # default: the configured roots (xqg.paths)
    results: Path = None  # type: ignore[assignment]
    figures: Path = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for name, default in (("work", work_dir), ("results", results_dir), ("figures", figures_dir)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default(self.profile))

    # --- step 01: prepared data -------------------------------------------------------------
    @property
    def data(self) -> Path:
        """Folder of the prepared data."""
        return self.work / "data"

    @property
    def collection(self) -> Path:
        """The evaluation collection (English passages)."""
        return self.data / "collection.jsonl"

    @property
    def train_collection(self) -> Path:
        """Passages of the training benchmark (retriever and reader training)."""
        return self.data / "train_collection.jsonl"

    @property
    def train_groups(self) -> Path:
        """Per training query, its positive and negative passage ids where the training data gives
        them (Tevatron's XOR-TyDi file; empty otherwise: step 04 mines negatives)."""
        return self.data / "train_groups.jsonl"

    def groups(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """{training query id: (positive ids, negative ids)} of `train_groups`."""
        return {
            r["query_id"]: (tuple(r["positives"]), tuple(r["negatives"]))
            for r in iter_jsonl(self.train_groups)
        }

    @property
    def reader_collection(self) -> Path:
        """Passages of the reader's training questions (the ``reader`` query set)."""
        return self.data / "reader_collection.jsonl"

    def queries_file(self, name: str) -> Path:
        """Queries of one set: ``eval`` (test), ``tuning`` (alpha), ``train`` or ``reader`` (the
        reader's training questions: ``train`` plus `reader_data`)."""
        if name not in QUERY_SETS:
            raise ValueError(f"query set must be one of {QUERY_SETS}, got {name!r}")
        return self.data / f"{name}_queries.jsonl"

    @property
    def ceiling_collection(self) -> Path:
        """The ceiling collection: paragraphs of held-out training-benchmark articles (XQuAD) that
        neither the generator nor the retriever trains on, each with parallel human questions in
        every language."""
        return self.data / "ceiling_collection.jsonl"

    def ceiling_queries(self, name: str) -> Path:
        """Human questions of the ceiling collection: ``augment`` (reserved to augment their
        paragraph, never asked), ``tuning`` (alpha) or ``test``."""
        if name not in CEILING_SETS:
            raise ValueError(f"ceiling query set must be one of {CEILING_SETS}, got {name!r}")
        return self.data / f"ceiling_{name}_queries.jsonl"

    @property
    def generator_train(self) -> Path:
        """The generator's training triples."""
        return self.data / "generator_train.jsonl"

    @property
    def generator_dev(self) -> Path:
        """The generator's dev triples for checkpoint selection (empty: step 02 splits its own)."""
        return self.data / "generator_dev.jsonl"

    @property
    def generator_heldout(self) -> Path:
        """Passages never trained on, for the generator's checkpoint selection."""
        return self.data / "generator_heldout.jsonl"

    @property
    def data_summary(self) -> Path:
        """Counts of the prepared data."""
        return self.data / "summary.json"

    # --- models ------------------------------------------------------------------------------
    def model_dir(self, name: str) -> Path:
        """A model built or trained for this profile (tiny test models among them)."""
        return self.work / "models" / file_tag(name)

    def generator_dir(self, variant: str = "full") -> Path:
        """Step 02's generator of one variant (checkpoints and ``best``)."""
        return self.work / "models" / f"generator{_suffix(variant)}"

    def generator_checkpoint(self, variant: str = "full") -> Path:
        """The checkpoint step 02 selected (``best``) for one variant."""
        return self.generator_dir(variant) / "best"

    @property
    def retriever_dir(self) -> Path:
        """Step 04's training folder."""
        return self.work / "models" / "retriever"

    @property
    def retriever_checkpoint(self) -> Path:
        """The retriever step 04 trained (absent when it trained none)."""
        return self.retriever_dir / "final"

    @property
    def reader_dir(self) -> Path:
        """Step 06's reader folder."""
        return self.work / "models" / "reader"

    @property
    def reader_checkpoint(self) -> Path:
        """The reader step 06 trained or took as it is."""
        return self.reader_dir / "final"

    @property
    def reader_record(self) -> Path:
        """How the reader was trained (JSON)."""
        return self.reader_dir / "training.json"

    @property
    def reads(self) -> Path:
        """The reader's cached answers of (question, passage) pairs (JSON Lines)."""
        return self.reader_dir / "reads.jsonl"

    # --- generated queries, embeddings, choices ------------------------------------------------
    def generated_queries(self, variant: str = "full") -> Path:
        """Step 03's generated queries of one generator variant (JSON Lines)."""
        return self.work / "generated" / f"queries{_suffix(variant)}.jsonl"

    @property
    def ceiling_generated(self) -> Path:
        """Step 03's queries for the ceiling collection (the full generator; JSON Lines)."""
        return self.work / "generated" / "ceiling-queries.jsonl"

    def embeddings_dir(self, encoder: str, training: str, dtype: str) -> Path:
        """Cached embeddings of one encoder, training regime and encoding dtype."""
        return self.work / "emb" / f"{file_tag(encoder)}-{training}-{dtype}"

    @property
    def xqg_choice(self) -> Path:
        """Step 05's alpha and mode per training regime, chosen on the tuning queries."""
        return self.work / "xqg_config.json"

    # --- results ------------------------------------------------------------------------------
    def result(self, name: str, variant: str = "full") -> Path:
        """A results file of this profile (metrics, per-query scores, reports); a generator
        variant other than ``full`` is marked before the suffix (``generation_quality-seen-only.csv``)."""
        stem, dot, ext = name.partition(".")
        return self.results / f"{stem}{_suffix(variant)}{dot}{ext}"

    def run_file(self, split: str, tag: str) -> Path:
        """A system's TREC run on one query split (``runs/<split>/<tag>.trec``)."""
        return self.results / "runs" / split / f"{file_tag(tag)}.trec"

    def qrels_file(self, split: str) -> Path:
        """TREC qrels (gold passages) of one query split."""
        return self.results / "runs" / split / "qrels.txt"

    @property
    def tables(self) -> Path:
        """Folder of the tables (CSV, LaTeX, Markdown)."""
        return self.results / "tables"

    def figure(self, name: str) -> Path:
        """A figure's path without suffix (PDF and PNG are written beside each other)."""
        return self.figures / name

    # --- reading the schema files ---------------------------------------------------------------
    def passages(self, path: Path | None = None) -> dict[str, Passage]:
        """A prepared collection (default: the evaluation collection)."""
        return load_passages(path or self.collection)

    def queries(self, name: str) -> list[Query]:
        """A prepared query set (see `queries_file`)."""
        return load_queries(self.queries_file(name))

    def triples(self, path: Path | None = None) -> list[Triple]:
        """The generator's training triples (or those of `path`: ``generator_dev``)."""
        return load_triples(path or self.generator_train)

    # --- which models the study scores ---------------------------------------------------------
    def trainings(self, base_training: str) -> list[str]:
        """The encoder's regimes the study scores: as loaded, plus ``fine-tuned`` when step 04 trained one."""
        return [base_training] + (["fine-tuned"] if self.retriever_checkpoint.exists() else [])

    def encoder_source(self, encoder: str, training: str) -> str:
        """What to load for an encoder and training regime (step 04's model for ``fine-tuned``)."""
        trained = self.retriever_checkpoint
        return str(trained) if training == "fine-tuned" and trained.exists() else encoder


def save_passages(path: Path, passages: dict[str, Passage]) -> None:
    """Collection as JSON Lines (id, title, text)."""
    write_jsonl(path, (asdict(p) for p in passages.values()))


def load_passages(path: Path) -> dict[str, Passage]:
    """Collection written by `save_passages`."""
    return {r["id"]: Passage(r["id"], r["title"], r["text"]) for r in iter_jsonl(path)}


class PassageRows(Sequence[Passage]):
    """A collection written by `save_passages`, read from disk by row: opening it records each
    line's byte offset (8 bytes a passage, found by scanning bytes, not parsing JSON), and a row
    or a slice of rows is read when asked for. A generation shard job holds its own rows, not the
    collection (18.2M passages as Python objects are some 16 GB, one copy per concurrent job)."""

    def __init__(self, path: Path, chunk: int = 1 << 24):
        self.path = Path(path)
        starts, at = [np.zeros(1, np.int64)], 0
        with open(self.path, "rb") as f:
            while block := f.read(chunk):
                starts.append(np.flatnonzero(np.frombuffer(block, np.uint8) == 10).astype(np.int64) + at + 1)
                at += len(block)
        offsets = np.concatenate(starts)  # where each line starts, and where the file ends
        self._offsets = offsets if offsets[-1] == at else np.append(offsets, at)  # a last line without "\n"

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> Passage: ...

    @overload
    def __getitem__(self, i: slice) -> list[Passage]: ...

    def __getitem__(self, i: int | slice) -> Passage | list[Passage]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            rows = self._read(start, max(start, stop))
            return rows[::step]
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.path}: row {i} of {len(self)}")
        return self._read(i % len(self), i % len(self) + 1)[0]

    def _read(self, start: int, stop: int) -> list[Passage]:
        with open(self.path, "rb") as f:
            f.seek(int(self._offsets[start]))
            data = f.read(int(self._offsets[stop] - self._offsets[start]))
        # split on the newline byte only: str.splitlines would also split at U+2028 inside a text
        rows = [json.loads(line) for line in data.split(b"\n") if line]
        return [Passage(r["id"], r["title"], r["text"]) for r in rows]


def save_queries(path: Path, queries: list[Query]) -> None:
    """Queries as JSON Lines (the schema's fields)."""
    write_jsonl(path, (asdict(q) for q in queries))


def load_queries(path: Path) -> list[Query]:
    """Queries written by `save_queries`."""
    return [Query(**{**r, "answers": tuple(r["answers"])}) for r in iter_jsonl(path)]


def save_triples(path: Path, triples: list[Triple]) -> None:
    """Generator training triples as JSON Lines."""
    write_jsonl(path, (asdict(t) for t in triples))


def load_triples(path: Path) -> list[Triple]:
    """Triples written by `save_triples`."""
    return [Triple(**r) for r in iter_jsonl(path)]
