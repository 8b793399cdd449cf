"""Activation statistics at every norm site: histograms, percentiles and per-token μ/σ summaries.

A ``StatsRecorder`` puts forward hooks on every ``Norm`` of the model only for the training
forward of a capture tick (``tick % train.stats_every == 0``) and removes them right after, so the
other ticks run the model untouched. The hooks summarise the norm's input (the residual stream
entering it) and its output on the device, with no host synchronisation; ``collect`` then copies
the whole capture to the host in one transfer, after the tick's own ``loss.item()`` has already
waited for the device.

Per site and kind (``in``/``out``), from a subsample of at most ``max_tokens`` tokens:

- a histogram of all values in ``bins`` bins spanning the capture's [min, max] (stored with it);
- the percentiles ``PERCENTILES`` (TensorBoard's distribution bands). Min and max are exact; the
  others are read off a histogram ``FINE_PER_BIN`` times finer, so they are within one fine bin
  ((max - min) / (bins · FINE_PER_BIN)) of ``numpy.percentile`` where the data are dense, at a
  fraction of the cost of a sort on the CPU;
- the per-token mean μ and scale σ as the norm computes them (LayerNorm: sqrt(var + eps),
  RMSNorm: sqrt(mean(x²) + eps)): mean and standard deviation over tokens of |μ| and of σ. For
  the input this is what the norm removes; at strength 1 the output's σ is ≈ 1.

Reading the statistics never touches the global RNG (the subsample is a fixed stride), so a run
is bit-identical with statistics on or off.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.messages import PERCENTILES, SiteStats, Stats

if TYPE_CHECKING:
    from engine.model import Transformer
    from engine.norm import Norm

BINS = 64  # histogram bins per capture and site
FINE_PER_BIN = 64  # the percentiles are read off a histogram this much finer
MAX_TOKENS = 4096  # tokens summarised per capture and site
KINDS = ("in", "out")

# Layout of one summary row (float64, on the device until ``collect``):
# SCALARS, then len(PERCENTILES) percentiles, then the bin counts.
SCALARS = ("lo", "hi", "abs_mu_mean", "abs_mu_std", "sigma_mean", "sigma_std")
_INNER_Q = tuple(p / 100 for p in PERCENTILES[1:-1])  # min and max come exactly from aminmax


def row_length(bins: int) -> int:
    """Floats in one summary row for ``bins`` histogram bins."""
    return len(SCALARS) + len(PERCENTILES) + bins


def subsample_tokens(x: torch.Tensor, max_tokens: int) -> torch.Tensor:
    """At most ``max_tokens`` token vectors of ``x`` (..., T, C) as a (n, C) view, every
    ``step``-th token of the flattened batch. The step is coprime with T, so the chosen tokens
    cycle through every position in the sequence instead of always landing on the same few."""
    C = x.shape[-1]
    T = x.shape[-2] if x.dim() >= 3 else 1
    flat = x.reshape(-1, C)  # (B·T, C)
    n = flat.shape[0]
    if n <= max_tokens:
        return flat
    step = -(-n // max_tokens)
    while math.gcd(step, T) != 1:
        step += 1
    return flat[::step]  # (ceil(n / step), C)


def token_scale(x: torch.Tensor, norm_kind: str, eps: float) -> torch.Tensor:
    """The per-token σ (...,) a norm of ``norm_kind`` divides ``x`` (..., C) by: LayerNorm
    sqrt(var + eps) (population variance), RMSNorm sqrt(mean(x²) + eps). ``Norm.calibrate``
    averages the same expression into σ̄."""
    if norm_kind == "layernorm":
        return (x.var(-1, unbiased=False) + eps).sqrt()
    return (x.pow(2).mean(-1) + eps).sqrt()


@functools.cache
def _inner_quantiles(device: torch.device) -> torch.Tensor:
    # Cached per device: building it from a Python list is a host-to-device copy, which would
    # synchronise with the device on every capture.
    return torch.tensor(_INNER_Q, dtype=torch.float64, device=device)


@torch.no_grad()
def summary_row(
    x: torch.Tensor, norm_kind: str = "layernorm", eps: float = 1e-5, bins: int = BINS
) -> torch.Tensor:
    """Statistics of the token vectors ``x`` (n, C) as one float64 row on ``x``'s device (see
    ``SCALARS`` for the layout). Launches device work only: nothing is read back to the host."""
    xs = x.detach().float()  # (n, C), fp32 whatever the model dtype
    values = xs.reshape(-1)  # (n·C,)
    n_values = values.numel()
    vmin, vmax = (v.double() for v in torch.aminmax(values))  # fp64: lo + span is max exactly
    # A constant tensor gets a unit-wide range centred on its value rather than a zero width.
    flat = vmax <= vmin
    lo = torch.where(flat, vmin - 0.5, vmin)
    span = torch.where(flat, 1.0, vmax - vmin)

    fine_bins = bins * FINE_PER_BIN
    index = ((values - lo) * (fine_bins / span)).long().clamp_(0, fine_bins - 1)  # (n·C,)
    ones = torch.ones(n_values, dtype=torch.float64, device=x.device)
    fine = torch.zeros(fine_bins, dtype=torch.float64, device=x.device).index_add_(0, index, ones)
    counts = fine.view(bins, FINE_PER_BIN).sum(1)  # (bins,): the same [lo, lo + span] range

    # Inner percentiles as numpy's "linear" method defines them (the value at sorted rank
    # q·(n - 1)), with the values inside the fine bin that holds that rank taken as evenly spread.
    cdf = fine.cumsum(0)  # (fine_bins,)
    ranks = _inner_quantiles(x.device) * (n_values - 1)
    b = torch.searchsorted(cdf, ranks, right=True).clamp_(max=fine_bins - 1)
    in_bin = fine[b]
    below = cdf[b] - in_bin
    frac = ((ranks - below + 0.5) / in_bin.clamp(min=1)).clamp_(0, 1)
    inner = (lo + (b + frac) * (span / fine_bins)).clamp(vmin, vmax)

    mu = xs.mean(-1)  # (n_tokens,)
    sigma = token_scale(xs, norm_kind, eps)  # (n_tokens,)
    abs_mu_std, abs_mu_mean = torch.std_mean(mu.abs(), correction=0)
    sigma_std, sigma_mean = torch.std_mean(sigma, correction=0)
    scalars = [lo, lo + span, abs_mu_mean, abs_mu_std, sigma_mean, sigma_std]
    scalars = torch.stack([s.double() for s in scalars])
    ends = torch.stack([vmin, vmax])
    return torch.cat([scalars, ends[:1], inner, ends[1:], counts])


def parse_row(
    row: np.ndarray,
    *,
    site: str,
    kind: str,
    tokens: int,
    strength: float,
    sigma_bar: float,
) -> SiteStats:
    """A host copy of ``summary_row`` -> ``SiteStats``."""
    k = len(SCALARS)
    p = k + len(PERCENTILES)
    named = dict(zip(SCALARS, (float(v) for v in row[:k])))
    return SiteStats(
        site=site,
        kind=kind,
        tokens=tokens,
        percentiles=row[k:p].astype(np.float64),
        counts=np.rint(row[p:]).astype(np.int64),
        strength=float(strength),
        sigma_bar=float(sigma_bar),
        **named,
    )


def summarize(
    x: torch.Tensor,
    norm_kind: str = "layernorm",
    eps: float = 1e-5,
    *,
    bins: int = BINS,
    max_tokens: int = MAX_TOKENS,
    site: str = "",
    kind: str = "in",
) -> SiteStats:
    """Statistics of ``x`` (..., T, C) on the host, as a capture records them (reads the result
    back, so it synchronises with the device: for tests and one-off use)."""
    xs = subsample_tokens(x, max_tokens)
    row = summary_row(xs, norm_kind, eps, bins).cpu().numpy()
    nan = float("nan")  # no norm: no strength, no σ̄
    return parse_row(row, site=site, kind=kind, tokens=xs.shape[0], strength=nan, sigma_bar=nan)


class StatsRecorder:
    """Captures ``SiteStats`` at every norm site of ``model`` on the ticks ``every`` divides.

    Use ``capture(tick)`` around the training forward and ``collect()`` after the tick's host
    sync. ``every = 0`` (or a model without norms) turns it off: ``capture`` is then an empty
    context and ``collect`` returns None.
    """

    def __init__(
        self,
        model: Transformer,
        every: int,
        *,
        max_tokens: int = MAX_TOKENS,
        bins: int = BINS,
    ):
        self.sites: list[tuple[str, Norm]] = model.norm_sites()
        self.every = every
        self.max_tokens = max_tokens
        self.bins = bins
        self._tick = -1
        # site index -> (strength, tokens, device row: in summary, out summary, σ̄)
        self._pending: dict[int, tuple[float, int, torch.Tensor]] = {}

    def due(self, tick: int) -> bool:
        """Whether ``capture(tick)`` records anything."""
        return bool(self.every and self.sites) and tick % self.every == 0

    @contextmanager
    def capture(self, tick: int) -> Iterator[None]:
        """Record the statistics of the forward passes run inside, if ``tick`` is due. The hooks
        exist only inside this block and are removed even when the forward raises."""
        if not self.due(tick):
            yield
            return
        self._tick = tick
        self._pending = {}
        handles = [
            norm.register_forward_hook(functools.partial(self._hook, i))
            for i, (_, norm) in enumerate(self.sites)
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, index: int, norm: Norm, args: tuple, output: torch.Tensor) -> None:
        if index in self._pending:  # one summary per site and capture: the first call
            return
        x = subsample_tokens(args[0].detach(), self.max_tokens)
        y = subsample_tokens(output.detach(), self.max_tokens)
        # σ̄ is copied now: a calibrate at this tick has set it for this very forward.
        sigma_bar = norm.sigma_bar.detach().double().reshape(1)
        row = torch.cat(
            [summary_row(x, norm.kind, norm.eps, self.bins),
             summary_row(y, norm.kind, norm.eps, self.bins), sigma_bar]
        )  # fmt: skip
        self._pending[index] = (norm.strength, x.shape[0], row)

    def collect(self) -> Stats | None:
        """The statistics of the last capture, copied to the host in one transfer (and then
        forgotten), or None when nothing was captured since the last call."""
        if not self._pending:
            return None
        order = sorted(self._pending)
        host = torch.stack([self._pending[i][2] for i in order]).cpu().numpy()  # (sites, 2·L+1)
        length = row_length(self.bins)
        out = []
        for i, row in zip(order, host):
            strength, tokens, _ = self._pending[i]
            for j, kind in enumerate(KINDS):
                out.append(
                    parse_row(
                        row[j * length : (j + 1) * length],
                        site=self.sites[i][0],
                        kind=kind,
                        tokens=tokens,
                        strength=strength,
                        sigma_bar=row[-1],
                    )
                )
        self._pending = {}
        return Stats(self._tick, tuple(out))
