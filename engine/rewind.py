"""Rewind points: light, frequent saves of a run's whole state, so that a branch from any tick
replays seconds, not the whole run (``engine.branch``).

A checkpoint is written where the spec asks (``train.checkpoint_every``, marks, the end) and kept
as ``train.keep_checkpoints`` says; a resume starts from the newest. A rewind point is the same
state (``engine.checkpoint``: weights, optimizer, RNG streams, tick) written by rank 0 after any
tick once ``rewind_interval`` seconds of training have passed since the last save of either kind,
under ``rewind/`` in the run folder. The interval is 50 times the last point's save, so saving
costs about 2% of training, between ``REWIND_MIN_SECONDS`` and ``REWIND_SECONDS``: a small model
saves every second, baby-gpt's (10 MB a point) about every 5 s.

The points a run keeps fill ``REWIND_BYTES`` (``rewind_keep``: 25 of baby-gpt's, up to
``REWIND_MAX`` of a small model's) and are never fewer than ``REWIND_KEEP``. Past that, the point
whose neighbours are closest together goes, so the points stay spread over the whole run and a
branch replays at most about run time / points kept (one interval while the run is short).
``train.keep_checkpoints`` never deletes them, and a resume never starts from one.

A point is only written while the disk keeps ``REWIND_ROOM`` free after it (and four points'
worth): checkpoints and metrics, which a resume needs, come first. Short of room the run skips
points, with one warning, and goes on training. ``RewindPoints`` is the trainer's clock for
them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from engine.checkpoint import checkpoint_tick
from engine.runs import StoreError

REWIND_SECONDS = 5.0  # the longest interval between points
REWIND_MIN_SECONDS = 1.0  # the shortest
FIRST_POINT_SECONDS = REWIND_MIN_SECONDS  # training before a run's first point
REWIND_COST = 0.02  # a save's share of training time that sets the interval between them
REWIND_BYTES = 256 * 2**20  # the disk a run's points may fill, if that keeps REWIND_KEEP or more
REWIND_KEEP = 24
REWIND_MAX = 256  # thinning compares neighbours: keep it cheap
REWIND_ROOM = 64 * 2**20  # the free disk a point leaves for checkpoints and metrics
FOLDER = "rewind"  # save_checkpoint(run_dir / FOLDER, ...) writes rewind/checkpoints/tick_*.pt


def rewind_root(run_dir: Path) -> Path:
    """What ``save_checkpoint`` takes as its run folder to write a rewind point."""
    return Path(run_dir) / FOLDER


def rewind_points(run_dir: Path) -> list[Path]:
    """The run's rewind points, oldest first."""
    return sorted((rewind_root(run_dir) / "checkpoints").glob("tick_*.pt"))


def rewind_interval(save_seconds: float) -> float:
    """Seconds of training between rewind points, after a save that took ``save_seconds``."""
    return min(REWIND_SECONDS, max(REWIND_MIN_SECONDS, save_seconds / REWIND_COST))


def rewind_keep(point_bytes: int) -> int:
    """How many points of ``point_bytes`` each a run keeps."""
    fit = REWIND_BYTES // max(point_bytes, 1)
    return max(REWIND_KEEP, min(REWIND_MAX, fit))


def room_for_point(run_dir: Path, point_bytes: int) -> bool:
    """Whether one more point of ``point_bytes`` leaves ``REWIND_ROOM`` (and four points) free."""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return False
    return free - point_bytes >= max(REWIND_ROOM, 4 * point_bytes)


def thin_rewind_points(run_dir: Path, keep: int | None = None) -> list[Path]:
    """Delete points until ``keep`` remain (``rewind_keep`` of the newest point's size if None),
    each time the one whose neighbours are closest together (the first and the last always
    stay). Returns what was deleted."""
    points = rewind_points(run_dir)
    if keep is None:
        keep = rewind_keep(points[-1].stat().st_size) if points else REWIND_KEEP
    gone = []
    while len(points) > max(keep, 2):
        ticks = [checkpoint_tick(p) for p in points]
        i = min(range(1, len(points) - 1), key=lambda k: (ticks[k + 1] - ticks[k - 1], k))
        points[i].unlink(missing_ok=True)
        gone.append(points.pop(i))
    return gone


class RewindPoints:
    """A run's rewind-point clock (rank 0): ``due`` after an interval of training since the last
    save of either kind (``saved``), ``write`` one when there is room. A point that cannot be
    written (a full disk) stops them for the run, with a warning: the run goes on."""

    def __init__(self):
        self._saved_at: float | None = time.monotonic()  # the last save (None: no more points)
        self._every = FIRST_POINT_SECONDS  # seconds of training between points
        self._bytes = 0  # the last point's size
        self._short_of_room = False  # a point was skipped for disk (warned once)

    def saved(self) -> None:
        """A checkpoint or a point was just written: the interval starts again."""
        if self._saved_at is not None:
            self._saved_at = time.monotonic()

    def due(self) -> bool:
        return self._saved_at is not None and time.monotonic() - self._saved_at >= self._every

    def write(self, run_dir: Path, save: Callable[[Path], Path], log: Callable[[str], None]):
        """Save a point with ``save`` (which writes the run's state under the folder it is given
        and returns the file), then thin the points; ``log`` says a warning."""
        if not room_for_point(run_dir, self._bytes):
            self._saved_at = time.monotonic()  # look again after another interval
            if not self._short_of_room:
                self._short_of_room = True
                log("rewind points skipped: the disk is nearly full (kept for checkpoints)")
            return
        try:
            (rewind_root(run_dir) / "checkpoints").mkdir(parents=True, exist_ok=True)
            began = time.monotonic()
            path = save(rewind_root(run_dir))
            self._every = rewind_interval(time.monotonic() - began)
            self._bytes = path.stat().st_size
            thin_rewind_points(run_dir)
        except (StoreError, OSError) as exc:
            self._saved_at = None
            log(f"no more rewind points (branches replay from checkpoints): {exc}")
