"""Activation statistics over a run's captures, one history per norm site and kind.

Built from the run store's rows (``RunRecord.activation_stats``, a past run or one another
process writes) or straight from ``Stats`` messages (a live view of the run it started), so both
give the same arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.messages import PERCENTILES, SiteStats, Stats


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class ActivationHistory:
    """One norm site's input (``kind="in"``) or output (``"out"``) statistics over its captures,
    one entry per capture tick (see ``engine.messages.SiteStats`` for the units)."""

    site: str
    kind: str
    ticks: np.ndarray  # (n,) int64
    tokens: np.ndarray  # (n,) int64: tokens summarised
    lo: np.ndarray  # (n,) float64: histogram range per capture
    hi: np.ndarray  # (n,)
    counts: np.ndarray  # (n, bins) int64
    percentiles: np.ndarray  # (n, len(PERCENTILES)) float64 at ``levels``
    abs_mu_mean: np.ndarray  # (n,) float64: mean over tokens of |per-token mean|
    abs_mu_std: np.ndarray  # (n,)
    sigma_mean: np.ndarray  # (n,) float64: mean over tokens of the per-token σ
    sigma_std: np.ndarray  # (n,)
    strength: np.ndarray  # (n,) float64: the norm's strength at each capture
    sigma_bar: np.ndarray  # (n,) float64: its σ̄ at each capture
    levels: tuple[int, ...] = PERCENTILES

    @property
    def edges(self) -> np.ndarray:
        """(n, bins + 1) float64 bin edges of each capture's histogram."""
        steps = np.linspace(0.0, 1.0, self.counts.shape[1] + 1)
        return self.lo[:, None] + (self.hi - self.lo)[:, None] * steps

    @classmethod
    def from_rows(cls, key: tuple[str, str], rows: list[tuple]) -> ActivationHistory:
        """From the run store's ``histograms`` rows of one (site, kind), in tick order."""
        cols = list(zip(*rows))

        def reals(i: int) -> np.ndarray:
            return np.array(cols[i], dtype=np.float64)  # NULL (a stored NaN) -> NaN

        return cls(
            site=key[0],
            kind=key[1],
            ticks=np.array(cols[2], dtype=np.int64),
            tokens=np.array(cols[4], dtype=np.int64),
            lo=reals(5),
            hi=reals(6),
            counts=np.stack([np.frombuffer(b, dtype="<i8") for b in cols[7]]).astype(np.int64),
            percentiles=np.stack([np.frombuffer(b, dtype="<f8") for b in cols[8]]).astype(
                np.float64
            ),
            abs_mu_mean=reals(9),
            abs_mu_std=reals(10),
            sigma_mean=reals(11),
            sigma_std=reals(12),
            strength=reals(13),
            sigma_bar=reals(14),
        )

    @classmethod
    def from_site_stats(cls, captures: list[tuple[int, SiteStats]]) -> ActivationHistory:
        """From (tick, statistics) of one (site, kind), in tick order."""
        ticks = [t for t, _ in captures]
        stats = [s for _, s in captures]

        def reals(name: str) -> np.ndarray:
            return np.array([getattr(s, name) for s in stats], dtype=np.float64)

        return cls(
            site=stats[0].site,
            kind=stats[0].kind,
            ticks=np.array(ticks, dtype=np.int64),
            tokens=np.array([s.tokens for s in stats], dtype=np.int64),
            lo=reals("lo"),
            hi=reals("hi"),
            counts=np.stack([s.counts for s in stats]).astype(np.int64),
            percentiles=np.stack([s.percentiles for s in stats]).astype(np.float64),
            abs_mu_mean=reals("abs_mu_mean"),
            abs_mu_std=reals("abs_mu_std"),
            sigma_mean=reals("sigma_mean"),
            sigma_std=reals("sigma_std"),
            strength=reals("strength"),
            sigma_bar=reals("sigma_bar"),
        )


def activation_histories(stats: Iterable[Stats]) -> dict[tuple[str, str], ActivationHistory]:
    """The histories ``RunRecord.activation_stats`` would read once ``stats`` (captures in tick
    order, as the engine sends them) are stored, by (site, kind), sites in capture order;
    empty when there are none."""
    groups: dict[tuple[str, str], list[tuple[int, SiteStats]]] = {}
    for capture in stats:
        for s in capture.sites:
            groups.setdefault((s.site, s.kind), []).append((capture.tick, s))
    return {key: ActivationHistory.from_site_stats(group) for key, group in groups.items()}
