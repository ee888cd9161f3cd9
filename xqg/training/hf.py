"""What the Hugging Face `Trainer` runs of this package share: where it trains, and stopping early.

Used by the xDR (`xqg.training.dense_retriever`) and the seq2seq generator
(`xqg.generation.seq2seq`).
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

PRECISIONS = ("float32", "bfloat16", "float16")


def device_flags(device: torch.device, precision: str) -> dict[str, bool]:
    """`TrainingArguments` flags for `device`: the CPU trains in float32 (exact, as `mini` needs);
    a GPU in `precision` (bfloat16 / float16 mixed precision, or float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {PRECISIONS}")
    on_gpu = device.type == "cuda"
    return {
        "use_cpu": not on_gpu,
        "bf16": on_gpu and precision == "bfloat16",
        "fp16": on_gpu and precision == "float16",
    }


class StopAfter(TrainerCallback):
    """Ends training, checkpointed, after `steps` more steps (a time-sliced job, or a kill)."""

    def __init__(self, steps: int):
        self.steps, self.stop_at = steps, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.stop_at = state.global_step + self.steps

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop_at is not None and state.global_step >= self.stop_at:
            control.should_save = True
            control.should_training_stop = True
