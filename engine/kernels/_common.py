"""Pieces shared by the row-wise normalisation kernels (LayerNorm and RMSNorm).

Both ops normalise the last dimension of ``x`` viewed as ``(M, N)`` rows, blend the per-row
scale with a fixed ``sigma_bar`` through ``strength``, and use the same kernel layout:

* forward: one program per row, statistics in fp32 (fp64 for fp64 inputs), saved as a
  ``(n_stats, M)`` buffer for the backward pass;
* backward: one fused kernel over ``P`` programs (about one per streaming multiprocessor), each
  owning a strip of consecutive rows: it writes ``dx`` and accumulates the weight/bias gradient
  partials of its strip in fp32 (fp64 for fp64 inputs) into its own row of a ``(n_partials, P, N)``
  buffer, which is then summed with ``torch.sum``. No locks, no half-precision partials.

Rows wider than ``MAX_BLOCK_N`` elements are processed in chunks of ``CHUNK_N`` instead of being
held in registers (the forward then reads x three times for LayerNorm, twice for RMSNorm;
the backward reads x and dy twice).

Scalars (``strength``, LayerNorm's ``center``, ``sigma_bar``) reach the kernels either as launch
arguments (Python floats: the eager path) or as 1-element tensors the kernels load
(``SCALAR_PTRS`` for strength and center, ``SIGMA_BAR_PTR`` for sigma_bar). The tensor form is
what ``torch.compile`` traces: a value read from a tensor is not a guarded constant, so a strength
that changes every tick does not recompile, and no value is ever read back on the host.

Here: argument checks, backend choice, the torch-path helpers, the Triton jit helpers both ops'
kernels call, the two launchers, and the fake (meta) results of the custom ops. This module
imports nothing from the rest of ``engine`` and works without triton installed (``HAS_TRITON``
is then False: only the torch path is available).
"""

from __future__ import annotations

import functools
import math
import numbers

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    triton = None
    tl = None

HAS_TRITON = triton is not None

#: Widest row (elements) held in registers by one program; wider rows loop over chunks.
MAX_BLOCK_N = 16384
#: Chunk width (elements) for rows wider than MAX_BLOCK_N.
CHUNK_N = 4096
#: Backward programs per streaming multiprocessor on CUDA (each owns a strip of rows).
BACKWARD_PROGRAMS_PER_SM = 1
#: Number of backward programs when the kernels run on the CPU through the interpreter.
CPU_BACKWARD_PROGRAMS = 4

BACKENDS = ("auto", "triton", "torch")


