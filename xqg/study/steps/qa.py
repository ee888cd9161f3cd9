"""Step 06 (`06_qa`): end-to-end QA over the retrieved English passages, with and without xQG.

The reader (trained here on the training benchmark, or any Hugging Face QA model by name or
path) reads each test question's top-k passages and answers with the best span across them;
MLQA's EM and F1 score it with the answer language of the contexts (English). The reader on the
gold passage alone is the upper bound: the gap to it is what retrieval loses. Reads are cached
(`xqg.study.reading.ReadCache`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from xqg.data.schema import Query
from xqg.io import read_json, write_csv, write_json
from xqg.models.device import resolve_device
from xqg.qa.reader import Reader
from xqg.study.checks import check_before_work
from xqg.study.config import Amount, Count, Dtype, EncodingConfig, Rate, Training, arg
from xqg.study.encoding import EmbeddingCache
from xqg.study.named_models import OFFLINE_E5, TINY_ENCODERS, load_encoder
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.reading import answer_queries, load_reader, open_reads, qa_scores
from xqg.study.systems import GOLD, evaluation_systems, tidy
from xqg.study.workspace import Workspace
from xqg.training.reader import ReaderTrainingArgs, qa_examples, train_reader


@dataclass(frozen=True, kw_only=True)
class Config(EncodingConfig):
    """Parameters of step 06."""

    STEP = "06_qa"
    seed: int = arg("seed of the reader's initialisation and batches")
    encoder: str = arg("the retriever (as in step 05)")
    eval_benchmark: str = arg("benchmark name written into the results")
    n_queries: Count = arg("generated queries per language used by xQG")
    unseen_languages: list[str] = arg("RQ1: QA for the seen-only generator's systems too")
    base_training: Training = arg("how the encoder as loaded was trained")
    reader_model: str = arg("encoder for a fresh span head, or a Hugging Face QA model name/path")
    reader_steps: Amount = arg("reader training steps, 0 to use a QA model as it is")
    reader_batch_size: Count = arg("training examples per step")
    reader_lr: Rate = arg("AdamW learning rate")
    reader_layers: Amount = arg("keep only the encoder's lowest layers (0 for all)")
    reader_freeze_layers: Amount = arg(
        "training keeps the embeddings and this many lowest encoder layers fixed (0: none)", default=0
    )
    reader_max_length: Count = arg("tokens per read (question + passage window)")
    reader_dtype: Dtype = arg("float32 or bfloat16 (CPU autocast) for training and reading")
    qa_top_k: Count = arg("passages the reader reads per question")
    read_batch_size: Count = arg("(question, passage) pairs per forward pass")


# the parameters the trained reader depends on
READER_PARAMS = (
    "seed",
    "reader_model",
    "reader_steps",
    "reader_batch_size",
    "reader_lr",
    "reader_layers",
    "reader_freeze_layers",
    "reader_max_length",
    "reader_dtype",
)


def build_reader(ws: Workspace, config: Config, folder: Path | None = None) -> dict:
    """Train the reader (once; a finished one is reused) and return its training record.

    `reader_model` is an encoder known to the study (e5-small-offline, tiny-*) that gets a fresh
    span head, or a Hugging Face QA model by name or path, fine-tuned for `reader_steps` (0: used
    as is). Training resumes from its last tenth after a kill (a state file in the reader's
    folder, which the recipe claims, so other parameters or code start afresh). `folder` (default:
    the workspace's reader folder) holds it, as ``final`` and ``training.json``."""
    c = config
    folder = folder or ws.reader_dir
    checkpoint, record = folder / ws.reader_checkpoint.name, folder / ws.reader_record.name
    state = folder / "training_state.pt"
    inputs = {"data": key_of(ws.data, "01_data")}
    claim(folder, Recipe(code_version(__name__), c.params(*READER_PARAMS), inputs))
    if checkpoint.exists() and record.exists():
        return read_json(record)
    torch.manual_seed(c.seed)  # the fresh span head is drawn from torch's global generator
    if c.reader_model == OFFLINE_E5 or c.reader_model in TINY_ENCODERS:
        enc = load_encoder(c.reader_model, ws, c.device)
        reader = Reader.from_encoder(
            enc.model, enc.tokenizer, keep_layers=c.reader_layers, max_length=c.reader_max_length
        )
    else:
        reader = Reader.from_pretrained(c.reader_model, max_length=c.reader_max_length)
    reader.to(resolve_device(c.device))
    examples = qa_examples(ws.queries("reader"), ws.passages(ws.reader_collection))
    history = []
    if c.reader_steps > 0:
        args = ReaderTrainingArgs(
            c.reader_steps,
            c.reader_batch_size,
            c.reader_lr,
            dtype=c.reader_dtype,
            seed=c.seed,
            freeze_layers=c.reader_freeze_layers,
        )
        history = train_reader(reader, examples, args, state)
    reader.save(checkpoint)
    info = {
        "model": c.reader_model,
        "steps": c.reader_steps,
        "examples": len(examples),
        "layers": reader.model.config.num_hidden_layers,
        "history": history,
    }
    write_json(record, info)
    state.unlink(missing_ok=True)
    return info


def scored_questions(ws: Workspace) -> list[Query]:
    """The test questions QA scores: those with answers."""
    return [q for q in ws.queries("eval") if q.answers]


def gold_run(questions: Sequence[Query]) -> dict[str, list[tuple[str, float]]]:
    """The gold-passage upper bound's 'retrieval': each question's gold passage alone."""
    return {q.id: [(q.gold_passage, 1.0)] for q in questions if q.gold_passage}


def run(workspace: Workspace, config: Config) -> dict:
    """Train (or reuse) the reader, then EM/F1 of every test system of step 05 and of the
    gold-passage upper bound on the test queries; writes metrics_qa.csv, per_query_qa.csv.gz and
    predictions_qa.csv.gz. Returns the reader's training record and counts."""
    check_before_work(workspace, config)
    c, ws = config, workspace
    training = build_reader(ws, c)
    cache = EmbeddingCache.for_step(ws, c)
    test = scored_questions(ws)
    reader = load_reader(ws, c.reader_max_length, c.device)
    reads = open_reads(ws, c.reader_max_length, c.reader_dtype, c.read_batch_size)
    systems = [
        s
        for t in ws.trainings(c.base_training)
        for s in evaluation_systems(ws, c.encoder, t, c.n_queries, c.unseen_languages)
        if not s.xqg or s.n_queries == c.n_queries  # no n ablation for QA
    ]
    rows, per_query, preds = [], [], []
    gold = gold_run(test)
    for system in [GOLD, *systems]:
        run = gold if system == GOLD else cache.run(system, test, "test", k=c.qa_top_k)
        top_k = 1 if system == GOLD else c.qa_top_k
        answers = answer_queries(
            reads, reader, test, run, cache.collection, top_k, c.read_batch_size, c.reader_dtype
        )
        agg, pq = tidy(system, qa_scores(test, answers), test, c.eval_benchmark, "test")
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
    write_csv(pd.concat(rows, ignore_index=True), ws.result("metrics_qa.csv"))
    write_csv(pd.concat(per_query, ignore_index=True), ws.result("per_query_qa.csv.gz"))
    write_csv(pd.concat(preds, ignore_index=True), ws.result("predictions_qa.csv.gz"))
    return {
        "training": training,
        "systems": len(systems) + 1,
        "reads": len(reads.answers),
        "queries": len(test),
    }
