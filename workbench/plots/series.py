"""Metric history kept in full: arrays that double when full, handed to plots as views."""

from __future__ import annotations

import numpy as np


class Series:
    """(x, y) float64 points appended in order. Appending is amortised O(1) (the arrays double
    when full) and ``x``/``y`` are views, so a redraw copies nothing."""

    def __init__(self, capacity: int = 1024):
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, x: float, y: float) -> None:
        if self._n == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    def extend(self, x: np.ndarray, y: np.ndarray) -> None:
        """Append many points at once (x and y of equal length)."""
        need = self._n + len(x)
        if need > len(self._x):
            size = max(need, 2 * len(self._x))
            self._x = np.concatenate([self._x[: self._n], np.empty(size - self._n)])
            self._y = np.concatenate([self._y[: self._n], np.empty(size - self._n)])
        self._x[self._n : need] = x
        self._y[self._n : need] = y
        self._n = need

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    def clear(self) -> None:
        self._n = 0


class MetricStore:
    """Every scalar of the current run by metric name, and which ones changed since last asked."""

    def __init__(self):
        self._series: dict[str, Series] = {}
        self._dirty: set[str] = set()

    def add(self, tick: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = Series()
            series.append(tick, value)
            self._dirty.add(name)

    def sync(self, name: str, x: np.ndarray, y: np.ndarray) -> None:
        """Make ``name`` hold exactly ``x``, ``y`` (a followed run's whole track), adding only
        the points past those held when the start is unchanged."""
        series = self._series.get(name)
        n = len(series) if series is not None else 0
        if series is None or n > len(x) or (n and series.x[n - 1] != x[n - 1]):
            series = self._series[name] = Series(max(len(x), 1))
            n = 0
        if len(x) > n:
            series.extend(x[n:], y[n:])
            self._dirty.add(name)

    def get(self, name: str) -> Series | None:
        return self._series.get(name)

    def names(self) -> list[str]:
        return sorted(self._series)

    def take_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def clear(self) -> None:
        self._series.clear()
        self._dirty.clear()
