"""Following run folders that another process may be writing (the headless CLI, a torchrun job,
a run this window started): which runs exist, which changed, and their new scalars.

Polling is cheap by design. A folder's *stamp* is the (mtime, size) of ``metrics.sqlite`` and of
its write-ahead log: the engine commits at most every half second and every commit changes the
log, so an unchanged stamp means there is nothing new to read and no query is made. A changed one
leads to reading only the rows after the last tick already held.

Pure Python (no Qt): the Runs panel calls ``poll`` from its timer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import engine
from engine import ScalarRows, read_scalars

STORE = "metrics.sqlite"
# A store this size reads in about 25 ms (SQLite and Python turn about a million rows a second
# into arrays): selecting it reads it at once; a bigger one is read off the GUI thread.
INLINE_BYTES = 1_000_000
LIVE = ("running", "paused")  # a writer is (or was, if it died) still appending


def stamp(run_dir: Path) -> tuple[int, ...]:
    """What changes whenever the run's store commits: mtimes and sizes of the file and its log."""
    out: list[int] = []
    for name in (STORE, f"{STORE}-wal"):
        try:
            st = os.stat(run_dir / name)
        except FileNotFoundError:
            out += [0, 0]
        else:
            out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


def store_bytes(run_dir: Path) -> int:
    """Size of a run's store and its write-ahead log (what reading it scans)."""
    return sum(n for n in stamp(run_dir)[1::2])


class RunsDirWatcher:
    """The run folders under a runs directory and which of them changed since the last poll."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self._stamps: dict[Path, tuple[int, ...]] = {}

    def poll(self) -> tuple[list[Path], list[Path]]:
        """(folders new or changed since the last poll, folders gone)."""
        found = engine.run_dirs(self.runs_dir) if self.runs_dir.is_dir() else []
        changed = []
        for path in found:
            s = stamp(path)
            if self._stamps.get(path) != s:
                self._stamps[path] = s
                changed.append(path)
        present = set(found)
        gone = [p for p in self._stamps if p not in present]
        for path in gone:
            del self._stamps[path]
        return changed, gone

    def forget(self, path: Path) -> None:
        """Treat ``path`` as changed at the next poll (after renaming or tagging it here). It
        stays known: deleted before that poll, it is reported gone (its row would stay)."""
        if Path(path) in self._stamps:
            self._stamps[Path(path)] = ()  # no folder's stamp: changed at the next poll


class Track:
    """One metric of a run: ticks, values and wall times, grown by whole chunks in place (the
    arrays double when full). ``x``/``y`` make it readable wherever a ``Series`` is (smoothing)."""

    def __init__(self, capacity: int = 256):
        self._a = np.empty((3, capacity))  # rows: tick, value, wall
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, rows: ScalarRows) -> None:
        n, add = self._n, len(rows)
        if n + add > self._a.shape[1]:
            grown = np.empty((3, max(2 * self._a.shape[1], n + add)))
            grown[:, :n] = self._a[:, :n]
            self._a = grown
        self._a[0, n : n + add] = rows.ticks
        self._a[1, n : n + add] = rows.values
        self._a[2, n : n + add] = rows.walls
        self._n += add

    @property
    def x(self) -> np.ndarray:
        """Ticks (float64 view)."""
        return self._a[0, : self._n]

    @property
    def y(self) -> np.ndarray:
        return self._a[1, : self._n]

    @property
    def wall(self) -> np.ndarray:
        return self._a[2, : self._n]

    @property
    def next_tick(self) -> int:
        return int(self._a[0, self._n - 1]) + 1 if self._n else 0


class FollowedRun:
    """A run's scalars held in memory and topped up with the rows written since the last look.

    A run resumed meanwhile rewrites its rows from its checkpoint on: when the run turns live
    again after an end, everything is read afresh (``update`` then reports every metric).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.record = engine.open_run(self.path)
        self.tracks: dict[str, Track] = {}
        self._stamp: tuple[int, ...] | None = None
        self._live: bool | None = None

    def update(self) -> set[str]:
        """Read new rows if the store changed; the metrics that got any."""
        s = stamp(self.path)
        if s == self._stamp:
            return set()
        self._stamp = s
        live = self.record.status in LIVE
        changed: set[str] = set()
        if live and self._live is False:  # resumed: rows after its checkpoint were replaced
            changed = set(self.tracks)
            self.tracks.clear()
        self._live = live
        since = {m: t.next_tick for m, t in self.tracks.items()}
        for metric, rows in read_scalars(self.record, since).items():
            self.tracks.setdefault(metric, Track()).extend(rows)
            changed.add(metric)
        return changed

    @property
    def metrics(self) -> list[str]:
        return sorted(self.tracks)
