"""Perturbation families: stated rates on four scripts, seeds, protected answers, dictd parsing."""

from __future__ import annotations

import gzip

import pytest

from xqg.data.perturb import CHAR_FAMILIES, WORD_FAMILIES, load_dictd, n_changes, perturb, script, words

TEXTS = {
    "Latin": "Wer war der erste Präsident der Vereinigten Staaten von Amerika",
    "Arabic": "ما هي عاصمة فرنسا ومتى تأسست المدينة الكبيرة",
    "Devanagari": "भारत की राजधानी क्या है और वह कब बनी थी",
    "Han": "北京是中国的首都吗在哪一年成为首都",
}


def _letters(text):
    return [ch for ch in text if ch.isalpha()]


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("severity", [0.1, 0.3])
def test_character_families_change_the_stated_share_of_letters(name, severity):
    text = TEXTS[name]
    n = len(_letters(text))
    k = n_changes(n, severity)
    assert perturb(text, "char_delete", severity, seed=1) != text
    assert len(_letters(perturb(text, "char_delete", severity, 1))) == n - k
    assert len(_letters(perturb(text, "char_insert", severity, 1))) == n + k
    sub = perturb(text, "char_substitute", severity, 1)
    assert len(sub) == len(text) and sum(a != b for a, b in zip(sub, text)) == k
    # replacements stay in the script of the letter they replace
    assert all(script(b) == script(a) for a, b in zip(text, sub) if a != b)


@pytest.mark.parametrize("name", TEXTS)
def test_word_families_change_the_stated_share_of_words(name):
    text = TEXTS[name]
    n = len(words(text))
    k = n_changes(n, 0.2)
    assert len(words(perturb(text, "word_drop", 0.2, 3))) == n - k
    assert len(words(perturb(text, "word_duplicate", 0.2, 3))) == n + k
    swapped = perturb(text, "word_swap", 0.2, 3)
    assert sorted(words(swapped)) == sorted(words(text)) and swapped != text


@pytest.mark.parametrize("family", CHAR_FAMILIES + WORD_FAMILIES)
def test_reproducible_under_a_seed_and_zero_severity_is_identity(family):
    text = TEXTS["Latin"]
    assert perturb(text, family, 0.3, seed=7) == perturb(text, family, 0.3, seed=7)
    assert perturb(text, family, 0.0, seed=7) == text
    outs = {perturb(text, family, 0.3, seed=s) for s in range(5)}
    assert len(outs) > 1


def test_keyboard_noise_uses_qwerty_neighbours():
    out = perturb("aaaa", "char_keyboard", 1.0, seed=0)
    assert all(ch in "qwsz" for ch in out)


def test_gold_answer_is_never_touched():
    text = "Wann wurde Barack Obama in Honolulu geboren und wo studierte er"
    for family in CHAR_FAMILIES + WORD_FAMILIES:
        for seed in range(5):
            assert "Barack Obama" in perturb(text, family, 0.5, seed, protect=["Barack Obama"])


def test_code_switch_with_a_dictd_dictionary(tmp_path):
    body = "Hauptstadt\ncapital <n>; chief city\nFluss /flʊs/\n1. river [geogr.]\n".encode()
    (tmp_path / "d.dict.dz").write_bytes(gzip.compress(body))
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    enc = lambda n: b64[n // 64] + b64[n % 64] if n >= 64 else b64[n]  # noqa: E731
    first = len(b"Hauptstadt\ncapital <n>; chief city\n")
    (tmp_path / "d.index").write_text(
        f"Hauptstadt\tA\t{enc(first)}\nFluss\t{enc(first)}\t{enc(len(body) - first)}\n"
    )
    dictionary = load_dictd(tmp_path / "d")
    assert dictionary == {"Hauptstadt": "capital", "Fluss": "river"}
    out = perturb("Was ist die Hauptstadt am Fluss?", "code_switch", 1.0, 0, dictionary=dictionary)
    assert out == "Was ist die capital am river?"
    with pytest.raises(ValueError, match="needs a bilingual dictionary"):
        perturb("x y", "code_switch", 0.5)
    with pytest.raises(FileNotFoundError, match="dictd files"):
        load_dictd(tmp_path / "missing")


def test_unknown_family_and_bad_severity():
    with pytest.raises(ValueError, match="unknown perturbation family"):
        perturb("x", "emoji", 0.1)
    with pytest.raises(ValueError, match="severity"):
        perturb("x y", "word_drop", 1.5)


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("severity", [0.1, 0.3])
def test_keyboard_swap_and_code_switch_rates_on_every_script(name, severity):
    text = TEXTS[name]
    n = len(_letters(text))
    k = n_changes(n, severity)
    typo = perturb(text, "char_keyboard", severity, 2)
    assert len(typo) == len(text) and sum(a != b for a, b in zip(typo, text)) == k
    swapped = perturb(text, "char_swap", severity, 2)
    changed = sum(a != b for a, b in zip(swapped, text))
    assert sorted(swapped) == sorted(text) and 0 < changed <= 2 * k
    # a dictionary that knows every word unit: the stated share of them turns into English
    units = words(text)
    switched = perturb(text, "code_switch", severity, 2, dictionary={u: "EN" for u in units})
    assert switched.split().count("EN") == n_changes(len(units), severity)


def test_word_drop_keeps_a_word_of_a_language_written_without_spaces():
    thai = "ประเทศไทยมีเมืองหลวงชื่ออะไร"  # one space-free unit: dropping it would leave nothing
    assert perturb(thai, "word_drop", 1.0, 0) == thai
    assert perturb("Wer ist da", "word_drop", 1.0, 0) in {"Wer", "ist", "da"}
