"""SQuAD v1.1-format JSON (MLQA, XQuAD): validated parsing with errors naming file and field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xqg.data.schema import DataError
from xqg.io import read_json


@dataclass(frozen=True)
class SquadRecord:
    """One question with its paragraph, as a SQuAD file gives it."""

    qid: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    context: str
    title: str


def iter_squad(path: str | Path) -> Iterator[SquadRecord]:
    """Yield every question of a SQuAD-format file, checking the fields it relies on."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found (run `make data`?)")
    try:
        doc = read_json(path)
    except ValueError as e:
        raise DataError(str(e)) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: field 'data' missing or not a list")
    for a, article in enumerate(doc["data"]):
        where = f"{path}: data[{a}]"
        title = article.get("title")
        if not isinstance(title, str):
            raise DataError(f"{where}: field 'title' missing or not a string")
        if not isinstance(article.get("paragraphs"), list):
            raise DataError(f"{where}: field 'paragraphs' missing or not a list")
        for p, para in enumerate(article["paragraphs"]):
            pwhere = f"{where}.paragraphs[{p}]"
            context = para.get("context")
            if not isinstance(context, str) or not context.strip():
                raise DataError(f"{pwhere}: field 'context' missing or empty")
            if not isinstance(para.get("qas"), list):
                raise DataError(f"{pwhere}: field 'qas' missing or not a list")
            for i, qa in enumerate(para["qas"]):
                qwhere = f"{pwhere}.qas[{i}]"
                for key in ("id", "question", "answers"):
                    if key not in qa:
                        raise DataError(f"{qwhere}: field '{key}' missing")
                answers = qa["answers"]
                if not isinstance(answers, list) or not answers:
                    raise DataError(f"{qwhere}: field 'answers' empty or not a list")
                try:
                    texts = tuple(str(ans["text"]) for ans in answers)
                    starts = tuple(int(ans.get("answer_start", -1)) for ans in answers)
                except (KeyError, TypeError) as e:
                    raise DataError(f"{qwhere}: field 'answers[].text' missing") from e
                yield SquadRecord(
                    qid=str(qa["id"]),
                    question=str(qa["question"]),
                    answers=texts,
                    answer_starts=starts,
                    context=context,
                    title=title,
                )