if HAS_TRITON:

    @triton.jit
    def load_chunk(
        row_ptr,  # pointer to element 0 of one row of an (M, N) tensor
        stride_col,  # elements between consecutive columns (0 for broadcast rows)
        cols,  # (BLOCK_N,) int column indices of this chunk
        N,  # row length
        COMPUTE: tl.constexpr,  # tl.float32, or tl.float64 for fp64 inputs
    ):
        """Masked load of one row chunk, cast to the compute dtype (zero past the row end)."""
        return tl.load(row_ptr + cols * stride_col, mask=cols < N, other=0.0).to(COMPUTE)

    @triton.jit
    def load_param(
        P,  # (N,) weight or bias, or None
        cols,  # (BLOCK_N,) int column indices
        N,  # row length
        DEFAULT: tl.constexpr,  # value used when P is absent
        HAS_PARAM: tl.constexpr,
        COMPUTE: tl.constexpr,
    ):
        """Masked load of a chunk of an optional (N,) parameter; ``DEFAULT`` when absent."""
        if HAS_PARAM:
            p = tl.load(P + cols, mask=cols < N, other=0.0).to(COMPUTE)
        else:
            p = tl.full(cols.shape, DEFAULT, COMPUTE)
        return p

    @triton.jit
    def to_compute(
        value,  # python float (interpreter) or fp64 scalar argument
        COMPUTE: tl.constexpr,
    ):
        """A scalar argument in the compute dtype (exact for fp64 inputs)."""
        return tl.full([], value, COMPUTE)

    @triton.jit
    def scalar_arg(
        value,  # fp64 scalar argument, used unless FROM_PTR
        Ptr,  # (1,) tensor holding the value when FROM_PTR, else None
        FROM_PTR: tl.constexpr,
        COMPUTE: tl.constexpr,
    ):
        """A scalar in the compute dtype: loaded from ``Ptr`` when FROM_PTR, else ``value``."""
        if FROM_PTR:
            v = tl.load(Ptr).to(COMPUTE)
        else:
            v = to_compute(value, COMPUTE)
        return v

    @triton.jit
    def blended_rden(
        stat,  # scalar: per-row sigma (LayerNorm) or rms (RMSNorm), units of x
        strength,  # fp64 scalar argument in [0, 1]
        sigma_bar,  # fp64 scalar argument, used unless SIGMA_BAR_PTR
        SigmaBar,  # (1,) compute-dtype tensor holding sigma_bar when SIGMA_BAR_PTR, else None
        SIGMA_BAR_PTR: tl.constexpr,
    ):
        """1 / d with d = strength * stat + (1 - strength) * sigma_bar, in stat's dtype."""
        if SIGMA_BAR_PTR:
            sb = tl.load(SigmaBar).to(stat.dtype)
        else:
            sb = to_compute(sigma_bar, stat.dtype)
        s = to_compute(strength, stat.dtype)
        return 1.0 / (s * stat + (1.0 - s) * sb)

    @triton.jit
    def program_rows(rows_per_program, M):
        """(first row, end row) of the strip of rows owned by this backward program (int64)."""
        start = tl.program_id(0).to(tl.int64) * rows_per_program
        return start, tl.minimum(start + rows_per_program, M)

    @triton.jit
    def load_bwd_chunk(
        x_row,  # pointer to element 0 of a row of X
        stride_x_col,  # elements between columns of X
        dy_row,  # pointer to element 0 of the same row of DY
        stride_dy_col,  # elements between columns of DY (0 for a broadcast gradient)
        W,  # (N,) weight, or None
        cols,  # (BLOCK_N,) int column indices
        N,  # row length
        HAS_WEIGHT: tl.constexpr,
        COMPUTE: tl.constexpr,
    ):
        """(x, dy, w) chunks for the backward, in the compute dtype (w = 1 without weight)."""
        x = load_chunk(x_row, stride_x_col, cols, N, COMPUTE)
        dy = load_chunk(dy_row, stride_dy_col, cols, N, COMPUTE)
        return x, dy, load_param(W, cols, N, 1.0, HAS_WEIGHT, COMPUTE)

    @triton.jit
    def accumulate(
        acc,  # (BLOCK_N,) register accumulator of the program's strip (used when ONE_PASS)
        Partial,  # pointer to this program's (N,) row of the (n_partials, P, N) buffer
        cols,  # (BLOCK_N,) int column indices
        N,  # row length
        value,  # (BLOCK_N,) contribution of the current row chunk
        HAS_PARAM: tl.constexpr,
        ONE_PASS: tl.constexpr,
    ):
        """Add a row chunk's dW/dB contribution: in registers when the row fits one block,
        otherwise read-modify-write on the program's private partial row (no other program
        touches that row, so no lock or atomic is needed). Returns the accumulator."""
        if ONE_PASS:
            acc += value
        elif HAS_PARAM:
            mask = cols < N
            tl.store(
                Partial + cols, tl.load(Partial + cols, mask=mask, other=0.0) + value, mask=mask
            )
        return acc

    @triton.jit
    def store_partial(
        Partial,  # pointer to this program's (N,) row of the (n_partials, P, N) buffer
        cols,  # (BLOCK_N,) int column indices
        N,  # row length
        acc,  # (BLOCK_N,) register accumulator of the program's strip of rows
        HAS_PARAM: tl.constexpr,
        ONE_PASS: tl.constexpr,
    ):
        """Store a register accumulator (ONE_PASS) into the program's partial row."""
        if ONE_PASS:
            if HAS_PARAM:
                tl.store(Partial + cols, acc, mask=cols < N)

    INTERPRETED = not isinstance(load_chunk, triton.runtime.JITFunction)
