"""Branch replay with rewind points: how long ``prepare_branch`` replays at the worst tick of a
finished run, now that the trainer saves rewind points as it trains (``engine.rewind``), against
the replay the checkpoints alone would need.

Trains each preset (its own length unless ``--steps`` shortens it, one torch thread, checkpoints
as the preset says), lists its rewind points, and branches at the worst tick: the one just before
the end of the widest gap between saved states (checkpoints and rewind points). Prints one row a
preset: the gap, the measured replay, the replay the checkpoints alone would cost (estimated from
the run's own mean tick), and the rewind folder's size.

    .venv/bin/python benchmarks/rewind_replay.py [--preset presets/baby-gpt.yaml ...] [--steps N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import load_preset, open_run, prepare_branch, replace, start_run  # noqa: E402
from engine.checkpoint import checkpoint_tick  # noqa: E402
from engine.rewind import (  # noqa: E402
    REWIND_BYTES,
    REWIND_MIN_SECONDS,
    REWIND_SECONDS,
    rewind_points,
)


def measure(preset: Path, steps: int | None) -> str:
    spec = load_preset(preset)
    steps = steps or spec.train.steps
    spec = replace(spec, {"train.steps": steps, "train.threads": 1})
    runs = Path(tempfile.mkdtemp())
    try:
        began = time.perf_counter()
        parent = start_run(spec, runs)
        assert parent.join(7200) and parent.status == "finished", parent.error
        trained = time.perf_counter() - began
        checkpoints = [checkpoint_tick(c) for c in open_run(parent.run_dir).checkpoints()]
        points = [checkpoint_tick(c) for c in rewind_points(parent.run_dir)]
        saved = sorted({0, *checkpoints, *points})
        gap, end = max((b - a, b) for a, b in zip(saved, saved[1:]))
        at = end - 1  # the tick before the widest gap's end: replayed from its start
        began = time.perf_counter()
        branch = prepare_branch(parent.run_dir, at, runs)
        replay = time.perf_counter() - began
        replayed = branch.origin["replayed"] if branch.origin else 0
        branch.discard()
        tick_s = trained / steps
        alone = at - max([0, *[c for c in checkpoints if c <= at]])
        size = sum(f.stat().st_size for f in (parent.run_dir / "rewind").rglob("*.pt"))
        return (
            f"| {preset.stem} | {steps} | {1000 * tick_s:.1f} | {len(points)} | {size / 1e6:.0f} "
            f"| {gap} | {at} | {replayed} | **{replay:.1f}** | {alone} | {alone * tick_s:.0f} |"
        )
    finally:
        shutil.rmtree(runs, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", type=Path, nargs="+", default=[ROOT / "presets/baby-gpt.yaml"])
    p.add_argument("--steps", type=int, default=None, help="shorten every preset to this")
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"1 thread, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"a rewind point every {REWIND_MIN_SECONDS:g} to {REWIND_SECONDS:g} s of training, "
          f"up to {REWIND_BYTES // 2**20} MB kept")  # fmt: skip
    head = (
        "preset", "ticks", "mean tick (ms)", "rewind points", "MB", "widest gap (ticks)",
        "branch at", "replayed (ticks)", "replay (s)", "from checkpoints alone (ticks)",
        "estimated (s)",
    )  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for preset in args.preset:
        print(measure(preset, args.steps), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
