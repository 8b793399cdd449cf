"""The norm module: LayerNorm or RMSNorm with a strength the tick timeline can steer.

``Norm`` holds the parameters and the steering state; the arithmetic lives in ``engine.kernels``
(a Triton kernel on CUDA, a torch path elsewhere, with identical semantics). Strength ``s`` in
[0, 1] blends the per-token statistics with a fixed scale ``sigma_bar`` (σ̄):

    LayerNorm: y = (x - c·μ(x)) / (s·σ(x) + (1-s)·σ̄) · w + b,   σ = sqrt(var(x) + eps)
    RMSNorm:   y = x / (s·r(x) + (1-s)·σ̄) · w,                  r = sqrt(mean(x²) + eps)

LayerNorm's centring coefficient ``c`` is set by ``center``: "strength" (the default) makes
``c = s``; "always" makes ``c = 1`` at every strength.

``s = 1`` is the ordinary norm. With ``center="strength"``, ``s = 0`` is the fixed affine map
``x / σ̄ · w (+ b)``, which is what a model whose LayerNorm was removed computes; with
``center="always"``, ``s = 0`` is ``(x - μ(x)) / σ̄ · w + b`` (the "FakeLN" of the
LayerNorm-removal papers: the mean is still subtracted, only the per-token scale is gone).

``strength``, ``eps``, ``backend`` and ``center`` are Python values, not tensors: the kernels
take them as launch arguments, so changing them never forces a host sync, and reading them never
does either. They travel in ``state_dict`` as extra state (a dict of Python scalars, which
``torch.load(weights_only=True)`` accepts); ``center`` is stored only when it is not the default
"strength", so a missing entry (checkpoints from before it existed) means "strength".

Under ``torch.compile`` a Python float read in ``forward`` is guarded, so changing it recompiles
(dynamo then turns a float that keeps changing into a graph input, but the centring mode and the
kernels' branches on the values still add graphs: 3 compiles on a 30-tick ramp with the centring
toggled, torch 2.13, against 1 now), and the Triton path could not be traced at all. So
``strength`` and ``center`` are properties whose setters also write two non-persistent 0-dim
fp32 buffers, ``strength_tensor`` (s) and ``center_tensor`` (c: s, or 1 for "always"), with an
on-device fill (no sync); a compiled forward passes those tensors to the kernels instead of the
floats, so the graph reads the values at run time and never recompiles for them. ``eps`` and
``backend`` stay guarded constants (they change rarely). The eager forward is unchanged: floats
as launch arguments.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from engine import kernels
from engine.stats import token_scale

NORM_KINDS = ("layernorm", "rmsnorm")
NORM_BACKENDS = kernels.BACKENDS
NORM_CENTERS = ("strength", "always")


def check_backend(backend: str) -> str:
    """Return ``backend`` if it names a norm backend, else raise ValueError."""
    if backend not in NORM_BACKENDS:
        raise ValueError(f"norm backend must be one of {', '.join(NORM_BACKENDS)}; got {backend!r}")
    return backend


def check_center(center: str) -> str:
    """Return ``center`` if it names a LayerNorm centring mode, else raise ValueError."""
    if center not in NORM_CENTERS:
        raise ValueError(f"norm center must be one of {', '.join(NORM_CENTERS)}; got {center!r}")
    return center


class Norm(nn.Module):
    """LayerNorm or RMSNorm over the last dimension, with a steerable strength.

    Args:
        kind: "layernorm" or "rmsnorm".
        d: size of the normalised (last) dimension, in features.
        eps: added to the variance (LayerNorm) or mean square (RMSNorm) before the square root.
        bias: LayerNorm only: learn an additive bias (RMSNorm never has one).
        backend: "auto" (Triton for CUDA tensors, torch otherwise), "triton" or "torch".
        center: LayerNorm's centring: "strength" subtracts s·μ (c = s), "always" subtracts μ at
            every strength (c = 1). Accepted and ignored by RMSNorm, which never centres.
    """

    def __init__(
        self,
        kind: str,
        d: int,
        eps: float = 1e-5,
        bias: bool = True,
        backend: str = "auto",
        center: str = "strength",
    ):
        super().__init__()
        if kind not in NORM_KINDS:
            raise ValueError(f"norm kind must be one of {', '.join(NORM_KINDS)}; got {kind!r}")
        self.kind = kind
        self.d = d
        self.weight = nn.Parameter(torch.ones(d))
        if kind == "layernorm" and bias:
            self.bias = nn.Parameter(torch.zeros(d))
        else:
            self.register_parameter("bias", None)
        # fp32 whatever the model dtype: it is a statistic, and the kernels read it in fp32.
        self.register_buffer("sigma_bar", torch.tensor(1.0, dtype=torch.float32))
        # What a compiled forward reads instead of the floats (see the module docstring): kept
        # equal to (strength, centring coefficient) by the setters; not saved in state_dict.
        self.register_buffer(
            "strength_tensor", torch.tensor(1.0, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "center_tensor", torch.tensor(1.0, dtype=torch.float32), persistent=False
        )
        self._strength, self._center, self._mirrored = 1.0, "strength", (1.0, 1.0)
        self.eps = float(eps)
        self.backend = check_backend(backend)
        self.center = center
        self.calibrate_next = False

    @property
    def strength(self) -> float:
        """s in [0, 1], a Python float (1 = ordinary norm, 0 = fixed affine map). Setting it
        checks the value, as :meth:`set_strength` does, and updates ``strength_tensor``."""
        return self._strength

    @strength.setter
    def strength(self, s: float) -> None:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise ValueError(f"norm strength must be a number in [0, 1]; got {s!r}")
        self._strength = float(s)
        self._mirror()

    @property
    def center(self) -> str:
        """LayerNorm's centring mode, "strength" (c = s) or "always" (c = 1). Setting it checks
        the name and updates ``center_tensor``."""
        return self._center

    @center.setter
    def center(self, center: str) -> None:
        self._center = check_center(center)
        self._mirror()

    def _mirror(self) -> None:
        """Write (s, c) into the compile-mode buffers when they changed: an on-device fill, no
        host sync, and nothing at all on the ticks where the timeline repeats the value."""
        values = (self._strength, 1.0 if self._center == "always" else self._strength)
        if values != self._mirrored:
            with torch.no_grad():
                self.strength_tensor.fill_(values[0])
                self.center_tensor.fill_(values[1])
            self._mirrored = values

    def set_strength(self, s: float) -> None:
        """Set the strength, a plain float in [0, 1] (1 = ordinary norm, 0 = fixed affine map)."""
        self.strength = s

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Set σ̄ to the mean over all tokens of ``x`` of the per-token σ this norm computes:
        sqrt(var(x) + eps) for LayerNorm, sqrt(mean(x²) + eps) for RMSNorm (fp32)."""
        self.sigma_bar.copy_(token_scale(x.detach().float(), self.kind, self.eps).mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrate_next:  # set by the trainer for a timeline `calibrate` tick
            self.calibrate_next = False
            self.calibrate(x)
        if torch.compiler.is_compiling():
            # tensors, not floats: dynamo guards on neither value, so a ramp never recompiles
            if self.kind == "layernorm":
                return kernels.layer_norm(
                    x,
                    self.weight,
                    self.bias,
                    eps=self.eps,
                    strength=self.strength_tensor,
                    sigma_bar=self.sigma_bar,
                    backend=self.backend,
                    center=self.center_tensor,
                )
            return kernels.rms_norm(
                x,
                self.weight,
                eps=self.eps,
                strength=self.strength_tensor,
                sigma_bar=self.sigma_bar,
                backend=self.backend,
            )
        if self.kind == "layernorm":
            return kernels.layer_norm(
                x,
                self.weight,
                self.bias,
                eps=self.eps,
                strength=self.strength,
                sigma_bar=self.sigma_bar,
                backend=self.backend,
                center=1.0 if self.center == "always" else None,
            )
        return kernels.rms_norm(
            x,
            self.weight,
            eps=self.eps,
            strength=self.strength,
            sigma_bar=self.sigma_bar,
            backend=self.backend,
        )

    # The steering state is part of the model's state: a checkpoint taken mid-ramp must resume
    # mid-ramp, and resume compares it with what the timeline says it should be.
    def get_extra_state(self) -> dict[str, Any]:
        state = {"strength": self.strength, "eps": self.eps, "backend": self.backend}
        if self.center != "strength":  # the default is implied by its absence
            state["center"] = self.center
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.set_strength(state["strength"])
        eps = state["eps"]
        if not isinstance(eps, (int, float)) or not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"norm eps must be a positive number; got {eps!r}")
        self.eps = float(eps)
        self.backend = check_backend(state["backend"])
        self.center = state.get("center", "strength")

    def extra_repr(self) -> str:
        return (
            f"{self.kind}, {self.d}, eps={self.eps}, bias={self.bias is not None}, "
            f"strength={self.strength}, backend={self.backend}, center={self.center}"
        )
