"""Extractive-QA exact match and F1 as MLQA's official evaluation defines them.

Written from the definition (the official script's licence forbids copying it): an answer is
lower-cased; every Unicode punctuation character (category P*) and every ASCII
``string.punctuation`` character is removed; the answer language's articles are removed
(en, es, de, vi and ar; none for hi and zh); then it is split on whitespace, except for zh,
where each CJK ideograph is a token of its own and other runs are split on whitespace ("mixed
segmentation"). EM compares the normalised strings, F1 the token bags. A prediction is scored
against every gold answer and keeps the maximum; an unanswered question scores 0.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

PUNCTUATION = frozenset(
    {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}
    | set(string.punctuation)
)
_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"\sال^|ال",
    "hi": None,
    "zh": None,
}
ARTICLES = {lang: re.compile(p) if p else None for lang, p in _ARTICLES.items()}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _check_lang(lang: str) -> None:
    if lang not in ARTICLES:
        raise ValueError(f"unknown answer language {lang!r}; MLQA defines {', '.join(ARTICLES)}")


def mixed_segmentation(text: str) -> list[str]:
    """Chinese segmentation: CJK ideographs and punctuation alone, other runs split on spaces."""
    tokens: list[str] = []
    run = ""
    for ch in text:
        if _CJK.match(ch) or ch in PUNCTUATION:
            tokens.extend(run.split())
            run = ""
            tokens.append(ch)
        else:
            run += ch
    tokens.extend(run.split())
    return tokens


def normalize_answer(text: str, lang: str) -> str:
    """Lower-case, drop punctuation and articles, re-join the tokens with single spaces."""
    _check_lang(lang)
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    if ARTICLES[lang] is not None:
        text = ARTICLES[lang].sub(" ", text)
    tokens = mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(tokens)


def exact_match(prediction: str, gold: str, lang: str) -> float:
    """1.0 if the normalised strings are equal."""
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def f1(prediction: str, gold: str, lang: str) -> float:
    """Token-bag F1 of the normalised strings."""
    pred = normalize_answer(prediction, lang).split()
    ref = normalize_answer(gold, lang).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(prediction: str, golds: Iterable[str], lang: str) -> tuple[float, float]:
    """(EM, F1) of a prediction: the maximum over the gold answers."""
    golds = list(golds)
    return (
        max(exact_match(prediction, g, lang) for g in golds),
        max(f1(prediction, g, lang) for g in golds),
    )


def per_question(
    golds: Mapping[str, Iterable[str]], predictions: Mapping[str, str], lang: str
) -> dict[str, tuple[float, float]]:
    """{question id: (EM, F1)} in [0, 1]; an unanswered question scores (0, 0)."""
    _check_lang(lang)
    return {
        qid: best_over_golds(predictions[qid], g, lang) if qid in predictions else (0.0, 0.0)
        for qid, g in golds.items()
    }


def squad_golds(dataset: Mapping) -> dict[str, list[str]]:
    """{question id: gold answer texts} from a SQuAD-format dataset dict."""
    return {
        qa["id"]: [a["text"] for a in qa["answers"]]
        for article in dataset["data"]
        for para in article["paragraphs"]
        for qa in para["qas"]
    }


def evaluate(dataset: Mapping, predictions: Mapping[str, str], lang: str) -> dict[str, float]:
    """MLQA's official numbers: {"exact_match": .., "f1": ..} in percent."""
    scores = per_question(squad_golds(dataset), predictions, lang)
    for qid in scores:
        if qid not in predictions:
            print(f"Unanswered question {qid} will receive score 0.", file=sys.stderr)
    n = len(scores)
    return {
        "exact_match": 100.0 * sum(s[0] for s in scores.values()) / n,
        "f1": 100.0 * sum(s[1] for s in scores.values()) / n,
    }
