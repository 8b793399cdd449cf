"""Run progress for the status bar: ticks done, rate, ETA and throughput (no Qt)."""

from __future__ import annotations

import statistics
from collections import deque

WINDOW = 50  # ticks the rate and the throughput are measured over: steady, yet follows changes


class RunProgress:
    """Fed with (tick, wall time, tokens/s) per trained tick; answers what the status bar shows."""

    def __init__(self, steps: int):
        self.steps = steps
        self.done = 0
        self._walls: deque[tuple[int, float]] = deque(maxlen=WINDOW)
        self._throughput: deque[float] = deque(maxlen=WINDOW)

    def update(self, tick: int, wall: float, tokens_per_s: float | None = None) -> None:
        self.done = max(self.done, tick + 1)
        self._walls.append((tick, wall))
        if tokens_per_s is not None:
            self._throughput.append(tokens_per_s)

    @property
    def fraction(self) -> float:
        return min(self.done / self.steps, 1.0) if self.steps else 0.0

    @property
    def tokens_per_s(self) -> float | None:
        """Median over the last ticks: one slow tick (an eval, a checkpoint) does not show."""
        return statistics.median(self._throughput) if self._throughput else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the recent wall-clock rate (evals and checkpoints included)."""
        if len(self._walls) < 2:
            return None
        (t0, w0), (t1, w1) = self._walls[0], self._walls[-1]
        if t1 <= t0 or w1 <= w0:
            return None
        return (self.steps - self.done) * (w1 - w0) / (t1 - t0)


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``1:15``; an hour or more -> ``2h 05m``; unknown -> ``--:--``."""
    if seconds is None:
        return "--:--"
    whole = round(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 60}:{whole % 60:02d}"


def format_rate(tokens_per_s: float | None) -> str:
    if tokens_per_s is None:
        return "-- tok/s"
    if tokens_per_s >= 1000:
        return f"{tokens_per_s / 1000:.1f}k tok/s"
    return f"{tokens_per_s:.0f} tok/s"


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def format_count(n: int) -> str:
    """Parameter counts the way papers write them: 813,824 -> 0.81M."""
    if n >= 100_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1000:
        return f"{n / 1e3:.1f}K"
    return str(n)
