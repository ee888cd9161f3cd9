"""Reading answers from retrieved passages: the reader's cache and EM/F1 per query (steps 06, 07).

Every read is cached by (question text, passage id) in an append-only JSON Lines file, so systems
that retrieve the same passage for a question, and the robustness step's clean queries, share
the work; a killed run keeps the reads it finished, and a line it tore is cut before the next
append.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from xqg.data.schema import Passage, Query
from xqg.io import read_appendable_jsonl
from xqg.metrics.qa import per_question
from xqg.models.device import resolve_device
from xqg.qa.reader import Answer, Reader
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.workspace import Workspace


def load_reader(ws: Workspace, max_length: int, device: str = "auto") -> Reader:
    """The reader step 06 trained (or took as it is), on `device`."""
    if not ws.reader_checkpoint.exists():
        raise FileNotFoundError(f"{ws.reader_checkpoint}: no reader yet; run step 06_qa first")
    return Reader.from_pretrained(ws.reader_checkpoint, max_length=max_length).to(resolve_device(device))


def open_reads(ws: Workspace, max_length: int, dtype: str, batch_size: int) -> ReadCache:
    """The read cache of the reader step 06 trained, kept only while reader, passages and reading
    settings are those that filled it."""
    inputs = {"reader": key_of(ws.reader_dir, "06_qa"), "data": key_of(ws.data, "01_data")}
    params = {"reader_max_length": max_length, "reader_dtype": dtype, "read_batch_size": batch_size}
    claim(ws.reads, Recipe(code_version("xqg.qa.reader", __name__), params, inputs))
    return ReadCache(ws.reads)


class ReadCache:
    """Answers of (question text, passage id) pairs, appended to a JSON Lines file as they come."""

    def __init__(self, path: Path):
        self.path = path
        self.answers: dict[str, Answer] = {}
        for i, r in enumerate(read_appendable_jsonl(path), 1):
            try:
                self.answers[r["key"]] = Answer(r["text"], r["passage_id"], r["score"])
            except KeyError as e:
                raise ValueError(f"{path}:{i}: read record lacks field {e}") from e

    @staticmethod
    def key(question: str, passage_id: str) -> str:
        """Cache key of one read."""
        return hashlib.sha1(f"{question}\x00{passage_id}".encode()).hexdigest()[:20]

    def read_missing(
        self, reader: Reader, pairs: Sequence[tuple[str, str, str]], batch_size: int, dtype: str
    ) -> None:
        """Read the (question, passage id, text) pairs not yet cached, saving after each chunk."""
        todo = list(
            {
                self.key(q, pid): (q, pid, t) for q, pid, t in pairs if self.key(q, pid) not in self.answers
            }.values()
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        chunk = 20 * batch_size
        with open(self.path, "a", encoding="utf-8") as f:
            for s in range(0, len(todo), chunk):
                part = todo[s : s + chunk]
                answers = reader.read(part, batch_size=batch_size, dtype=dtype)
                lines = []
                for (q, pid, _), a in zip(part, answers):
                    self.answers[self.key(q, pid)] = a
                    lines.append(
                        json.dumps(
                            {"key": self.key(q, pid), "text": a.text, "passage_id": pid, "score": a.score},
                            ensure_ascii=False,
                        )
                    )
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def best(self, question: str, passage_ids: Sequence[str]) -> Answer | None:
        """The highest-scoring cached answer over the passages (None when there are none)."""
        found = [self.answers[self.key(question, pid)] for pid in passage_ids]
        return max(found, key=lambda a: a.score) if found else None


def answer_queries(
    cache: ReadCache,
    reader: Reader,
    queries: Sequence[Query],
    run: dict[str, list[tuple[str, float]]],
    passages: dict[str, Passage],
    top_k: int,
    batch_size: int,
    dtype: str,
) -> dict[str, Answer | None]:
    """Each query's answer from its top-k passages of `run`."""
    top = {q.id: [pid for pid, _ in run.get(q.id, [])[:top_k]] for q in queries}
    pairs = [(q.text, pid, passages[pid].text) for q in queries for pid in top[q.id]]
    cache.read_missing(reader, pairs, batch_size, dtype)
    return {q.id: cache.best(q.text, top[q.id]) for q in queries}


def qa_scores(
    queries: Sequence[Query], answers: dict[str, Answer | None], answer_language: str = "en"
) -> dict[str, dict[str, float]]:
    """Per-query EM and F1 (0..1) under MLQA's normalisation for `answer_language`."""
    golds = {q.id: list(q.answers) for q in queries}
    preds = {qid: a.text for qid, a in answers.items() if a is not None}
    scores = per_question(golds, preds, answer_language)
    return {"EM": {k: v[0] for k, v in scores.items()}, "F1": {k: v[1] for k, v in scores.items()}}
