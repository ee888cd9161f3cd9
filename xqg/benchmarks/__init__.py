"""Rerunnable benchmarks (speed and accuracy against a baseline measured in the same run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from xqg.io import write_csv, write_text_atomic


def save_table(rows: pd.DataFrame, out: Path, name: str) -> str:
    """Write `rows` as ``out/name.csv`` and, rounded to one decimal, ``out/name.md``; returns the
    Markdown."""
    write_csv(rows, Path(out) / f"{name}.csv")
    table = rows.round(1).to_markdown(index=False)
    write_text_atomic(Path(out) / f"{name}.md", table + "\n")
    return table
