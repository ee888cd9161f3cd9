"""Where models run: CUDA when present, else the CPU, or what a profile names.

Every model of the study is moved to the device once, when it is loaded; its methods move each
batch to the device of its own weights (`device_of`), so no caller passes tensors around.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from xqg.models.precision import native_bf16_matmul

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N"


def resolve_device(name: str = "auto") -> torch.device:
    """The device a parameter names: ``auto`` is the first CUDA device when one is present, else
    the CPU; ``cuda`` without a GPU is an error, not a silent fallback."""
    if name == "auto":  # under torchrun each process takes the GPU of its local rank
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device {name!r} is not one of {DEVICE_CHOICES}") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not one of {DEVICE_CHOICES}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this machine has no CUDA device (use auto or cpu)")
    return device


def device_of(module: torch.nn.Module) -> torch.device:
    """The device of a module's weights (the CPU for a module without any)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def to_device(batch: dict, device: torch.device) -> dict:
    """A tokenizer's output with every tensor on `device` (other entries as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def machine_record() -> dict[str, Any]:
    """What the machine that makes an artefact computes with: the torch build, the first CUDA
    device (if any), the CPU's kernel level and whether its bfloat16 matrix products are native or
    emulated (`xqg.models.precision`), and the threads. Two machines that differ here may differ
    in the last bits of a float sum, and so in a tie among questions or a sampled token."""
    return {
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16_products": "native" if native_bf16_matmul() else "emulated",
        "threads": torch.get_num_threads(),
    }
