"""Where the study keeps data, models and results (overridable by environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Raw benchmark files, laid out as the official releases lay them out."""
    return Path(os.environ.get("XQG_DATA_DIR", PROJECT_ROOT / "data" / "raw"))


def models_dir() -> Path:
    """Converted and trained model checkpoints."""
    return Path(os.environ.get("XQG_MODELS_DIR", PROJECT_ROOT / "models"))


def work_dir(profile: str) -> Path:
    """Intermediate artefacts of one profile (embeddings, generated queries, runs)."""
    return Path(os.environ.get("XQG_WORK_DIR", PROJECT_ROOT / "work")) / profile


def results_dir(profile: str) -> Path:
    """Metrics, tables and per-query results of one profile."""
    return Path(os.environ.get("XQG_RESULTS_DIR", PROJECT_ROOT / "results")) / profile


def figures_dir(profile: str) -> Path:
    """The paper's figures of one profile (PDF and PNG)."""
    return Path(os.environ.get("XQG_FIGURES_DIR", PROJECT_ROOT / "figures")) / profile


def runs_dir(profile: str) -> Path:
    """Executed notebooks of one profile (the record of each step's last run)."""
    return Path(os.environ.get("XQG_RUNS_DIR", PROJECT_ROOT / "runs")) / profile
