"""Round-trip quality of the e5-decoder generator against training steps and time (issue 12).

    python -m xqg.benchmarks.generator_curve [--profile mini] [--steps 2000] [--eval-every 250]
        [--set generator_lr=1e-3 ...] [--out benchmarks/generator_curve]

Trains the profile's full generator as step 02 does (same data, model, seed and settings, any
step 02 parameter overridable with ``--set``) but for ``--steps`` steps, in a folder of its own
(the study's generator is not touched), and evaluates round-trip Recall@10 on step 02's held-out
passages every ``--eval-every`` steps. Reads step 01's prepared data (``make 01_data``, or any run
of the profile); a step 01 parameter in ``--set`` (``generator_data=[squad-es]``) prepares data of
its own under ``--out`` instead. Writes ``curve.csv`` (step, loss, Recall@10 per language and macro,
``seconds``: wall time from the first step, evaluations included) and ``curve.md``. Rerun with
the same arguments (``--steps`` may grow), it resumes from the last evaluation; with other
settings or data it starts over.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from xqg.benchmarks import add_set_option, save_table, set_overrides
from xqg.generation.train_e5 import GeneratorTrainingArgs, train_e5_generator
from xqg.study.provenance import Recipe, claim, code_version, key_of
from xqg.study.steps import data, train_generator
from xqg.study.workspace import Workspace


def curve(
    profile: str,
    steps: int,
    eval_every: int,
    out: Path,
    overrides: dict | None = None,
    ws: Workspace | None = None,
) -> pd.DataFrame:
    """Train and evaluate on the prepared data of `ws` (default: the profile's); one row per evaluation.

    `overrides` of step 01 parameters prepare the data anew in ``out/work`` (same models)."""
    overrides = dict(overrides or {})
    step01, step02 = set(data.Config.field_types()), set(train_generator.Config.field_types())
    data_overrides = {k: v for k, v in overrides.items() if k in step01}  # `seed` is both steps'
    ws = ws or Workspace(profile)
    if data_overrides:
        ws = Workspace(profile, out / "work", out / "results", out / "figures")
        data.run(ws, data.Config.load(profile, data_overrides))
    # the rest is step 02's (a name neither step knows is refused there, by name)
    mine = {k: v for k, v in overrides.items() if k not in step01 - step02}
    config = train_generator.Config.load(profile, mine)
    if config.generator_kind != "e5-decoder":
        raise ValueError(f"profile {profile!r} trains a {config.generator_kind} generator, not an e5-decoder")
    if not ws.generator_train.exists():
        raise FileNotFoundError(f"{ws.generator_train}: run step 01 of profile {profile!r} first")
    # a rerun trains on only what was trained with these settings and data; anything else restarts
    settings = {**config.params(), "eval_every": eval_every}
    inputs = {"data": key_of(ws.data, "01_data")}
    claim(out / "generator", Recipe(code_version(train_generator.__name__), settings, inputs))
    every = ws.triples()
    gen, heldout, collection = train_generator.e5_generator_setup(ws, config, every)
    args = GeneratorTrainingArgs(
        output_dir=str(out / "generator"),
        steps=steps,
        batch_size=config.generator_batch_size,
        learning_rate=config.generator_lr,
        eval_every=eval_every,
        seed=config.seed,
        dtype=config.generator_dtype,
        select=config.generator_select,
    )
    start, times = time.perf_counter(), {}

    def clock(step: int) -> None:
        times[step] = time.perf_counter() - start

    history = train_e5_generator(gen, every, heldout, collection, args, on_evaluation=clock)
    rows = pd.DataFrame(history)
    rows["seconds"] = rows["step"].map(times)  # NaN for evaluations made before a resume
    rows["triples"] = len(every)
    rows["heldout_passages"] = len(heldout)
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=250)
    add_set_option(ap, "a step 01/02 parameter")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/generator_curve"))
    args = ap.parse_args(argv)
    overrides = set_overrides(ap, args.set)
    rows = curve(args.profile, args.steps, args.eval_every, args.out, overrides)
    print(save_table(rows, args.out, "curve"))
    return rows


if __name__ == "__main__":
    main()
