"""LayerNorm with a removal strength: Triton kernels, launcher glue, autograd.Function (eager)
and custom ops (what ``torch.compile`` traces).

For x of shape (..., N), normalised over the last dim, with mu = mean(x),
sigma = sqrt(mean((x - mu)^2) + eps), d = s * sigma + (1 - s) * sigma_bar and a centring
coefficient c in [0, 1] (c = s unless given):

    y = (x - c * mu) / d * w + b

s = c = 1 is ordinary LayerNorm; s = c = 0 is the fixed affine map x / sigma_bar * w + b;
s = 0, c = 1 is (x - mu) / sigma_bar * w + b (the "FakeLN" of the LayerNorm-removal papers).

Backward, with g = dy * w, xs = x - c * mu, c1 = mean(g * xs), c2 = mean(g):

    dx = (g - c * c2) / d - s * (x - mu) * c1 / (sigma * d^2)
    dw = sum_rows(dy * xs / d),  db = sum_rows(dy)

(xs depends on x through mu: dxs_i/dx_j = delta_ij - c / N; d depends on x through sigma:
dsigma/dx_j = (x_j - mu) / (N * sigma), so dd/dx_j = s * (x_j - mu) / (N * sigma).)

Triton path: with s, c (and sigma_bar) as Python floats, outside ``torch.compile``, the kernels
take them as launch arguments through :class:`LayerNormFunction`. Under ``torch.compile``, or when
s or c is a tensor, they go through the custom ops ``tickbench::layer_norm_fwd`` and
``tickbench::layer_norm_bwd`` with s, c and sigma_bar as 0-dim tensors the kernels load, so
dynamo traces the op without a graph break and a changing strength never recompiles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._common import (
    HAS_TRITON,
    acc_dtype,
    affine,
    blend,
    check_inputs,
    check_sigma_bar,
    check_strength,
    fake_backward,
    fake_forward,
    is_one,
    launch_backward,
    launch_forward,
    like,
    param_grads,
    resolve_backend,
    scalar_args,
    scalar_tensor,
)

if HAS_TRITON:
    import triton
    import triton.language as tl

    from ._common import (
        accumulate,
        blended_rden,
        load_bwd_chunk,
        load_chunk,
        load_param,
        program_rows,
        scalar_arg,
        store_partial,
        to_compute,
    )

    @triton.jit
    def _layer_norm_fwd_kernel(
        Y,  # (M, N) output, contiguous, dtype of X
        X,  # (M, N) input, strides (stride_x_row, stride_x_col)
        W,  # (N,) weight, or None
        B,  # (N,) bias, or None
        Stats,  # (3, M) out, compute dtype: mean, rstd = 1 / sigma, rden = 1 / d
        SigmaBar,  # (1,) compute-dtype tensor holding sigma_bar when SIGMA_BAR_PTR, else None
        Strength,  # (1,) tensor holding the strength when SCALAR_PTRS, else None
        Center,  # (1,) tensor holding the centring coefficient when SCALAR_PTRS, else None
        stride_x_row,
        stride_x_col,
        M,
        N,
        eps: tl.float64,
        strength: tl.float64,  # used unless SCALAR_PTRS
        sigma_bar: tl.float64,
        center: tl.float64,  # c: the fraction of the mean subtracted; used unless SCALAR_PTRS
        HAS_WEIGHT: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        SIGMA_BAR_PTR: tl.constexpr,
        SCALAR_PTRS: tl.constexpr,
        COMPUTE: tl.constexpr,
        BLOCK_N: tl.constexpr,
        ONE_PASS: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        eps = to_compute(eps, COMPUTE)
        strength = scalar_arg(strength, Strength, SCALAR_PTRS, COMPUTE)
        center = scalar_arg(center, Center, SCALAR_PTRS, COMPUTE)
        x_row = X + row * stride_x_row
        cols = tl.arange(0, BLOCK_N)
        if ONE_PASS:  # the whole row stays in registers: x is read once
            x = load_chunk(x_row, stride_x_col, cols, N, COMPUTE)
            mean = tl.sum(x, axis=0) / N
            xc = tl.where(cols < N, x - mean, 0.0)
            var = tl.sum(xc * xc, axis=0) / N
        else:  # chunked: the mean, then the centred second moment (stable for large means)
            acc = tl.zeros([BLOCK_N], dtype=COMPUTE)
            for start in range(0, N, BLOCK_N):
                acc += load_chunk(x_row, stride_x_col, start + cols, N, COMPUTE)
            mean = tl.sum(acc, axis=0) / N
            acc = tl.zeros([BLOCK_N], dtype=COMPUTE)
            for start in range(0, N, BLOCK_N):
                xc = load_chunk(x_row, stride_x_col, start + cols, N, COMPUTE) - mean
                xc = tl.where(start + cols < N, xc, 0.0)
                acc += xc * xc
            var = tl.sum(acc, axis=0) / N
        sigma = tl.sqrt(var + eps)
        rden = blended_rden(sigma, strength, sigma_bar, SigmaBar, SIGMA_BAR_PTR)
        tl.store(Stats + row, mean)
        tl.store(Stats + M + row, 1.0 / sigma)
        tl.store(Stats + 2 * M + row, rden)
        for start in range(0, N, BLOCK_N):  # a single iteration when ONE_PASS
            c = start + cols
            if not ONE_PASS:
                x = load_chunk(x_row, stride_x_col, c, N, COMPUTE)
            y = (x - center * mean) * rden * load_param(W, c, N, 1.0, HAS_WEIGHT, COMPUTE)
            y += load_param(B, c, N, 0.0, HAS_BIAS, COMPUTE)
            tl.store(Y + row * N + c, y.to(Y.dtype.element_ty), mask=c < N)

    @triton.jit
    def _layer_norm_bwd_kernel(
        DX,  # (M, N) out, contiguous, dtype of X
        DY,  # (M, N) upstream gradient, strides (stride_dy_row, stride_dy_col), may be 0
        X,  # (M, N) input, strides (stride_x_row, stride_x_col)
        W,  # (N,) weight, or None
        Stats,  # (3, M) from the forward: mean, rstd, rden
        Partials,  # (2, P, N) zero-filled, compute dtype: per-program dW (0) and dB (1) sums
        Strength,  # (1,) tensor holding the strength when SCALAR_PTRS, else None
        Center,  # (1,) tensor holding the centring coefficient when SCALAR_PTRS, else None
        stride_dy_row,
        stride_dy_col,
        stride_x_row,
        stride_x_col,
        M,
        N,
        rows_per_program,
        strength: tl.float64,  # used unless SCALAR_PTRS
        center: tl.float64,  # c, as in the forward; used unless SCALAR_PTRS
        HAS_WEIGHT: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        SCALAR_PTRS: tl.constexpr,
        COMPUTE: tl.constexpr,
        BLOCK_N: tl.constexpr,
        ONE_PASS: tl.constexpr,
    ):
        row_start, row_end = program_rows(rows_per_program, M)
        cols = tl.arange(0, BLOCK_N)
        strength = scalar_arg(strength, Strength, SCALAR_PTRS, COMPUTE)
        center = scalar_arg(center, Center, SCALAR_PTRS, COMPUTE)
        dw_part = Partials + tl.program_id(0).to(tl.int64) * N
        db_part = dw_part + tl.num_programs(0) * N
        w = load_param(W, cols, N, 1.0, HAS_WEIGHT, COMPUTE)  # the whole row when ONE_PASS
        dw_acc = tl.zeros([BLOCK_N], dtype=COMPUTE)
        db_acc = tl.zeros([BLOCK_N], dtype=COMPUTE)
        for row in range(row_start, row_end):
            x_row = X + row * stride_x_row
            dy_row = DY + row * stride_dy_row
            mean = tl.load(Stats + row)
            rden = tl.load(Stats + 2 * M + row)
            shift = center * mean
            # pass 1: c1 = mean(g * (x - c * mu)) and c2 = mean(g), g = dy * w
            if ONE_PASS:  # x and dy stay in registers for pass 2
                x = load_chunk(x_row, stride_x_col, cols, N, COMPUTE)
                dy = load_chunk(dy_row, stride_dy_col, cols, N, COMPUTE)
                g_xs = dy * w * (x - shift)
                g = dy * w
            else:
                g_xs = tl.zeros([BLOCK_N], dtype=COMPUTE)
                g = tl.zeros([BLOCK_N], dtype=COMPUTE)
                for start in range(0, N, BLOCK_N):
                    c = start + cols
                    x, dy, w = load_bwd_chunk(
                        x_row, stride_x_col, dy_row, stride_dy_col, W, c, N, HAS_WEIGHT, COMPUTE
                    )
                    g_xs += dy * w * (x - shift)
                    g += dy * w
            c2 = tl.sum(g, axis=0) / N
            # k = s * rstd * rden^2 * c1
            k = strength * tl.load(Stats + M + row) * rden * rden * tl.sum(g_xs, axis=0) / N
            # pass 2: dx = rden * (g - c * c2) - k * (x - mu); dW += dy * (x - c * mu) * rden
            for start in range(0, N, BLOCK_N):  # a single iteration when ONE_PASS
                c = start + cols
                if not ONE_PASS:
                    x, dy, w = load_bwd_chunk(
                        x_row, stride_x_col, dy_row, stride_dy_col, W, c, N, HAS_WEIGHT, COMPUTE
                    )
                dx = rden * (dy * w - center * c2) - k * (x - mean)
                tl.store(DX + row * N + c, dx.to(DX.dtype.element_ty), mask=c < N)
                dw_acc = accumulate(
                    dw_acc, dw_part, c, N, dy * (x - shift) * rden, HAS_WEIGHT, ONE_PASS
                )
                db_acc = accumulate(db_acc, db_part, c, N, dy, HAS_BIAS, ONE_PASS)
        store_partial(dw_part, cols, N, dw_acc, HAS_WEIGHT, ONE_PASS)
        store_partial(db_part, cols, N, db_acc, HAS_BIAS, ONE_PASS)


def _forward(x, weight, bias, eps, strength, sigma_bar, center):
    """Launch the forward kernel; strength and center both floats or both tensors."""
    return launch_forward(
        _layer_norm_fwd_kernel,
        x,
        weight,
        eps,
        sigma_bar,
        n_stats=3,
        B=bias,
        HAS_BIAS=bias is not None,
        **scalar_args(x, strength=strength, center=center),
    )


def _backward(dy, x, weight, stats, strength, center, has_bias):
    """Launch the backward kernel; returns (dx, (2, N) summed dW/dB partials)."""
    return launch_backward(
        _layer_norm_bwd_kernel,
        dy,
        x,
        weight,
        stats,
        n_partials=2,
        HAS_BIAS=has_bias,
        **scalar_args(x, strength=strength, center=center),
    )


class LayerNormFunction(torch.autograd.Function):
    """Triton LayerNorm with removal strength, eager path: inputs as in :func:`layer_norm`,
    already validated, ``strength`` and ``center`` Python floats (None is resolved to
    ``strength`` by :func:`layer_norm`)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, strength, sigma_bar, center):
        y, stats = _forward(x, weight, bias, eps, strength, sigma_bar, center)
        ctx.save_for_backward(x, weight, bias, stats)
        ctx.strength = strength
        ctx.center = center
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, bias, stats = ctx.saved_tensors
        dx, sums = _backward(dy, x, weight, stats, ctx.strength, ctx.center, bias is not None)
        return (dx, *param_grads(sums, weight, bias), None, None, None, None)


