"""Quality report of generated queries: language and script, duplicates, lengths, round trip.

The language check works offline: the share of a query's letters written in the language's
script, and for the Latin-script languages a vote of frequent function words (enough to tell
German, Spanish, Vietnamese and English questions apart; not a general language identifier).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xqg.languages import script_letter_counts, script_of

FUNCTION_WORDS = {
    "en": {"the", "what", "which", "who", "when", "where", "how", "is", "of", "in", "did", "was", "does"},
    "de": {
        "der",
        "die",
        "das",
        "wer",
        "was",
        "wann",
        "wo",
        "wie",
        "welche",
        "welcher",
        "ist",
        "den",
        "und",
        "von",
        "im",
        "hat",
        "wurde",
    },
    "es": {
        "el",
        "la",
        "los",
        "las",
        "qué",
        "quién",
        "cuál",
        "cuándo",
        "dónde",
        "cómo",
        "de",
        "del",
        "en",
        "es",
        "fue",
        "se",
        "por",
    },
    "vi": {
        "gì",
        "nào",
        "của",
        "là",
        "ai",
        "những",
        "được",
        "có",
        "không",
        "người",
        "năm",
        "đã",
        "bao",
        "trong",
        "và",
    },
}


def letters(text: str) -> list[str]:
    """The alphabetic characters of a text."""
    return [ch for ch in text if ch.isalpha()]


def script_share(text: str, script: str) -> float:
    """Share of letters whose Unicode name starts with the script's prefix (0 for no letters)."""
    own, other = script_letter_counts(text, script)
    return own / (own + other) if own + other else 0.0


def in_language(text: str, language: str, threshold: float = 0.5) -> bool:
    """Offline language check: the script matches, and for Latin scripts the function words vote."""
    script = script_of(language)
    if script_share(text, script) < threshold:
        return False
    if script != "Latin" or language not in FUNCTION_WORDS:
        return True
    words = re.findall(r"\w+", text.lower())
    votes = {lang: sum(w in fw for w in words) for lang, fw in FUNCTION_WORDS.items()}
    best = max(votes.values())
    return best == 0 or votes[language] == best


def passage_word_share(text: str, passage: str, min_letters: int = 4) -> float:
    """Share of a question's words of `min_letters` or more characters that occur in the passage
    (case-folded): how much a question copies from the English passage (0 for no such word)."""
    in_passage = {w.casefold() for w in re.findall(r"\w+", passage)}
    words = [w.casefold() for w in re.findall(r"\w+", text) if len(w) >= min_letters]
    return sum(w in in_passage for w in words) / len(words) if words else 0.0


def length_in_units(text: str, language: str) -> int:
    """Whitespace tokens, or characters for languages written without spaces (zh, ja)."""
    return len(letters(text)) if language in ("zh", "ja") else len(text.split())


def report(records: Sequence[dict]) -> pd.DataFrame:
    """Per language: queries, share in language and script, duplicate rates, mean/median length."""
    df = pd.DataFrame(records)
    rows = []
    for lang, g in df.groupby("language", sort=True):
        texts = g["text"].tolist()
        per_passage_dups = g.groupby("passage_id")["text"].apply(lambda s: len(s) - s.nunique()).sum()
        lengths = [length_in_units(t, lang) for t in texts]
        rows.append(
            {
                "language": lang,
                "queries": len(g),
                "empty %": 100 * float(np.mean([not t.strip() for t in texts])),
                "in script %": 100 * float(np.mean([script_share(t, script_of(lang)) >= 0.5 for t in texts])),
                "in language %": 100 * float(np.mean([in_language(t, lang) for t in texts])),
                "duplicates within passage %": 100 * per_passage_dups / len(g),
                "distinct %": 100 * len(set(texts)) / len(g),
                "mean length": float(np.mean(lengths)),
                "median length": float(np.median(lengths)),
            }
        )
    return pd.DataFrame(rows).set_index("language")


def round_trip(records: Sequence[dict], run: dict[str, list[tuple[str, float]]], k: int = 10) -> pd.Series:
    """Per language: % of queries whose source passage is in the top k of `run` (keyed by row index)."""
    hits: Counter = Counter()
    total: Counter = Counter()
    for i, r in enumerate(records):
        total[r["language"]] += 1
        hits[r["language"]] += r["passage_id"] in [p for p, _ in run[str(i)][:k]]
    return pd.Series(
        {lang: 100 * hits[lang] / total[lang] for lang in sorted(total)}, name=f"round-trip R@{k}"
    )


def samples(records: Sequence[dict], passages: dict, per_language: int = 3, seed: int = 0) -> pd.DataFrame:
    """A few generated queries per language next to their passage's title and opening."""
    df = pd.DataFrame(records)
    picked = pd.concat(
        [g.sample(min(per_language, len(g)), random_state=seed) for _, g in df.groupby("language", sort=True)]
    )
    picked["title"] = [passages[p].title for p in picked["passage_id"]]
    picked["passage"] = [passages[p].text[:160] + "…" for p in picked["passage_id"]]
    return picked[["language", "text", "title", "passage"]].reset_index(drop=True)
