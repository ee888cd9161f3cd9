"""Typed step configurations read from the profile's parameter files.

A profile is a folder ``params/<profile>/`` with ``common.yml`` (keys several steps share) and
one ``<step>.yml`` per step. ``extends: <other profile>`` in ``common.yml`` inherits that
profile's files; the files merge in the order parent common, parent step, own common, own step,
later files winning, so a variant states only what differs.

Each step declares a frozen dataclass (a `StepConfig`) whose fields are exactly the YAML keys it
reads, with types and ``help`` metadata, as Tevatron's argument dataclasses do. Loading takes the
step's fields from the merged parameters, refuses a step file key the step does not declare,
a missing key, and a value of the wrong type (pydantic, strict), naming file and key.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import Field, TypeAdapter, ValidationError

from xqg.paths import PROJECT_ROOT

PARAMS = PROJECT_ROOT / "params"
EXTENDS = "extends"

C = TypeVar("C", bound="StepConfig")

# Field types with their ranges, checked when a configuration loads (before any work).
Count = Annotated[int, Field(ge=1)]  # at least one
Amount = Annotated[int, Field(ge=0)]  # 0 means none (steps) or all (caps)
Rate = Annotated[float, Field(gt=0)]  # learning rates, temperatures
Share = Annotated[float, Field(ge=0, le=1)]  # fractions and alphas
Dtype = Literal["float32", "bfloat16"]
Precision = Literal["float32", "bfloat16", "float16"]  # training: mixed precision on GPUs
SumsDtype = Literal["float64", "float32", "float16"]  # storage of generated-query embedding sums
GeneratorKind = Literal["e5-decoder", "seq2seq"]
Mode = Literal["sum", "mean", "routed-sum", "routed-mean"]  # how query embeddings fold into a passage
Training = Literal["zero-shot", "fine-tuned"]  # how an encoder was trained
ReaderData = Literal["squad", "squad-es"]  # extra reader training sets (step 01)
GeneratorSelect = Literal["round-trip", "round-trip in language"]  # e5-decoder checkpoint choice (step 02)
GeneratorData = Literal["squad-es"]  # extra generator training pairs (step 01): questions in its languages
PassageFormat = Literal["title+text", "text"]  # what a retrieval encoder reads of a passage
Severity = Annotated[float, Field(gt=0, le=1)]  # share of a query a perturbation changes
Alphas = Annotated[list[Share], Field(min_length=1)]
Modes = Annotated[list[Mode], Field(min_length=1)]
Executor = Literal["inline", "local", "slurm"]  # who runs a step's shard jobs (xqg.study.jobs)
Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")]  # where models run


def read_yaml(path: Path) -> dict:
    """A flat parameter file (name: value)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: malformed YAML: {e}") from e
    if not isinstance(data, dict) or any(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: parameter files are flat mappings of name: value")
    return data


def profiles(params: Path = PARAMS) -> tuple[str, ...]:
    """The profiles: folders of `params` with a ``common.yml``."""
    return tuple(sorted(p.name for p in params.iterdir() if (p / "common.yml").exists()))


def profile_chain(profile: str, params: Path = PARAMS) -> list[str]:
    """`profile` and the profiles it extends, the root first."""
    chain: list[str] = []
    current: str | None = profile
    while current is not None:
        common = params / current / "common.yml"
        if not common.exists():
            where = f" (extended by {chain[0]!r})" if chain else ""
            raise ValueError(f"unknown profile {current!r}{where}; profiles are {profiles(params)}")
        if current in chain:
            raise ValueError(f"{common}: 'extends' makes a cycle: {' -> '.join([*reversed(chain), current])}")
        chain.insert(0, current)
        parent = read_yaml(common).get(EXTENDS)
        if parent is not None and not isinstance(parent, str):
            raise ValueError(f"{common}: '{EXTENDS}' names one profile, got {parent!r}")
        current = parent
    return chain


def param_files(profile: str, step: str, params: Path = PARAMS) -> list[Path]:
    """The files that set a step's parameters, in merge order (existing ones only)."""
    files = []
    for name in profile_chain(profile, params):
        files += [p for p in (params / name / "common.yml", params / name / f"{step}.yml") if p.exists()]
    return files


def merged_params(profile: str, step: str, params: Path = PARAMS) -> dict[str, tuple[Any, Path]]:
    """{key: (value, the file that set it)} for one step of one profile."""
    out: dict[str, tuple[Any, Path]] = {}
    for path in param_files(profile, step, params):
        out.update({k: (v, path) for k, v in read_yaml(path).items() if k != EXTENDS})
    return out


def help_of(f: dataclasses.Field) -> str:
    """The help text of a config field."""
    return f.metadata.get("help", "")


def arg(help: str, **kwargs: Any) -> Any:
    """A config field with its help text (and optionally a default)."""
    return dataclasses.field(metadata={"help": help}, **kwargs)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepConfig:
    """Base of the steps' configurations; subclasses set `STEP` and declare fields with `arg`."""

    STEP: ClassVar[str] = ""
    device: Device = arg(
        "where models run: auto (CUDA when present, else CPU), cpu, cuda or cuda:N", default="auto"
    )

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """{field name: type} with the annotations resolved."""
        hints = typing.get_type_hints(cls, include_extras=True)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def params(self, *names: str) -> dict[str, Any]:
        """{name: value} of the named fields (when none are named, all but those that only say
        where work runs: the recipes of artefacts are made of these, and an artefact made on a
        GPU stands for the same one made on a CPU)."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = [n for n in names if n not in fields]
        if unknown:
            raise KeyError(f"{type(self).__name__} has no field {unknown}")
        return {n: getattr(self, n) for n in (names or [f for f in fields if f not in PLACEMENT])}

    @classmethod
    def problems(cls, profile: str, params: Path = PARAMS, overrides: Mapping[str, Any] = ()) -> list[str]:
        """What is wrong with this step's parameters in `profile` (empty when nothing is)."""
        merged = merged_params(profile, cls.STEP, params)
        merged.update({k: (v, Path("<overrides>")) for k, v in dict(overrides).items()})
        types = cls.field_types()
        problems = [
            f"{path}: '{key}' is not a parameter of step {cls.STEP}"
            for key, (_, path) in sorted(merged.items())
            if key not in types and path.name != "common.yml"
        ]
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        chain = profile_chain(profile, params)
        problems += [
            f"params/{chain[-1]}: '{key}' is not set for step {cls.STEP} ({help_of(f)})"
            for f in dataclasses.fields(cls)
            if (key := f.name) in required and key not in merged
        ]
        for key, typ in types.items():
            if key not in merged:
                continue
            value, path = merged[key]
            try:
                TypeAdapter(typ).validate_python(value, strict=True)
            except ValidationError as e:
                err = e.errors()[0]
                at = "".join(f"[{i}]" for i in err["loc"])
                problems.append(f"{path}: '{key}{at}' = {value!r}: {err['msg']} (expected {type_name(typ)})")
        return problems

    @classmethod
    def load(
        cls: type[C], profile: str, overrides: Mapping[str, Any] | None = None, params: Path = PARAMS
    ) -> C:
        """The step's configuration in `profile`, with `overrides` on top; refuses bad parameters."""
        overrides = dict(overrides or {})
        problems = cls.problems(profile, params, overrides)
        if problems:
            raise ValueError(
                f"parameters of step {cls.STEP} in profile {profile!r}:\n  " + "\n  ".join(problems)
            )
        merged = {k: v for k, (v, _) in merged_params(profile, cls.STEP, params).items()}
        merged.update(overrides)
        types = cls.field_types()
        values = {
            k: TypeAdapter(t).validate_python(merged[k], strict=True) for k, t in types.items() if k in merged
        }
        return cls(**values)


PLACEMENT = (
    "device",
    "executor",
    "job_gpus",
    "job_cpus",
    "job_timeout_min",
    "slurm_partition",
)  # parameters that choose where work runs, not what it computes

_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class EncodingConfig(StepConfig):
    """The retriever-encoding settings every step that encodes shares (03, 05, 06, 07)."""

    encode_dtype: Dtype = arg("float32 or bfloat16 (CPU autocast) for the retriever's encoding")
    sums_dtype: SumsDtype = arg(
        "storage of the generated queries' embedding sums (float64: exact; float16: paper scale)",
        default="float64",
    )
    routed_sums: bool = arg(
        "also keep one running sum per passage and language (the routed modes' per-language indexes)",
        default=False,
    )
    encode_query_len: Count = arg("query tokens when encoding for retrieval", default=64)
    encode_passage_len: Count = arg("passage tokens when encoding for retrieval", default=256)


def type_name(typ: Any) -> str:
    """A type as a reader of a parameter file thinks of it (`int >= 1`, `list[float in [0, 1]]`)."""
    origin = typing.get_origin(typ)
    if origin is Annotated:
        base, *extras = typing.get_args(typ)
        bound = {
            k: getattr(m, k)
            for e in extras
            for m in getattr(e, "metadata", [])
            for k in _BOUNDS
            if hasattr(m, k)
        }
        low = next((("[" if k == "ge" else "(", bound[k]) for k in ("ge", "gt") if k in bound), None)
        high = next(((bound[k], "]" if k == "le" else ")") for k in ("le", "lt") if k in bound), None)
        if low and high:
            return f"{type_name(base)} in {low[0]}{low[1]}, {high[0]}{high[1]}"
        return " ".join([type_name(base), *(f"{_BOUNDS[k]} {v}" for k, v in bound.items())])
    if origin is Literal:
        return " | ".join(str(a) for a in typing.get_args(typ))
    if origin is None:
        return getattr(typ, "__name__", str(typ))
    args = ", ".join(type_name(a) for a in typing.get_args(typ))
    return f"{origin.__name__}[{args}]"
