"""Timeline positions: ``500`` (ticks), ``"25%"`` (of the run), ``"2ep"`` (epochs of the data),
``"1.5Mtok"`` (tokens seen), resolved to ticks with exact decimal arithmetic."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from engine.config import Position, RunSpec, show
from engine.errors import ConfigError

_UNIT = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%|ep|tok|Ktok|Mtok|Gtok)\s*")
_LONGEST = 40  # characters in a position string (the pattern is matched on no more)
_EXPONENTS = range(-15, 16)  # decimal exponents a position's number may have (0 aside)
_TOKEN_SCALE = {"tok": 1, "Ktok": 10**3, "Mtok": 10**6, "Gtok": 10**9}


class TokenCurve:
    """Tokens seen before each tick when tokens per tick vary (a batch lane): ``before[t]`` for
    t = 0 .. steps, ``before[0] = 0``, exact integers (int64, read-only)."""

    __slots__ = ("before",)

    def __init__(self, per_tick: np.ndarray):
        self.before = np.concatenate([[0], np.cumsum(per_tick, dtype=np.int64)])
        self.before.flags.writeable = False

    def __eq__(self, other) -> bool:
        return isinstance(other, TokenCurve) and np.array_equal(self.before, other.before)

    def __hash__(self) -> int:
        return hash(self.before.tobytes())

    def __repr__(self) -> str:
        return f"TokenCurve(steps={len(self.before) - 1}, tokens={int(self.before[-1])})"


@dataclass(frozen=True)
class Units:
    """What converting positions needs: run length and how many tokens one tick consumes.

    ``tokens_per_tick`` is at ``train.batch_size``; with a batch lane, ``curve`` holds the
    tokens seen before every tick (``None``: every tick consumes ``tokens_per_tick``)."""

    steps: int
    tokens_per_tick: int
    tokens_in_split: int | None = None  # train tokens in one epoch; None until the data is built
    curve: TokenCurve | None = None

    def tokens_before(self, tick: int) -> int:
        """Tokens seen before ``tick`` trains (0 at tick 0; ``tokens_before(t + 1)``: once tick
        t has trained). Past the run, the last tick's tokens per tick go on."""
        if self.curve is None:
            return tick * self.tokens_per_tick
        before = self.curve.before
        if tick <= self.steps:
            return int(before[tick])
        last = int(before[-1] - before[-2]) if self.steps else self.tokens_per_tick
        return int(before[-1]) + (tick - self.steps) * last

    def tokens_at(self, ticks) -> np.ndarray:
        """``tokens_before`` of an array of ticks, float64: fractional ticks interpolated (an
        axis between ticks), ticks past the run at the last tick's rate."""
        ticks = np.asarray(ticks, dtype=np.float64)
        if self.curve is None:
            return ticks * self.tokens_per_tick
        before = self.curve.before
        last = float(before[-1] - before[-2]) if self.steps else self.tokens_per_tick
        inside = np.interp(ticks, np.arange(len(before)), before.astype(np.float64))
        return np.where(ticks > self.steps, before[-1] + (ticks - self.steps) * last, inside)

    def tick_of_token(self, tokens: int) -> int:
        """The tick that trains token number ``tokens`` (counted from 0): the last tick whose
        ``tokens_before`` is at most ``tokens``."""
        if self.curve is None:
            return tokens // self.tokens_per_tick
        before = self.curve.before
        total = int(before[-1])
        if tokens >= total:  # past the run: continue at the last tick's rate
            last = int(before[-1] - before[-2]) if self.steps else self.tokens_per_tick
            return self.steps + (tokens - total) // last
        return int(np.searchsorted(before, tokens, side="right")) - 1


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
    m = _UNIT.fullmatch(pos) if isinstance(pos, str) and len(pos) <= _LONGEST else None
    if not m:
        raise ConfigError(
            path, f"expected a tick or a position like '25%', '2ep', '1.5Mtok'; got {show(pos)}"
        )
    # Exact decimal arithmetic: "33.3%" of 1000 ticks is 333, not 332.99999 floored to 332.
    # Decimal first: "1e999999999" must not become a Fraction of a billion-digit integer.
    number, unit = Decimal(m.group(1)), m.group(2)
    if number and number.adjusted() not in _EXPONENTS:
        raise ConfigError(path, f"{m.group(1)}{unit}: the number must lie in 1e-15 .. 1e15")
    value = Fraction(number)
    if unit == "%":
        return math.floor(value / 100 * units.steps)
    if unit == "ep":
        if units.tokens_in_split is None:
            return None
        return units.tick_of_token(math.floor(value * units.tokens_in_split))
    return units.tick_of_token(math.floor(value * _TOKEN_SCALE[unit]))
