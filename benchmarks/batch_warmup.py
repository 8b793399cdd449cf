"""Batch-size warmup against a fixed batch at equal tokens: presets/batch-warmup.yaml over seeds.

Each variant of the study (``fixed``: 16 sequences per tick; ``ramp``: 2 -> 16 over the first
200 ticks, then 16) trains once per seed, each run a process of its own with one torch thread,
``--jobs`` at a time. Both see 614,400 tokens; their evals are marks placed in tokens, so they
fall at the same tokens in both (to within the one tick that holds the marked token). Printed:
val loss against tokens, per variant the mean and sample standard deviation over the seeds, and
the ramp's final val loss minus the fixed batch's, per seed.

    .venv/bin/python benchmarks/batch_warmup.py [--seeds 1337 1 2] [--jobs 2]
        [--save results.json] [--load results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import open_run, plan_timeline, replace, start_run  # noqa: E402
from engine.study import load_preset  # noqa: E402

PRESET = ROOT / "presets" / "batch-warmup.yaml"


def train(variant: str, seed: int) -> dict:
    """One run: val loss at each eval, with the tokens seen by then (the plan's tokens axis)."""
    spec = replace(dict(load_preset(PRESET).variants)[variant], {"seed": seed})
    plan = plan_timeline(spec)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        handle = start_run(spec, tmp)
        assert handle.join() and handle.status == "finished", handle.error
        ticks, losses = open_run(handle.run_dir).scalars("val/loss")
    return {
        "variant": variant,
        "seed": seed,
        "tokens": [plan.tokens_at(int(t) + 1) for t in ticks],
        "val": losses.tolist(),
        "seconds": time.monotonic() - began,
    }


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def report(results: list[dict]) -> None:
    seeds = sorted({r["seed"] for r in results})
    by = {(r["variant"], r["seed"]): r for r in results}
    variants = [v for v in ("fixed", "ramp") if any(k[0] == v for k in by)]
    print(
        f"seeds {', '.join(map(str, seeds))}; torch threads 1, {platform.machine()}, "
        f"python {platform.python_version()}"
    )
    print("\n| tokens | " + " | ".join(f"{v} val loss (mean ± sd)" for v in variants) + " |")
    print("|---:|" + "---:|" * len(variants))
    first = by[(variants[0], seeds[0])]
    for i in range(len(first["val"])):
        cells = []
        for v in variants:
            vals = [by[(v, s)]["val"][i] for s in seeds]
            toks = {by[(v, s)]["tokens"][i] for s in seeds}
            cells.append(f"{_mean_sd(vals)} (at {min(toks):,} tok)")
        print(f"| {first['tokens'][i]:,} | " + " | ".join(cells) + " |")
    if len(variants) == 2:
        diffs = [by[("ramp", s)]["val"][-1] - by[("fixed", s)]["val"][-1] for s in seeds]
        print(
            f"\nramp - fixed, final val loss: {', '.join(f'{d:+.4f}' for d in diffs)} "
            f"(mean {statistics.mean(diffs):+.4f})"
        )
    for v in variants:
        secs = [by[(v, s)]["seconds"] for s in seeds]
        print(f"{v}: {statistics.mean(secs):.0f} s per run")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1337, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--save", type=Path)
    p.add_argument("--load", type=Path)
    args = p.parse_args()
    if args.load:
        results = json.loads(args.load.read_text())
    else:
        jobs = [(v, s) for s in args.seeds for v in ("fixed", "ramp")]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(train, *zip(*jobs)))
        if args.save:
            args.save.write_text(json.dumps(results, indent=1))
    report(results)


if __name__ == "__main__":
    main()
