"""engine.kernels.rms_norm: Triton kernels (through the interpreter when there is no GPU)
against torch.nn.functional.rms_norm and an independent fp64 reference of the agreed formula

    y = x / (s * sqrt(mean(x^2) + eps) + (1 - s) * sigma_bar) * w.

Tolerances are described in conftest.py (fp64 1e-9, fp32 1e-5, fp16 2e-3, bf16 1.6e-2,
relative, doubled against torch's own half-precision result).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from engine.kernels import HAS_TRITON, _common, rms_norm

EPS = 1e-6
SIGMA_BAR = 0.6

needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")


def rms_formula64(x, w, eps=EPS, strength=1.0, sigma_bar=SIGMA_BAR):
    """The agreed RMSNorm-with-strength formula, written independently of the engine."""
    rms = (x * x).mean(dim=-1, keepdim=True).add(eps).sqrt()
    y = x / (strength * rms + (1 - strength) * float(sigma_bar))
    return y if w is None else y * w


def via_triton(strength=1.0, sigma_bar=SIGMA_BAR):
    return lambda x, w: rms_norm(x, w, EPS, strength, sigma_bar, backend="triton")


def via_formula(strength=1.0, sigma_bar=SIGMA_BAR):
    return lambda x, w: rms_formula64(x, w, EPS, strength, sigma_bar)


def functional(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, EPS)


def x_and_w(kt, shape, dtype, wdtype, layout="contiguous"):
    return [kt.make_x(shape, dtype, layout), kt.make_param(shape[-1], wdtype, 3)]


@needs_triton
@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # torch, fp16/fp32
@pytest.mark.parametrize("strength", [1.0, 0.3])
def test_against_references_over_shapes_and_dtypes(kt, shape, dtypes, strength):
    dtype, wdtype = dtypes
    args = x_and_w(kt, shape, dtype, wdtype)
    dy = kt.make_dy(shape, dtype, "contiguous", seed=5)
    kt.compare(via_triton(strength), via_formula(strength), args, dy, kt.rtol[dtype])
    if strength == 1.0:
        kt.compare(via_triton(), functional, args, dy, 2 * kt.rtol[dtype], ref_fp64=False)


@needs_triton
@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_strided_inputs_and_gradients(kt, x_layout, dy_layout, strength):
    args = x_and_w(kt, (3, 2, 21), torch.bfloat16, torch.float32, x_layout)
    dy = kt.make_dy((3, 2, 21), torch.bfloat16, dy_layout, seed=7)
    kt.compare(via_triton(strength), via_formula(strength), args, dy, kt.rtol[torch.bfloat16])


@needs_triton
@pytest.mark.parametrize("strength", [1.0, 0.3])
@pytest.mark.parametrize("layouts", [("contiguous", "broadcast"), ("transposed", "sliced")])
def test_chunked_rows(kt, narrow_blocks, layouts, strength):
    shape = (2, 3, 45)
    assert shape[-1] > narrow_blocks
    args = x_and_w(kt, shape, torch.float32, torch.float32, layouts[0])
    dy = kt.make_dy(shape, torch.float32, layouts[1])
    kt.compare(via_triton(strength), via_formula(strength), args, dy, kt.rtol[torch.float32])


@needs_triton
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_without_weight_and_with_zero_rows(kt, strength):
    x = kt.make_x((4, 30), torch.float32)
    with torch.no_grad():
        x[1] = 0.0  # rms = sqrt(eps): the row must stay finite
    kt.compare(via_triton(strength), via_formula(strength), [x, None], None, kt.rtol[torch.float32])


@needs_triton
@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_gradcheck_fp64(kt, backend, strength):
    args = x_and_w(kt, (3, 5), torch.float64, torch.float64)
    sigma_bar = torch.tensor(0.7, dtype=torch.float64) if strength == 0.3 else 1.4

    def fn(x, w):
        return rms_norm(x, w, EPS, strength, sigma_bar, backend=backend)

    assert torch.autograd.gradcheck(fn, args)


@needs_triton
def test_gradcheck_fp64_chunked_rows(kt, monkeypatch):
    monkeypatch.setattr(_common, "MAX_BLOCK_N", 4)
    args = x_and_w(kt, (2, 11), torch.float64, torch.float64)
    assert torch.autograd.gradcheck(via_triton(0.7, sigma_bar=1.2), args)


@needs_triton
def test_repeat_runs_are_identical(kt):
    args = x_and_w(kt, (13, 40), torch.bfloat16, torch.bfloat16)
    first = rms_norm(*args, EPS, 0.3, SIGMA_BAR, backend="triton")
    second = rms_norm(*args, EPS, 0.3, SIGMA_BAR, backend="triton")
    assert torch.equal(first, second)
    assert all(
        torch.equal(a, b) for a, b in zip(kt.grads(first, args, None), kt.grads(second, args, None))
    )


@needs_triton
@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_backends_agree(kt, dtype, strength):
    args = x_and_w(kt, (7, 18), dtype, dtype)

    def reference_path(x, w):
        return rms_norm(x, w, EPS, strength, SIGMA_BAR, backend="torch")

    kt.compare(
        via_triton(strength),
        reference_path,
        args,
        kt.make_dy((7, 18), dtype, "sliced"),
        2 * kt.rtol[dtype],
        ref_fp64=False,
    )


def test_torch_backend_at_full_strength_is_functional_rms_norm(kt):
    args = x_and_w(kt, (5, 3, 11), torch.float32, torch.float32, "sliced")
    y, y_ref = rms_norm(*args, EPS, backend="torch"), functional(*args)
    assert torch.equal(y, y_ref)
    assert all(
        torch.equal(a, b) for a, b in zip(kt.grads(y, args, None), kt.grads(y_ref, args, None))
    )


def test_torch_backend_below_full_strength_and_constant_sigma_bar(kt):
    x, w = x_and_w(kt, (4, 16), torch.float64, torch.float64)
    sigma_bar = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    y = rms_norm(x, w, EPS, 0.25, sigma_bar, backend="torch")
    kt.assert_close(y, rms_formula64(x, w, EPS, 0.25, 2.5), kt.rtol[torch.float64])
    y.sum().backward()
    assert sigma_bar.grad is None
    kt.assert_close(rms_norm(x, w, EPS, 0.0, 2.5, backend="torch"), x / 2.5 * w, 1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(backend="gpu"), "backend"),
        (dict(strength=1.01), "strength"),
        (dict(strength=-1e-9), "strength"),
        (dict(strength=math.nan), "strength"),
        (dict(strength=0.2, sigma_bar=-1.0), "sigma_bar"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rms_norm(torch.randn(3, 5), torch.ones(5), **kwargs)
    with pytest.raises(ValueError, match="weight"):
        rms_norm(torch.randn(3, 5), torch.ones(4))
