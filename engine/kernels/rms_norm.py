"""RMSNorm with a removal strength: Triton kernels, launcher glue, autograd.Function (eager)
and custom ops (what ``torch.compile`` traces).

For x of shape (..., N), normalised over the last dim, with r = sqrt(mean(x^2) + eps) and
d = s * r + (1 - s) * sigma_bar:

    y = x / d * w

Backward, with g = dy * w and c = mean(g * x) (d depends on x through r, dr/dx_j = x_j / (N r)):

    dx = g / d - s * x * c / (r * d^2),    dw = sum_rows(dy * x / d)

Triton path: a float s outside ``torch.compile`` is a launch argument (:class:`RMSNormFunction`);
under ``torch.compile``, or when s is a tensor, the custom ops ``tickbench::rms_norm_fwd`` and
``tickbench::rms_norm_bwd`` run with s and sigma_bar as 0-dim tensors the kernels load (no graph
break, no recompile when s changes), as for LayerNorm.
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
    def _rms_norm_fwd_kernel(
        Y,  # (M, N) output, contiguous, dtype of X
        X,  # (M, N) input, strides (stride_x_row, stride_x_col)
        W,  # (N,) weight, or None
        Stats,  # (2, M) out, compute dtype: rrms = 1 / r, rden = 1 / d
        SigmaBar,  # (1,) compute-dtype tensor holding sigma_bar when SIGMA_BAR_PTR, else None
        Strength,  # (1,) tensor holding the strength when SCALAR_PTRS, else None
        stride_x_row,
        stride_x_col,
        M,
        N,
        eps: tl.float64,
        strength: tl.float64,  # used unless SCALAR_PTRS
        sigma_bar: tl.float64,
        HAS_WEIGHT: tl.constexpr,
        SIGMA_BAR_PTR: tl.constexpr,
        SCALAR_PTRS: tl.constexpr,
        COMPUTE: tl.constexpr,
        BLOCK_N: tl.constexpr,
        ONE_PASS: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        cols = tl.arange(0, BLOCK_N)
        strength = scalar_arg(strength, Strength, SCALAR_PTRS, COMPUTE)
        eps = to_compute(eps, COMPUTE)
        x_row = X + row * stride_x_row
        if ONE_PASS:  # the whole row stays in registers: x is read once
            x = load_chunk(x_row, stride_x_col, cols, N, COMPUTE)
            sum_sq = tl.sum(x * x, axis=0)
        else:  # chunked: the sum of squares, then a second read to write y
            acc = tl.zeros([BLOCK_N], dtype=COMPUTE)
            for start in range(0, N, BLOCK_N):
                xk = load_chunk(x_row, stride_x_col, start + cols, N, COMPUTE)
                acc += xk * xk
            sum_sq = tl.sum(acc, axis=0)
        rms = tl.sqrt(sum_sq / N + eps)
        rden = blended_rden(rms, strength, sigma_bar, SigmaBar, SIGMA_BAR_PTR)
        tl.store(Stats + row, 1.0 / rms)
        tl.store(Stats + M + row, rden)
        for start in range(0, N, BLOCK_N):  # a single iteration when ONE_PASS
            c = start + cols
            if not ONE_PASS:
                x = load_chunk(x_row, stride_x_col, c, N, COMPUTE)
            y = x * rden * load_param(W, c, N, 1.0, HAS_WEIGHT, COMPUTE)
            tl.store(Y + row * N + c, y.to(Y.dtype.element_ty), mask=c < N)

    @triton.jit
    def _rms_norm_bwd_kernel(
        DX,  # (M, N) out, contiguous, dtype of X
        DY,  # (M, N) upstream gradient, strides (stride_dy_row, stride_dy_col), may be 0
        X,  # (M, N) input, strides (stride_x_row, stride_x_col)
        W,  # (N,) weight, or None
        Stats,  # (2, M) from the forward: rrms, rden
        Partials,  # (1, P, N) zero-filled, compute dtype: per-program dW sums
        Strength,  # (1,) tensor holding the strength when SCALAR_PTRS, else None
        stride_dy_row,
        stride_dy_col,
        stride_x_row,
        stride_x_col,
        M,
        N,
        rows_per_program,
        strength: tl.float64,  # used unless SCALAR_PTRS
        HAS_WEIGHT: tl.constexpr,
        SCALAR_PTRS: tl.constexpr,
        COMPUTE: tl.constexpr,
        BLOCK_N: tl.constexpr,
        ONE_PASS: tl.constexpr,
    ):
        first, last = program_rows(rows_per_program, M)
        cols = tl.arange(0, BLOCK_N)
        strength = scalar_arg(strength, Strength, SCALAR_PTRS, COMPUTE)
        dw_part = Partials + tl.program_id(0).to(tl.int64) * N
        w = load_param(W, cols, N, 1.0, HAS_WEIGHT, COMPUTE)  # the whole row when ONE_PASS
        dw_acc = tl.zeros([BLOCK_N], dtype=COMPUTE)
        for row in range(first, last):
            x_row = X + row * stride_x_row
            dy_row = DY + row * stride_dy_row
            # pass 1: mean(g * x), g = dy * w
            if ONE_PASS:  # x and dy stay in registers for pass 2
                x = load_chunk(x_row, stride_x_col, cols, N, COMPUTE)
                dy = load_chunk(dy_row, stride_dy_col, cols, N, COMPUTE)
                gx = dy * w * x
            else:
                gx = tl.zeros([BLOCK_N], dtype=COMPUTE)
                for start in range(0, N, BLOCK_N):
                    c = start + cols
                    x, dy, w = load_bwd_chunk(
                        x_row, stride_x_col, dy_row, stride_dy_col, W, c, N, HAS_WEIGHT, COMPUTE
                    )
                    gx += dy * w * x
            # pass 2: dx = rden * g - k * x with k = s * rrms * rden^2 * mean(g * x);
            # dW += dy * x * rden
            rden = tl.load(Stats + M + row)
            k = strength * tl.load(Stats + row) * rden * rden * tl.sum(gx, axis=0) / N
            for start in range(0, N, BLOCK_N):  # a single iteration when ONE_PASS
                c = start + cols
                if not ONE_PASS:
                    x, dy, w = load_bwd_chunk(
                        x_row, stride_x_col, dy_row, stride_dy_col, W, c, N, HAS_WEIGHT, COMPUTE
                    )
                dx = rden * dy * w - k * x
                tl.store(DX + row * N + c, dx.to(DX.dtype.element_ty), mask=c < N)
                dw_acc = accumulate(dw_acc, dw_part, c, N, dy * x * rden, HAS_WEIGHT, ONE_PASS)
        store_partial(dw_part, cols, N, dw_acc, HAS_WEIGHT, ONE_PASS)


def _forward(x, weight, eps, strength, sigma_bar):
    """Launch the forward kernel (strength a float or a tensor); returns (y, (2, M) stats)."""
    return launch_forward(
        _rms_norm_fwd_kernel,
        x,
        weight,
        eps,
        sigma_bar,
        n_stats=2,
        **scalar_args(x, strength=strength),
    )


def _backward(dy, x, weight, stats, strength):
    """Launch the backward kernel; returns (dx, (1, N) summed dW partials)."""
    return launch_backward(
        _rms_norm_bwd_kernel,
        dy,
        x,
        weight,
        stats,
        n_partials=1,
        **scalar_args(x, strength=strength),
    )


class RMSNormFunction(torch.autograd.Function):
    """Triton RMSNorm with removal strength, eager path: inputs as in :func:`rms_norm`, already
    validated, ``strength`` a Python float."""

    @staticmethod
    def forward(ctx, x, weight, eps, strength, sigma_bar):
        y, stats = _forward(x, weight, eps, strength, sigma_bar)
        ctx.save_for_backward(x, weight, stats)
        ctx.strength = strength
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, stats = ctx.saved_tensors
        dx, sums = _backward(dy, x, weight, stats, ctx.strength)
        return (dx, *param_grads(sums, weight), None, None, None)


if HAS_TRITON:

    @torch.library.custom_op("tickbench::rms_norm_fwd", mutates_args=())
    def rms_norm_fwd(
        x: torch.Tensor,
        weight: torch.Tensor | None,
        eps: float,
        strength: torch.Tensor,
        sigma_bar: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Triton RMSNorm forward with strength and sigma_bar as 1-element tensors; returns
        (y, (2, M) stats: 1 / r, 1 / d)."""
        return _forward(x, weight, eps, strength, sigma_bar)

    @rms_norm_fwd.register_fake
    def _(x, weight, eps, strength, sigma_bar):
        return fake_forward(x, n_stats=2)

    @torch.library.custom_op("tickbench::rms_norm_bwd", mutates_args=())
    def rms_norm_bwd(
        dy: torch.Tensor,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        stats: torch.Tensor,
        strength: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Triton RMSNorm backward; returns (dx, (1, N) summed dW in the stats dtype)."""
        return _backward(dy, x, weight, stats, strength)

    @rms_norm_bwd.register_fake
    def _(dy, x, weight, stats, strength):
        return fake_backward(x, stats, n_partials=1)

    def _setup_context(ctx, inputs, output):
        x, weight, _eps, strength, _sigma_bar = inputs
        _y, stats = output
        ctx.save_for_backward(x, weight, stats, strength)
        ctx.mark_non_differentiable(stats)

    def _backward_op(ctx, dy, _dstats):
        x, weight, stats, strength = ctx.saved_tensors
        dx, sums = rms_norm_bwd(dy, x, weight, stats, strength)
        return (dx, *param_grads(sums, weight), None, None, None)

    rms_norm_fwd.register_autograd(_backward_op, setup_context=_setup_context)


def rms_norm_reference(x, weight, eps=1e-6, strength=1.0, sigma_bar=1.0):
    """Torch reference of :func:`rms_norm` (arguments already validated).

    At a float ``strength == 1`` this is exactly ``torch.nn.functional.rms_norm``; otherwise, and
    always for a tensor strength (no branch on its value), the formula in plain torch ops
    (statistics in fp32, fp64 for fp64 inputs), cast back to ``x.dtype``.
    """
    if is_one(strength):
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    xf = x.to(acc_dtype(x.dtype))
    rms = torch.sqrt(xf.square().mean(dim=-1, keepdim=True) + eps)
    return affine(xf / blend(rms, strength, sigma_bar), weight).to(x.dtype)


def rms_norm(x, weight, eps=1e-6, strength=1.0, sigma_bar=None, backend="auto"):
    """RMSNorm over the last dim of ``x`` with a removal ``strength``.

    Args:
        x: (..., N) floating tensor, any strides; result has the same shape and dtype.
        weight: (N,) scale (output units per normalised unit), or None for 1.
        eps: added to the mean square, in units of x squared.
        strength: s in [0, 1] (dimensionless), a float or a 1-element floating tensor (value
            not checked: no host sync, and no recompile under ``torch.compile`` when it
            changes). The divisor is d = s * rms + (1 - s) * sigma_bar: 1 is ordinary RMSNorm,
            0 the fixed map x / sigma_bar * weight.
        sigma_bar: fixed scale, in units of x (float, 1-element tensor, or None for 1.0). A
            constant: no gradient flows into it. Must be > 0 when given as a number and s < 1.
        backend: "auto" (Triton for CUDA tensors when triton is installed, else torch), "triton"
            (CPU tensors need TRITON_INTERPRET=1) or "torch" (reference; exactly
            ``torch.nn.functional.rms_norm`` at s = 1).

    Returns:
        (..., N) tensor in x's dtype: x / d * weight.

    Raises:
        ValueError: bad backend, strength outside [0, 1], bad sigma_bar or weight shape.
    """
    strength = check_strength(strength)
    sigma_bar = check_sigma_bar(sigma_bar, strength)
    check_inputs(x, weight=weight)
    if resolve_backend(backend, x) == "torch":
        return rms_norm_reference(x, weight, eps, strength, sigma_bar)
    if torch.compiler.is_compiling() or isinstance(strength, torch.Tensor):
        s, sb = scalar_tensor(strength, x), scalar_tensor(sigma_bar, x)
        return rms_norm_fwd(x, weight, float(eps), s, sb)[0]
    return RMSNormFunction.apply(x, weight, eps, strength, sigma_bar)
