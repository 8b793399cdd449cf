"""Plain-data messages the engine sends to its sink (the GUI, the CLI's progress line).

Frozen dataclasses of numbers and strings only: no tensors, no modules cross this boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Scalars:
    """Metric values recorded at one tick (``train/loss``, ``lr``, ``val/loss``, ...)."""

    tick: int
    values: dict[str, float]
    wall: float


@dataclass(frozen=True)
class Status:
    """The run changed state: running, paused, finished, stopped, diverged, failed."""

    status: str
    tick: int
    steps: int
    detail: str = ""


@dataclass(frozen=True)
class Event:
    """Something applied at a tick: a checkpoint written, an eval, a timeline edge."""

    tick: int
    kind: str
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    text: str


# Percentile levels (%) of ``SiteStats.percentiles``: TensorBoard's distribution bands.
PERCENTILES = (0, 7, 16, 50, 84, 93, 100)


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class SiteStats:
    """Activation statistics of one norm site's input or output at one tick (``engine.stats``).

    Values are activations in the residual stream's own units; σ is the per-token scale the norm
    divides by (LayerNorm sqrt(var + eps), RMSNorm sqrt(mean(x²) + eps)).
    """

    site: str  # "0.attn", "0.mlp", "final", "enc0.attn", ... (Transformer.norm_sites)
    kind: str  # "in": the stream entering the norm; "out": what the norm returns
    tokens: int  # tokens in the subsample the statistics describe
    lo: float  # histogram range: bin edges are linspace(lo, hi, len(counts) + 1)
    hi: float
    counts: np.ndarray  # (bins,) int64: values per bin
    percentiles: np.ndarray  # (len(PERCENTILES),) float64
    abs_mu_mean: float  # mean over tokens of |per-token mean|
    abs_mu_std: float  # its standard deviation over tokens
    sigma_mean: float  # mean over tokens of the per-token σ
    sigma_std: float  # its standard deviation over tokens
    strength: float  # the norm's strength during the captured forward (1 = ordinary norm)
    sigma_bar: float  # the norm's fixed scale σ̄ during the captured forward

    @property
    def edges(self) -> np.ndarray:
        """(bins + 1,) float64 bin edges."""
        return np.linspace(self.lo, self.hi, len(self.counts) + 1)


@dataclass(frozen=True, eq=False)
class Stats:
    """One activation-statistics capture: every norm site's input and output at ``tick``."""

    tick: int
    sites: tuple[SiteStats, ...]


Message = Scalars | Status | Event | Log | Stats
