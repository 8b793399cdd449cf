"""The editor's tick axis in ticks, % of the run or tokens: labels, snapping, written positions.

The x coordinate of every lane is the tick. A unit only changes how the axis is labelled, what
grid a drag snaps to, and how a dragged position is written back into the spec: ``420`` in
ticks, ``"35%"`` in % of the run, ``"1.5Mtok"`` in tokens. Every written position is resolved
back to a tick by the engine's own ``resolve_position``, so what the editor shows is what the
engine will run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import pyqtgraph as pg

import engine

UNIT_NAMES = ("ticks", "%", "tokens")
UNIT_TITLES = {"ticks": "ticks", "%": "% of run", "tokens": "tokens"}
# snap grids offered per unit, in that unit
GRIDS = {
    "ticks": (1, 5, 10, 25, 50, 100, 250, 500, 1000),
    "%": (0.5, 1, 2, 5, 10),
    "tokens": (1e3, 1e4, 1e5, 1e6, 1e7),
}
_SI = ((1e9, "G"), (1e6, "M"), (1e3, "K"))
_TOKEN_SUFFIXES = ((10**9, "Gtok"), (10**6, "Mtok"), (10**3, "Ktok"), (1, "tok"))
MAX_DECIMALS = 6


def _decimal(value: Fraction) -> str | None:
    """``value`` as a short exact decimal ("12.5"), or None if it needs more than 3 decimals."""
    for places in range(4):
        scaled = value * 10**places
        if scaled.denominator == 1:
            text = f"{scaled.numerator / 10**places:.{places}f}"
            return text
    return None


def si(value: float) -> str:
    """A compact number: 1200 -> "1.2K", 3e6 -> "3M"."""
    for scale, suffix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class AxisUnit:
    """One unit of the tick axis for a run of ``units.steps`` ticks."""

    name: str  # "ticks" | "%" | "tokens"
    units: engine.Units

    @property
    def per_tick(self) -> float:
        """Unit value of one tick."""
        if self.name == "%":
            return 100.0 / self.units.steps
        if self.name == "tokens":  # with a batch lane, the run's mean (``value`` is exact)
            return self.units.tokens_before(self.units.steps) / max(self.units.steps, 1)
        return 1.0

    def value(self, tick: float) -> float:
        if self.name == "tokens":  # tokens seen before the tick: the batch lane integrated
            return float(self.units.tokens_at(tick))
        return tick * self.per_tick

    def label(self, tick: float) -> str:
        """The tick as this unit shows it: "600", "50%", "460.8K tok"."""
        v = self.value(tick)
        if self.name == "%":
            return f"{v:.4g}%"
        if self.name == "tokens":
            return f"{si(v)} tok"
        return f"{v:.0f}"

    def resolve(self, position) -> int | None:
        return engine.resolve_position(position, "position", self.units)

    def position_at(self, tick: int):
        """A written position in this unit that the engine resolves to exactly ``tick``."""
        tick = max(int(tick), 0)
        if self.name == "ticks":
            return tick
        if self.name == "tokens":
            return self._tokens(self.units.tokens_before(tick), tick)
        # "%": the shortest decimal p whose floor(p/100 * steps) is the tick
        exact = Fraction(tick * 100, self.units.steps)
        for places in range(MAX_DECIMALS + 1):
            p = Fraction(math.ceil(exact * 10**places), 10**places)
            text = f"{float(p):.{places}f}%"
            if self.resolve(text) == tick:
                return text
        return tick  # not expressible in a few decimals: the tick itself is exact

    def _tokens(self, tokens: int, tick: int):
        for scale, suffix in _TOKEN_SUFFIXES:
            if tokens >= scale:
                text = _decimal(Fraction(tokens, scale))
                if text is not None and self.resolve(f"{text}{suffix}") == tick:
                    return f"{text}{suffix}"
        return tick

    def snap(self, tick: float, grid: float | None):
        """The position a drag to ``tick`` writes: on the grid (in this unit) when given, else on
        the nearest tick. Clamped to the run (0 .. steps)."""
        steps = self.units.steps
        tick = min(max(tick, 0.0), float(steps))
        if not grid:
            return self.position_at(round(tick))
        v = round(self.value(tick) / grid) * grid
        v = min(max(v, 0.0), self.value(steps))
        if self.name == "ticks":
            return int(v)
        if self.name == "%":
            text = _decimal(Fraction(v).limit_denominator(1000))
            return f"{text}%" if text is not None else self.position_at(round(tick))
        return self._tokens(int(v), self.units.tick_of_token(int(v)))

    def default_grid(self) -> float:
        """The grid giving about a hundred snap points over the run."""
        target = self.value(self.units.steps) / 100
        return min(GRIDS[self.name], key=lambda g: abs(math.log(g / target)) if target else g)


class UnitAxis(pg.AxisItem):
    """A bottom axis over ticks labelled in an ``AxisUnit``: the spacing is chosen in the unit
    (10%, 100K tokens), so the labels are round numbers of what the user picked."""

    def __init__(self, **kwargs):
        super().__init__("bottom", **kwargs)
        self.unit: AxisUnit | None = None

    def set_unit(self, unit: AxisUnit) -> None:
        self.unit = unit
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph's name)
        k = self.unit.per_tick if self.unit else 1.0
        levels = super().tickValues(minVal * k, maxVal * k, size)
        return [(spacing / k, [v / k for v in values]) for spacing, values in levels]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        if self.unit is None:
            return super().tickStrings(values, scale, spacing)
        k = self.unit.per_tick
        if self.unit.name == "%":
            return [f"{v * k:.4g}%" for v in values]
        if self.unit.name == "tokens":
            return [si(self.unit.value(v)) for v in values]
        return [f"{v:.0f}" for v in values]
