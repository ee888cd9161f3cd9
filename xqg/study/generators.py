"""Generator variants and loading the generator step 02 selected (shared by steps 02 and 03).

Two variants: ``full`` learns every generator language; ``seen-only`` (RQ1, trained only when
`unseen_languages` is given) learns the others and is then asked for all of them, so the unseen
languages' queries come from a model that never saw a training question in them. Its vocabulary
and language start tokens are those of the full model (the pretrained model's, as mT5's would
be); only the training questions differ.
"""

from __future__ import annotations

from collections.abc import Sequence

from xqg.generation.e5_generator import E5QuestionGenerator
from xqg.generation.seq2seq import Seq2SeqGenerator
from xqg.models.device import resolve_device
from xqg.study.workspace import Workspace

GENERATOR_KINDS = ("e5-decoder", "seq2seq")


def check_kind(kind: str) -> str:
    """`kind` if it is a known generator kind."""
    if kind not in GENERATOR_KINDS:
        raise ValueError(f"generator_kind must be one of {GENERATOR_KINDS}, got {kind!r}")
    return kind


def generator_variants(languages: Sequence[str], unseen_languages: Sequence[str]) -> dict[str, list[str]]:
    """{variant: the languages it trains on}; ``seen-only`` only when some languages are held out."""
    languages, unseen = list(languages), list(unseen_languages)
    unknown = [lang for lang in unseen if lang not in languages]
    if unknown:
        raise ValueError(f"unseen_languages {unknown} are not among generator_languages {languages}")
    seen = [lang for lang in languages if lang not in unseen]
    if unseen and not seen:
        raise ValueError("unseen_languages holds out every generator language; keep at least one seen")
    return {"full": languages, **({"seen-only": seen} if unseen else {})}


def load_trained_generator(ws: Workspace, kind: str, variant: str = "full", device: str = "auto"):
    """The generator step 02 selected (``best``), on `device`."""
    best = ws.generator_checkpoint(variant)
    if not best.exists():
        raise FileNotFoundError(f"{best}: no trained generator yet; run step 02_train_generator first")
    if check_kind(kind) == "e5-decoder":
        return E5QuestionGenerator.load(best).to(resolve_device(device))
    return Seq2SeqGenerator.from_pretrained(best).to(resolve_device(device))
