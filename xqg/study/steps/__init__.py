"""The study's steps, one module each, in pipeline order.

Each step module defines a `Config` (a `xqg.study.config.StepConfig` whose fields are the step's
parameter keys) and ``run(workspace, config)``. Steps never import each other: what two steps
share lives one level up (`workspace`, `systems`, `encoding`, `generators`, `reading`, `report`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from xqg.study.config import StepConfig

STEP_MODULES = {
    "01_data": "data",
    "02_train_generator": "train_generator",
    "03_generate": "generate",
    "04_train_retriever": "train_retriever",
    "05_retrieve": "retrieve",
    "05b_ceiling": "ceiling",
    "06_qa": "qa",
    "07_robustness": "robustness",
    "08_analysis": "analysis",
}
STEPS = tuple(STEP_MODULES)


def module_name(step: str) -> str:
    """The dotted module of a step."""
    if step not in STEP_MODULES:
        raise ValueError(f"unknown step {step!r}; steps are {STEPS}")
    return f"{__name__}.{STEP_MODULES[step]}"


def step_module(step: str) -> ModuleType:
    """The module of a step (imported on demand)."""
    return importlib.import_module(module_name(step))


def step_config(step: str) -> type[StepConfig]:
    """The configuration class of a step."""
    return step_module(step).Config
