"""Step 06: end-to-end QA over the retrieved English passages, with and without xQG.

The reader (trained here on the training benchmark, or any Hugging Face QA model by name or path)
reads each test question's top-k passages and answers with the best span across them; MLQA's
EM and F1 score it with the answer language of the contexts (English). The reader on the gold
passage alone is the upper bound: the gap to it is what retrieval loses. Every read is cached by
(question text, passage id), so systems that retrieve the same passage for a question, and the
robustness step's clean queries, share the work; a killed run keeps the reads it finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xqg.data.schema import Query
from xqg.io import read_json, write_json
from xqg.metrics.qa import per_question
from xqg.reader import Answer, Reader
from xqg.study.artifacts import load_passages, load_queries
from xqg.study.models import TINY_ENCODERS, load_encoder
from xqg.study.retrieve_step import System, system_run, test_systems, tidy
from xqg.train_reader import ReaderTrainingArgs, qa_examples, train_reader

GOLD = System("gold passage", "oracle")  # the reader on the gold passage alone (upper bound)
QA_METRICS = ("EM", "F1")


def reader_dir(work: Path) -> Path:
    """Where step 06 keeps the reader and its reads."""
    return work / "models" / "reader"


def build_reader(
    work: Path,
    model: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    keep_layers: int,
    dtype: str,
    seed: int,
) -> dict:
    """Train the reader (once; a finished one is reused) and return its training record.

    `model` is an encoder known to the study (e5-small-offline, tiny-*) that gets a fresh span
    head, or a Hugging Face QA model by name or path, fine-tuned for `steps` (0: used as is)."""
    out = reader_dir(work) / "final"
    record = reader_dir(work) / "training.json"
    if out.exists() and record.exists():
        return read_json(record)
    if model == "e5-small-offline" or model in TINY_ENCODERS:
        enc = load_encoder(model, work)
        reader = Reader.from_encoder(enc.model, enc.tokenizer, keep_layers=keep_layers, max_length=max_length)
    else:
        reader = Reader.from_pretrained(model, max_length=max_length)
    data = work / "data"
    examples = qa_examples(
        load_queries(data / "train_queries.jsonl"), load_passages(data / "train_collection.jsonl")
    )
    history = []
    if steps > 0:
        args = ReaderTrainingArgs(steps, batch_size, learning_rate, dtype=dtype, seed=seed)
        history = train_reader(reader, examples, args)
    reader.save(out)
    reads = reader_dir(work) / "reads.jsonl"
    if reads.exists():
        reads.unlink()  # reads of an earlier reader
    info = {
        "model": model,
        "steps": steps,
        "examples": len(examples),
        "layers": reader.model.config.num_hidden_layers,
        "history": history,
    }
    write_json(record, info)
    return info


def load_reader(work: Path, max_length: int) -> Reader:
    """The reader step 06 trained."""
    return Reader.from_pretrained(reader_dir(work) / "final", max_length=max_length)


class ReadCache:
    """Answers of (question text, passage id) pairs, appended to a JSON Lines file as they come.

    A line cut short by a killed run is dropped on reading; any other malformed line is an error
    naming the file and line."""

    def __init__(self, path: Path):
        self.path = path
        self.answers: dict[str, Answer] = {}
        if path.exists():
            lines = path.read_text(encoding="utf-8").split("\n")
            for i, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    if i == len(lines) - 1:  # the torn last line of an interrupted write
                        break
                    raise ValueError(f"{path}:{i + 1}: malformed read record: {e}") from e
                self.answers[r["key"]] = Answer(r["text"], r["passage_id"], r["score"])

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
    passages: dict,
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


def run_qa_study(
    work: Path,
    results: Path,
    benchmark: str,
    encoder: str,
    n_queries: int,
    top_k: int,
    max_length: int,
    batch_size: int,
    dtype: str,
    unseen_languages: Sequence[str] = (),
    base_training: str = "zero-shot",
) -> dict:
    """EM/F1 of every test system of step 05 (and the gold-passage upper bound) on the test queries;
    writes metrics_qa.csv, per_query_qa.csv.gz and predictions_qa.csv.gz."""
    test = [q for q in load_queries(work / "data" / "eval_queries.jsonl") if q.answers]
    passages = load_passages(work / "data" / "collection.jsonl")
    reader = load_reader(work, max_length)
    cache = ReadCache(reader_dir(work) / "reads.jsonl")
    trainings = [base_training] + (
        ["fine-tuned"] if (work / "models" / "retriever" / "final").exists() else []
    )
    systems = [s for t in trainings for s in test_systems(work, encoder, t, n_queries, unseen_languages)]
    systems = [s for s in systems if not s.xqg or s.n_queries == n_queries]  # no n ablation for QA
    rows, per_query, preds = [], [], []
    gold_run = {q.id: [(q.gold_passage, 1.0)] for q in test if q.gold_passage}
    for system in [GOLD, *systems]:
        run = gold_run if system == GOLD else system_run(work, system, test, "test", k=top_k)
        answers = answer_queries(
            cache, reader, test, run, passages, 1 if system == GOLD else top_k, batch_size, dtype
        )
        agg, pq = tidy(system, qa_scores(test, answers), test, benchmark, "test")
        rows.append(agg)
        per_query.append(pq)
        preds.append(
            pd.DataFrame(
                [
                    {
                        "system": system.label,
                        "query_id": q.id,
                        "prediction": answers[q.id].text if answers[q.id] else "",
                        "passage_id": answers[q.id].passage_id if answers[q.id] else "",
                    }
                    for q in test
                ]
            )
        )
    results.mkdir(parents=True, exist_ok=True)
    metrics = pd.concat(rows, ignore_index=True)
    metrics.to_csv(results / "metrics_qa.csv", index=False)
    pd.concat(per_query, ignore_index=True).to_csv(results / "per_query_qa.csv.gz", index=False)
    pd.concat(preds, ignore_index=True).to_csv(results / "predictions_qa.csv.gz", index=False)
    return {"systems": len(systems) + 1, "reads": len(cache.answers), "queries": len(test)}
