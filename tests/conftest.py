"""Shared fixtures: the real benchmark files (fetched by `make data`) and tiny models."""

from __future__ import annotations

import os
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
