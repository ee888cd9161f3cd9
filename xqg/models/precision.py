"""Numeric precision of model runs: bfloat16 autocast where asked, exact float32 otherwise."""

from __future__ import annotations

import contextlib

import torch

DTYPES = ("float32", "bfloat16")


def autocast(dtype: str, device_type: str = "cpu") -> contextlib.AbstractContextManager:
    """bfloat16 autocast on `device_type` for ``dtype="bfloat16"``; a no-op for ``float32``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
