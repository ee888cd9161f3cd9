"""Shared fixtures: the real benchmark files (fetched by `make data`) and tiny models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xqg.paths import data_dir

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def raw_data() -> Path:
    """The data folder; the suite needs `make data` (or XQG_DATA_DIR) first."""
    root = data_dir()
    if not (root / "MANIFEST.json").exists():
        pytest.fail(f"{root} has no verified data: run `make data` (XQG_DATA_MIRROR=../shared/data)")
    return root


@pytest.fixture(scope="session")
def mlqa(raw_data):
    from xqg.data.mlqa import load_mlqa

    return load_mlqa(root=raw_data)


@pytest.fixture(scope="session")
def small_texts(mlqa) -> list[str]:
    """A few hundred real texts to train tiny tokenizers on."""
    passages = [p.text for p in list(mlqa.passages.values())[:40]]
    return passages + [q.text for q in mlqa.queries[::20]]


def roots_env(root: Path) -> dict[str, str]:
    """Environment that sends a run's work, results, figures and notebooks under `root`."""
    return {
        "XQG_WORK_DIR": str(root / "work"),
        "XQG_RESULTS_DIR": str(root / "results"),
        "XQG_FIGURES_DIR": str(root / "figures"),
        "XQG_RUNS_DIR": str(root / "runs"),
    }


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, raw_data):
    """Every step of the smoke profile, run through the pipeline into temporary folders."""
    from xqg.study.steps import STEPS

    root = tmp_path_factory.mktemp("smoke")
    for step in STEPS:
        proc = subprocess.run(
            [sys.executable, "-m", "xqg.pipeline", "run", step, "--profile", "smoke"],
            env={**os.environ, **roots_env(root)},
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{step} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return root
