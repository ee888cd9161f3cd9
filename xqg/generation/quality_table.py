"""The quality report's held-out columns and macro row (step 03's `generation_quality.csv`).

Apart from `xqg.generation.quality` because step 02 imports that module: a change to how the
report is laid out must not retrain the generators."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xqg.generation.quality import in_language, round_trip


def held_out_columns(
    records: Sequence[dict], run: dict[str, list[tuple[str, float]]], held_out: set[str], k: int = 10
) -> pd.DataFrame:
    """Per language, the queries of the passages in `held_out` only (the generator never trained on
    them): their number, % in the requested language and round-trip R@k, `run` keyed by row index
    of `records` and searched in the whole collection. Languages without such queries get NaN."""
    rows = [i for i, r in enumerate(records) if r["passage_id"] in held_out]
    languages = sorted({r["language"] for r in records})
    table = pd.DataFrame(index=pd.Index(languages, name="language"))
    table["held-out queries"] = pd.Series(Counter(records[i]["language"] for i in rows), dtype=float)
    table["held-out queries"] = table["held-out queries"].fillna(0).astype(int)
    if rows:
        kept = [records[i] for i in rows]
        shares = {
            lang: 100 * float(np.mean([in_language(r["text"], lang) for r in kept if r["language"] == lang]))
            for lang in sorted({r["language"] for r in kept})
        }
        table["held-out in language %"] = pd.Series(shares)
        kept_run = {str(j): run[str(i)] for j, i in enumerate(rows)}
        table[f"held-out round-trip R@{k}"] = round_trip(kept, kept_run, k)
    else:
        table["held-out in language %"] = np.nan
        table[f"held-out round-trip R@{k}"] = np.nan
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
