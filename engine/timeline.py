"""The tick timeline compiler: positions in any unit -> ticks, LR segments -> one value per tick.

A tick is one optimizer step, numbered 0 .. train.steps - 1. The compiled timeline is a pure
function of the tick, so the editor's preview, the running engine and a resumed run all read the
same values.

LR convention (no hidden counters, no implicit origin): a segment covers ``[start, end)``; inside it
``u = (t - start + 1) / (end - start)``, so the first tick is already one step in and the last tick
reaches ``to`` exactly. Between segments the last value holds; before the first segment the first
segment's starting value holds; with no segments ``train.lr`` holds.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from dataclasses import dataclass

import numpy as np

from engine.config import LRSegment, Position, RunSpec
from engine.errors import ConfigError

_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%|ep|tok|Ktok|Mtok|Gtok)\s*$")
_TOKEN_SCALE = {"tok": 1, "Ktok": 10**3, "Mtok": 10**6, "Gtok": 10**9}


@dataclass(frozen=True)
class Units:
    """What converting positions needs: run length and how many tokens one tick consumes."""

    steps: int
    tokens_per_tick: int
    tokens_in_split: int | None = None  # train tokens in one epoch; None until the data is built


def units_for(
    spec: RunSpec, tokens_in_split: int | None = None, tokens_per_tick: int | None = None
) -> Units:
    """Units for a run. Without the data, tokens per tick is estimated as batch_size x context
    (exact for text; the trainer passes the task's real figure)."""
    t = spec.train
    return Units(t.steps, tokens_per_tick or t.batch_size * spec.model.context, tokens_in_split)


def resolve_position(pos: Position, path: str, units: Units) -> int | None:
    """A position (``500``, ``"25%"``, ``"2ep"``, ``"1.5Mtok"``) -> tick.

    Returns None for an epoch position while the data size is still unknown (spec-only checks).
    """
    if isinstance(pos, bool):
        raise ConfigError(path, f"expected a tick or a string like '25%', got {pos!r}")
    if isinstance(pos, int):
        if pos < 0:
            raise ConfigError(path, f"must be >= 0, got {pos}")
        return pos
    m = _UNIT.match(pos) if isinstance(pos, str) else None
    if not m:
        raise ConfigError(
            path, f"expected a tick or a position like '25%', '2ep', '1.5Mtok'; got {pos!r}"
        )
    # Exact decimal arithmetic: "33.3%" of 1000 ticks is 333, not 332.99999 floored to 332.
    value, unit = Fraction(m.group(1)), m.group(2)
    if unit == "%":
        return math.floor(value / 100 * units.steps)
    if unit == "ep":
        if units.tokens_in_split is None:
            return None
        return math.floor(value * units.tokens_in_split / units.tokens_per_tick)
    return math.floor(value * _TOKEN_SCALE[unit] / units.tokens_per_tick)


@dataclass(frozen=True)
class Segment:
    """An LR segment with its positions resolved to ticks."""

    start: int
    end: int
    spec: LRSegment
    milestones: tuple[int, ...] = ()

    def values(self, t: np.ndarray) -> np.ndarray:
        """LR at ticks ``t`` (all inside [start, end)), float64."""
        s = self.spec
        u = (t - self.start + 1) / (self.end - self.start)
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


def resolve_segments(spec: RunSpec, units: Units) -> list[Segment]:
    """Check and resolve the LR segments. Raises ConfigError naming the segment's field."""
    out: list[Segment] = []
    prev_end = 0
    for i, seg in enumerate(spec.timeline.lr):
        path = f"timeline.lr[{i}]"
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
            if tick is not None:
                milestones.append(tick)
        out.append(Segment(start, end, seg, tuple(sorted(milestones))))
        prev_end = end
    return out


def lr_curve(spec: RunSpec, units: Units) -> np.ndarray:
    """The learning rate at every tick 0 .. steps-1 (float64), phase lr_scale not yet applied."""
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


class CompiledTimeline:
    """The timeline resolved against a run: answers questions about any tick, purely."""

    def __init__(self, spec: RunSpec, units: Units | None = None):
        self.units = units or units_for(spec)
        self.steps = self.units.steps
        self._lr = lr_curve(spec, self.units)

    def lr_at(self, tick: int) -> float:
        """Learning rate applied by the optimizer step numbered ``tick`` (0-based)."""
        if not 0 <= tick < self.steps:
            raise IndexError(f"tick {tick} outside 0..{self.steps - 1}")
        return float(self._lr[tick])

    def lr_curve(self) -> np.ndarray:
        """LR for every tick, float64 array of length ``steps`` (a copy, for plotting)."""
        return self._lr.copy()


def compile_timeline(
    spec: RunSpec, tokens_in_split: int | None = None, tokens_per_tick: int | None = None
) -> CompiledTimeline:
    """Compile ``spec.timeline`` for ``spec.train.steps`` ticks. Raises ConfigError.

    ``tokens_in_split`` (train tokens per epoch) and ``tokens_per_tick`` come from the data
    (``Task``); they resolve "ep" and "tok" positions.
    """
    return CompiledTimeline(spec, units_for(spec, tokens_in_split, tokens_per_tick))
