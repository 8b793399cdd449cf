"""Setup and shared helpers for the normalisation-kernel tests.

Without a CUDA device the Triton kernels run on CPU tensors through the triton interpreter.
Triton reads TRITON_INTERPRET when ``@triton.jit`` decorates a kernel, so it is set here, before
any test module imports ``engine.kernels``.

Tolerances (see ``RTOL``): a result passes when, elementwise,
``|actual - expected| <= rtol * |expected| + rtol * max(1, max|expected|)``, i.e. ``rtol``
relative with an absolute floor of ``rtol`` times the tensor's scale (normalised outputs are O(1)).
Against the fp64 reference: fp64 1e-9, fp32 1e-5, fp16 2e-3 (about 2 ulp), bf16 1.6e-2
(about 2 ulp). Against torch's own half-precision result the tolerance is doubled (both sides
round once).
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import types  # noqa: E402

import pytest  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

RTOL = {
    torch.float64: 1e-9,
    torch.float32: 1e-5,
    torch.float16: 2e-3,
    torch.bfloat16: 1.6e-2,
}

# (x dtype, weight/bias dtype)
DTYPES = [
    (torch.float32, torch.float32),
    (torch.float16, torch.float16),
    (torch.float16, torch.float32),
    (torch.bfloat16, torch.bfloat16),
    (torch.bfloat16, torch.float32),
]
# x shapes (..., N): N = 1, non powers of two, M = 0, M = 1, M larger and smaller than the
# number of backward programs on CPU (4)
SHAPES = [(1, 1), (3, 1), (1, 96), (5, 7), (2, 3, 33), (11, 64), (0, 16)]
X_LAYOUTS = ["contiguous", "sliced", "transposed"]
DY_LAYOUTS = ["contiguous", "sliced", "transposed", "broadcast"]


def _randn(shape, dtype, layout, gen, scale=1.0, offset=0.0):
    """Random tensor of ``shape`` with the given memory layout (values drawn in fp32).

    contiguous; sliced: every other column of a wider tensor (column stride 2);
    transposed: the last dim has the largest stride.
    """
    shape = tuple(shape)
    n = shape[-1]
    if layout == "contiguous":
        size = shape
    elif layout == "sliced":
        size = (*shape[:-1], 2 * n)
    elif layout == "transposed":
        size = (n, *shape[:-1])
    else:
        raise AssertionError(layout)
    base = (torch.randn(size, generator=gen) * scale + offset).to(device=DEVICE, dtype=dtype)
    if layout == "sliced":
        return base[..., ::2]
    return base.movedim(0, -1) if layout == "transposed" else base


def make_x(shape, dtype, layout="contiguous", seed=0, scale=1.0, offset=0.0):
    """Leaf input x (requires grad) with the given layout."""
    gen = torch.Generator().manual_seed(seed)
    return _randn(shape, dtype, layout, gen, scale, offset).requires_grad_()


def make_param(n, dtype, seed, offset=1.0):
    """Leaf (n,) parameter around ``offset`` (requires grad)."""
    gen = torch.Generator().manual_seed(seed)
    return _randn((n,), dtype, "contiguous", gen, 0.5, offset).requires_grad_()


def make_dy(shape, dtype, layout, seed=1):
    """Upstream gradient with the given layout; None for "broadcast" (then ``y.sum()`` is
    differentiated, which hands the backward a stride-0 gradient)."""
    if layout == "broadcast":
        return None
    return _randn(shape, dtype, layout, torch.Generator().manual_seed(seed)).detach()


def grads(y, inputs, dy):
    """Gradients of y (with upstream dy, or of y.sum() when dy is None) w.r.t. the non-None
    inputs; None in the places of the None inputs."""
    wanted = [t for t in inputs if t is not None]
    if dy is None:
        got = iter(torch.autograd.grad(y.sum(), wanted))
    else:
        got = iter(torch.autograd.grad(y, wanted, dy))
    return [None if t is None else next(got) for t in inputs]


def assert_close(actual, expected, rtol, name=""):
    """Elementwise rtol-relative check with an absolute floor of rtol * max(1, max|expected|)."""
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    a = actual.detach().to(torch.float64)
    e = expected.detach().to(torch.float64)
    assert torch.isfinite(a).all(), f"{name}: non-finite values"
    scale = max(1.0, e.abs().max().item()) if e.numel() else 1.0
    torch.testing.assert_close(a, e, rtol=rtol, atol=rtol * scale, msg=lambda m: f"{name}: {m}")


def compare(fn, ref, inputs, dy, rtol, ref_fp64=True):
    """Run ``fn(*inputs)`` forward and backward and compare output and input gradients with
    ``ref`` applied to fp64 copies of the inputs (or to same-dtype copies when not ref_fp64).

    Checks result dtypes (y like x, each gradient like its input). Returns (y, grads).
    """
    y = fn(*inputs)
    assert y.dtype == inputs[0].dtype and y.shape == inputs[0].shape
    got = grads(y, inputs, dy)

    def copy(t):
        if t is None:
            return None
        return (t.detach().double() if ref_fp64 else t.detach().clone()).requires_grad_()

    ref_inputs = [copy(t) for t in inputs]
    ref_dy = None if dy is None else (dy.double() if ref_fp64 else dy)
    y_ref = ref(*ref_inputs)
    want = grads(y_ref, ref_inputs, ref_dy)
    assert_close(y, y_ref, rtol, "y")
    for i, (g, w, t) in enumerate(zip(got, want, inputs)):
        if t is None:
            continue
        assert g.dtype == t.dtype, f"grad {i}: dtype {g.dtype} != {t.dtype}"
        assert_close(g, w, rtol, f"grad of input {i}")
    return y, got


@pytest.fixture
def kt():
    """Kernel-test helpers shared by the LayerNorm and RMSNorm test modules."""
    return types.SimpleNamespace(
        device=DEVICE,
        rtol=RTOL,
        make_x=make_x,
        make_param=make_param,
        make_dy=make_dy,
        grads=grads,
        assert_close=assert_close,
        compare=compare,
    )


@pytest.fixture(params=SHAPES, ids=lambda s: "x".join(map(str, s)))
def shape(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=lambda d: f"{str(d[0])[6:]}-w{str(d[1])[6:]}")
def dtypes(request):
    return request.param


@pytest.fixture(params=X_LAYOUTS)
def x_layout(request):
    return request.param


@pytest.fixture(params=DY_LAYOUTS)
def dy_layout(request):
    return request.param


@pytest.fixture
def narrow_blocks(monkeypatch):
    """Force the chunked (row wider than one block) kernel path with 16-element blocks."""
    from engine.kernels import _common

    monkeypatch.setattr(_common, "MAX_BLOCK_N", 16)
    return 16
