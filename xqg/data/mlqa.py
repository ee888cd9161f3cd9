"""MLQA (Lewis et al., 2020): English contexts as the collection, questions in seven languages.

Files: ``MLQA_V1/{split}/{split}-context-en-question-{xx}.json``; the English-question file
``{split}-context-en-question-en.json`` is the monolingual reference. Answers are English
spans of the English context, so the answer language for EM/F1 is ``en``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xqg.data.schema import Benchmark, DataError, Passage, Query, passage_id
from xqg.data.squad import iter_squad
from xqg.languages import MLQA_LANGUAGES, normalise_code
from xqg.paths import data_dir

SPLITS = ("dev", "test")


def mlqa_file(root: Path, split: str, context_lang: str, question_lang: str) -> Path:
    """Path of one MLQA file in the official layout."""
    name = f"{split}-context-{context_lang}-question-{question_lang}.json"
    return root / "mlqa" / "MLQA_V1" / split / name


def load_mlqa(
    split: str = "dev",
    languages: Sequence[str] = MLQA_LANGUAGES,
    root: str | Path | None = None,
) -> Benchmark:
    """Load MLQA with English contexts as passages and questions in `languages`."""
    if split not in SPLITS:
        raise ValueError(f"MLQA split {split!r} unknown; expected one of {SPLITS}")
    root = Path(root) if root is not None else data_dir()
    passages: dict[str, Passage] = {}
    queries: list[Query] = []
    for lang in languages:
        lang = normalise_code(lang, source="MLQA languages")
        if lang not in MLQA_LANGUAGES:
            raise ValueError(f"MLQA has no language {lang!r}; it has {', '.join(MLQA_LANGUAGES)}")
        path = mlqa_file(root, split, "en", lang)
        for rec in iter_squad(path):
            pid = passage_id("mlqa", rec.title, rec.context)
            passages.setdefault(pid, Passage(pid, rec.title, rec.context))
            queries.append(
                Query(
                    id=f"{rec.qid}-{lang}",
                    qid=rec.qid,
                    language=lang,
                    text=rec.question,
                    answers=rec.answers,
                    gold_passage=pid,
                    article=rec.title,
                )
            )
    bench = Benchmark("mlqa", split, passages, queries)
    bench.validate(f"MLQA {split} under {root}")
    return bench


def check_answer_spans(bench: Benchmark, path: str | Path) -> None:
    """Raise if a gold answer is not a substring of its gold passage (a corrupt file)."""
    for q in bench.queries:
        text = bench.passages[q.gold_passage].text
        if not any(a in text for a in q.answers):
            raise DataError(f"{path}: answers of question {q.qid} not found in its context")
