"""Steering demo: weight decay switched on by a revision in a grokking run, against none and
against the same switch planned before launch.

presets/grokking-mini.yaml with ``train.weight_decay: 0`` (presets/grokking-steered.yaml), in
three arms per seed:

- ``wd0``: weight decay 0 all along;
- ``steered``: weight decay 0, then a revision sent with ``RunHandle.steer`` while the run
  trains (``LEAD`` ticks before ``T``) switching ``train.weight_decay`` to 1.0 from tick ``T``;
- ``planned``: the switch written into the timeline before launch, as a phase starting at ``T``
  with ``weight_decay: 1.0``.

Per arm: the tick held-out accuracy (``val/accuracy``, logged every 25 ticks) first reaches 0.9
("never" within the run), and the final held-out accuracy; mean and sample standard deviation
over the seeds. Then whether ``steered`` and ``planned`` trained the same losses to the last
digit (a revision at T trains what a plan switching at T trains). Each run is a process of its
own with one torch thread, ``--jobs`` at a time.

    .venv/bin/python benchmarks/steer_grokking.py [--at 300] [--seeds 0 1 2] [--jobs 2]
        [--steps N] [--save results.json] [--load results.json]
"""

from __future__ import annotations

import argparse
import json
import os
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

from engine import dump_spec, load_spec, open_run, replace, start_run  # noqa: E402

PRESET = ROOT / "presets" / "grokking-steered.yaml"
ARMS = ("wd0", "steered", "planned")
THRESHOLD = 0.9
LEAD = 50  # the revision is sent this many ticks before it applies, with the run training
DECAY = 1.0  # grokking-mini's weight decay


def arm_spec(arm: str, seed: int, at: int, steps: int | None = None):
    """The spec an arm launches with (``steered`` launches the wd-0 spec)."""
    spec = replace(load_spec(PRESET), {"seed": seed})
    if steps:
        spec = replace(spec, {"train.steps": steps})
    if arm == "planned":
        phases = [{"name": "no-decay", "start": 0}, {"name": "decay", "start": at}]
        phases[1]["weight_decay"] = DECAY
        spec = replace(spec, {"timeline.phases": phases})
    return spec


def train_arm(arm: str, seed: int, at: int, steps: int | None = None) -> dict:
    """One run of ``arm`` at ``seed`` (in a worker process); its curves and what it cost."""
    spec = arm_spec(arm, seed, at, steps)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        revision = None
        if arm == "steered":
            handle = start_run(spec, tmp, paused=True)
            for _ in range(at - LEAD):
                handle.step()
            deadline = time.monotonic() + 600
            while handle.tick < at - LEAD:
                assert time.monotonic() < deadline, "the run never reached its lead tick"
                time.sleep(0.01)
            handle.resume()
            handle.steer(dump_spec(replace(spec, {"train.weight_decay": DECAY})), at)
        else:
            handle = start_run(spec, tmp)
        assert handle.join() and handle.status == "finished", handle.error
        run = open_run(handle.run_dir)
        if arm == "steered":
            (rev,) = run.revisions()
            revision = {"state": rev.state, "tick": rev.tick, "detail": rev.detail}
        out = {"arm": arm, "seed": seed, "revision": revision}
        for metric in ("val/accuracy", "train/accuracy", "train/loss"):
            ticks, values = run.scalars(metric)
            out[metric] = [ticks.tolist(), values.tolist()]
    out["cpu_s"] = time.process_time() - cpu0
    out["wall_s"] = time.perf_counter() - wall0
    return out


def first_at(curve: list, threshold: float) -> int | None:
    """The first tick a logged curve reaches ``threshold``; None if it never does."""
    return next((t for t, v in zip(*curve) if v >= threshold), None)


def _mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}" if values else "-"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def report(results: list[dict], at: int) -> None:
    seeds = sorted({r["seed"] for r in results})
    by = {(r["arm"], r["seed"]): r for r in results}
    steps = results[0]["train/loss"][0][-1] + 1
    print(
        f"# grokking-steered (p = 47, 40% train, {steps} ticks), switch at tick {at}; seeds "
        f"{', '.join(map(str, seeds))}; torch threads 1, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print("| arm | val acc >= 0.9 first at tick (per seed) | mean ± sd (never: excluded) "
          "| final val acc (per seed) | final mean ± sd | train acc >= 0.99 at |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for arm in ARMS:
        runs = [by[(arm, s)] for s in seeds if (arm, s) in by]
        if not runs:
            continue
        firsts = [first_at(r["val/accuracy"], THRESHOLD) for r in runs]
        finals = [r["val/accuracy"][1][-1] for r in runs]
        fits = [first_at(r["train/accuracy"], 0.99) for r in runs]
        reached = [float(f) for f in firsts if f is not None]
        never = len(firsts) - len(reached)
        spread = _mean_sd(reached, 0) if reached else "never"
        if reached and never:
            spread += f" ({never} never)"
        print(
            f"| {arm} | {', '.join('never' if f is None else str(f) for f in firsts)} "
            f"| {spread} | {', '.join(f'{v:.3f}' for v in finals)} | {_mean_sd(finals)} "
            f"| {', '.join('never' if f is None else str(f) for f in fits)} |"
        )
    for s in seeds:
        st, pl = by.get(("steered", s)), by.get(("planned", s))
        if st is None or pl is None:
            continue
        a, b = st["train/loss"], pl["train/loss"]
        same = a == b
        differ = next((t for t, x, y in zip(a[0], a[1], b[1]) if x != y), None)
        print(
            f"seed {s}: revision {st['revision']}; steered vs planned train losses "
            f"{'identical to the last digit' if same else f'differ from tick {differ}'} "
            f"({len(a[0])} vs {len(b[0])} ticks)"
        )
    walls = [r["wall_s"] for r in results]
    cpus = [r["cpu_s"] for r in results]
    print(
        f"per run: {min(cpus):.0f}-{max(cpus):.0f} s CPU, {min(walls):.0f}-{max(walls):.0f} s wall"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--at", type=int, default=300, help="tick the weight decay switches on")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--steps", type=int, help="shorten the runs (a quick check of the script)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one process each)")
    p.add_argument("--save", type=Path, help="write the curves to this JSON file")
    p.add_argument("--load", type=Path, help="report saved curves instead of training")
    args = p.parse_args()
    if args.load:
        saved = json.loads(args.load.read_text())
        report(saved["results"], saved["at"])
        return
    jobs = [(arm, seed, args.at, args.steps) for seed in args.seeds for arm in args.arms]
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(train_arm, *job) for job in jobs]
        results = []
        for future in futures:
            results.append(future.result())
            r = results[-1]
            print(f"done: {r['arm']} seed {r['seed']} ({r['wall_s']:.0f} s)", file=sys.stderr)
    if args.save:
        args.save.write_text(json.dumps({"at": args.at, "results": results}))
    report(results, args.at)


if __name__ == "__main__":
    main()
