"""Loaders pinned to the real counts of the mirror's files; bad input gets named errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from xqg.data.fetch import CATALOGUE, fetch
from xqg.data.mlqa import check_answer_spans, load_mlqa
from xqg.data.schema import DataError
from xqg.data.splits import (
    drop_shared_articles,
    sample_queries,
    shared_articles,
    split_by_article,
)
from xqg.data.squad import iter_squad
from xqg.data.xor_tydi import iter_dpr_tsv, load_xor_queries
from xqg.data.xquad import load_xquad


def test_mlqa_dev_counts(mlqa):
    counts = Counter(q.language for q in mlqa.queries)
    assert counts == {"en": 1148, "de": 512, "es": 500, "ar": 517, "zh": 504, "vi": 511, "hi": 507}
    assert len(mlqa.passages) == 978
    check_answer_spans(mlqa, "MLQA dev")


def test_mlqa_parallel_questions_join_on_id(mlqa):
    by_qid = {}
    for q in mlqa.queries:
        by_qid.setdefault(q.qid, set()).add(q.gold_passage)
    assert all(len(p) == 1 for p in by_qid.values())  # every translation: the same context


def test_xquad_counts(raw_data):
    bench = load_xquad(root=raw_data)
    assert len(bench.passages) == 240
    assert Counter(q.language for q in bench.queries) == {
        lang: 1190 for lang in ("en", "ar", "de", "es", "hi", "vi", "zh")
    }
    assert len({q.article for q in bench.queries}) == 48


def test_xor_counts_and_language_quirk(raw_data):
    dev = load_xor_queries("dev", root=raw_data)
    assert len(dev) == 2110
    train = load_xor_queries("train", root=raw_data)
    assert len(train) == 15250
    assert Counter(q.language for q in train)["ar"] == 2574  # labelled " ar" in the file


def test_mini_split_has_no_shared_articles(raw_data, mlqa):
    xquad = load_xquad(root=raw_data)
    assert shared_articles(xquad.passages.values(), mlqa.passages.values()) == {
        "harvard university",
        "prime number",
    }
    train = drop_shared_articles(xquad, mlqa)
    assert shared_articles(train.passages.values(), mlqa.passages.values()) == set()
    assert (len(train.passages), len({q.article for q in train.queries})) == (230, 46)


def test_split_by_article_is_disjoint(mlqa):
    train, ev = split_by_article(mlqa, 0.5, seed=1)
    assert not set(train.passages) & set(ev.passages)
    assert len(train.queries) + len(ev.queries) == len(mlqa.queries)
    titles = {p.title for p in train.passages.values()} & {p.title for p in ev.passages.values()}
    assert titles == set()


def test_sample_queries_is_deterministic(mlqa):
    a = sample_queries(mlqa.queries, 10, seed=3)
    assert a == sample_queries(mlqa.queries, 10, seed=3)
    assert Counter(q.language for q in a) == {lang: 10 for lang in mlqa.languages()}


def _squad(tmp_path, doc):
    path = tmp_path / "bad.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_malformed_json_names_file(tmp_path):
    path = _squad(tmp_path, '{"data": [')
    with pytest.raises(DataError, match="bad.json"):
        list(iter_squad(path))


def test_missing_answers_names_field(tmp_path):
    doc = {"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q"}]}]}]}
    with pytest.raises(DataError, match=r"bad.json: data\[0\].paragraphs\[0\].qas\[0\]: field 'answers'"):
        list(iter_squad(_squad(tmp_path, doc)))


def test_unknown_language_is_named(tmp_path, raw_data):
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        load_mlqa(languages=["xx"], root=raw_data)
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "1", "question": "q", "answers": ["a"], "lang": "klingon"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:1: field 'lang'"):
        load_xor_queries(path=path)


def test_empty_collection_is_refused(tmp_path):
    (tmp_path / "xquad").mkdir()
    (tmp_path / "xquad" / "xquad.en.json").write_text('{"data": []}')
    with pytest.raises(DataError, match="empty passage collection"):
        load_xquad(languages=["en"], root=tmp_path)


def test_dpr_tsv_streaming(tmp_path):
    path = tmp_path / "psgs.tsv"
    path.write_text('id\ttext\ttitle\n1\t"Aaron is a prophet"\tAaron\n2\tA "quoted" word\tB\n')
    got = list(iter_dpr_tsv(path))
    assert [(p.id, p.title) for p in got] == [("1", "Aaron"), ("2", "B")]
    assert got[0].text == "Aaron is a prophet"
    path.write_text("id\ttext\ttitle\n1\tonly two\n")
    with pytest.raises(DataError, match="psgs.tsv:2: expected 3 fields"):
        list(iter_dpr_tsv(path))


def test_a_failed_fetch_writes_no_manifest_for_make_to_trust(tmp_path, raw_data):
    """Make waits for MANIFEST.json: after a failure it must not exist, or the next `make
    reproduce` would skip fetching; the files verified so far are remembered apart."""
    mirror = tmp_path / "mirror"
    good, bad = CATALOGUE["xor-tydi"][:2]
    for spec in (good, bad):
        (mirror / spec.rel).parent.mkdir(parents=True, exist_ok=True)
    (mirror / good.rel).write_text((raw_data / good.rel).read_text())
    (mirror / bad.rel).write_text((raw_data / bad.rel).read_text()[:100])  # torn
    with pytest.raises(DataError):
        fetch(["xor-tydi"], tmp_path / "dest", mirror)
    assert not (tmp_path / "dest" / "MANIFEST.json").exists()
    partial = json.loads((tmp_path / "dest" / "MANIFEST.partial.json").read_text())
    assert set(partial) == {good.rel}
    (mirror / bad.rel).write_text((raw_data / bad.rel).read_text())
    manifest = fetch(["xor-tydi"], tmp_path / "dest", mirror)
    assert json.loads((tmp_path / "dest" / "MANIFEST.json").read_text()) == manifest
    assert set(manifest) == {s.rel for s in CATALOGUE["xor-tydi"]}
    assert not (tmp_path / "dest" / "MANIFEST.partial.json").exists()


def test_fetch_from_mirror_detects_truncation(tmp_path, raw_data):
    mirror = tmp_path / "mirror"
    spec = CATALOGUE["xor-tydi"][0]
    (mirror / spec.rel).parent.mkdir(parents=True)
    lines = (raw_data / spec.rel).read_text().splitlines(keepends=True)
    (mirror / spec.rel).write_text("".join(lines[:-1]) + lines[-1][:20])  # cut mid-record
    with pytest.raises(DataError, match="xor_dev_retrieve_eng_span_v1_1.jsonl"):
        fetch(["xor-tydi"], tmp_path / "dest", mirror)
    assert not (tmp_path / "dest" / spec.rel).exists()  # nothing half-written left in place
    (mirror / spec.rel).write_text("".join(lines))
    (mirror / CATALOGUE["xor-tydi"][1].rel).write_text((raw_data / CATALOGUE["xor-tydi"][1].rel).read_text())
    manifest = fetch(["xor-tydi"], tmp_path / "dest", mirror)
    assert set(manifest) == {s.rel for s in CATALOGUE["xor-tydi"]}


def test_the_wiki_dataset_is_xor_retrieves_collection():
    """XOR-Retrieve searches Wikipedia 2019-02-01 (~18.2M passages); DPR's psgs_w100 is another
    dump, whose ids the authors' released queries do not follow."""
    (wiki,) = CATALOGUE["wiki"]
    assert wiki.url.endswith("/xorqa/XORQA_site/data/models/enwiki_20190201_w100.tsv")
    assert "psgs_w100" not in Path("params/paper/01_data.yml").read_text()
