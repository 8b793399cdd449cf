"""torch.compile against eager on the same run: wall time (compiling included), ticks/s once
compiled, time to the first tick, final val loss and recompiles, side by side in one process.

    .venv/bin/python benchmarks/compile_speed.py [presets/baby-gpt.yaml] [--steps N] [--threads T]
        [--stats-every K]

Trains the spec twice through the engine (``python -m engine run``'s path), eager then with
``train.compile: true``, from the same seed, one run at a time. ``--stats-every 0`` (the default
here) turns off activation statistics, whose ticks run uncompiled; the preset's own value is
kept with ``--stats-every -1``. Prints a table and the ratio compiled/eager of the wall time
(target <= 0.85 for baby-gpt) and of the ticks/s.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.run_rows import read_scalars  # noqa: E402
from engine.runs import open_run  # noqa: E402
from engine.specs import load_spec, replace  # noqa: E402
from engine.trainer import start_run  # noqa: E402


def measure(spec, runs_dir: Path) -> dict:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    start = time.perf_counter()
    handle = start_run(spec, runs_dir)
    assert handle.join(None) and handle.status == "finished", handle.error
    wall = time.perf_counter() - start
    run = open_run(handle.run_dir)
    walls = read_scalars(run, metrics=["train/loss"])["train/loss"].walls  # each tick's end
    val = float(run.scalars("val/loss")[1][-1])
    out = {"wall s": wall, "val loss": val}
    if len(walls) > 20:
        walls = np.asarray(walls, dtype=float)
        out["first tick s"] = float(walls[0] - run.meta["started"])
        half = len(walls) // 2  # the second half: compiled, warm, no compile in it
        out["ticks/s (2nd half)"] = (len(walls) - 1 - half) / float(walls[-1] - walls[half])
    counters = torch._dynamo.utils.counters
    out["graphs"] = int(counters["stats"].get("unique_graphs", 0))
    out["recompiles"] = int(sum(counters["recompiles"].values()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", nargs="?", default="presets/baby-gpt.yaml")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stats-every", type=int, default=0)
    args = p.parse_args()
    spec = load_spec(args.spec)
    over = {"train.threads": args.threads, "train.checkpoint_every": 0}
    if args.steps:
        over["train.steps"] = args.steps
    if args.stats_every >= 0:
        over["train.stats_every"] = args.stats_every
    spec = replace(spec, over)
    print(
        f"{spec.name}: {spec.train.steps} ticks, {args.threads} torch thread(s), torch "
        f"{torch.__version__}, {platform.machine()} {platform.processor() or ''}".strip()
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, compiled in (("eager", False), ("compiled", True)):
            results[name] = measure(replace(spec, {"train.compile": compiled}), Path(tmp))
            print(name, {k: round(v, 4) for k, v in results[name].items()}, flush=True)
    keys = sorted({k for r in results.values() for k in r})
    print("| measure | eager | compiled | compiled / eager |")
    print("|---|---|---|---|")
    for k in keys:
        e, c = results["eager"].get(k), results["compiled"].get(k)
        ratio = f"{c / e:.3f}" if e and c is not None else ""
        shown = ["" if v is None else round(v, 4) for v in (e, c)]
        print(f"| {k} | {shown[0]} | {shown[1]} | {ratio} |")


if __name__ == "__main__":
    main()
