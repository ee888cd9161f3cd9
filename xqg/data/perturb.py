"""Adversarial query perturbations with named families and severities, for every script.

Families (severity = share of units changed, e.g. 0.1, 0.2, 0.3):

- character noise: ``char_insert``, ``char_delete``, ``char_substitute``, ``char_swap``
  (neighbours), ``char_keyboard`` (QWERTY neighbours for Latin letters, same-script letters
  elsewhere); units are the letters of the query, replacements come from the letter's own script;
- word noise: ``word_drop``, ``word_swap`` (neighbours), ``word_duplicate``; units are
  whitespace-separated words, or single ideographs for text written without spaces (zh, ja);
- cross-lingual: ``code_switch`` replaces words by their English translation from a bilingual
  dictionary (``load_dictd``: FreeDict's dictd files from Debian's ``dict-freedict-*``
  packages, which cover ar, de and es among the MLQA languages; a language without a dictionary
  is reported, not silently skipped).

Spans given as `protect` (the gold answers, when a question quotes them) are never changed.
Every perturbation is a pure function of (text, family, severity, seed).
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
from collections.abc import Sequence
from pathlib import Path

from xqg.languages import letter_block

CHAR_FAMILIES = ("char_insert", "char_delete", "char_substitute", "char_swap", "char_keyboard")
WORD_FAMILIES = ("word_drop", "word_swap", "word_duplicate")
FAMILIES = (*CHAR_FAMILIES, *WORD_FAMILIES, "code_switch")

_RANGES = {  # letters a replacement may be drawn from, per script
    "LATIN": "abcdefghijklmnopqrstuvwxyz",
    "ARABIC": "".join(chr(c) for c in range(0x0621, 0x064B)),
    "DEVANAGARI": "".join(chr(c) for c in range(0x0905, 0x093A)),
    "CJK": "".join(chr(c) for c in range(0x4E00, 0x9FA6)),
    "HANGUL": "".join(chr(c) for c in range(0xAC00, 0xD7A4)),
    "CYRILLIC": "".join(chr(c) for c in range(0x0430, 0x0450)),
    "HIRAGANA": "".join(chr(c) for c in range(0x3041, 0x3097)),
    "KATAKANA": "".join(chr(c) for c in range(0x30A1, 0x30FB)),
    "BENGALI": "".join(chr(c) for c in range(0x0985, 0x09BA)),
    "TELUGU": "".join(chr(c) for c in range(0x0C05, 0x0C3A)),
    "GREEK": "".join(chr(c) for c in range(0x03B1, 0x03CA)),
    "THAI": "".join(chr(c) for c in range(0x0E01, 0x0E2F)),
}
_QWERTY = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _keyboard_neighbours() -> dict[str, str]:
    pos = {ch: (r, c) for r, row in enumerate(_QWERTY) for c, ch in enumerate(row)}
    return {
        ch: "".join(o for o, (r2, c2) in pos.items() if o != ch and abs(r - r2) <= 1 and abs(c - c2) <= 1)
        for ch, (r, c) in pos.items()
    }


KEYBOARD = _keyboard_neighbours()


def script(ch: str) -> str | None:
    """The block of a letter that has a replacement alphabet (a key of `_RANGES`), or None."""
    block = letter_block(ch)
    return block if block in _RANGES else None


def _rng(text: str, family: str, severity: float, seed: int) -> random.Random:
    return random.Random(hashlib.sha1(f"{seed}:{family}:{severity}:{text}".encode()).hexdigest())


def _protected(text: str, protect: Sequence[str]) -> set[int]:
    out: set[int] = set()
    for span in protect:
        if span:
            for m in re.finditer(re.escape(span), text):
                out.update(range(m.start(), m.end()))
    return out


def swap_neighbours(items: list, chosen: Sequence[int]) -> list:
    """Swap each chosen item with its right neighbour; a pair already swapped is not reused."""
    taken: set[int] = set()
    for i in chosen:
        if i not in taken and i + 1 not in taken:
            items[i], items[i + 1] = items[i + 1], items[i]
            taken.update((i, i + 1))
    return items


def n_changes(units: int, severity: float) -> int:
    """How many units a severity changes: round(severity x units), at least one if any."""
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return 0 if severity == 0 or units == 0 else max(1, round(severity * units))


def _replacement(ch: str, rng: random.Random, keyboard: bool) -> str:
    lower = ch.lower()
    if keyboard and lower in KEYBOARD:
        new = rng.choice(KEYBOARD[lower])
        return new.upper() if ch.isupper() else new
    alphabet = _RANGES.get(script(ch) or "", "")
    candidates = alphabet.replace(lower, "") if alphabet else ""
    if not candidates:
        return ch
    new = rng.choice(candidates)
    return new.upper() if ch.isupper() else new


def perturb_chars(text: str, family: str, severity: float, seed: int, protect: Sequence[str] = ()) -> str:
    """Character noise on `severity` of the letters outside protected spans."""
    if family not in CHAR_FAMILIES:
        raise ValueError(f"unknown character family {family!r}; use one of {CHAR_FAMILIES}")
    rng = _rng(text, family, severity, seed)
    keep = _protected(text, protect)
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and i not in keep]
    if family == "char_swap":  # a swap needs a letter neighbour that is also free
        letters = [i for i in letters if i + 1 < len(text) and text[i + 1].isalpha() and i + 1 not in keep]
    chosen = sorted(rng.sample(letters, n_changes(len(letters), severity)))
    chars = list(text)
    if family == "char_swap":
        return "".join(swap_neighbours(chars, chosen))
    for i in reversed(chosen):  # right to left, so indices stay valid
        if family == "char_delete":
            del chars[i]
        elif family == "char_insert":
            chars.insert(i, _replacement(chars[i], rng, keyboard=False))
        else:
            chars[i] = _replacement(chars[i], rng, keyboard=family == "char_keyboard")
    return "".join(chars)


def words(text: str) -> list[str]:
    """Word units: whitespace tokens, with every ideograph a unit of its own (zh, ja)."""
    out: list[str] = []
    for token in text.split():
        parts = re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]|[^\u3040-\u30ff\u4e00-\u9fff]+", token)
        out.extend(parts)
    return out


def _join(units: list[str], spaced: bool) -> str:
    return " ".join(units) if spaced else "".join(units)


def perturb_words(
    text: str,
    family: str,
    severity: float,
    seed: int,
    protect: Sequence[str] = (),
    dictionary: dict[str, str] | None = None,
) -> str:
    """Word noise (or code-switching) on `severity` of the word units outside protected spans."""
    if family not in (*WORD_FAMILIES, "code_switch"):
        raise ValueError(f"unknown word family {family!r}")
    rng = _rng(text, family, severity, seed)
    units = words(text)
    spaced = len(units) == len(text.split())
    blocked = {i for i, u in enumerate(units) if any(u in p or p in u for p in protect if p)}
    free = [i for i in range(len(units)) if i not in blocked]
    if family == "code_switch":
        if dictionary is None:
            raise ValueError("code_switch needs a bilingual dictionary (see load_dictd)")
        free = [i for i in free if _lookup(units[i], dictionary)]
    if family == "word_swap":
        free = [i for i in free if i + 1 < len(units) and i + 1 not in blocked]
    count = n_changes(len(free), severity)
    if family == "word_drop":  # a query keeps at least one unit (Thai, written without spaces, has one)
        count = min(count, len(units) - 1)
    chosen = sorted(rng.sample(free, max(0, count)))
    if family == "word_swap":
        swap_neighbours(units, chosen)
    else:
        for i in reversed(chosen):
            if family == "word_drop":
                del units[i]
            elif family == "word_duplicate":
                units.insert(i, units[i])
            else:
                units[i] = _lookup(units[i], dictionary) or units[i]
    return _join(units, spaced or family == "code_switch")


def _lookup(word: str, dictionary: dict[str, str]) -> str | None:
    core = word.strip("¿?¡!.,;:«»\"'()؟،")
    hit = dictionary.get(core) or dictionary.get(core.lower())
    return word.replace(core, hit) if hit and core else None


def perturb(
    text: str,
    family: str,
    severity: float,
    seed: int = 0,
    protect: Sequence[str] = (),
    dictionary: dict[str, str] | None = None,
) -> str:
    """Apply one perturbation family at one severity."""
    if family in CHAR_FAMILIES:
        return perturb_chars(text, family, severity, seed, protect)
    if family in (*WORD_FAMILIES, "code_switch"):
        return perturb_words(text, family, severity, seed, protect, dictionary)
    raise ValueError(f"unknown perturbation family {family!r}; families are {FAMILIES}")


def load_dictd(prefix: str | Path) -> dict[str, str]:
    """A word -> first English translation map from a dictd dictionary (``X.index`` + ``X.dict.dz``),
    as FreeDict ships them (e.g. ``/usr/share/dictd/freedict-deu-eng``)."""
    prefix = Path(prefix)
    index, data = prefix.with_suffix(".index"), prefix.with_suffix(".dict.dz")
    if not index.exists() or not data.exists():
        raise FileNotFoundError(
            f"{prefix}: dictd files .index and .dict.dz not found "
            "(apt-get install dict-freedict-deu-eng, for example)"
        )
    body = gzip.decompress(data.read_bytes())  # offsets count bytes of the uncompressed text
    b64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}

    def decode(s: str) -> int:
        n = 0
        for c in s:
            n = n * 64 + b64[c]
        return n

    out: dict[str, str] = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00database"):
            continue
        head, offset, length = parts[0], decode(parts[1]), decode(parts[2])
        entry = body[offset : offset + length].decode("utf-8", errors="replace").splitlines()
        translation = next(
            (t.strip() for t in entry[1:] if t.strip() and not t.strip().startswith(("/", "<"))), None
        )
        translation = clean_translation(translation or "")
        if translation and " " not in head and head not in out:
            out[head] = translation
    return out


def clean_translation(text: str) -> str:
    """First sense of a dictionary line without grammar tags, notes or numbering."""
    text = re.sub(r"<[^>]*>?|\[[^\]]*\]?|\([^)]*\)|^\s*\d+\.\s*", " ", text)
    return " ".join(re.split(r"[,;]", text)[0].split())


def write_dictd(prefix: str | Path, entries: dict[str, str]) -> None:
    """Write a word -> translation map as a dictd dictionary (``X.index`` + ``X.dict.dz``), the
    format `load_dictd` reads (a hand-made dictionary for tests, or one's own word list)."""
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def encode(n: int) -> str:
        digits = ""
        while True:
            digits = b64[n % 64] + digits
            n //= 64
            if not n:
                return digits

    body, index = b"", []
    for word in sorted(entries):
        entry = f"{word}\n{entries[word]}\n".encode()
        index.append(f"{word}\t{encode(len(body))}\t{encode(len(entry))}")
        body += entry
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".dict.dz").write_bytes(gzip.compress(body, mtime=0))
    prefix.with_suffix(".index").write_text("\n".join(index) + "\n", encoding="utf-8")
