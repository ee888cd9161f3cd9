"""Checks a step makes before any work: the models it names can be loaded, and its parameters
agree with the artefacts earlier steps made (which `StepConfig.load` cannot see).

A typo'd model name would otherwise retry the network for most of a minute and end in a long
traceback; an `n_queries` above what step 03 generated would silently score n = 2 as n = 5.
"""

from __future__ import annotations

import os
from pathlib import Path

from xqg.study.config import StepConfig, param_files, read_yaml
from xqg.study.named_models import OFFLINE_E5, TINY_ENCODERS, TINY_MT5
from xqg.study.provenance import params_of
from xqg.study.workspace import Workspace

MODEL_FIELDS = ("encoder", "generator_model", "reader_model")
STEPS_USING_GENERATED = ("05_retrieve", "06_qa", "07_robustness")


def _set_in(config: StepConfig, profile: str, key: str) -> str:
    """Where `config`'s value of `key` came from: the last parameter file that sets it, or the
    overrides when that file says otherwise."""
    files = [p for p in param_files(profile, config.STEP) if key in read_yaml(p)]
    if not files or read_yaml(files[-1])[key] != getattr(config, key):
        return "<overrides>"
    return str(files[-1])


def model_problem(name: str) -> str | None:
    """Why a model name cannot be loaded here, or None: a known offline name, an existing folder,
    a name in the Hugging Face cache, or a name the Hub knows (asked once, without retries)."""
    if name in (OFFLINE_E5, TINY_MT5, *TINY_ENCODERS):
        return None
    path = Path(name).expanduser()
    if path.exists():
        return None if path.is_dir() else f"{name} is a file, not a model folder"
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return f"no model folder {name}"
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    if huggingface_hub.try_to_load_from_cache(name, "config.json") is not None:
        return None
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"):
        return f"{name} is not in the Hugging Face cache and the Hub is switched off (HF_HUB_OFFLINE)"
    try:
        huggingface_hub.model_info(name, timeout=10)
    except RepositoryNotFoundError:
        return f"the Hugging Face Hub has no model {name}"
    except Exception as e:  # noqa: BLE001 - any network failure means: cannot download it
        return f"{name} is neither a folder nor cached, and the Hugging Face Hub is unreachable ({e})"
    return None


def check_before_work(ws: Workspace, config: StepConfig) -> None:
    """Raise ValueError naming file and key for a model that cannot be loaded or an `n_queries`
    above the queries step 03 generated per passage and language."""
    problems = []
    for key in MODEL_FIELDS:
        if hasattr(config, key) and (why := model_problem(getattr(config, key))):
            problems.append(f"{_set_in(config, ws.profile, key)}: '{key}': {why}")
    if config.STEP in STEPS_USING_GENERATED:
        generated = ws.generated_queries("full")
        made = params_of(generated, "03_generate")["n_queries"]
        wanted = config.n_queries  # type: ignore[attr-defined]
        if wanted > made:
            problems.append(
                f"{_set_in(config, ws.profile, 'n_queries')}: 'n_queries' = {wanted}, but step 03 generated "
                f"{made} per passage and language ({generated}); lower it or regenerate with more"
            )
    if problems:
        raise ValueError(f"step {config.STEP} [{ws.profile}]:\n  " + "\n  ".join(problems))
