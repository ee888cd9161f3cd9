"""Metrics against hand-computed values."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from xqg.metrics import passage, qa, significance
from xqg.metrics.xor_retrieve import english_punkt, hit_at_tokens, r_at_kt, word_tokenize


def test_word_tokenize_matches_nltk_treebank_conventions():
    assert word_tokenize('He didn\'t go. She said "no".') == (
        "He",
        "did",
        "n't",
        "go",
        ".",
        "She",
        "said",
        "``",
        "no",
        "''",
        ".",
    )


def test_hit_at_tokens_budget_and_case():
    ctxs = ["one two three.", "four Five six."]  # tokens: one two three . four Five six .
    assert hit_at_tokens(ctxs, ["Five"], 6) == 1
    assert hit_at_tokens(ctxs, ["Five"], 5) == 0  # cut after "four"
    assert hit_at_tokens(ctxs, ["five"], 100) == 0  # case sensitive
    assert hit_at_tokens(ctxs, ["three ."], 100) == 1  # tokens joined by single spaces
    assert hit_at_tokens(ctxs, ["yes", "no"], 100) is None  # yes/no questions are skipped
    assert hit_at_tokens(ctxs, ["yes", "six"], 100) == 1


def test_r_at_kt_macro_average():
    ctxs = {"a": ["x Paris y"], "b": ["nothing"], "c": ["Oslo"], "d": ["z"]}
    answers = {"a": ["Paris"], "b": ["Rome"], "c": ["Oslo"], "d": ["yes"]}
    langs = {"a": "fi", "b": "fi", "c": "ja", "d": "ja"}
    per_query, agg = r_at_kt(ctxs, answers, langs, 2000)
    assert per_query == {"a": 1, "b": 0, "c": 1}
    assert agg == {"fi": 50.0, "ja": 100.0, "macro": 75.0}
    with pytest.raises(KeyError, match="no retrieved contexts"):
        r_at_kt({"a": ["x"]}, answers, langs, 2000)


def test_passage_metrics_hand_computed():
    run = {"q1": ["p3", "p1", "p2"], "q2": ["p9", "p8", "p7"]}
    qrels = {"q1": {"p1": 1}, "q2": {"p7": 1}}
    got = passage.per_query(run, qrels, ["Recall@1", "Recall@2", "MRR@10", "nDCG@3", "Success@3"])
    assert got["Recall@1"] == {"q1": 0.0, "q2": 0.0}
    assert got["Recall@2"] == {"q1": 1.0, "q2": 0.0}
    assert got["MRR@10"] == {"q1": 0.5, "q2": pytest.approx(1 / 3)}
    assert got["nDCG@3"]["q1"] == pytest.approx(1 / math.log2(3))
    assert got["nDCG@3"]["q2"] == pytest.approx(0.5)
    assert got["Success@3"] == {"q1": 1.0, "q2": 1.0}
    with pytest.raises(KeyError, match="run and qrels differ"):
        passage.per_query({"q1": ["p1"]}, qrels, ["MRR@10"])
    texts = {"p3": "Rome", "p1": "Paris", "p2": "", "p9": "", "p8": "", "p7": "Oslo"}
    assert passage.answer_recall_at(run, texts, {"q1": ["Paris"], "q2": ["Oslo"]}, 2) == {
        "q1": 1.0,
        "q2": 0.0,
    }


def test_mlqa_normalisation_per_language():
    assert qa.normalize_answer("The Eiffel Tower!", "en") == "eiffel tower"
    assert qa.normalize_answer("Die Brücke, das Haus", "de") == "brücke haus"
    assert qa.normalize_answer("el «gran» río", "es") == "gran río"
    assert qa.normalize_answer("الكتاب الجديد", "ar") == "كتاب جديد"  # article removed
    assert qa.normalize_answer("the दिल्ली।", "hi") == "the दिल्ली"  # no articles in hi
    assert qa.normalize_answer("北京，2008年 Olympic Games", "zh") == "北 京 2008 年 olympic games"


def test_mlqa_em_f1_hand_computed():
    assert qa.exact_match("the Tower", "Tower.", "en") == 1.0
    # pred tokens: eiffel tower paris; gold: tower -> P=1/3, R=1, F1=0.5
    assert qa.f1("Eiffel Tower Paris", "the tower", "en") == pytest.approx(0.5)
    # zh: pred 北 京 市, gold 北 京 -> P=2/3, R=1, F1=0.8
    assert qa.f1("北京市", "北京", "zh") == pytest.approx(0.8)
    assert qa.best_over_golds("Paris", ["London", "paris"], "en") == (1.0, 1.0)


def test_mlqa_evaluate_counts_unanswered_as_zero():
    dataset = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "c",
                        "qas": [
                            {"id": "a", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]},
                            {
                                "id": "b",
                                "question": "?",
                                "answers": [{"text": "big red dog", "answer_start": 0}],
                            },
                            {"id": "c", "question": "?", "answers": [{"text": "x", "answer_start": 0}]},
                        ],
                    }
                ],
            }
        ]
    }
    got = qa.evaluate(dataset, {"a": "paris", "b": "red dog"}, "en")
    assert got["exact_match"] == pytest.approx(100 / 3)
    assert got["f1"] == pytest.approx(100 * (1 + 0.8) / 3)
    with pytest.raises(ValueError, match="unknown answer language 'xx'"):
        qa.evaluate(dataset, {}, "xx")


def test_gold_answers_as_predictions_score_100(raw_data):
    path = raw_data / "mlqa" / "MLQA_V1" / "dev" / "dev-context-zh-question-zh.json"
    dataset = json.loads(path.read_text())
    golds = qa.squad_golds(dataset)
    preds = {qid: answers[0] for qid, answers in golds.items()}
    assert qa.evaluate(dataset, preds, "zh") == {"exact_match": 100.0, "f1": 100.0}


def test_bootstrap_macro_mean_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    groups = [rng.binomial(1, p, n).astype(float) for p, n in ((0.3, 400), (0.6, 500), (0.8, 300))]
    mean, lo, hi = significance.bootstrap_macro_mean(groups, draws=2000, scale=100)
    assert mean == pytest.approx(100 * np.mean([g.mean() for g in groups]))
    # stratified resampling: the macro mean's standard error is sqrt(sum var_g / n_g) / G
    se = 100 * np.sqrt(sum(g.var() / len(g) for g in groups)) / len(groups)
    assert lo < mean < hi and (hi - lo) / 2 == pytest.approx(1.96 * se, rel=0.1)
    # a constant group (or one of a single value) only shifts the interval
    same = significance.bootstrap_macro_mean([*groups, np.array([1.0])], draws=2000, scale=100)
    assert same[0] == pytest.approx((3 * mean + 100) / 4)
    assert same[2] - same[1] == pytest.approx(3 / 4 * (hi - lo), rel=0.1)
    assert significance.bootstrap_macro_mean([np.ones(5), np.zeros(3)]) == (0.5, 0.5, 0.5)


def test_holm_and_bh_hand_computed():
    p = [0.01, 0.04, 0.03]
    np.testing.assert_allclose(significance.holm(p), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(significance.benjamini_hochberg(p), [0.03, 0.04, 0.04])


def test_compare_paired_tests():
    base = {"fi": {str(i): float(i % 2) for i in range(40)}}
    sys_ = {"fi": {str(i): 1.0 for i in range(40)}}
    df = significance.compare(base, sys_)
    row = df.iloc[0]
    assert (row["n"], row["baseline"], row["system"], row["delta"]) == (40, 0.5, 1.0, 0.5)
    assert row["p_wilcoxon"] < 0.001 and row["p_t"] < 0.001 and bool(row["significant"])
    same = significance.compare(base, base)
    assert same.iloc[0]["p_t"] == 1.0 and not same.iloc[0]["significant"]


def test_cli_evaluators(tmp_path):
    data = tmp_path / "dev.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "1", "question": "q", "answers": ["Paris"], "lang": "fi", "split": "dev"},
                {"id": "2", "question": "q", "answers": ["Rome"], "lang": "ja", "split": "dev"},
                {"id": "3", "question": "q", "answers": ["yes"], "lang": "ja", "split": "dev"},
            ]
        )
    )
    pred = tmp_path / "pred.json"
    pred.write_text(
        json.dumps(
            [
                {"id": "1", "lang": "fi", "ctxs": ["in Paris"]},
                {"id": "2", "lang": "ja", "ctxs": ["in Oslo"]},
                {"id": "3", "lang": "ja", "ctxs": ["yes"]},
            ]
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "xqg.evaluate",
            "xor-retrieve",
            "--data_file",
            str(data),
            "--pred_file",
            str(pred),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    assert got["R@2kt"] == {"fi": 100.0, "ja": 0.0, "macro": 50.0}
    assert got["R@5kt"] == got["R@2kt"]
    dataset = tmp_path / "mlqa.json"
    dataset.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {
                                "context": "c",
                                "qas": [
                                    {
                                        "id": "a",
                                        "question": "?",
                                        "answers": [{"text": "Paris", "answer_start": 0}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        )
    )
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps({"a": "The Paris"}))
    out = subprocess.run(
        [sys.executable, "-m", "xqg.evaluate", "mlqa", str(dataset), str(preds), "en"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"exact_match": 100.0, "f1": 100.0}


def test_punkt_parameters_equal_nltk_punkt_tab_data(tmp_path, monkeypatch):
    """Write the English Punkt parameters as NLTK's punkt_tab data; NLTK loads the same model."""
    import nltk
    from nltk.tokenize.punkt import PunktTokenizer
    from punkt.data import english

    tab = tmp_path / "tokenizers" / "punkt_tab" / "english"
    tab.mkdir(parents=True)
    (tab / "abbrev_types.txt").write_text("\n".join(sorted(english.ABBREV_TYPES)) + "\n")
    (tab / "sent_starters.txt").write_text("\n".join(sorted(english.SENT_STARTERS)) + "\n")
    pairs = sorted(english.COLLOCATIONS)
    (tab / "collocations.tab").write_text("\n".join(f"{a}\t{b}" for a, b in pairs) + "\n")
    (tab / "ortho_context.tab").write_text(
        "\n".join(f"{w}\t{f}" for w, f in sorted(english.ORTHO_CONTEXT.items())) + "\n"
    )
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    theirs, ours = PunktTokenizer("english")._params, english_punkt()._params
    assert theirs.abbrev_types == ours.abbrev_types and len(ours.abbrev_types) > 100
    assert theirs.collocations == ours.collocations
    assert theirs.sent_starters == ours.sent_starters
    assert dict(theirs.ortho_context) == dict(ours.ortho_context)