else:
    INTERPRETED = False


# --------------------------------------------------------------------------- argument checks
def is_one(value) -> bool:
    """True for the Python number 1; False for any tensor (whose value is never inspected)."""
    return not isinstance(value, torch.Tensor) and value == 1.0


def check_strength(strength, name: str = "strength"):
    """Return ``strength`` as a float in [0, 1], or as a detached 0-dim tensor.

    A Python real number must lie in [0, 1]. A tensor must be floating point with exactly one
    element; its value is not inspected (no device synchronisation, nothing for
    ``torch.compile`` to guard on). ``name`` is the argument named in the error (e.g. "center"
    for LayerNorm's centring). Raises ValueError otherwise.
    """
    if isinstance(strength, torch.Tensor):
        if strength.numel() != 1 or not strength.is_floating_point():
            raise ValueError(
                f"{name} tensor must be floating point with exactly one element, got shape "
                f"{tuple(strength.shape)} and dtype {strength.dtype}"
            )
        return strength.detach().reshape(())
    if not isinstance(strength, numbers.Real):
        raise ValueError(
            f"{name} must be a float in [0, 1] or a 1-element tensor, got {strength!r}"
        )
    value = float(strength)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_sigma_bar(sigma_bar, strength):
    """Normalise ``sigma_bar`` (units of x) to a float or a detached 1-element tensor.

    None means 1.0. A Python number must be finite and > 0 when ``strength < 1`` or is a tensor
    (it is unused at a float ``strength == 1``). A tensor must hold exactly one element; its
    value is not inspected, to avoid a device synchronisation. No gradient ever flows into
    ``sigma_bar``.
    """
    if sigma_bar is None or is_one(strength):
        return 1.0
    if isinstance(sigma_bar, torch.Tensor):
        if sigma_bar.numel() != 1:
            shape = tuple(sigma_bar.shape)
            raise ValueError(f"sigma_bar tensor must have exactly one element, got shape {shape}")
        return sigma_bar.detach()
    if not isinstance(sigma_bar, numbers.Real):
        raise ValueError(f"sigma_bar must be a float, 1-element tensor or None, got {sigma_bar!r}")
    value = float(sigma_bar)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(
            f"sigma_bar must be finite and > 0 when strength < 1 or a tensor, got {value!r}"
        )
    return value


def check_inputs(x: torch.Tensor, **params) -> None:
    """ValueError unless x is a floating tensor with dim >= 1 and each given param is (N,) on
    x's device."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise ValueError("x must be a floating-point tensor with at least one dimension")
    n = x.shape[-1]
    for name, p in params.items():
        if p is None:
            continue
        if tuple(p.shape) != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(p.shape)}")
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}")


def backend_on(backend: str, device: torch.device | str) -> str:
    """What ``backend`` ("auto" | "triton" | "torch") means on ``device``: "auto" is triton on a
    CUDA device when triton is installed, torch otherwise (the rule; nothing else restates it)."""
    if backend == "auto":
        return "triton" if HAS_TRITON and torch.device(device).type == "cuda" else "torch"
    return backend


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    """Map ``backend`` ("auto" | "triton" | "torch") to the path used for ``x``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "triton":
        return backend_on(backend, x.device)
    if not HAS_TRITON:
        raise ValueError("backend='triton' was requested but triton is not installed")
    if not x.is_cuda and not INTERPRETED:
        raise ValueError(
            "backend='triton' needs a CUDA tensor; to run the kernels on CPU tensors set "
            "TRITON_INTERPRET=1 before engine.kernels is first imported (triton reads it when the "
            "kernels are defined)"
        )
    return "triton"


