"""One schema for every benchmark: queries, passages and the query -> gold passage link.

Passage ids are stable and content-addressed: ``{benchmark}-{sha1(title + "\\n" + text)[:16]}``,
so the same English context shared by questions in five languages is one passage, and an id
never depends on file order. XOR-TyDi's Wikipedia passages keep DPR's numeric ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


class DataError(ValueError):
    """A benchmark file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Passage:
    """A retrievable unit: id, title and text."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Query:
    """A question in one language with its gold answers and, where known, its gold passage.

    `id` is unique within a benchmark (``{qid}-{language}``); `qid` is the benchmark's own id,
    shared by the parallel versions of a question in MLQA and XQuAD.
    """

    id: str
    qid: str
    language: str
    text: str
    answers: tuple[str, ...]
    gold_passage: str | None = None
    article: str | None = None


@dataclass
class Benchmark:
    """Queries plus the passage collection they are asked against."""

    name: str
    split: str
    passages: dict[str, Passage]
    queries: list[Query] = field(default_factory=list)

    def languages(self) -> list[str]:
        """Languages present among the queries, in first-seen order."""
        return list(dict.fromkeys(q.language for q in self.queries))

    def validate(self, source: str) -> None:
        """Refuse an empty collection, duplicate query ids or dangling gold passages."""
        if not self.passages:
            raise DataError(f"{source}: empty passage collection")
        if not self.queries:
            raise DataError(f"{source}: no queries")
        seen: set[str] = set()
        for q in self.queries:
            if q.id in seen:
                raise DataError(f"{source}: duplicate query id {q.id!r}")
            seen.add(q.id)
            if q.gold_passage is not None and q.gold_passage not in self.passages:
                raise DataError(f"{source}: query {q.id!r} links to unknown passage")


def passage_id(benchmark: str, title: str, text: str) -> str:
    """Stable, content-addressed passage id."""
    digest = hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]
    return f"{benchmark}-{digest}"
