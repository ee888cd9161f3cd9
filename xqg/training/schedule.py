"""The learning-rate schedule shared by the training loops: linear warm-up, then linear decay."""

from __future__ import annotations

import torch


def warmup_linear_decay(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """LR factor (s + 1) / warmup for the first `warmup` steps, then falling linearly to 0 at `total`."""
    warmup = max(1, warmup)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
