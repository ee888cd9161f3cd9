"""Rerunnable benchmarks (speed and accuracy against a baseline measured in the same run)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from xqg.io import write_csv, write_text_atomic


def save_table(rows: pd.DataFrame, out: Path, name: str) -> str:
    """Write `rows` as ``out/name.csv`` and, rounded to one decimal, ``out/name.md``; returns the
    Markdown."""
    write_csv(rows, Path(out) / f"{name}.csv")
    table = rows.round(1).to_markdown(index=False)
    write_text_atomic(Path(out) / f"{name}.md", table + "\n")
    return table


def add_set_option(ap: argparse.ArgumentParser, what: str) -> None:
    """``--set NAME=VALUE`` (repeatable): `what` (a step's parameter) on top of the profile."""
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=what)


def set_overrides(ap: argparse.ArgumentParser, items: list[str]) -> dict:
    """The ``--set`` items as {name: value}, each value read as YAML (``1e-4``, ``[squad-es]``)."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected NAME=VALUE")
        overrides[name] = yaml.safe_load(value)
    return overrides
