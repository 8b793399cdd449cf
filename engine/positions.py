"""Timeline positions: ``500`` (ticks), ``"25%"`` (of the run), ``"2ep"`` (epochs of the data),
``"1.5Mtok"`` (tokens seen), resolved to ticks with exact decimal arithmetic."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from engine.config import Position, RunSpec, show
from engine.errors import ConfigError

_UNIT = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%|ep|tok|Ktok|Mtok|Gtok)\s*")
_LONGEST = 40  # characters in a position string (the pattern is matched on no more)
_EXPONENTS = range(-15, 16)  # decimal exponents a position's number may have (0 aside)
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
        return math.floor(value * units.tokens_in_split / units.tokens_per_tick)
    return math.floor(value * _TOKEN_SCALE[unit] / units.tokens_per_tick)
