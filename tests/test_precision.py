"""bfloat16 autocast and its emulated matrix products (xqg.models.precision)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xqg.models import precision
from xqg.models.precision import autocast


def _ops(x: torch.Tensor, lin: torch.nn.Linear, mask: torch.Tensor) -> list[torch.Tensor]:
    """The matrix products the models call: linear, @, einsum; attention (native either way)."""
    h = lin(x)  # (2, 24, 64)
    q = h.view(2, 24, 4, 16).transpose(1, 2)
    return [
        h,
        x @ lin.weight.T,
        torch.einsum("bld,ed->ble", x, lin.weight),
        F.scaled_dot_product_attention(q, q, q, attn_mask=mask),
    ]


def _run(emulate: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    lin = torch.nn.Linear(32, 64)
    x = torch.randn(2, 24, 32)
    mask = torch.randn(24, 24)
    with autocast("bfloat16", "cpu", emulate):
        outs = _ops(x, lin, mask)
    sum(o.float().square().sum() for o in outs).backward()
    return outs, lin.weight.grad


def test_emulated_products_agree_with_native_bf16_autocast():
    native, native_grad = _run(emulate=False)
    emulated, emulated_grad = _run(emulate=True)
    for a, b in zip(native, emulated):
        assert a.dtype == b.dtype == torch.bfloat16
        # bf16 inputs, float32 sums, one rounding: only a sum that lands on a rounding boundary
        # in one order and not the other may differ, and then by one bf16 step
        assert (a == b).float().mean() > 0.99
        assert torch.allclose(a.float(), b.float(), rtol=2**-7, atol=1e-2)
    assert emulated_grad.dtype == torch.float32  # weights and their gradients stay float32
    assert F.cosine_similarity(native_grad.flatten(), emulated_grad.flatten(), 0) > 0.999


def test_emulated_linear_is_bf16_rounding_of_float32_sums():
    torch.manual_seed(1)
    lin = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16)
    with autocast("bfloat16", "cpu", emulate=True):
        out = lin(x)
    r = lambda t: t.to(torch.bfloat16).float()  # noqa: E731
    expected = (r(x) @ r(lin.weight).T + r(lin.bias)).to(torch.bfloat16)
    assert torch.equal(out, expected)


def test_emulation_is_chosen_on_cpus_without_bf16_kernels(monkeypatch):
    for native, stack in ((False, 1), (True, 0)):
        monkeypatch.setattr(precision, "native_bf16_matmul", lambda native=native: native)
        with autocast("bfloat16", "cpu"):
            assert torch._C._len_torch_function_stack() == stack
            assert torch.is_autocast_enabled("cpu")
    with autocast("float32", "cpu"):  # float32: no autocast, no emulation
        assert torch._C._len_torch_function_stack() == 0
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="dtype must be one of"):
        autocast("float16")
