"""Reading and writing the artefacts that pass between steps (JSON Lines of the data schema)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from xqg.data.schema import Benchmark, Passage, Query
from xqg.generation.prompts import Triple
from xqg.io import iter_jsonl, write_jsonl


def save_passages(path: Path, passages: dict[str, Passage]) -> None:
    """Collection as JSON Lines (id, title, text)."""
    write_jsonl(path, (asdict(p) for p in passages.values()))


def load_passages(path: Path) -> dict[str, Passage]:
    """Collection written by `save_passages`."""
    return {r["id"]: Passage(r["id"], r["title"], r["text"]) for r in iter_jsonl(path)}


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


def load_benchmark(work: Path, name: str = "eval") -> Benchmark:
    """The evaluation benchmark prepared by step 01."""
    return Benchmark(
        name,
        "prepared",
        load_passages(work / "data" / "collection.jsonl"),
        load_queries(work / "data" / f"{name}_queries.jsonl"),
    )
