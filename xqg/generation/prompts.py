"""The paper's generator prompt and the training triples it is fine-tuned on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xqg.data.schema import Benchmark
from xqg.languages import language_name, normalise_code

PROMPT = "Generate a {language} question for this passage: {title} {passage}"


def prompt(language: str, title: str, passage: str) -> str:
    """`Generate a {Language} question for this passage: {title} {passage}` (full language name)."""
    return PROMPT.format(language=language_name(language), title=title, passage=passage)


@dataclass(frozen=True)
class Triple:
    """(English passage, target language, question): one generator training example."""

    passage_id: str
    title: str
    passage: str
    language: str
    question: str


def triples(bench: Benchmark, languages: Iterable[str]) -> list[Triple]:
    """Training triples of a benchmark for the given target languages."""
    wanted = {normalise_code(lang, source="generator languages") for lang in languages}
    return [
        Triple(
            q.gold_passage,
            bench.passages[q.gold_passage].title,
            bench.passages[q.gold_passage].text,
            q.language,
            q.text,
        )
        for q in bench.queries
        if q.language in wanted and q.gold_passage is not None
    ]


def check_languages(languages: Sequence[str]) -> list[str]:
    """Canonical codes, refusing unknown ones with a clear error."""
    if not languages:
        raise ValueError("no target languages given")
    return [normalise_code(lang, source="target languages") for lang in languages]
