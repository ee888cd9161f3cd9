"""SQuAD v1.1 dev (English) and SQuAD-es dev (its Spanish questions) as cross-lingual training data.

SQuAD-es's machine-translated Spanish questions keep SQuAD's question ids, so each joins to its
English paragraph and English answers: (English passage, Spanish question) pairs like XQuAD's.
XQuAD's 240 paragraphs are SQuAD dev paragraphs (so are the ids of 732 SQuAD-es questions), and
SQuAD dev shares articles with MLQA dev: callers drop shared articles by title
(`xqg.data.splits.drop_shared_articles`) before training on either.
"""

from __future__ import annotations

from pathlib import Path

from xqg.data.schema import Benchmark, DataError, Passage, Query, passage_id
from xqg.data.squad import iter_squad
from xqg.paths import data_dir

SQUAD_DEV = "squad/dev-v1.1.reconstructed.json"
SQUAD_ES_DEV = "squad-es/dev-v1.1-es_small.json"


def load_squad_dev(root: str | Path | None = None) -> Benchmark:
    """SQuAD v1.1 dev: English paragraphs (ids as XQuAD's, so the two collections agree) and
    English questions."""
    root = Path(root) if root is not None else data_dir()
    passages: dict[str, Passage] = {}
    queries = []
    for rec in iter_squad(root / SQUAD_DEV):
        pid = passage_id("xquad", rec.title, rec.context)  # XQuAD's scheme: a shared paragraph is one id
        passages.setdefault(pid, Passage(pid, rec.title, rec.context))
        queries.append(Query(f"{rec.qid}-en", rec.qid, "en", rec.question, rec.answers, pid, rec.title))
    bench = Benchmark("squad", "dev", passages, queries)
    bench.validate(str(root / SQUAD_DEV))
    return bench


def load_squad_es_dev(english: Benchmark, root: str | Path | None = None) -> Benchmark:
    """SQuAD-es dev's Spanish questions joined on id to `english` (`load_squad_dev`): English
    paragraph, English answers, Spanish question."""
    root = Path(root) if root is not None else data_dir()
    path = root / SQUAD_ES_DEV
    by_qid = {q.qid: q for q in english.queries}
    queries = []
    for rec in iter_squad(path):
        en = by_qid.get(rec.qid)
        if en is None:
            raise DataError(f"{path}: question id {rec.qid!r} is not a SQuAD v1.1 dev id")
        queries.append(
            Query(f"{rec.qid}-es", rec.qid, "es", rec.question, en.answers, en.gold_passage, en.article)
        )
    used = {q.gold_passage for q in queries}
    return Benchmark("squad-es", "dev", {k: v for k, v in english.passages.items() if k in used}, queries)
