"""XQuAD (Artetxe et al., 2020): 240 SQuAD paragraphs translated into 11 languages.

For cross-lingual retrieval the English paragraphs form the collection; a question in
language xx is joined on its id to the English paragraph and the English answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xqg.data.schema import Benchmark, DataError, Passage, Query, passage_id
from xqg.data.squad import iter_squad
from xqg.languages import XQUAD_LANGUAGES, normalise_code
from xqg.paths import data_dir


def xquad_file(root: Path, lang: str) -> Path:
    """Path of one XQuAD file in the official layout."""
    return root / "xquad" / f"xquad.{lang}.json"


def load_xquad(
    languages: Sequence[str] = ("en", "ar", "de", "es", "hi", "vi", "zh"),
    root: str | Path | None = None,
) -> Benchmark:
    """Load XQuAD with English paragraphs as passages and questions in `languages`."""
    root = Path(root) if root is not None else data_dir()
    english = {}
    passages: dict[str, Passage] = {}
    for rec in iter_squad(xquad_file(root, "en")):
        pid = passage_id("xquad", rec.title, rec.context)
        passages.setdefault(pid, Passage(pid, rec.title, rec.context))
        english[rec.qid] = (pid, rec.answers, rec.title)
    queries: list[Query] = []
    for lang in languages:
        lang = normalise_code(lang, source="XQuAD languages")
        if lang not in XQUAD_LANGUAGES:
            raise ValueError(f"XQuAD has no language {lang!r}; it has {', '.join(XQUAD_LANGUAGES)}")
        path = xquad_file(root, lang)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: XQuAD {lang} is not there; run `make data` (a mirror may lack it)"
            )
        for rec in iter_squad(path):
            if rec.qid not in english:
                raise DataError(f"{path}: question id {rec.qid!r} has no English counterpart")
            pid, answers, title = english[rec.qid]
            queries.append(Query(f"{rec.qid}-{lang}", rec.qid, lang, rec.question, answers, pid, title))
    bench = Benchmark("xquad", "test", passages, queries)
    bench.validate(f"XQuAD under {root}")
    return bench
