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

``strength``, ``eps``, ``backend`` and ``center`` are plain Python attributes, not tensors: the
kernels take them as launch arguments, so changing them never forces a host sync, and reading
them never does either. They travel in ``state_dict`` as extra state (a dict of Python scalars,
which ``torch.load(weights_only=True)`` accepts); ``center`` is stored only when it is not the
default "strength", so a missing entry (checkpoints from before it existed) means "strength".
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
        self.strength = 1.0
        self.eps = float(eps)
        self.backend = check_backend(backend)
        self.center = check_center(center)
        self.calibrate_next = False

    def set_strength(self, s: float) -> None:
        """Set the strength, a plain float in [0, 1] (1 = ordinary norm, 0 = fixed affine map)."""
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise ValueError(f"norm strength must be a number in [0, 1]; got {s!r}")
        self.strength = float(s)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        """Set σ̄ to the mean over all tokens of ``x`` of the per-token σ this norm computes:
        sqrt(var(x) + eps) for LayerNorm, sqrt(mean(x²) + eps) for RMSNorm (fp32)."""
        self.sigma_bar.copy_(token_scale(x.detach().float(), self.kind, self.eps).mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrate_next:  # set by the trainer for a timeline `calibrate` tick
            self.calibrate_next = False
            self.calibrate(x)
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
        self.center = check_center(state.get("center", "strength"))

    def extra_repr(self) -> str:
        return (
            f"{self.kind}, {self.d}, eps={self.eps}, bias={self.bias is not None}, "
            f"strength={self.strength}, backend={self.backend}, center={self.center}"
        )
