"""Gold-passage QA quality of step 06's reader against its training steps and time (issue 12).

    python -m xqg.benchmarks.reader_curve [--profile mini] --steps 600 800 [--set reader_lr=1e-4 ...]
        [--out benchmarks/reader_curve]

For each count of ``--steps``, trains the profile's reader as step 06 does (same data, model, seed
and settings, any step 06 parameter overridable with ``--set``; the schedule spans the count, so
each is a shorter or longer run, not an early checkpoint of one run) in a folder of its own (the
study's reader is not touched), and reads every test question's gold passage: step 06's
gold-passage upper bound, EM and F1 under MLQA's normalisation. Writes ``curve.csv`` and
``curve.md``: one row per count with its training seconds (wall time; a count trained before is
reused with the seconds it took then, and a resumed one has none) and EM/F1 per language and
macro. Reads step 01's prepared data (``make 01_data``, or any run of the profile). Run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xqg.benchmarks import add_set_option, save_table, set_overrides
from xqg.models.device import resolve_device
from xqg.qa.reader import Reader
from xqg.study.reading import ReadCache, answer_queries, qa_scores
from xqg.study.steps import qa
from xqg.study.systems import GOLD, tidy
from xqg.study.workspace import Workspace

SECONDS_FILE = "benchmark_seconds.json"  # the training's wall time, beside the reader it timed


def point(ws: Workspace, config: qa.Config, folder: Path) -> dict:
    """Train (or reuse) one reader in `folder` and score it on the gold passages:
    {"steps", "seconds", "EM <language>", "F1 <language>", ... "F1 macro"}."""
    resumed = (folder / "training_state.pt").exists()  # a killed training: its clock is lost
    start = time.perf_counter()
    qa.build_reader(ws, config, folder)  # claims `folder`: other settings start it afresh
    timed = folder / SECONDS_FILE
    if not timed.exists():
        timed.write_text(json.dumps({"seconds": None if resumed else time.perf_counter() - start}))
    seconds = json.loads(timed.read_text())["seconds"]
    reader = Reader.from_pretrained(folder / ws.reader_checkpoint.name, max_length=config.reader_max_length)
    reader.to(resolve_device(config.device))
    test = qa.scored_questions(ws)
    reads = ReadCache(folder / f"gold_reads-batch{config.read_batch_size}.jsonl")
    answers = answer_queries(
        reads, reader, test, qa.gold_run(test), ws.passages(), 1, config.read_batch_size, config.reader_dtype
    )
    agg, _ = tidy(GOLD, qa_scores(test, answers), test, config.eval_benchmark, "test")
    scores = {f"{r.metric} {r.language}": r.value for r in agg.itertuples()}
    return {"steps": config.reader_steps, "seconds": seconds, **dict(sorted(scores.items()))}


def curve(
    profile: str,
    steps: Sequence[int],
    out: Path,
    overrides: dict | None = None,
    ws: Workspace | None = None,
) -> pd.DataFrame:
    """One row per count of `steps`, trained on the prepared data of `ws` (default: the profile's)."""
    ws = ws or Workspace(profile)
    if not ws.queries_file("reader").exists():
        raise FileNotFoundError(f"{ws.queries_file('reader')}: run step 01 of profile {profile!r} first")
    rows = []
    for n in steps:
        config = qa.Config.load(profile, {**(overrides or {}), "reader_steps": n})
        rows.append(point(ws, config, Path(out) / f"steps-{n}"))
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--steps", type=int, nargs="+", required=True)
    add_set_option(ap, "a step 06 parameter")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/reader_curve"))
    args = ap.parse_args(argv)
    overrides = set_overrides(ap, args.set)
    rows = curve(args.profile, args.steps, args.out, overrides)
    print(save_table(rows, args.out, "curve"))
    return rows


if __name__ == "__main__":
    main()
