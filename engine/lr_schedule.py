"""Learning-rate segments -> one value per tick.

Convention (no hidden counters, no implicit origin): a segment covers ``[start, end)``; inside it
``u = (t - start + 1) / (end - start)``, so the first tick is already one step in and the last tick
reaches ``to`` exactly. Between segments the last value holds; before the first segment the first
segment's starting value holds; with no segments ``train.lr`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import LRSegment, RunSpec
from engine.errors import ConfigError
from engine.positions import Units, resolve_position


@dataclass(frozen=True)
class Segment:
    """An LR segment with its positions resolved to ticks."""

    start: int
    end: int
    spec: LRSegment
    milestones: tuple[int, ...] = ()
    index: int = 0  # its place in ``timeline.lr``

    def values(self, t: np.ndarray) -> np.ndarray:
        """LR at ticks ``t`` (all inside [start, end)), float64."""
        s = self.spec
        u = u_of_tick(self.start, self.end, t)
        if s.shape == "constant":
            return np.full(t.shape, s.from_)
        if s.shape == "linear":
            return s.from_ + (s.to - s.from_) * u
        if s.shape == "cosine":
            return s.to + (s.from_ - s.to) * (1 + np.cos(np.pi * u)) / 2
        if s.shape == "exp":
            return s.from_ * (s.to / s.from_) ** u
        if s.shape == "step":
            passed = np.searchsorted(np.asarray(self.milestones), t, side="right")
            return s.from_ * s.gamma**passed
        us = np.array([p[0] for p in s.points])
        vs = np.array([p[1] for p in s.points])
        if s.log:
            return np.exp(np.interp(u, us, np.log(vs)))
        return np.interp(u, us, vs)

    def first_value(self) -> float:
        """The value that holds before this segment: ``from``, or the curve's first point."""
        return self.spec.from_ if self.spec.from_ is not None else self.spec.points[0][1]


def u_of_tick(start: int, end: int, tick: float) -> float:
    """Where ``tick`` lies in the segment ``[start, end)``, by the convention above."""
    return (tick - start + 1) / (end - start)


def tick_of_u(start: int, end: int, u: float) -> float:
    """The (fractional) tick at which the segment ``[start, end)`` reaches ``u``."""
    return start - 1 + u * (end - start)


def _check_segment(seg: LRSegment, path: str) -> None:
    needs_to = seg.shape in ("linear", "cosine", "exp")
    if seg.shape != "points" and seg.from_ is None:
        raise ConfigError(f"{path}.from", f"a {seg.shape} segment needs a starting value")
    if needs_to and seg.to is None:
        raise ConfigError(f"{path}.to", f"a {seg.shape} segment needs an end value")
    if seg.shape == "exp" and (seg.from_ <= 0 or seg.to <= 0):
        raise ConfigError(path, "exp takes a log: from and to must be > 0")
    if seg.shape == "points":
        if len(seg.points) < 2:
            raise ConfigError(f"{path}.points", "needs at least two [u, value] points")
        last_u = -1.0
        for i, point in enumerate(seg.points):
            if len(point) != 2:
                raise ConfigError(f"{path}.points[{i}]", f"expected [u, value], got {point}")
            u, v = point
            if not 0.0 <= u <= 1.0 or u < last_u:
                raise ConfigError(f"{path}.points[{i}]", f"u must rise within [0, 1], got {u}")
            if v < 0 or (seg.log and v <= 0):
                kind = "> 0 (log: true)" if seg.log else ">= 0"
                raise ConfigError(f"{path}.points[{i}]", f"value must be {kind}, got {v}")
            last_u = u


def resolve_segments(spec: RunSpec, units: Units, lane: str = "lr") -> list[Segment]:
    """Check and resolve the segments of ``timeline.<lane>`` (``lr``, or ``batch``: the same
    fields). Raises ConfigError naming the segment's field."""
    out: list[Segment] = []
    prev_end = 0
    for i, seg in enumerate(getattr(spec.timeline, lane)):
        path = f"timeline.{lane}[{i}]"
        _check_segment(seg, path)
        start = resolve_position(seg.start, f"{path}.start", units)
        end = resolve_position(seg.end, f"{path}.end", units)
        if start is None or end is None:  # epoch units: checked once the data is known
            continue
        if end <= start:
            raise ConfigError(f"{path}.end", f"must be after start ({start}), got {end}")
        if end > units.steps:
            raise ConfigError(
                f"{path}.end", f"tick {end} is past the end of the run (train.steps={units.steps})"
            )
        if start < prev_end:
            raise ConfigError(
                f"{path}.start", f"tick {start} overlaps the previous segment (ends at {prev_end})"
            )
        milestones = []
        for j, m in enumerate(seg.milestones):
            tick = resolve_position(m, f"{path}.milestones[{j}]", units)
            if tick is not None and not start <= tick < end:
                raise ConfigError(
                    f"{path}.milestones[{j}]",
                    f"tick {tick} is outside the segment (ticks {start} to {end - 1})",
                )
            if tick is not None:
                milestones.append(tick)
        out.append(Segment(start, end, seg, tuple(sorted(milestones)), i))
        prev_end = end
    return out


def lr_curve(spec: RunSpec, units: Units, segments: list[Segment] | None = None) -> np.ndarray:
    """The learning rate at every tick 0 .. steps-1 (float64), phase lr_scale not yet applied
    (``segments``: already resolved)."""
    if segments is None:
        segments = resolve_segments(spec, units)
    if not segments:
        return np.full(units.steps, spec.train.lr)
    curve = np.empty(units.steps)
    curve[: segments[0].start] = segments[0].first_value()
    for k, seg in enumerate(segments):
        ticks = np.arange(seg.start, seg.end)
        curve[seg.start : seg.end] = seg.values(ticks)
        hold_until = segments[k + 1].start if k + 1 < len(segments) else units.steps
        curve[seg.end : hold_until] = curve[seg.end - 1]
    return curve
