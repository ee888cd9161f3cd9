"""XOR-TyDi XOR-Retrieve (Asai et al., 2021): questions in 7 languages, English Wikipedia.

Questions: ``xor_{train,dev}_retrieve_eng_span*.jsonl`` with fields id, question, answers,
lang. The collection is DPR's TSV (``id``, ``text``, ``title``) of the 2019-02-01 English
Wikipedia in 100-word passages (about 18.2M), streamed rather than loaded.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xqg.data.schema import Benchmark, DataError, Passage, Query, passage_id
from xqg.io import iter_jsonl
from xqg.languages import XOR_LANGUAGES, normalise_code
from xqg.paths import data_dir

XOR_FILES = {
    "train": "xor_train_retrieve_eng_span.jsonl",
    "dev": "xor_dev_retrieve_eng_span_v1_1.jsonl",
}


def xor_file(root: Path, split: str) -> Path:
    """Path of the XOR-Retrieve questions of one split."""
    if split not in XOR_FILES:
        raise ValueError(f"XOR-Retrieve split {split!r} unknown; expected one of {tuple(XOR_FILES)}")
    return root / "xor-tydi" / XOR_FILES[split]


def load_xor_queries(
    split: str = "dev", path: str | Path | None = None, root: str | Path | None = None
) -> list[Query]:
    """Load XOR-Retrieve questions with normalised language codes."""
    path = Path(path) if path is not None else xor_file(Path(root or data_dir()), split)
    queries = []
    for lineno, rec in enumerate(iter_jsonl(path), 1):
        for key in ("id", "question", "answers", "lang"):
            if key not in rec:
                raise DataError(f"{path}:{lineno}: field '{key}' missing")
        if not isinstance(rec["answers"], list):
            raise DataError(f"{path}:{lineno}: field 'answers' is not a list")
        lang = normalise_code(rec["lang"], source=f"{path}:{lineno}: field 'lang'")
        if lang not in XOR_LANGUAGES:
            raise DataError(f"{path}:{lineno}: field 'lang' {lang!r} is not an XOR-TyDi language")
        queries.append(
            Query(
                id=str(rec["id"]),
                qid=str(rec["id"]),
                language=lang,
                text=str(rec["question"]),
                answers=tuple(str(a) for a in rec["answers"]),
            )
        )
    return queries


def iter_dpr_tsv(path: str | Path) -> Iterator[Passage]:
    """Stream passages from DPR's TSV (header ``id text title``), naming bad rows."""
    path = Path(path)
    csv.field_size_limit(sys.maxsize)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["id", "text", "title"]:
            raise DataError(f"{path}: header must be 'id<TAB>text<TAB>title', got {header!r}")
        for lineno, row in enumerate(reader, 2):
            if len(row) < 3:
                raise DataError(f"{path}:{lineno}: expected 3 fields (id, text, title), got {len(row)}")
            yield Passage(id=row[0], title=row[2], text=row[1])


def iter_augmented_corpus(path: str | Path) -> Iterator[tuple[Passage, dict[str, list[str]]]]:
    """Stream the authors' released corpus with generated queries (``ielab/xor-tydi-xqg-augmented``
    exported to JSON Lines): rows ``{docid, title, text, generated_queries: {lang: [q0, ...]}}``.

    `path` is one JSON Lines file (``.gz`` too) or a folder of shards (``*.jsonl``, ``*.jsonl.gz``,
    read in name order, as the hub's exporter and `export_released_queries` write them)."""
    path = Path(path)
    files = released_shards(path) if path.is_dir() else [path]
    for file in files:
        for lineno, rec in enumerate(iter_jsonl(file), 1):
            for key in ("docid", "text"):
                if key not in rec:
                    raise DataError(f"{file}:{lineno}: field '{key}' missing")
            generated = rec.get("generated_queries") or {}
            if not isinstance(generated, dict) or any(not isinstance(v, list) for v in generated.values()):
                raise DataError(f"{file}:{lineno}: field 'generated_queries' must map languages to lists")
            yield Passage(str(rec["docid"]), rec.get("title") or "", rec["text"]), generated


