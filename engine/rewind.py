"""Rewind points: light, frequent saves of a run's whole state, so that a branch from any tick
replays seconds, not the whole run (``engine.branch``).

A checkpoint is written where the spec asks (``train.checkpoint_every``, marks, the end) and kept
as ``train.keep_checkpoints`` says; a resume starts from the newest. A rewind point is the same
state (``engine.checkpoint``: weights, optimizer, RNG streams, tick) written by rank 0 after any
tick once ``REWIND_SECONDS`` of training have passed since the last save of either kind, under
``rewind/`` in the run folder. At most ``REWIND_KEEP`` are kept: past that, the point whose
neighbours are closest together goes, so the points stay spread over the whole run and a branch
replays at most about run time / ``REWIND_KEEP`` (``REWIND_SECONDS`` while the run is short).
``train.keep_checkpoints`` never deletes them, and a resume never starts from one.
"""

from __future__ import annotations

from pathlib import Path

from engine.checkpoint import checkpoint_tick

REWIND_SECONDS = 5.0
REWIND_KEEP = 24
FOLDER = "rewind"  # save_checkpoint(run_dir / FOLDER, ...) writes rewind/checkpoints/tick_*.pt


def rewind_root(run_dir: Path) -> Path:
    """What ``save_checkpoint`` takes as its run folder to write a rewind point."""
    return Path(run_dir) / FOLDER


def rewind_points(run_dir: Path) -> list[Path]:
    """The run's rewind points, oldest first."""
    return sorted((rewind_root(run_dir) / "checkpoints").glob("tick_*.pt"))


def thin_rewind_points(run_dir: Path, keep: int = REWIND_KEEP) -> list[Path]:
    """Delete points until ``keep`` remain, each time the one whose neighbours are closest
    together (the first and the last always stay). Returns what was deleted."""
    points = rewind_points(run_dir)
    gone = []
    while len(points) > max(keep, 2):
        ticks = [checkpoint_tick(p) for p in points]
        i = min(range(1, len(points) - 1), key=lambda k: (ticks[k + 1] - ticks[k - 1], k))
        points[i].unlink(missing_ok=True)
        gone.append(points.pop(i))
    return gone
