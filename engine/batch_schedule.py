"""The batch-size lane: ``timeline.batch`` segments -> sequences per tick.

A batch segment has the LR segment's fields and shapes (``engine.lr_schedule``: the same
``[start, end)`` and ``u = (t - start + 1) / (end - start)`` convention), its values in sequences
per tick, in the unit of ``train.batch_size`` (under torchrun, per rank: the tick's global batch is
the value times the world size, each rank training its own slice). Outside every segment, and in
the gaps between them, the batch is ``train.batch_size``.

Values are whole numbers: the curve is rounded half up, ``floor(v + 1/2)``, after rounding ``v``
to 9 decimals (so float error in a shape never flips an exact half: 12.5 is 13). ``from``, ``to``
and the points' values must be whole numbers >= 1; a ``step`` curve that would drop below 1 is
refused at its ``gamma``. Positions are ticks or % of the run: a position in tokens or epochs
would depend on the curve it places.

With a batch lane, tokens per tick vary: tick t consumes ``batch[t] * tokens_per_tick /
train.batch_size`` tokens, and positions in tokens and epochs resolve against their sum
(``engine.positions.Units.curve``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.config import LRSegment, RunSpec, TrainConfig
from engine.errors import ConfigError
from engine.lr_schedule import Segment, resolve_segments
from engine.positions import TokenCurve, Units

_TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
LARGEST_BATCH = _TRAIN_FIELDS["batch_size"].metadata["max"]  # sequences per tick, as the field
SCALING = {"none": None, "linear": 1.0, "sqrt": 0.5}  # lr_batch_scaling -> exponent of the ratio


def round_half_up(values: np.ndarray) -> np.ndarray:
    """The lane's one rounding: ``floor(round(v, 9) + 1/2)``, as int64 (``values`` checked to
    lie in 1..LARGEST_BATCH first: see ``_rounded``)."""
    return _rounded(values).astype(np.int64)


def _rounded(values: np.ndarray) -> np.ndarray:
    return np.floor(np.round(values, 9) + 0.5)  # float64: no overflow for any value


def _check_whole(value: float | None, path: str) -> None:
    if value is None:
        return
    if value != int(value) or not 1 <= value <= LARGEST_BATCH:
        raise ConfigError(
            path, f"a batch size is a whole number of sequences in 1..{LARGEST_BATCH}, got {value}"
        )


def _check_positions(seg: LRSegment, path: str) -> None:
    named = [("start", seg.start), ("end", seg.end)]
    named += [(f"milestones[{j}]", m) for j, m in enumerate(seg.milestones)]
    for key, pos in named:
        if isinstance(pos, str) and pos.strip().endswith(("tok", "ep")):
            raise ConfigError(
                f"{path}.{key}",
                f"{pos}: batch positions are ticks or % of the run (a position in tokens or "
                "epochs would depend on the batch curve it places)",
            )


def _check_values(seg: Segment, path: str) -> None:
    s = seg.spec
    _check_whole(s.from_, f"{path}.from")
    if s.shape in ("linear", "cosine", "exp"):
        _check_whole(s.to, f"{path}.to")
    for j, (_, value) in enumerate(s.points):
        _check_whole(value, f"{path}.points[{j}]")
    if s.shape == "step":
        with np.errstate(over="ignore"):  # gamma^k past any float: inf, refused below
            values = _rounded(seg.values(np.arange(seg.start, seg.end)))
        for bad, word in ((values.min(), "at least 1"), (values.max(), f"at most {LARGEST_BATCH}")):
            if not 1 <= bad <= LARGEST_BATCH:
                raise ConfigError(
                    f"{path}.gamma",
                    f"the steps take the batch to {bad:g} (from {s.from_:g} x {s.gamma:g}^"
                    f"{len(seg.milestones)}); a batch is {word}",
                )


def batch_segments(spec: RunSpec, units: Units) -> list[Segment]:
    """The checked and resolved batch segments. Raises ConfigError naming the field."""
    for i, seg in enumerate(spec.timeline.batch):
        _check_positions(seg, f"timeline.batch[{i}]")
    segments = resolve_segments(spec, units, "batch")
    for seg in segments:
        _check_values(seg, f"timeline.batch[{seg.index}]")
    return segments


def batch_curve(spec: RunSpec, units: Units, segments: list[Segment] | None = None) -> np.ndarray:
    """Sequences per tick for ticks 0 .. steps-1 (int64): the segments' rounded values,
    ``train.batch_size`` outside them."""
    if segments is None:
        segments = batch_segments(spec, units)
    curve = np.full(units.steps, spec.train.batch_size, dtype=np.int64)
    for seg in segments:
        curve[seg.start : seg.end] = round_half_up(seg.values(np.arange(seg.start, seg.end)))
    return curve


def with_batch(units: Units, batch: np.ndarray, base: int) -> Units:
    """``units`` whose positions count the tokens of ``batch`` (sequences per tick; ``base``:
    the batch ``units.tokens_per_tick`` holds). Unchanged when every tick trains ``base``."""
    if not len(batch) or (batch == base).all():
        return dataclasses.replace(units, curve=None)
    per_tick = batch * units.tokens_per_tick // base  # exact: tokens per tick is base x per row
    return dataclasses.replace(units, curve=TokenCurve(per_tick))


def lr_factor(rules: np.ndarray, batch: np.ndarray, base: int) -> np.ndarray:
    """The ``lr_batch_scaling`` factor at every tick: ``(batch / base) ** p`` where the tick's
    phase asks for it (``rules``: its rule per tick), 1 elsewhere (float64)."""
    out = np.ones(len(batch))
    ratio = batch / base
    for rule, power in SCALING.items():
        if power is not None:
            at = rules == rule
            out[at] = ratio[at] ** power
    return out


def peak_field(spec: RunSpec, batch: np.ndarray) -> tuple[int, str]:
    """(the largest batch of the run, the field a memory refusal names: ``model`` when it is
    ``train.batch_size``, else the ``timeline.batch[i].<field>`` whose value it is)."""
    peak = int(batch.max()) if len(batch) else spec.train.batch_size
    if peak <= spec.train.batch_size:
        return spec.train.batch_size, "model"
    for i, seg in enumerate(spec.timeline.batch):
        written = [("from", seg.from_), ("to", seg.to)]
        written += [(f"points[{j}]", p[1]) for j, p in enumerate(seg.points)]
        for key, value in written:
            if value is not None and round(value) == peak:
                return peak, f"timeline.batch[{i}].{key}"
    return peak, "timeline.batch"
