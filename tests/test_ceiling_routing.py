"""The human-question ceiling, language routing, passage formats and the new training data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xqg.data.schema import Benchmark, Passage, Query
from xqg.data.splits import reserve_questions, shared_articles
from xqg.retrieval.dense import passage_text
from xqg.retrieval.query_sums import augment_with_sums
from xqg.retrieval.routing import augmented_run, folded, round_trip_recall, split_mode, sums_by_language
from xqg.study.ceiling import GENERATED, HUMAN, QuerySource, curve_table, mixture


def _q(qid, lang, pid, text=None):
    return Query(f"{qid}-{lang}", qid, lang, text or f"{qid} {lang}", ("a",), pid, "T")


# --- reserving human questions --------------------------------------------------------------
def test_reserve_questions_keeps_translations_together_and_drops_thin_passages():
    passages = {p: Passage(p, "T", p) for p in ("p1", "p2", "p3")}
    queries = [
        _q(f"{p}q{i}", lang, p)
        for p, n in (("p1", 4), ("p2", 2), ("p3", 1))
        for i in range(n)
        for lang in ("de", "zh")
    ]
    kept, reserved, rest = reserve_questions(Benchmark("x", "t", passages, queries), 2, seed=0)
    assert sorted(kept) == ["p1"]  # p2 has no question left to evaluate, p3 too few
    assert len(reserved) == 4 and len(rest) == 4  # 2 reserved ids x 2 languages; 2 ids x 2 left
    assert {q.qid for q in reserved}.isdisjoint({q.qid for q in rest})
    for qid in {q.qid for q in reserved}:  # a reserved question is reserved in every language
        assert {q.language for q in reserved if q.qid == qid} == {"de", "zh"}
    with pytest.raises(ValueError, match="at least 1"):
        reserve_questions(Benchmark("x", "t", passages, queries), 0, seed=0)


# --- routing ---------------------------------------------------------------------------------
def test_split_mode_names_the_bad_mode():
    assert split_mode("routed-mean") == (True, "mean") and split_mode("sum") == (False, "sum")
    with pytest.raises(ValueError, match="routed-max"):
        split_mode("routed-max")


def _routing_case():
    pids = ["p0", "p1"]
    pemb = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # p1's German question points along p0; its Chinese question away from it
    aug = [_q("a", "de", "p1"), _q("b", "zh", "p1"), _q("c", "de", "p0"), _q("d", "zh", "p0")]
    aemb = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], np.float32)
    return pids, pemb, aug, aemb


def test_sums_by_language_per_passage_and_language():
    pids, _, aug, aemb = _routing_case()
    sums = sums_by_language(pids, aug, aemb)
    assert sorted(sums) == ["de", "zh"]
    np.testing.assert_array_equal(sums["de"][0], [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(sums["zh"][0], [[0.0, 1.0], [-1.0, 0.0]])
    total, counts = folded(sums)
    np.testing.assert_array_equal(total, [[0.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(counts, [2, 2])
    with pytest.raises(KeyError, match="outside the collection"):
        sums_by_language(pids, [_q("e", "de", "p9")], aemb[:1])


def test_routed_search_uses_the_querys_language_and_falls_back_to_folded():
    pids, pemb, aug, aemb = _routing_case()
    sums = sums_by_language(pids, aug, aemb)
    queries = [_q("x", "de", "p1"), _q("y", "zh", "p1"), _q("z", "en", "p1")]
    qemb = np.array([[1.0, 0.0]] * 3, np.float32)
    alpha = 0.5
    routed = augmented_run(pids, pemb, sums, queries, qemb, alpha, "routed-sum")
    flat = augmented_run(pids, pemb, sums, queries, qemb, alpha, "sum")
    # hand-computed: the German index moves p1 to (0.5, 0.5), the Chinese to (-0.5, 0.5)
    assert dict(routed["x-de"])["p1"] == pytest.approx(0.5)
    assert dict(routed["y-zh"])["p1"] == pytest.approx(-0.5)
    # folded: p1 = 0.5 * (0, 1) + 0.5 * (0, 0) for every language; English has no index of its own
    assert dict(flat["x-de"])["p1"] == pytest.approx(0.0)
    assert routed["z-en"] == flat["z-en"]
    expected = augment_with_sums(pemb, sums["de"][0], sums["de"][1], alpha, "sum")
    assert dict(routed["x-de"])["p0"] == pytest.approx(float(expected[0] @ qemb[0]))


def test_round_trip_recall_counts_own_passage_hits():
    pids, pemb, aug, aemb = _routing_case()
    recall = round_trip_recall(pids, pemb, aug, aemb, k=1)
    # de: "a" (gold p1) ranks p0 first, "c" (gold p0) ranks p1 first; zh: "b" (gold p1) scores
    # p1 0 > p0 -1 (a hit), "d" (gold p0) ranks p1 first
    assert recall == {"de": 0.0, "zh": 0.5}
    assert round_trip_recall(pids, pemb, aug, aemb, k=2) == {"de": 1.0, "zh": 1.0}


# --- mixtures and the curve ---------------------------------------------------------------------
def _sources(n_passages=4, per=2, langs=("de", "zh")):
    human, gen = [], []
    for p in range(n_passages):
        for lang in langs:
            for i in range(per):
                human.append(_q(f"h{p}{i}", lang, f"p{p}"))
                gen.append(_q(f"g{p}{i}", lang, f"p{p}"))
    h = QuerySource(HUMAN, 1.0, human, np.ones((len(human), 2), np.float32))
    g = QuerySource(GENERATED, 0.0, gen, np.zeros((len(gen), 2), np.float32))
    return h, g


def test_mixture_has_the_exact_share_and_keeps_every_slot():
    h, g = _sources()
    for share in (0.0, 0.25, 0.5, 1.0):
        mix = mixture(h, g, share, seed=0)
        assert len(mix.queries) == 16
        assert sum(q.qid.startswith("h") for q in mix.queries) == round(16 * share)
        assert mix.emb.sum(axis=1).tolist() == [2.0 if q.qid.startswith("h") else 0.0 for q in mix.queries]
        slots = pd.Series([(q.gold_passage, q.language) for q in mix.queries]).value_counts()
        assert (slots == 2).all() and len(slots) == 8  # every (passage, language) keeps 2 queries
    assert mixture(h, g, 0.5, 0).queries == mixture(h, g, 0.5, 0).queries  # deterministic
    with pytest.raises(ValueError, match="differ in number"):
        mixture(h, QuerySource(GENERATED, 0.0, g.queries[:-1], g.emb[:-1]), 0.5, 0)


def test_curve_table_gain_is_the_paired_macro_difference():
    rows = []
    for lang, base, other in (("de", [0, 0, 1, 1], [1, 1, 1, 1]), ("zh", [0, 1], [0, 1])):
        for i, (b, o) in enumerate(zip(base, other, strict=True)):
            common = {"metric": "Recall@1", "query_id": f"{lang}{i}", "language": lang, "alpha": 0.1}
            rows.append({**common, "xqg": False, "mode": "sum", "generator": "full", "value": b})
            rows.append({**common, "xqg": True, "mode": "mean", "generator": HUMAN, "value": o})
    quality = pd.DataFrame(
        [
            {"generator": HUMAN, "human_share": 1.0, "language": "de", "recall": 0.8},
            {"generator": HUMAN, "human_share": 1.0, "language": "zh", "recall": 0.6},
        ]
    )
    table = curve_table(pd.DataFrame(rows), quality, "Recall@1", draws=200)
    row = table.iloc[0]
    # de gains 0.5, zh 0: macro 25 points; round-trip recall macro 70%
    assert row["Recall@1 gain"] == pytest.approx(25.0)
    assert row["round-trip R@10"] == pytest.approx(70.0)
    assert row.family == "folded" and row.low <= 25.0 <= row.high


# --- passage formats ---------------------------------------------------------------------------
def test_passage_text_formats():
    assert passage_text("Title", "Body.") == "Title Body."
    assert passage_text("Title", "Body.", "text") == "Body."
    with pytest.raises(ValueError, match="title-body"):
        passage_text("Title", "Body.", "title-body")


# --- the new data, leakage-free ----------------------------------------------------------------
def test_squad_es_joins_to_english_squad_paragraphs(raw_data):
    from xqg.data.squad_dev import load_squad_dev, load_squad_es_dev
    from xqg.data.xquad import load_xquad

    en = load_squad_dev(raw_data)
    es = load_squad_es_dev(en, raw_data)
    assert (len(en.passages), len(en.queries), len(es.queries)) == (2067, 10570, 6583)
    xquad = load_xquad(["en"], root=raw_data)
    assert set(xquad.passages) <= set(en.passages)  # XQuAD's paragraphs are SQuAD dev's, same ids
    assert len({q.qid for q in es.queries} & {q.qid for q in xquad.queries}) == 732
    assert all(q.language == "es" and q.gold_passage in en.passages for q in es.queries)


def test_squad_es_pairs_train_the_generator_without_leaking(raw_data, tmp_path):
    """`generator_data: [squad-es]` (issue 12's lever): SQuAD-es's Spanish questions on English
    paragraphs join the generator's triples, minus XQuAD's own questions (already there in every
    language) and the articles of the evaluation and ceiling collections."""
    from xqg.data.xquad import load_xquad
    from xqg.study.steps import data
    from xqg.study.workspace import Workspace

    xquad_ids = {q.id for q in load_xquad(["es"], root=raw_data).queries}  # "{qid}-es", as SQuAD-es's
    (squad_es,) = data.extra_questions(["squad-es"], [], set(xquad_ids))
    assert len(squad_es.queries) == 6583 - 732 and not {q.id for q in squad_es.queries} & xquad_ids
    assert {q.gold_passage for q in squad_es.queries} == set(squad_es.passages)

    ws = Workspace("smoke", tmp_path / "w", tmp_path / "r", tmp_path / "f")
    base = {"generator_languages": ["de", "es"]}
    data.run(ws, data.Config.load("smoke", base))
    before = ws.triples()
    data.run(ws, data.Config.load("smoke", {**base, "generator_data": ["squad-es"]}))
    after = ws.triples()
    added = after[len(before) :]
    assert after[: len(before)] == before and added and {t.language for t in added} == {"es"}
    assert len({t.passage_id for t in added}) <= 30  # max_passages caps every source in smoke
    held = list(ws.passages().values()) + list(ws.passages(ws.ceiling_collection).values())
    assert shared_articles([Passage("", t.title, "") for t in added], held) == set()


def test_mini_splits_are_leakage_free_by_article(smoke_run):
    """Every split the smoke run prepared from real data: the ceiling collection shares no article
    with the generator's training data or the evaluation collection, and the reader's training
    data none with the evaluation collection."""
    data = smoke_run / "work" / "smoke" / "data"

    def titles(name: str) -> set[str]:
        rows = [json.loads(line) for line in (data / name).read_text().splitlines()]
        key = "title" if "title" in rows[0] else "article"
        return {Passage("", r[key], "") for r in rows}

    evaluation = titles("collection.jsonl")
    ceiling = titles("ceiling_collection.jsonl")
    generator = titles("generator_train.jsonl")
    reader = titles("reader_collection.jsonl")
    assert ceiling and generator and reader
    # the reader is evaluated on MLQA only: it may read the ceiling's articles, nothing else may
    assert shared_articles(ceiling, evaluation | generator) == set()
    assert shared_articles(reader, evaluation) == set()
    summary = json.loads((data / "summary.json").read_text())
    assert summary["ceiling test questions"] > 0 and summary["reader training questions"] > 0


def test_routed_and_human_rows_reach_every_results_file(smoke_run):
    """Issue 15's rows: a routed system beside the folded one in retrieval, QA and robustness, and
    the ceiling's human and generated sources in both families, with the curve beside them."""
    results = smoke_run / "results" / "smoke"
    for name in ("metrics_retrieval.csv", "metrics_qa.csv", "metrics_robustness.csv"):
        modes = set(pd.read_csv(results / name).query("xqg")["mode"])
        assert any(m.startswith("routed-") for m in modes) and modes - {"routed-sum", "routed-mean"}, name
    ceiling = pd.read_csv(results / "metrics_ceiling.csv", keep_default_na=False)
    test = ceiling[ceiling.split == "test"]
    assert {HUMAN, GENERATED, "human-50%"} <= set(test.generator)
    for source in (HUMAN, GENERATED):
        modes = set(test[test.xqg & (test.generator == source)]["mode"])
        assert len(modes) == 2 and sum(m.startswith("routed-") for m in modes) == 1
    curve = pd.read_csv(results / "ceiling_curve.csv")
    assert len(curve) == 2 * 3 and set(curve.family) == {"folded", "routed"}
    assert (smoke_run / "figures" / "smoke" / "ceiling_curve.png").exists()
    assert "human-question ceiling" in (results / "tables" / "findings.md").read_text()
