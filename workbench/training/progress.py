"""Run progress for the status bar: ticks done, rate, ETA and throughput (no Qt)."""

from __future__ import annotations

import statistics
from collections import deque

WINDOW = 50  # ticks the rate and the throughput are measured over: steady, yet follows changes


class RunProgress:
    """Fed with (tick, wall time, tokens/s) per trained tick; answers what the status bar shows.

    The rate is measured between consecutive reports while the run trains: time spent paused
    (and ticks stepped one at a time while paused) is no measure of speed, so ``set_paused``
    leaves it out, and the ETA neither grows during a pause nor stays inflated after it.
    """

    def __init__(self, steps: int, done: int = 0):
        self.steps = steps
        self.done = done
        self._intervals: deque[tuple[int, float]] = deque(maxlen=WINDOW)  # (ticks, seconds)
        self._last: tuple[int, float] | None = None
        self._throughput: deque[float] = deque(maxlen=WINDOW)
        self._paused = False
        self._gap = False  # the next interval spans a pause

    def update(self, tick: int, wall: float, tokens_per_s: float | None = None) -> None:
        self.done = max(self.done, tick + 1)
        last = self._last
        if last is not None and tick > last[0] and wall >= last[1]:
            if not (self._paused or self._gap):
                self._intervals.append((tick - last[0], wall - last[1]))
            self._gap = self._paused
        self._last = (tick, wall)
        if tokens_per_s is not None:
            self._throughput.append(tokens_per_s)

    def set_paused(self, paused: bool) -> None:
        """The run paused (or is pausing), or trains again."""
        if paused != self._paused:
            self._paused = paused
            self._gap = True

    @property
    def fraction(self) -> float:
        return min(self.done / self.steps, 1.0) if self.steps else 0.0

    @property
    def tokens_per_s(self) -> float | None:
        """Median over the last ticks: one slow tick (an eval, a checkpoint) does not show."""
        return statistics.median(self._throughput) if self._throughput else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the recent rate while training (evals and checkpoints included,
        pauses not)."""
        ticks = sum(n for n, _ in self._intervals)
        seconds = sum(s for _, s in self._intervals)
        if not ticks or seconds <= 0:
            return None
        return max(self.steps - self.done, 0) * seconds / ticks


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
