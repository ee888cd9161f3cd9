"""Language codes, names and scripts used across the benchmarks."""

from __future__ import annotations

import unicodedata

# ISO 639-1 code -> (English name used in the generator prompt, Unicode script).
LANGUAGES: dict[str, tuple[str, str]] = {
    "ar": ("Arabic", "Arabic"),
    "bn": ("Bengali", "Bengali"),
    "de": ("German", "Latin"),
    "en": ("English", "Latin"),
    "es": ("Spanish", "Latin"),
    "fi": ("Finnish", "Latin"),
    "hi": ("Hindi", "Devanagari"),
    "ja": ("Japanese", "Japanese"),
    "ko": ("Korean", "Hangul"),
    "ru": ("Russian", "Cyrillic"),
    "te": ("Telugu", "Telugu"),
    "vi": ("Vietnamese", "Latin"),
    "zh": ("Chinese", "Han"),
    "el": ("Greek", "Greek"),
    "th": ("Thai", "Thai"),
    "tr": ("Turkish", "Latin"),
    "ro": ("Romanian", "Latin"),
}

# Unicode script -> the prefixes of its letters' Unicode names (Japanese mixes three blocks).
SCRIPT_BLOCKS: dict[str, tuple[str, ...]] = {
    "Latin": ("LATIN",),
    "Arabic": ("ARABIC",),
    "Devanagari": ("DEVANAGARI",),
    "Han": ("CJK",),
    "Japanese": ("CJK", "HIRAGANA", "KATAKANA"),
    "Hangul": ("HANGUL",),
    "Cyrillic": ("CYRILLIC",),
    "Bengali": ("BENGALI",),
    "Telugu": ("TELUGU",),
    "Greek": ("GREEK",),
    "Thai": ("THAI",),
}
BLOCKS = tuple(dict.fromkeys(b for blocks in SCRIPT_BLOCKS.values() for b in blocks))

MLQA_LANGUAGES = ("en", "ar", "de", "es", "hi", "vi", "zh")
XQUAD_LANGUAGES = ("en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
XOR_LANGUAGES = ("ar", "bn", "fi", "ja", "ko", "ru", "te")


def normalise_code(code: str, *, source: str = "input") -> str:
    """Return a canonical language code (stripped, lower-case) or raise naming the source.

    XOR-TyDi's training file labels one language `" ar"`; real data has quirks like this.
    """
    canon = str(code).strip().lower()
    if canon not in LANGUAGES:
        raise ValueError(
            f"{source}: unknown language code {code!r}; known codes: {', '.join(sorted(LANGUAGES))}"
        )
    return canon


def language_name(code: str) -> str:
    """English name of a language, as the generator prompt spells it."""
    return LANGUAGES[normalise_code(code)][0]


def script_of(code: str) -> str:
    """The Unicode script a language is written in."""
    return LANGUAGES[normalise_code(code)][1]


def letter_block(ch: str) -> str | None:
    """The block of a letter, as the prefix of its Unicode name (``LATIN``, ``CJK``, ``HIRAGANA``,
    ...; see `SCRIPT_BLOCKS`), or None for anything else."""
    name = unicodedata.name(ch, "")
    return next((b for b in BLOCKS if name.startswith(b)), None)


def script_letter_counts(text: str, script: str) -> tuple[int, int]:
    """The letters of `text` written in `script` and those written in any other."""
    blocks = SCRIPT_BLOCKS[script]
    chars = [ch for ch in text if ch.isalpha()]
    own = sum(letter_block(ch) in blocks for ch in chars)
    return own, len(chars) - own
