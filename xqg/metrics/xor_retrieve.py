"""XOR-Retrieve's R@kt (Asai et al., 2021): answer recall within the first k thousand tokens.

Per query: 1 if any gold answer other than "yes"/"no" occurs (case-sensitive substring) in the
first ``max_tokens`` word tokens of the concatenated retrieved passages, tokens joined by single
spaces; queries whose answers are all yes/no are skipped. Per-language means, then the macro
average over languages.

Tokenisation follows the official evaluator's ``nltk.word_tokenize``: Punkt sentence splitting,
then NLTK's Treebank-style word tokenizer on each sentence. The official script uses the trained
English Punkt model (``punkt`` data, which needs a download); this module uses NLTK's untrained
``PunktSentenceTokenizer``, which splits at the same sentence-final periods except after
abbreviations the trained model knows ("Mr.", "U.S."). The only effect is whether such a period
becomes its own token, which shifts a token budget by at most one token per abbreviation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

YES_NO = frozenset({"yes", "no"})
_SENTENCES = PunktSentenceTokenizer()
_WORDS = NLTKWordTokenizer()


@lru_cache(maxsize=200_000)
def word_tokenize(text: str) -> tuple[str, ...]:
    """Word tokens of `text` as `nltk.word_tokenize` produces them (see module docstring)."""
    return tuple(tok for sent in _SENTENCES.tokenize(text) for tok in _WORDS.tokenize(sent))


def span_answers(answers: Iterable[str]) -> list[str]:
    """Gold answers with yes/no removed, as the official evaluator skips them."""
    return [a for a in answers if a not in YES_NO]


def hit_at_tokens(contexts: Sequence[str], answers: Iterable[str], max_tokens: int) -> int | None:
    """1/0: an answer occurs in the first `max_tokens` tokens; None for a yes/no-only query."""
    spans = span_answers(answers)
    if not spans:
        return None
    tokens: list[str] = []
    for ctx in contexts:
        tokens.extend(word_tokenize(ctx))
        if len(tokens) >= max_tokens:
            break
    joined = " ".join(tokens[:max_tokens])
    return int(any(a in joined for a in spans))


def r_at_kt(
    contexts: dict[str, Sequence[str]],
    answers: dict[str, Sequence[str]],
    languages: dict[str, str],
    max_tokens: int,
) -> tuple[dict[str, int], dict[str, float]]:
    """Per-query hits and per-language/macro R@kt in percent.

    `contexts` maps query id -> retrieved passage texts in rank order; `answers` and `languages`
    give each query's gold answers and language. Queries missing from `contexts` are an error
    (the denominator must not silently change).
    """
    missing = set(answers) - set(contexts)
    if missing:
        raise KeyError(f"{len(missing)} queries have no retrieved contexts, e.g. {sorted(missing)[:3]}")
    per_query: dict[str, int] = {}
    for qid, ans in answers.items():
        hit = hit_at_tokens(contexts[qid], ans, max_tokens)
        if hit is not None:
            per_query[qid] = hit
    return per_query, aggregate_by_language(per_query, languages)


def aggregate_by_language(per_query: dict[str, float], languages: dict[str, str]) -> dict[str, float]:
    """Per-language means in percent plus their unweighted `macro` average."""
    by_lang: dict[str, list[float]] = {}
    for qid, v in per_query.items():
        by_lang.setdefault(languages[qid], []).append(v)
    out = {lang: 100.0 * float(np.mean(v)) for lang, v in sorted(by_lang.items())}
    out["macro"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out