if HAS_TRITON:

    @torch.library.custom_op("tickbench::layer_norm_fwd", mutates_args=())
    def layer_norm_fwd(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        eps: float,
        strength: torch.Tensor,
        center: torch.Tensor,
        sigma_bar: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Triton LayerNorm forward with strength, center and sigma_bar as 1-element tensors;
        returns (y, (3, M) stats: mean, 1 / sigma, 1 / d)."""
        return _forward(x, weight, bias, eps, strength, sigma_bar, center)

    @layer_norm_fwd.register_fake
    def _(x, weight, bias, eps, strength, center, sigma_bar):
        return fake_forward(x, n_stats=3)

    @torch.library.custom_op("tickbench::layer_norm_bwd", mutates_args=())
    def layer_norm_bwd(
        dy: torch.Tensor,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        stats: torch.Tensor,
        strength: torch.Tensor,
        center: torch.Tensor,
        has_bias: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Triton LayerNorm backward; returns (dx, (2, N) summed dW (row 0) and dB (row 1) in
        the stats dtype; row 1 is zero without bias)."""
        return _backward(dy, x, weight, stats, strength, center, has_bias)

    @layer_norm_bwd.register_fake
    def _(dy, x, weight, stats, strength, center, has_bias):
        return fake_backward(x, stats, n_partials=2)

    def _setup_context(ctx, inputs, output):
        x, weight, bias, _eps, strength, center, _sigma_bar = inputs
        _y, stats = output
        ctx.save_for_backward(x, weight, bias, stats, strength, center)
        ctx.mark_non_differentiable(stats)

    def _backward_op(ctx, dy, _dstats):
        x, weight, bias, stats, strength, center = ctx.saved_tensors
        dx, sums = layer_norm_bwd(dy, x, weight, stats, strength, center, bias is not None)
        return (dx, *param_grads(sums, weight, bias), None, None, None, None)

    layer_norm_fwd.register_autograd(_backward_op, setup_context=_setup_context)


def layer_norm_reference(x, weight, bias, eps=1e-5, strength=1.0, sigma_bar=1.0, center=None):
    """Torch reference of :func:`layer_norm` (arguments already validated; ``center`` None
    means ``strength``).

    At float ``strength == center == 1`` this is exactly ``torch.nn.functional.layer_norm``;
    otherwise, and always when strength or center is a tensor (no branch on a tensor's value),
    the formula in plain torch ops (statistics in fp32, fp64 for fp64 inputs), cast back to
    ``x.dtype``.
    """
    n = x.shape[-1]
    center = strength if center is None else center
    if is_one(strength) and is_one(center):
        return F.layer_norm(x, (n,), weight, bias, eps)
    xf = x.to(acc_dtype(x.dtype))
    mean = xf.mean(dim=-1, keepdim=True)
    sigma = torch.sqrt((xf - mean).square().mean(dim=-1, keepdim=True) + eps)
    y = (xf - like(center, xf) * mean) / blend(sigma, strength, sigma_bar)
    return affine(y, weight, bias).to(x.dtype)


def layer_norm(
    x, weight, bias, eps=1e-5, strength=1.0, sigma_bar=None, backend="auto", center=None
):
    """LayerNorm over the last dim of ``x`` with a removal ``strength``.

    Args:
        x: (..., N) floating tensor, any strides; result has the same shape and dtype.
        weight: (N,) scale (output units per normalised unit), or None for 1.
        bias: (N,) shift (output units), or None for 0.
        eps: added to the variance, in units of x squared.
        strength: s in [0, 1] (dimensionless), a float or a 1-element floating tensor (whose
            value is not checked: no host sync; under ``torch.compile`` a tensor is not a
            guarded constant, so changing it does not recompile). The divisor is
            d = s * sigma + (1 - s) * sigma_bar and, unless ``center`` is given, the centring
            subtracts s * mean: 1 is ordinary LayerNorm, 0 the fixed affine map
            x / sigma_bar * weight + bias.
        sigma_bar: fixed scale, in units of x (float, 1-element tensor, or None for 1.0). A
            constant: no gradient flows into it. Must be > 0 when given as a number and s < 1.
        backend: "auto" (Triton for CUDA tensors when triton is installed, else torch), "triton"
            (CPU tensors need TRITON_INTERPRET=1) or "torch" (reference; exactly
            ``torch.nn.functional.layer_norm`` at s = 1).
        center: c in [0, 1] (dimensionless), the fraction of the mean subtracted, independent
            of the strength, a float or a 1-element tensor like ``strength``; None (the
            default) means c = s, bit for bit. c = 1 at s = 0 is (x - mean) / sigma_bar *
            weight + bias.

    Returns:
        (..., N) tensor in x's dtype: (x - c * mean) / d * weight + bias.

    On the Triton path, floats outside ``torch.compile`` launch the kernels through
    :class:`LayerNormFunction`; under ``torch.compile``, or with a tensor strength or center,
    the custom ops ``tickbench::layer_norm_fwd``/``_bwd`` run (same kernels, same results).

    Raises:
        ValueError: bad backend, strength or center outside [0, 1], bad sigma_bar or parameter
            shapes.
    """
    strength = check_strength(strength)
    center = strength if center is None else check_strength(center, "center")
    sigma_bar = check_sigma_bar(sigma_bar, strength)
    check_inputs(x, weight=weight, bias=bias)
    if resolve_backend(backend, x) == "torch":
        return layer_norm_reference(x, weight, bias, eps, strength, sigma_bar, center)
    if (
        torch.compiler.is_compiling()
        or isinstance(strength, torch.Tensor)
        or isinstance(center, torch.Tensor)
    ):
        s, c, sb = (scalar_tensor(v, x) for v in (strength, center, sigma_bar))
        return layer_norm_fwd(x, weight, bias, float(eps), s, c, sb)[0]
    return LayerNormFunction.apply(x, weight, bias, eps, strength, sigma_bar, center)
