"""The quality report's held-out columns and macro row (step 03's `generation_quality.csv`).

Apart from `xqg.generation.quality` because step 02 imports that module: a change to how the
report is laid out must not retrain the generators."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xqg.generation.quality import report, round_trip


def held_out_columns(
    records: Sequence[dict], run: dict[str, list[tuple[str, float]]], held_out: set[str], k: int = 10
) -> pd.DataFrame:
    """Per language, the queries of the passages in `held_out` only (the generator never trained on
    them): their number, % in the requested language and round-trip R@k, `run` keyed by row index
    of `records` and searched in the whole collection. Languages without such queries get NaN."""
    rows = [i for i, r in enumerate(records) if r["passage_id"] in held_out]
    kept = [records[i] for i in rows]
    table = pd.DataFrame(index=pd.Index(sorted({r["language"] for r in records}), name="language"))
    # the report's own counts and language check, over the held-out queries only
    own = report(kept) if kept else pd.DataFrame(columns=["queries", "in language %"])
    table["held-out queries"] = own["queries"].reindex(table.index).fillna(0).astype(int)
    table["held-out in language %"] = own["in language %"].reindex(table.index).astype(float)
    kept_run = {str(j): run[str(i)] for j, i in enumerate(rows)}
    table[f"held-out round-trip R@{k}"] = round_trip(kept, kept_run, k) if kept else np.nan
    return table


def with_macro(table: pd.DataFrame) -> pd.DataFrame:
    """`table` (one row per language) and a ``macro`` row: counts summed, every other column the
    unweighted mean over the languages that have a value."""
    counts = [c for c in table.columns if "queries" in c]
    macro = table.mean(numeric_only=True)
    macro[counts] = table[counts].sum()
    out = pd.concat([table, macro.to_frame("macro").T])
    out[counts] = out[counts].astype(int)
    return out.rename_axis(table.index.name)