def released_shards(folder: Path) -> list[Path]:
    """The JSON Lines shards of a folder, in name order; an error when there are none."""
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    if not files:
        raise DataError(f"{folder}: no JSON Lines shards (*.jsonl, *.jsonl.gz)")
    return files


@dataclass(frozen=True)
class TrainGroup:
    """A training query's positive and negative passage ids (Tevatron's group)."""

    positives: tuple[str, ...]
    negatives: tuple[str, ...]


def load_tevatron_train(
    path: str | Path, languages: dict[str, str]
) -> tuple[dict[str, Passage], list[Query], dict[str, TrainGroup]]:
    """Tevatron's ``xor-tydi`` training file (JSON Lines: query_id, query, answers,
    positive_passages and negative_passages [{docid, title, text}]); `languages` maps query ids to
    languages (from the XOR-Retrieve training file). Returns every passage, the queries (gold: the
    first positive) and each query's group of positive and negative ids; a query without a
    positive is skipped, as Tevatron cannot train on it."""
    passages: dict[str, Passage] = {}
    queries, groups = [], {}
    for lineno, rec in enumerate(iter_jsonl(path), 1):
        for key in ("query_id", "query", "positive_passages"):
            if key not in rec:
                raise DataError(f"{path}:{lineno}: field '{key}' missing")
        if not rec["positive_passages"]:
            continue
        ids = {}
        for field in ("positive_passages", "negative_passages"):
            ids[field] = []
            for i, p in enumerate(rec.get(field) or []):
                if "docid" not in p or "text" not in p:
                    raise DataError(f"{path}:{lineno}: {field}[{i}] needs 'docid' and 'text'")
                passages.setdefault(str(p["docid"]), Passage(str(p["docid"]), p.get("title", ""), p["text"]))
                ids[field].append(str(p["docid"]))
        qid = str(rec["query_id"])
        if qid not in languages:
            raise DataError(f"{path}:{lineno}: query {qid} not in the XOR-Retrieve training file")
        gold = ids["positive_passages"][0]
        query = Query(
            f"{qid}-{languages[qid]}",
            qid,
            languages[qid],
            rec["query"],
            tuple(rec.get("answers") or ()),
            gold,
            passages[gold].title,
        )
        queries.append(query)
        groups[query.id] = TrainGroup(tuple(ids["positive_passages"]), tuple(ids["negative_passages"]))
    return passages, queries, groups


def load_xor_gold_paragraphs(path: str | Path, seen: set[str] | None = None) -> Benchmark:
    """XOR-TyDi's gold paragraphs in SQuAD form (``tydi_xor_gp/gp_squad_{train,dev}_data.json``),
    read as DSI-QG's ``process_xorqa.py`` reads them to train its query generator: per item, the
    first paragraph's context (newlines to spaces) and its first question with ``lang`` and ``id``;
    the title cut as DSI-QG cuts it (``title[6:title.find('_parentSection')]``); a question id
    already read (in `seen`, which is updated: pass the train file's set to the dev file) is
    skipped. Passages are content-addressed (``xor-gp-...``), one per distinct paragraph."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a SQuAD-form file with 'data' ({e})") from None
    seen = set() if seen is None else seen
    passages: dict[str, Passage] = {}
    queries: list[Query] = []
    for i, item in enumerate(items):
        try:
            title = item["title"].strip()
            paragraph = item["paragraphs"][0]
            qa = paragraph["qas"][0]
            context, question, lang, qid = paragraph["context"], qa["question"], qa["lang"], str(qa["id"])
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise DataError(
                f"{path}: data[{i}] needs title and paragraphs[0].qas[0] {{question, lang, id}} ({e})"
            ) from None
        if qid in seen:
            continue
        seen.add(qid)
        title = title[6 : title.find("_parentSection")]
        text = context.strip().replace("\n", " ")
        pid = passage_id("xor-gp", title, text)
        passages.setdefault(pid, Passage(pid, title, text))
        language = normalise_code(lang.strip(), source=f"{path}: data[{i}] lang")
        answers = tuple(a["text"] for a in qa.get("answers") or () if isinstance(a, dict) and "text" in a)
        queries.append(Query(f"{qid}-{language}", qid, language, question.strip(), answers, pid, title))
    return Benchmark("xor-tydi-gold-paragraphs", Path(path).stem, passages, queries)
