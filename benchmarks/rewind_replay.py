"""Branch replay with rewind points: how long ``prepare_branch`` replays at the worst tick of a
finished run, now that the trainer saves a rewind point every ``REWIND_SECONDS`` of training
(``engine.rewind``), against the replay the checkpoints alone would need.

Trains a preset (default baby-gpt, shortened with ``--steps``, one torch thread, checkpoints as
the preset says), lists its rewind points, and branches at the worst tick: the one just before
the end of the widest gap between saved states (checkpoints and rewind points). Prints the gap,
the measured replay, the replay the checkpoints alone would cost (estimated from the run's own
mean tick), and the rewind folder's size.

    .venv/bin/python benchmarks/rewind_replay.py [--preset presets/baby-gpt.yaml] [--steps 600]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import load_preset, open_run, prepare_branch, replace, start_run  # noqa: E402
from engine.checkpoint import checkpoint_tick  # noqa: E402
from engine.rewind import REWIND_KEEP, REWIND_SECONDS, rewind_points  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", type=Path, default=ROOT / "presets/baby-gpt.yaml")
    p.add_argument("--steps", type=int, default=600)
    args = p.parse_args()
    spec = replace(load_preset(args.preset), {"train.steps": args.steps, "train.threads": 1})
    runs = Path(tempfile.mkdtemp())
    began = time.perf_counter()
    parent = start_run(spec, runs)
    assert parent.join(7200) and parent.status == "finished", parent.error
    trained = time.perf_counter() - began
    record = open_run(parent.run_dir)
    checkpoints = [checkpoint_tick(c) for c in record.checkpoints()]
    points = [checkpoint_tick(c) for c in rewind_points(parent.run_dir)]
    saved = sorted({0, *checkpoints, *points})
    gap, end = max((b - a, b) for a, b in zip(saved, saved[1:]))
    at = end - 1  # the tick before the widest gap's end: replayed from its start
    began = time.perf_counter()
    branch = prepare_branch(parent.run_dir, at, runs)
    replay = time.perf_counter() - began
    replayed = branch.origin["replayed"] if branch.origin else 0
    branch.discard()
    tick_s = trained / args.steps
    only = [0, *[c for c in checkpoints if c <= at]]
    size = sum(f.stat().st_size for f in (parent.run_dir / "rewind").rglob("*.pt"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"1 thread, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"preset {args.preset.name}, {args.steps} ticks trained in {trained:.0f} s "
          f"({1000 * tick_s:.0f} ms/tick)")  # fmt: skip
    print(f"a rewind point every {REWIND_SECONDS:g} s of training, {REWIND_KEEP} kept")
    print(f"checkpoints at {checkpoints}; {len(points)} rewind points, {size / 1e6:.1f} MB")
    print(f"widest gap {gap} ticks; branch at {at}: replayed {replayed} ticks in {replay:.1f} s")
    print(f"from the checkpoints alone: {at - max(only)} ticks, about "
          f"{(at - max(only)) * tick_s:.0f} s at the run's mean tick")  # fmt: skip


if __name__ == "__main__":
    main()
