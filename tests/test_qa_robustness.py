"""QA and robustness building blocks: training windows, the read cache, QA scores, generator
variants, perturbed query sets and the RQ tables, on hand-computed cases and the real data."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from xqg.data.perturb import load_dictd, write_dictd
from xqg.data.schema import Query
from xqg.qa.reader import Answer, QAExample
from xqg.study.generators import generator_variants
from xqg.study.reading import ReadCache, qa_scores
from xqg.study.research_questions import robustness_table, rq1_table
from xqg.study.steps.robustness import perturbed_queries
from xqg.training.reader import answer_window, qa_examples


def test_every_mlqa_answer_is_found_in_its_gold_passage(mlqa):
    en = [q for q in mlqa.queries if q.language == "en"]
    examples = qa_examples(en, mlqa.passages)
    assert len(examples) == len(en) == 1148
    assert all(e.context[e.answer_start :].startswith(e.answer) for e in examples)


def test_answer_window_keeps_the_answer_at_its_offset():
    context = " ".join(f"w{i:03d}" for i in range(300))  # 1,499 characters
    start = context.index("w250")
    ex = QAExample("q?", context, "w250 w251", start)
    for seed in range(20):
        cut = answer_window(ex, 200, random.Random(seed))
        assert cut.context[cut.answer_start :].startswith("w250 w251")
        assert len(cut.context) <= 210 and cut.context in context
        assert not cut.context.startswith(" ") and cut.context.split()[0].startswith("w")
    short = QAExample("q?", "Paris is in France.", "Paris", 0)
    assert answer_window(short, 200, random.Random(0)) == short


def test_qa_scores_by_hand():
    queries = [
        Query("a", "a", "en", "q", ("the Eiffel Tower",)),
        Query("b", "b", "en", "q", ("Paris", "City of Paris")),
        Query("c", "c", "en", "q", ("1889",)),
    ]
    answers = {"a": Answer("Eiffel Tower", "p", 1.0), "b": Answer("Paris France", "p", 1.0), "c": None}
    scores = qa_scores(queries, answers)
    assert scores["EM"] == {"a": 1.0, "b": 0.0, "c": 0.0}  # articles are dropped in English
    # "paris france" vs "paris": precision 1/2, recall 1 -> F1 2/3; vs "city of paris": 1/2, 1/3 -> 0.4
    assert scores["F1"]["b"] == pytest.approx(2 / 3)
    assert scores["F1"]["a"] == 1.0 and scores["F1"]["c"] == 0.0


class _CountingReader:
    def __init__(self):
        self.calls = 0

    def read(self, pairs, batch_size=32, dtype="float32"):
        self.calls += len(pairs)
        return [Answer(text[:5], pid, float(len(text))) for _, pid, text in pairs]


def test_read_cache_reads_each_pair_once_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "reads.jsonl"
    cache, reader = ReadCache(path), _CountingReader()
    pairs = [("q1", "p1", "Paris is nice"), ("q1", "p2", "Rome"), ("q2", "p1", "Paris is nice")]
    cache.read_missing(reader, pairs + pairs[:1], batch_size=2, dtype="float32")
    assert reader.calls == 3
    cache.read_missing(reader, pairs, batch_size=2, dtype="float32")
    assert reader.calls == 3  # nothing new to read
    assert cache.best("q1", ["p1", "p2"]) == Answer("Paris", "p1", 13.0)
    assert cache.best("q1", []) is None
    with open(path, "a") as f:
        f.write('{"key": "abc", "text": "To')  # a killed write
    again = ReadCache(path)
    assert again.answers == cache.answers
    # the torn line is cut before the next append, so later reads land on lines of their own
    again.read_missing(reader, [("q3", "p2", "Rome")], batch_size=2, dtype="float32")
    third = ReadCache(path)
    assert reader.calls == 4 and third.best("q3", ["p2"]) == Answer("Rome", "p2", 4.0)
    assert len(third.answers) == 4
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"reads.jsonl:2: malformed JSON line"):
        ReadCache(path)


def test_generator_variants_name_bad_language_splits():
    assert generator_variants(["ar", "de", "hi"], ["ar", "hi"]) == {
        "full": ["ar", "de", "hi"],
        "seen-only": ["de"],
    }
    assert generator_variants(["ar", "de"], []) == {"full": ["ar", "de"]}
    with pytest.raises(ValueError, match=r"unseen_languages \['fr'\] are not among"):
        generator_variants(["ar", "de"], ["fr"])
    with pytest.raises(ValueError, match="keep at least one seen"):
        generator_variants(["ar", "de"], ["ar", "de"])


def test_dictd_round_trip_with_long_bodies(tmp_path):
    entries = {f"Wört{i}": f"word {i}" + "x" * i for i in range(200)}  # offsets beyond 64**2
    write_dictd(tmp_path / "freedict-deu-eng", entries)
    assert load_dictd(tmp_path / "freedict-deu-eng") == entries


def test_perturbed_queries_protect_answers_and_skip_languages_without_a_dictionary():
    queries = [
        Query("1-de", "1", "de", "Wer baute den Turm in Paris?", ("Paris",)),
        Query("1-zh", "1", "zh", "谁建造了巴黎的塔?", ("巴黎",)),
    ]
    dicts = {"de": {"Wer": "who", "baute": "built", "Turm": "tower", "Paris": "Paris"}}
    switched = perturbed_queries(queries, "code_switch", 1.0, 0, dicts)
    assert [q.id for q in switched] == ["1-de"]
    assert switched[0].text == "who built den tower in Paris?"
    dropped = perturbed_queries(queries, "word_drop", 1.0, 0, dicts)
    assert [q.text for q in dropped] == ["Paris?", "巴黎"]  # everything but the answer goes
    with pytest.raises(ValueError, match="unknown perturbation family 'typo'"):
        perturbed_queries(queries, "typo", 0.1, 0, dicts)


def _pq(rows):
    cols = [
        "query_id",
        "language",
        "xqg",
        "generator",
        "gen_languages",
        "n_queries",
        "perturbation",
        "severity",
        "value",
    ]
    df = pd.DataFrame(rows, columns=cols)
    return df.assign(
        metric="F1", training="zero-shot", encoder="e", split="test", mode="sum", passage_format="title+text"
    )


def test_rq1_table_by_hand():
    rows = []
    for qid, lang, base, full in [
        ("a", "de", 0.0, 1.0),
        ("b", "de", 1.0, 1.0),
        ("c", "ar", 0.0, 0.0),
        ("d", "ar", 0.5, 1.0),
    ]:
        rows += [
            (qid, lang, False, "full", "", 0, "none", 0.0, base),
            (qid, lang, True, "full", "", 5, "none", 0.0, full),
            (qid, lang, True, "seen-only", "", 5, "none", 0.0, base),
        ]
    table = rq1_table(_pq(rows), "F1", 5, ["ar"])
    assert list(table.columns[:4]) == ["de", "ar", "seen avg", "unseen avg"]
    assert table.loc["no xQG", "de"] == 50.0 and table.loc["no xQG", "ar"] == 25.0
    assert table.loc["xQG", "de"] == 100.0 and table.loc["xQG", "unseen avg"] == 50.0
    assert table.loc["xQG", "Δ unseen [95% CI]"].startswith("+25.00 [")
    assert (
        table.loc["seen-only generator, asked for every language", "Δ seen [95% CI]"]
        == "+0.00 [+0.00, +0.00]"
    )


def test_robustness_table_drops_by_hand():
    rows = []
    # clean: both systems answer a and b; perturbed: no xQG loses both, xQG loses only b
    for qid in ("a", "b"):
        rows += [(qid, "de", x, "full", "", 5 * x, "none", 0.0, 1.0) for x in (False, True)]
    rows += [
        ("a", "de", False, "full", "", 0, "word_drop", 0.4, 0.0),
        ("b", "de", False, "full", "", 0, "word_drop", 0.4, 0.0),
        ("a", "de", True, "full", "", 5, "word_drop", 0.4, 1.0),
        ("b", "de", True, "full", "", 5, "word_drop", 0.4, 0.0),
    ]
    table = robustness_table(_pq(rows).assign(split="robustness"), "F1")
    row = table.loc["word_drop 0.4"]
    assert row["no xQG: drop"] == 100.0 and row["xQG: drop"] == 50.0
    assert row["drop difference (xQG - no xQG)"] == -50.0 and row["n"] == 2
    assert np.isclose(row["xQG: perturbed"], 50.0)


def test_code_switch_dictionaries_fail_loudly_when_one_is_missing(tmp_path):
    from xqg.study.steps.robustness import dictionaries

    write_dictd(tmp_path / "freedict-deu-eng", {"Turm": "tower"})
    found, coverage = dictionaries(["de", "en", "zh"], str(tmp_path))
    assert found == {"de": {"Turm": "tower"}}
    assert coverage.set_index("language")["dictionary"].to_dict() == {
        "de": str(tmp_path / "freedict-deu-eng"),
        "zh": "none published",  # FreeDict has no Chinese-English dictionary: reported, not an error
    }
    install = r"apt-get install dict-freedict-ara-eng dict-freedict-spa-eng"
    with pytest.raises(FileNotFoundError, match=install):
        dictionaries(["ar", "de", "es"], str(tmp_path))


def _synthetic_per_query(seed=0):
    """Per-query MRR of a baseline, xQG at n = 1, 2, and RQ1's systems, on ar, de and zh."""
    rng = np.random.default_rng(seed)
    systems = [(False, 0, "full", ""), (True, 1, "full", ""), (True, 2, "full", "")]
    systems += [(True, 2, "full", "ar+de"), (True, 2, "seen-only", "ar+de"), (True, 2, "seen-only", "")]
    rows = []
    for xqg, n, generator, langs in systems:
        for lang in ("ar", "de", "zh"):
            for i in range(20):
                rows.append(
                    {"split": "test", "perturbation": "none", "training": "zero-shot", "encoder": "e5",
                     "passage_format": "title+text", "mode": "sum",
                     "xqg": xqg, "n_queries": n, "generator": generator, "gen_languages": langs,
                     "metric": "MRR@10", "language": lang, "query_id": f"{lang}{i}", "value": rng.random()}
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_rq1_legend_sits_clear_of_the_bars():
    from xqg.study.research_questions import draw_rq1

    fig = draw_rq1(_synthetic_per_query(), ["MRR@10"], 2, ["zh"])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    assert len(fig.legends[0].get_texts()) == 4  # the four RQ1 systems
    for ax in fig.axes:
        assert not legend.overlaps(ax.get_window_extent(renderer))


def test_ablation_band_is_labelled():
    from xqg.study.report import draw_ablation

    fig = draw_ablation(_synthetic_per_query(), ["MRR@10"])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["sum: macro mean over languages", "sum: 95% bootstrap CI"]
    assert "paired t-test, Holm" in fig.legends[0].get_title().get_text()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert not fig.legends[0].get_window_extent(renderer).overlaps(fig.axes[0].get_window_extent(renderer))