# nltk.word_tokenize of nltk 3.8.1 (the version of the official XOR-Retrieve numbers) with the
# English Punkt model, printed by that version; nltk >= 3.9 splits every case below differently.
NLTK_381_TOKENS = [
    (  # em dashes stay inside tokens
        "He left at that time—in 1990—for Paris.",
        ["He", "left", "at", "that", "time—in", "1990—for", "Paris", "."],
    ),
    ("The war of 960–961 ended.", ["The", "war", "of", "960–961", "ended", "."]),  # en dash
    (  # a leading quote is split off only before a one-letter word
        "'Van Gogh' was painted by 'a man.",
        ["'Van", "Gogh", "'", "was", "painted", "by", "'", "a", "man", "."],
    ),
    (  # a curly closing quote is no sentence boundary for Punkt, so the period stays attached
        "Thoreau had advised, “Resign.” Hulme agreed.",
        ["Thoreau", "had", "advised", ",", "“", "Resign.", "”", "Hulme", "agreed", "."],
    ),
    (
        "Prices rose ‒ 3 % ― then fell―again.",
        ["Prices", "rose", "‒", "3", "%", "―", "then", "fell―again", "."],
    ),
    (  # what did not change: abbreviations, clitics, straight quotes, double spaces
        'It was Mr. Smith\'s dog. It  barked "twice"  at 5 p.m. today!',
        [
            "It",
            "was",
            "Mr.",
            "Smith",
            "'s",
            "dog",
            ".",
            "It",
            "barked",
            "``",
            "twice",
            "''",
            "at",
            "5",
            "p.m.",
            "today",
            "!",
        ],
    ),
]


