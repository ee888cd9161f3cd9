"""The paper profile's path without a GPU: sharded generation that merges to one run's bytes and
reruns only a failed shard, the importers of the published formats (Tevatron's XOR-TyDi training
file, the authors' released query shards, DPR's TSV), device resolution, and the `paper-dryrun`
profile run end to end through papermill (two submitit shard jobs at once, two torchrun
training processes)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess

import pytest
import torch

from xqg.data.schema import DataError, Passage
from xqg.data.xor_tydi import iter_augmented_corpus, load_tevatron_train, load_xor_gold_paragraphs
from xqg.generation.run import import_released_queries, shard_file
from xqg.models.device import resolve_device
from xqg.study.provenance import Recipe
from xqg.study.steps import generate
from xqg.study.workspace import Workspace, save_passages


class CountingGenerator:
    """Questions that name passage, language and seed; fails once on `fail_on` if given."""

    def __init__(self, fail_on: str | None = None):
        self.fail_on, self.calls = fail_on, []

    def generate(self, passages, language, n, *, top_k, max_new_tokens, seed):
        self.calls += [p.id for p in passages]
        if self.fail_on in {p.id for p in passages}:
            self.fail_on = None
            raise RuntimeError("killed")
        return [[f"{language} {p.id} {seed} {i}" for i in range(n)] for p in passages]


def _sharded(tmp_path, monkeypatch, generator, shards: int, name: str) -> bytes:
    ws = Workspace("smoke", work=tmp_path / "work", results=tmp_path / "r", figures=tmp_path / "f")
    if not ws.collection.exists():
        save_passages(ws.collection, {f"p{i:02d}": Passage(f"p{i:02d}", "T", f"text {i}") for i in range(20)})
    config = generate.Config.load("smoke", {"generation_shards": shards, "generation_batch_size": 3})
    monkeypatch.setattr(generate, "load_trained_generator", lambda *args: generator)
    out = tmp_path / f"{name}.jsonl"
    generate._sample(ws, config, "full", ws.collection, 2, out, Recipe("code", {"n": 2}))
    return out.read_bytes()


def test_shards_merge_to_the_bytes_of_one_run(tmp_path, monkeypatch):
    one = _sharded(tmp_path, monkeypatch, CountingGenerator(), 1, "one")
    three = _sharded(tmp_path, monkeypatch, CountingGenerator(), 3, "three")
    assert three == one
    lines = [json.loads(line) for line in one.decode().splitlines()]
    assert len(lines) == 20 * 2 * 2  # passages x languages (smoke: de, zh) x n


def test_a_failed_shard_reruns_alone(tmp_path, monkeypatch):
    """Shard 1 of 3 dies in its second batch; the rerun skips shard 0 (its file untouched), finishes
    shard 1 from its last complete unit, runs shard 2; the merge equals an uninterrupted run."""
    expected = _sharded(tmp_path, monkeypatch, CountingGenerator(), 1, "expected")
    # 20 passages in batches of 3 = 7 batches; 3 shards hold batches 0-2, 3-4, 5-6
    failing = CountingGenerator(fail_on="p12")  # batch 4: shard 1's second batch
    with pytest.raises(RuntimeError, match="killed"):
        _sharded(tmp_path, monkeypatch, failing, 3, "run")
    first = shard_file(tmp_path / "run.jsonl", 0, 3)
    assert (first.parent / (first.name + ".done")).exists()
    assert not (tmp_path / "run.jsonl").exists()  # no half-written output
    before = (first.read_bytes(), first.stat().st_mtime_ns)
    rerun = CountingGenerator()
    assert _sharded(tmp_path, monkeypatch, rerun, 3, "run") == expected
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    assert not {f"p{i:02d}" for i in range(9)} & set(rerun.calls)  # shard 0: never asked again
    assert not {"p09", "p10", "p11"} & set(rerun.calls)  # shard 1's finished batch: not redone


TEVATRON_ROW = {
    "query_id": "-1004093443844781427",
    "query": "Mikä on Suomen suurin järvi?",
    "answers": ["Saimaa"],
    "positive_passages": [
        {"docid": "1530", "title": "Saimaa", "text": "Saimaa is the largest lake in Finland."},
        {"docid": "1531", "title": "Saimaa", "text": "Saimaa lies in south-eastern Finland."},
    ],
    "negative_passages": [
        {"docid": "7", "title": "Päijänne", "text": "Päijänne is the second largest lake."},
        {"docid": "8", "title": "Inari", "text": "Lake Inari is in Lapland."},
        {"docid": "9", "title": "Oulujärvi", "text": "Oulujärvi is in Kainuu."},
    ],
}


def test_tevatron_training_file_keeps_every_positive_and_negative(tmp_path):
    path = tmp_path / "train.jsonl"
    empty = {**TEVATRON_ROW, "query_id": "2", "positive_passages": []}  # Tevatron cannot train on it
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in (TEVATRON_ROW, empty)) + "\n")
    passages, queries, groups = load_tevatron_train(path, {TEVATRON_ROW["query_id"]: "fi", "2": "fi"})
    assert sorted(passages) == ["1530", "1531", "7", "8", "9"]
    (query,) = queries
    assert (query.id, query.language, query.gold_passage, query.answers) == (
        "-1004093443844781427-fi",
        "fi",
        "1530",
        ("Saimaa",),
    )
    assert groups[query.id].positives == ("1530", "1531") and groups[query.id].negatives == ("7", "8", "9")
    broken = {**TEVATRON_ROW, "negative_passages": [{"title": "no id", "text": "x"}]}
    path.write_text(json.dumps(broken) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:1: negative_passages\[0\] needs 'docid'"):
        load_tevatron_train(path, {TEVATRON_ROW["query_id"]: "fi"})


def _gold_item(qid: str, lang: str, title: str, context: str) -> dict:
    qa = {
        "question": f" question {qid} ",
        "lang": lang,
        "id": qid,
        "answers": [{"text": "x", "answer_start": 0}],
    }
    return {"title": title, "paragraphs": [{"context": context, "qas": [qa]}]}


def test_xor_gold_paragraphs_read_as_dsi_qg_reads_them(tmp_path):
    """DSI-QG's process_xorqa.py: first paragraph and question per item, newlines to spaces, the
    title cut at [6:find('_parentSection')], a question id seen before (also in train) dropped."""
    train, dev = tmp_path / "gp_squad_train_data.json", tmp_path / "gp_squad_dev_data.json"
    train.write_text(json.dumps({"data": [
        _gold_item("1", "fi", "title:Saimaa_parentSection:Geography", " Saimaa is\na lake. "),
        _gold_item("2", "ja", "title:Saimaa_parentSection:Geography", "Saimaa is a lake."),
        _gold_item("1", "fi", "title:Saimaa_parentSection:Geography", "a duplicate id"),
    ]}))  # fmt: skip
    dev.write_text(json.dumps({"data": [
        _gold_item("2", "ja", "title:Oulu_parentSection:x", "in train already"),
        _gold_item("3", " ar", "title:Oulu_parentSection:x", "Oulu is a city."),
    ]}))  # fmt: skip
    seen: set[str] = set()
    first = load_xor_gold_paragraphs(train, seen)
    assert [(q.id, q.text) for q in first.queries] == [("1-fi", "question 1"), ("2-ja", "question 2")]
    assert len(first.passages) == 1  # one paragraph, two questions
    (passage,) = first.passages.values()
    assert (passage.title, passage.text) == ("Saimaa", "Saimaa is a lake.")
    assert first.queries[0].gold_passage == passage.id and first.queries[0].answers == ("x",)
    second = load_xor_gold_paragraphs(dev, seen)
    assert [q.id for q in second.queries] == ["3-ar"] and seen == {"1", "2", "3"}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"data": [{"title": "title:A_parentSection", "paragraphs": []}]}))
    with pytest.raises(DataError, match=r"broken.json: data\[0\] needs title and paragraphs\[0\]"):
        load_xor_gold_paragraphs(broken)
    broken.write_text(json.dumps([1, 2]))
    with pytest.raises(DataError, match=r"broken.json: not a SQuAD-form file with 'data'"):
        load_xor_gold_paragraphs(broken)


def _released_row(docid: str, n: int) -> dict:
    return {
        "docid": docid,
        "title": "Saimaa",
        "text": "Saimaa is the largest lake in Finland.",
        "generated_queries": {
            "fi": [f"kysymys {docid} {i}" for i in range(n)],
            "ja": [f"質問 {i}" for i in range(n)],
        },
    }


def test_released_query_shards_import_in_order(tmp_path):
    shards = tmp_path / "xor-tydi-xqg-augmented"
    shards.mkdir()
    (shards / "corpus-00000.jsonl").write_text(json.dumps(_released_row("1", 5), ensure_ascii=False) + "\n")
    with gzip.open(shards / "corpus-00001.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(_released_row("2", 5), ensure_ascii=False) + "\n")
    (shards / "README.md").write_text("not a shard")
    rows = list(iter_augmented_corpus(shards))
    assert [p.id for p, _ in rows] == ["1", "2"] and rows[1][1]["fi"][4] == "kysymys 2 4"
    out = import_released_queries(shards, ["fi", "ja"], 2, tmp_path / "queries.jsonl")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["passage_id"], r["language"], r["sample"]) for r in lines] == [
        (pid, lang, i) for pid in ("1", "2") for lang in ("fi", "ja") for i in (0, 1)
    ]
    assert lines[0]["text"] == "kysymys 1 0"
    with pytest.raises(ValueError, match="passage 1 has 5 fi queries, fewer than n=6"):
        import_released_queries(shards, ["fi"], 6, tmp_path / "too-many.jsonl")
    (shards / "corpus-00002.jsonl").write_text(json.dumps({"docid": "3", "generated_queries": {}}) + "\n")
    with pytest.raises(DataError, match="corpus-00002.jsonl:1: field 'text' missing"):
        list(iter_augmented_corpus(shards))


def test_devices_resolve_and_refuse_what_is_not_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda:0")


@pytest.fixture(scope="module")
def dryrun(tmp_path_factory, raw_data):
    """`make reproduce PROFILE=paper-dryrun` (its tiny world rewritten when xqg/data/dryrun.py
    changed), every artefact in temporary folders."""
    from conftest import roots_env

    from xqg.paths import PROJECT_ROOT

    root = tmp_path_factory.mktemp("paper-dryrun")
    proc = subprocess.run(
        [
            "make",
            "reproduce",
            "PROFILE=paper-dryrun",
            f"WORK={root / 'work' / 'paper-dryrun'}",
            f"RUNS={root / 'runs' / 'paper-dryrun'}",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, **roots_env(root)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"make reproduce failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return root


def test_dryrun_generates_in_concurrent_shard_jobs(dryrun):
    shards = dryrun / "work" / "paper-dryrun" / "generated" / "queries.jsonl.shards"
    marks = [json.loads((shards / f"shard-{s:04d}-of-0002.jsonl.done").read_text()) for s in (0, 1)]
    assert marks[0]["pid"] != marks[1]["pid"]  # two processes ...
    assert max(m["started"] for m in marks) < min(m["finished"] for m in marks)  # ... at the same time
    merged = (dryrun / "work" / "paper-dryrun" / "generated" / "queries.jsonl").read_bytes()
    assert merged == b"".join((shards / f"shard-{s:04d}-of-0002.jsonl").read_bytes() for s in (0, 1))
    assert sum(m["lines"] for m in marks) == 200 * 7 * 5  # passages x languages x n_queries


def test_dryrun_trains_the_generator_on_xor_gold_paragraph_pairs(dryrun):
    """DSI-QG's pairs: 80 training and 16 dev gold-paragraph questions (the dev file's copy of a
    training id dropped); step 02 selects its checkpoint on the dev pairs."""
    work = dryrun / "work" / "paper-dryrun"
    summary = json.loads((work / "data" / "summary.json").read_text())
    assert (summary["generator training triples"], summary["generator dev triples"]) == (80, 16)
    state = json.loads(
        max(
            (work / "models" / "generator" / "checkpoints").glob("checkpoint-*"),
            key=lambda p: int(p.name[11:]),
        )
        .joinpath("trainer_state.json")
        .read_text()
    )
    assert [e["step"] for e in state["log_history"] if "eval_loss" in e] == [3, 6]


def test_dryrun_trains_the_xdr_with_tevatron_groups_under_torchrun(dryrun):
    work = dryrun / "work" / "paper-dryrun"
    groups = [json.loads(line) for line in (work / "data" / "train_groups.jsonl").read_text().splitlines()]
    assert len(groups) == 96 and all(len(g["negatives"]) == 10 and len(g["positives"]) == 1 for g in groups)
    result = json.loads((work / "models" / "retriever" / "launch" / "result.json").read_text())
    assert result["processes"] == 2 and result["step"] == 4
    assert (work / "models" / "retriever" / "final" / "xqg_encoder.json").exists()


def test_dryrun_reports_the_papers_measures_for_every_language(dryrun):
    import pandas as pd

    metrics = pd.read_csv(dryrun / "results" / "paper-dryrun" / "metrics_retrieval.csv")
    test = metrics[(metrics["split"] == "test") & (metrics["perturbation"] == "none")]
    for metric in ("R@2kt", "R@5kt"):
        rows = test[test["metric"] == metric]
        assert set(rows["language"]) >= {"ar", "bn", "fi", "ja", "ko", "ru", "te"}
        assert set(rows["xqg"]) == {False, True}
        assert rows["value"].between(0, 100).all()


def test_hub_exports_round_trip_through_the_importers(tmp_path):
    """Rows as the hub streams them, exported, read back by the loaders the paper profiles use."""
    from xqg.data.hub_export import write_rows, write_shards

    train = tmp_path / "tevatron.jsonl"
    write_rows([TEVATRON_ROW], train, ("query_id", "query", "positive_passages", "negative_passages"))
    _, queries, groups = load_tevatron_train(train, {TEVATRON_ROW["query_id"]: "fi"})
    assert groups[queries[0].id].negatives == ("7", "8", "9")
    rows = [_released_row(str(i), 5) for i in range(5)]
    folder = tmp_path / "released"
    assert write_shards(rows, folder, 2, ("docid", "text", "generated_queries")) == 5
    assert sorted(p.name for p in folder.iterdir()) == [f"corpus-0000{i}.jsonl" for i in range(3)]
    assert [p.id for p, _ in iter_augmented_corpus(folder)] == ["0", "1", "2", "3", "4"]
    first = folder / "corpus-00000.jsonl"
    stamp = first.stat().st_mtime_ns
    assert write_shards(rows, folder, 2, ("docid",)) == 5 and first.stat().st_mtime_ns == stamp  # kept
    with pytest.raises(ValueError, match=r"row 1 of the source lacks \['negative_passages'\]"):
        write_rows(
            [{"query_id": "1", "query": "q", "positive_passages": []}],
            tmp_path / "bad.jsonl",
            ("query_id", "query", "positive_passages", "negative_passages"),
        )
    assert not (tmp_path / "bad.jsonl").exists()


def test_passage_rows_read_a_shard_from_disk_as_the_whole_collection_reads_it(tmp_path):
    from xqg.study.workspace import PassageRows, load_passages

    passages = {
        f"p{i}": Passage(f"p{i}", f"T{i}", f"text {i} \u2028 kept \u00e9" if i % 3 == 0 else f"text {i}")
        for i in range(50)
    }
    save_passages(tmp_path / "c.jsonl", passages)
    whole = list(load_passages(tmp_path / "c.jsonl").values())
    for chunk in (7, 1 << 24):  # line starts found across read chunks, and in one
        rows = PassageRows(tmp_path / "c.jsonl", chunk=chunk)
        assert len(rows) == 50 and rows[0] == whole[0] and rows[-1] == whole[-1] and rows[3] == passages["p3"]
        assert rows[10:20] == whole[10:20] and rows[45:99] == whole[45:] and rows[::7] == whole[::7]
    (tmp_path / "open.jsonl").write_bytes((tmp_path / "c.jsonl").read_bytes().rstrip(b"\n"))
    assert list(PassageRows(tmp_path / "open.jsonl")) == whole  # a last line without its newline
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert len(PassageRows(tmp_path / "empty.jsonl")) == 0
    with pytest.raises(IndexError, match=r"c.jsonl: row 50 of 50"):
        PassageRows(tmp_path / "c.jsonl")[50]
