"""What made an artefact, so that a resumable or cached artefact is reused only by what made it.

Make reruns a step when its code or parameters change, but a step resumes its training folders,
generated queries, embeddings and read cache. Each such artefact is therefore *claimed* before
work starts with a `Recipe`: the hash of the code that makes it, the parameter values it depends
on, and the keys of the artefacts it is made from (so a retrained generator invalidates the queries
it wrote, and those the embeddings of the queries). The recipe is written beside the artefact as
``<name>.recipe.json``; a later claim with the same recipe keeps the artefact (a killed run
resumes, a finished one is reused) and any other recipe removes it first, naming what changed.
An artefact with no recipe (made by an older version) is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xqg.io import read_json, write_json
from xqg.study.fingerprint import fingerprint

RECIPE_SUFFIX = ".recipe.json"


def code_version(*modules: str) -> str:
    """The hash of the `xqg` modules that make an artefact (their static import closure)."""
    return fingerprint(list(modules))


def file_identity(path: str | Path, sample: int = 1 << 20) -> str:
    """A cheap identity of a possibly huge input file: its size and the SHA-256 of its first and
    last `sample` bytes (released query dumps run to tens of GB)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(sample))
        if size > 2 * sample:
            f.seek(size - sample)
            h.update(f.read(sample))
    return h.hexdigest()


@dataclass(frozen=True)
class Recipe:
    """What makes one artefact: code (a `code_version`), parameter values and upstream keys."""

    code: str
    params: Mapping[str, Any]
    inputs: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The recipe as written to disk (JSON types only)."""
        return json.loads(
            json.dumps(
                {"code": self.code, "params": dict(self.params), "inputs": dict(self.inputs)},
                sort_keys=True,
                default=str,
            )
        )

    @property
    def key(self) -> str:
        """SHA-256 of the recipe: equal keys, equal artefacts."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


def recipe_file(artefact: Path) -> Path:
    """Where an artefact's recipe is kept (beside it; a folder's beside the folder)."""
    return artefact.with_name(artefact.name + RECIPE_SUFFIX)


def _read_record(artefact: Path) -> dict | None:
    return _read_recipe(recipe_file(artefact))


def _read_recipe(path: Path) -> dict | None:
    """A recipe file's record; None when it is missing or damaged."""
    if not path.exists():
        return None
    try:
        record = read_json(path)
    except ValueError:
        return None  # a damaged record is no record: the artefact is rebuilt
    return record if isinstance(record, dict) and "key" in record else None


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two recorded recipes, in words (``generator_lr 0.001 -> 0.0005``)."""
    out = []
    if old.get("code") != new.get("code"):
        out.append("code")
    old_params, new_params = old.get("params", {}), new.get("params", {})
    for name in sorted(set(old_params) | set(new_params)):
        if old_params.get(name) != new_params.get(name):
            out.append(f"{name} {old_params.get(name)!r} -> {new_params.get(name)!r}")
    old_inputs, new_inputs = old.get("inputs", {}), new.get("inputs", {})
    out += [
        f"input {n}"
        for n in sorted(set(old_inputs) | set(new_inputs))
        if old_inputs.get(n) != new_inputs.get(n)
    ]
    return out


def remove(artefact: Path) -> None:
    """Delete a file or folder artefact (and the temporary folder an atomic write may have left)."""
    if artefact.is_dir():
        shutil.rmtree(artefact)
    elif artefact.exists():
        artefact.unlink()


def claim(artefact: Path, recipe: Recipe) -> str:
    """Make `artefact` belong to `recipe` before work on it starts, and return the recipe's key.

    Made by the same recipe: kept, to resume or reuse. Made by another, or by an unknown one:
    removed, and the new recipe recorded, so whatever is written next is this recipe's."""
    key = recipe.key
    old = _read_record(artefact)
    if old is not None and old["key"] == key:
        return key
    if artefact.exists():
        why = "made by an unrecorded recipe" if old is None else "; ".join(differences(old, recipe.as_dict()))
        print(f"rebuilding {artefact} ({why})")
        remove(artefact)
    # the machine is a record, not part of the key: the same recipe elsewhere is the same artefact
    # up to the last bits of a float sum, which `made_on` lets a reader of the results trace
    from xqg.models.device import machine_record  # torch: only where an artefact is made

    write_json(recipe_file(artefact), {"key": key, **recipe.as_dict(), "made_on": machine_record()})
    return key


def machines(folder: Path) -> dict[str, int]:
    """The machines that made the artefacts recorded under `folder`, each in words with how many
    artefacts it made ("unrecorded" for recipes written before `made_on` existed)."""
    counts: dict[str, int] = {}
    for path in sorted(folder.rglob("*" + RECIPE_SUFFIX)):
        made_on = (_read_recipe(path) or {}).get("made_on")
        name = machine_words(made_on) if made_on else "unrecorded"
        counts[name] = counts.get(name, 0) + 1
    return counts


def machine_words(made_on: Mapping[str, Any]) -> str:
    """One machine record in words: ``CPU AVX512, bf16 products native, 2 threads, torch 2.13.0+cpu``
    (and the GPU's name first when it had one)."""
    cpu = (
        f"CPU {made_on.get('cpu_capability')}, bf16 products {made_on.get('cpu_bf16_products')}, "
        f"{made_on.get('threads')} threads, torch {made_on.get('torch')}"
    )
    return f"GPU {made_on['cuda']}, {cpu}" if made_on.get("cuda") else cpu


def key_of(artefact: Path, made_by: str) -> str:
    """The recipe key of an existing artefact (an input of the next one); `made_by` names the
    step to run when there is none."""
    record = _read_record(artefact)
    if record is None or not artefact.exists():
        raise FileNotFoundError(f"{artefact}: missing or made without a recipe; run step {made_by} first")
    return record["key"]


def params_of(artefact: Path, made_by: str) -> dict[str, Any]:
    """The parameter values an existing artefact was made with."""
    key_of(artefact, made_by)
    return dict(_read_record(artefact)["params"])  # type: ignore[index]