@pytest.mark.parametrize("text,tokens", NLTK_381_TOKENS)
def test_word_tokenize_reproduces_nltk_381(text, tokens):
    assert list(word_tokenize(text)) == tokens


def test_r_at_kt_counts_a_dash_joined_answer_as_nltk_381_did():
    # "960–961" is one token under nltk 3.8.1: the answer "960–961" is found within 3 tokens
    contexts = {"q": ["The war of 960–961 ended."]}
    per_query, _ = r_at_kt(contexts, {"q": ["960–961"]}, {"q": "ar"}, 4)
    assert per_query == {"q": 1}


def test_latex_escape_handles_the_tables_symbols():
    from xqg.study.report import latex_escape

    assert latex_escape("MRR@10 (%) per language; † differs") == r"MRR@10 (\%) per language; \dag{} differs"
    assert latex_escape("xQG (n=5, α=0.01, sum)") == r"xQG (n=5, $\alpha$=0.01, sum)"
    assert latex_escape("Δ mean_seen & 5$ #1 {x} ~^\\") == (
        r"$\Delta$ mean\_seen \& 5\$ \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    )
    assert latex_escape("0.1–0.3") == "0.1--0.3"


def _latex_table(tmp_path):
    import pandas as pd

    from xqg.study.report import save_table

    df = pd.DataFrame(
        {"ar": [40.1, 42.5], "Δ seen [95% CI]": ["+0.3 [-0.2, +0.8]", "–"], "p (Holm)": [0.012, None]},
        index=["e5 (zero-shot)", "e5 (zero-shot) + xQG (n=5, α=0.001, sum) †"],
    )
    save_table(df, tmp_path / "t", caption="MRR@10 (%) per language; † differs (Holm)", precision=2)
    return (tmp_path / "t.tex").read_text()


def test_latex_tables_have_no_unescaped_specials(tmp_path):
    import re

    tex = _latex_table(tmp_path)
    assert not re.search(r"(?<!\\)%", tex) and "α" not in tex and "†" not in tex and "Δ" not in tex
    assert r"\bfseries 42.50" in tex and r"$\alpha$=0.001" in tex and "--" in tex


@pytest.mark.skipif(not __import__("shutil").which("pdflatex"), reason="no pdflatex on this machine")
def test_latex_tables_compile_with_pdflatex(tmp_path):
    _latex_table(tmp_path)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{t.tex}\n\\end{document}\n"
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