# --------------------------------------------------------------------------- torch reference
def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Statistics dtype: fp64 for fp64 inputs, fp32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def like(value, t: torch.Tensor):
    """A float unchanged; a tensor as a 0-dim tensor on t's device in t's dtype (torch path)."""
    if isinstance(value, torch.Tensor):
        return value.to(device=t.device, dtype=t.dtype).reshape(())
    return value


def blend(stat: torch.Tensor, strength, sigma_bar) -> torch.Tensor:
    """d = strength * stat + (1 - strength) * sigma_bar, in stat's dtype (torch path; floats or
    0-dim tensors, with no branch on their values)."""
    strength, sigma_bar = like(strength, stat), like(sigma_bar, stat)
    return strength * stat + (1.0 - strength) * sigma_bar


def affine(y: torch.Tensor, weight, bias=None) -> torch.Tensor:
    """y * weight + bias with optional parameters, computed in y's dtype."""
    if weight is not None:
        y = y * weight.to(y.dtype)
    if bias is not None:
        y = y + bias.to(y.dtype)
    return y


# --------------------------------------------------------------------------- triton launchers
def _as_rows(t: torch.Tensor) -> torch.Tensor:
    """View t as (M, N) rows (copies only when no such view exists); strides are kept."""
    n = t.shape[-1]
    return t.reshape(math.prod(t.shape[:-1]), n)


