"""Generation in one process against the same work in shard jobs (submitit's local executor).

Autoregressive decoding runs many small matrix products, which two threads of one process share
poorly; two single-threaded processes on two cores may do better. This measures it on the
`mini` generator and collection (step 02 must have run): the first `--passages` passages, every
generator language, `n_queries` each, once inline with the machine's threads and once as
`--shards` concurrent jobs of `--threads` threads, and says whether the merged file has the
bytes of the single-process one. Run it on a quiet machine:

    python -m xqg.benchmarks.generation_shards --passages 128
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from xqg.study.provenance import Recipe
from xqg.study.steps import generate
from xqg.study.workspace import Workspace, save_passages


def measure(profile: str, passages: int, shards: int, threads: int) -> dict:
    """Seconds of the inline and the sharded run, their ratio, and whether the bytes agree."""
    ws = Workspace(profile)
    config = generate.Config.load(profile)
    sample = dict(list(ws.passages().items())[:passages])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collection = root / "collection.jsonl"
        save_passages(collection, sample)
        recipe = Recipe("benchmark", {"passages": passages})
        out = {}
        for name, overrides in (
            ("inline", {"generation_shards": 1, "executor": "inline"}),
            ("sharded", {"generation_shards": shards, "executor": "local", "job_cpus": threads}),
        ):
            c = dataclasses.replace(config, **overrides)
            target = root / f"{name}.jsonl"
            start = time.perf_counter()
            generate._sample(ws, c, "full", collection, c.n_queries, target, recipe)
            out[f"{name} s"] = round(time.perf_counter() - start, 1)
            out[f"{name} bytes"] = target.read_bytes()
    same = out.pop("inline bytes") == out.pop("sharded bytes")
    return {
        "passages": passages,
        "languages": len(config.generator_languages),
        "torch threads inline": torch.get_num_threads(),
        "shards x threads": f"{shards} x {threads}",
        **out,
        "speed-up": round(out["inline s"] / out["sharded s"], 2),
        "identical bytes": same,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--passages", type=int, default=128)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    for key, value in measure(args.profile, args.passages, args.shards, args.threads).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
