"""xDR training across processes: step 04 writes a launch folder and runs this module under
``torchrun`` (one process per GPU, or several gloo processes on a CPU), as Tevatron's
``python -m torch.distributed.run ... -m tevatron.driver.train`` does.

The folder holds ``spec.json`` (the encoder to start from, the device, `TrainingArgs`) and
``examples.jsonl`` (query, positives, negatives). Rank 0 writes ``result.json`` when training
ends; checkpoints go to ``args.output_dir`` as in a one-process run, so a killed multi-process
run resumes from its last checkpoint too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from xqg.io import iter_jsonl, write_json, write_jsonl
from xqg.models.device import resolve_device
from xqg.models.encoder import Encoder
from xqg.training.dense_retriever import TrainExample, TrainingArgs, train


def write_launch(
    folder: Path, encoder: str, device: str, examples: Sequence[TrainExample], args: TrainingArgs
) -> Path:
    """Write what the worker processes read; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(
        folder / "examples.jsonl",
        (
            {"query": e.query, "positives": list(e.positives), "negatives": list(e.negatives)}
            for e in examples
        ),
    )
    write_json(folder / "spec.json", {"encoder": encoder, "device": device, "args": asdict(args)})
    return folder


def torchrun(folder: Path, processes: int) -> dict:
    """Run `processes` workers on `folder` under torchrun (standalone: one machine); returns rank
    0's result. Each CPU worker gets an even share of the cores unless OMP_NUM_THREADS is set."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
        "-m", __name__, str(folder),
    ]  # fmt: skip
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun of {folder} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = folder / "result.json"
    if not result.exists():
        raise RuntimeError(f"{result}: torchrun ended without rank 0's result")
    return json.loads(result.read_text())


def main(folder: str) -> None:
    """One worker process: load, train its slice of every batch, rank 0 reports."""
    import torch

    folder_ = Path(folder)
    spec = json.loads((folder_ / "spec.json").read_text())
    examples = [
        TrainExample(r["query"], tuple(r["positives"]), tuple(r["negatives"]))
        for r in iter_jsonl(folder_ / "examples.jsonl")
    ]
    encoder = Encoder.from_pretrained(spec["encoder"]).to(resolve_device(spec["device"]))
    out = train(encoder, examples, TrainingArgs(**spec["args"]))
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    if rank == 0:
        write_json(
            folder_ / "result.json", {"step": out["step"], "losses": out["losses"], "processes": world}
        )
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