def _row_config(n: int, backward: bool) -> tuple[int, bool, int]:
    """(BLOCK_N, ONE_PASS, num_warps) for rows of n elements.

    Rows of up to MAX_BLOCK_N elements are one block (ONE_PASS); wider rows are processed in
    chunks of CHUNK_N. The backward keeps about three times more row-sized values live than the
    forward (x, dy, w and the dW/dB accumulators), so it gets twice the warps. Compiled for sm_90
    (ptxas, no GPU needed) the forward never spills registers and the backward is spill-free up
    to BLOCK_N = 4096 for LayerNorm and 8192 for RMSNorm; above that it spills (see
    docs/benchmarks.md; untuned: no GPU measurement yet).
    """
    if n > MAX_BLOCK_N:
        block, one_pass = min(CHUNK_N, MAX_BLOCK_N), False
    else:
        block, one_pass = 1 << max(n - 1, 0).bit_length(), True
    return block, one_pass, min(32, max(4, block // (256 if backward else 512)))


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _row_split(m: int, device: torch.device) -> tuple[int, int]:
    """(rows_per_program, programs) for the backward: about one program per SM on CUDA."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        target = _sm_count(index) * BACKWARD_PROGRAMS_PER_SM
    else:
        target = CPU_BACKWARD_PROGRAMS
    per_program = max(1, -(-m // target))
    return per_program, -(-m // per_program)


def _common_meta(x: torch.Tensor, weight, backward: bool) -> dict:
    block, one_pass, num_warps = _row_config(x.shape[-1], backward)
    compute = tl.float64 if acc_dtype(x.dtype) == torch.float64 else tl.float32
    return dict(
        HAS_WEIGHT=weight is not None,
        COMPUTE=compute,
        BLOCK_N=block,
        ONE_PASS=one_pass,
        num_warps=num_warps,
    )


def _contiguous(p):
    return None if p is None else p.contiguous()


def scalar_args(x: torch.Tensor, **values) -> dict:
    """Kernel arguments for the scalars ``values`` (``strength``, and ``center`` for LayerNorm).

    All floats: each is a launch argument (``name=value``, ``Name=None``, ``SCALAR_PTRS=False``),
    the eager path. All tensors: each is a (1,) tensor on x's device the kernel loads
    (``name=1.0``, ``Name=tensor``, ``SCALAR_PTRS=True``), the custom-op path; the values stay
    on the device.
    """
    tensors = [isinstance(v, torch.Tensor) for v in values.values()]
    from_ptr = any(tensors)
    if from_ptr and not all(tensors):
        raise TypeError(f"scalars must be all floats or all tensors, got {values!r}")
    args: dict = {"SCALAR_PTRS": from_ptr}
    for name, value in values.items():
        args[name] = 1.0 if from_ptr else value
        args[name.capitalize()] = value.to(device=x.device).reshape(1) if from_ptr else None
    return args


def launch_forward(kernel, x, weight, eps, sigma_bar, n_stats, **op_args):
    """Run a row-wise forward kernel; returns (y with x's shape and dtype, (n_stats, M) stats).

    ``op_args`` are passed to the kernel by name (e.g. ``B`` and ``HAS_BIAS`` for LayerNorm, and
    the :func:`scalar_args` of strength and center).
    """
    x2 = _as_rows(x)
    m, n = x2.shape
    acc = acc_dtype(x.dtype)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # contiguous: rows of n
    stats = torch.empty((n_stats, m), dtype=acc, device=x.device)
    sigma_bar_ptr = None
    if isinstance(sigma_bar, torch.Tensor):
        sigma_bar, sigma_bar_ptr = 1.0, sigma_bar.to(device=x.device, dtype=acc).reshape(1)
    if m and n:
        kernel[(m,)](
            Y=y.view(m, n),
            X=x2,
            W=_contiguous(weight),
            Stats=stats,
            SigmaBar=sigma_bar_ptr,
            stride_x_row=x2.stride(0),
            stride_x_col=x2.stride(1),
            M=m,
            N=n,
            eps=float(eps),
            sigma_bar=sigma_bar,
            SIGMA_BAR_PTR=sigma_bar_ptr is not None,
            **_common_meta(x, weight, backward=False),
            **op_args,
        )
    return y, stats


def launch_backward(kernel, dy, x, weight, stats, n_partials, **op_args):
    """Run a fused backward kernel; returns (dx with x's shape, (n_partials, N) summed partials
    in the stats dtype). ``dy`` may be non-contiguous or have zero strides. ``op_args`` as in
    :func:`launch_forward`."""
    x2 = _as_rows(x)
    dy2 = _as_rows(dy)
    m, n = x2.shape
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # contiguous: rows of n
    per_program, programs = _row_split(m, x.device)
    partials = torch.zeros((n_partials, programs, n), dtype=stats.dtype, device=x.device)
    if m and n:
        kernel[(programs,)](
            DX=dx.view(m, n),
            DY=dy2,
            X=x2,
            W=_contiguous(weight),
            Stats=stats,
            Partials=partials,
            stride_dy_row=dy2.stride(0),
            stride_dy_col=dy2.stride(1),
            stride_x_row=x2.stride(0),
            stride_x_col=x2.stride(1),
            M=m,
            N=n,
            rows_per_program=per_program,
            **_common_meta(x, weight, backward=True),
            **op_args,
        )
    return dx, partials.sum(dim=1)


def param_grads(sums: torch.Tensor, *params) -> tuple:
    """Gradients for optional (N,) params from the summed partials (row i for params[i])."""
    return tuple(None if p is None else sums[i].to(p.dtype) for i, p in enumerate(params))


# --------------------------------------------------------------------------- custom-op helpers
def scalar_tensor(value, x: torch.Tensor) -> torch.Tensor:
    """A 0-dim tensor on x's device holding ``value`` (a float, or a tensor returned as is):
    ``new_full`` fills on the device, so a float never costs a host-to-device copy."""
    if isinstance(value, torch.Tensor):
        return value
    return x.new_full((), value, dtype=acc_dtype(x.dtype))


def fake_forward(x: torch.Tensor, n_stats: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapes and dtypes of a forward op's results: y (contiguous, like x) and the
    (n_stats, M) statistics in the stats dtype."""
    m = math.prod(x.shape[:-1])
    return x.new_empty(x.shape), x.new_empty((n_stats, m), dtype=acc_dtype(x.dtype))


def fake_backward(x: torch.Tensor, stats: torch.Tensor, n_partials: int):
    """Shapes and dtypes of a backward op's results: dx (contiguous, like x) and the
    (n_partials, N) summed partials in the stats dtype."""
    return x.new_empty(x.shape), stats.new_empty((n_partials, x.shape[-1]))
