"""Numeric precision of model runs: bfloat16 autocast where asked, exact float32 otherwise.

bfloat16 autocast is fast on CPUs whose oneDNN has bfloat16 matrix kernels (AVX-512 and later).
On others (AVX2-only CPUs) PyTorch's bfloat16 matrix products fall back to a slow reference kernel
(on an AVX2 EPYC: one 4096x384 by 384x1536 product 9x slower than float32, a training
step of `mini`'s reader 18x; ``python -m xqg.benchmarks.precision``). There the matrix
products that autocast would run in bfloat16 are emulated: the inputs rounded to bfloat16, the
products summed by the float32 kernels (a product of two bfloat16 numbers is exact in float32) and
the result rounded to bfloat16: oneDNN's arithmetic for these ops up to the order of the sums. The
backward pass then runs in float32, as the forward's products do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

DTYPES = ("float32", "bfloat16")


def native_bf16_matmul() -> bool:
    """Whether this CPU's oneDNN has bfloat16 matrix kernels (PyTorch's own check)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _matrix_products() -> frozenset[Callable]:
    """The Python entry points of the matrix products on autocast's CPU bfloat16 list.

    Intercepted at the top so that what they decompose into (einsum into bmm, linear into addmm)
    runs in float32 too. Not attention: PyTorch's fused CPU attention has bfloat16 kernels of its
    own, within 20% of its float32 ones on AVX2 (the same benchmark), so it stays native."""
    return frozenset(
        {
            F.linear,
            torch.matmul,
            torch.mm,
            torch.bmm,
            torch.addmm,
            torch.baddbmm,
            torch.addbmm,
            torch.einsum,
            torch.Tensor.matmul,
            torch.Tensor.__matmul__,
            torch.Tensor.__rmatmul__,
            torch.Tensor.mm,
            torch.Tensor.bmm,
            torch.Tensor.addmm,
            torch.Tensor.baddbmm,
        }
    )


def _rounded(x: object) -> object:
    """A floating tensor rounded to bfloat16 and held in float32; anything else as it is."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.to(torch.bfloat16).float()
    return x


def _to_bf16(x: object) -> object:
    return x.to(torch.bfloat16) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


class EmulatedBf16Products(TorchFunctionMode):
    """Run autocast's bfloat16 matrix products as bfloat16 inputs, float32 sums, bfloat16 result."""

    def __init__(self) -> None:
        super().__init__()
        self._products = _matrix_products()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func not in self._products:
            return func(*args, **kwargs)
        with torch.autocast("cpu", enabled=False):
            out = func(*tree_map(_rounded, args), **tree_map(_rounded, kwargs))
        return tree_map(_to_bf16, out)


def autocast(
    dtype: str, device_type: str = "cpu", emulate: bool | None = None
) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on `device_type` for ``dtype="bfloat16"``; a no-op for ``float32``.

    `emulate` (default: on a CPU without `native_bf16_matmul`) runs the matrix products through
    `EmulatedBf16Products`; the other ops follow autocast's rules either way."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    enabled = dtype == "bfloat16"
    if emulate is None:
        emulate = device_type == "cpu" and not native_bf16_matmul()
    if enabled and emulate and device_type == "cpu":
        return _emulated_autocast()
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)


@contextlib.contextmanager
def _emulated_autocast() -> Iterator[None]:
    with torch.autocast("cpu", dtype=torch.bfloat16), EmulatedBf16Products():
        yield
