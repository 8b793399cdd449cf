"""Steering's control channel: tokens/s with the per-tick poll of the ``revisions`` table against
none, side by side in one process.

A running run looks for revisions at a tick boundary at most every 0.1 s of wall time
(``engine.trainer.STORE_POLL_SECONDS``; every tick before that change):
``RunWriter.pending_revisions``, one indexed SELECT (``has_pending_revisions``) when nothing
waits. The "none" arm replaces both
methods on ``engine.runs.RunWriter`` by ones that return False / [] without touching SQLite, so
the two arms train the same spec and differ only by the poll. They alternate (ABBA order, after
a warm-up run) so load from elsewhere hits both alike. Mid-run evaluations, checkpoints and
activation statistics are off (they would only dilute the ratio), the LR schedule is the
constant ``train.lr`` (so any ``--steps`` is valid), and torch trains on one thread.

Throughput counts the ticks between the first and the last training tick by their wall-clock
stamps (the stamp follows each tick's step and its store rows, and the poll sits between two
ticks), so set-up is left out and the poll is in. On a shared 2-core machine a wall-clock ratio
resolves only a few percent, so one more run per spec times each poll where it runs (on the
training thread, ``perf_counter`` around the call) and sums the polls' share of the run's
ticks; and the poll alone is timed many times against a store like a running run's.
``--rounds 0`` skips the alternating runs.

    .venv/bin/python benchmarks/steer_cost.py [--rounds 6] [--baby-steps 200]
        [--tiny-steps 2000] [--polls 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import dump_spec  # noqa: E402
from engine.data import build_task  # noqa: E402
from engine.messages import Scalars  # noqa: E402
from engine.runs import RunWriter  # noqa: E402
from engine.specs import load_spec, replace  # noqa: E402
from engine.trainer import start_run  # noqa: E402
from tests.engine.helpers import tiny_spec  # noqa: E402

QUIET = {
    "train.eval_every": 0,
    "train.checkpoint_every": 0,
    "train.stats_every": 0,
    "train.threads": 1,
    "timeline.lr": [],
}


@contextlib.contextmanager
def no_channel():
    """RunWriter without its per-tick poll: nothing ever waits."""
    saved = RunWriter.has_pending_revisions, RunWriter.pending_revisions
    RunWriter.has_pending_revisions = lambda self: False
    RunWriter.pending_revisions = lambda self: []
    try:
        yield
    finally:
        RunWriter.has_pending_revisions, RunWriter.pending_revisions = saved


def timed_run(spec, runs_dir: Path) -> tuple[float, float, float, float]:
    """Train ``spec``; (tokens/s between its first and last tick, median tick in ms, tokens
    per second of this process's CPU time over the whole run, set-up included, seconds from
    the first tick to the last)."""
    walls: dict[int, float] = {}
    cpu = time.process_time()

    def sink(batch):
        for msg in batch:
            if isinstance(msg, Scalars) and "train/loss" in msg.values:
                walls[msg.tick] = msg.wall

    handle = start_run(spec, runs_dir, sink)
    assert handle.join() and handle.status == "finished", handle.error
    cpu = time.process_time() - cpu
    tokens = build_task(spec.data, spec.model).tokens_per_batch(spec.train.batch_size)
    stamps = np.array([walls[t] for t in sorted(walls)])
    assert len(stamps) == spec.train.steps
    return (
        (len(stamps) - 1) * tokens / (stamps[-1] - stamps[0]),
        1e3 * np.median(np.diff(stamps)),
        len(stamps) * tokens / cpu,
        stamps[-1] - stamps[0],
    )


def poll_cost(spec, runs_dir: Path, polls: int, settled: int = 20) -> dict[str, float]:
    """Microseconds per ``has_pending_revisions`` / ``pending_revisions`` on a run store like a
    running run's: open, a write transaction left uncommitted as the trainer leaves it between
    its commits, ``settled`` revisions already applied or refused in the table."""
    writer = RunWriter(runs_dir / "poll-cost")
    text = dump_spec(spec)
    for i in range(settled):
        rev = writer.add_revision(text, i, "bench")
        writer.settle_revision(rev, "applied" if i % 2 else "refused", i, "bench")
    writer.scalars(0, {"train/loss": 1.0})  # an open transaction, as mid-run
    out = {}
    for name in ("has_pending_revisions", "pending_revisions"):
        method = getattr(writer, name)
        times = []
        for _ in range(5):  # min over repeats of the mean: what a busy machine distorts least
            start = time.perf_counter()
            for _ in range(polls):
                method()
            times.append((time.perf_counter() - start) / polls)
        out[name] = 1e6 * min(times)
    writer.close()
    return out


def in_run_polls(spec, runs_dir: Path) -> dict[str, float]:
    """One run of ``spec`` with the trainer's poll (``pending_revisions``) timed where it runs,
    on the training thread: microseconds per poll (median, mean, max) and the share of the run's
    ticks the polls took, in wall-clock time and in the training thread's CPU time."""
    plain, spent, cpu = RunWriter.pending_revisions, [], []
    thread = {}  # the training thread's CPU clock at the first poll's start and the last's end

    def timed(self):
        start, start_cpu = time.perf_counter(), time.thread_time()
        out = plain(self)
        thread["last"] = time.thread_time()
        thread.setdefault("first", start_cpu)
        spent.append(time.perf_counter() - start)
        cpu.append(thread["last"] - start_cpu)
        return out

    RunWriter.pending_revisions = timed
    try:
        span = timed_run(spec, runs_dir)[3]
    finally:
        RunWriter.pending_revisions = plain
    us = 1e6 * np.array(spent)
    return {
        "median": float(np.median(us)),
        "mean": float(us.mean()),
        "max": float(us.max()),
        "share": float(np.sum(spent) / span),
        # the training thread's own CPU time: what the load from other processes moves least
        "cpu_median": 1e6 * float(np.median(cpu)),
        "cpu_share": float(np.sum(cpu) / (thread["last"] - thread["first"])),
        "polls_per_tick": len(spent) / spec.train.steps,
    }


def measure(name: str, spec, rounds: int, tmp: Path) -> dict:
    with no_channel():
        timed_run(replace(spec, {"train.steps": min(spec.train.steps, 50)}), tmp)  # warm-up
    arms: dict[str, list[tuple]] = {"with": [], "none": []}
    for i in range(rounds):
        for arm in ("with", "none") if i % 2 == 0 else ("none", "with"):
            with no_channel() if arm == "none" else contextlib.nullcontext():
                arms[arm].append(timed_run(spec, tmp))
            print(f"{name} round {i} {arm}: {arms[arm][-1][0]:,.0f} tok/s", file=sys.stderr)
    ratios = [w[0] / n[0] for w, n in zip(arms["with"], arms["none"])]
    cpu_ratios = [w[2] / n[2] for w, n in zip(arms["with"], arms["none"])]
    return {
        "name": name,
        "in_run": in_run_polls(spec, tmp),
        "arms": arms,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
        "steps": spec.train.steps,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6, help="alternating with/none pairs")
    p.add_argument("--baby-steps", type=int, default=200, help="ticks per baby-gpt run")
    p.add_argument("--tiny-steps", type=int, default=2000, help="ticks per tiny run")
    p.add_argument("--polls", type=int, default=20000, help="polls timed per repeat")
    args = p.parse_args()
    torch.set_num_threads(1)
    specs = {
        "baby-gpt": replace(
            load_spec(ROOT / "presets/baby-gpt.yaml"), {**QUIET, "train.steps": args.baby_steps}
        ),
        "tiny (tests/engine/helpers.py)": replace(
            tiny_spec(), {**QUIET, "train.steps": args.tiny_steps}
        ),
    }
    load = [os.getloadavg()[0]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in specs.items():
            build_task(spec.data, spec.model)  # the corpus cache, paid by neither arm
            rows.append(measure(name, spec, args.rounds, Path(tmp)))
            load.append(os.getloadavg()[0])
        cost = poll_cost(specs["baby-gpt"], Path(tmp), args.polls)

    print(
        f"# control channel: {args.rounds} alternating rounds per spec, torch "
        f"{torch.__version__}, 1 thread, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores; 1-min load average "
        f"{min(load):.1f} to {max(load):.1f}"
    )
    if args.rounds >= 2:
        print(
            "| spec | ticks per run | tokens/s with the poll (median) | tokens/s without "
            "(median) | ratio, median of rounds | ratio per round: min to max | mean ± sd "
            "| median tick (ms) | CPU-time ratio, median (min to max) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            w = statistics.median(a[0] for a in r["arms"]["with"])
            n = statistics.median(a[0] for a in r["arms"]["none"])
            tick = statistics.median(a[1] for a in r["arms"]["none"])
            ratios, cpu = r["ratios"], r["cpu_ratios"]
            print(
                f"| {r['name']} | {r['steps']} | {w:,.0f} | {n:,.0f} "
                f"| {statistics.median(ratios):.4f} | {min(ratios):.4f} to {max(ratios):.4f} "
                f"| {statistics.mean(ratios):.4f} ± {statistics.stdev(ratios):.4f} | {tick:.2f} "
                f"| {statistics.median(cpu):.4f} ({min(cpu):.4f} to {max(cpu):.4f}) |"
            )
        print()
    print(
        "| spec | polls per tick | poll in the run, wall median / mean / max (µs) | share of the "
        "ticks' wall time | ratio it implies | poll's thread CPU, median (µs) | share of the "
        "training thread's CPU | ratio it implies |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        q = r["in_run"]
        print(
            f"| {r['name']} | {q['polls_per_tick']:.3f} "
            f"| {q['median']:.1f} / {q['mean']:.1f} / {q['max']:.0f} "
            f"| {q['share']:.5f} | {1 - q['share']:.4f} | {q['cpu_median']:.1f} "
            f"| {q['cpu_share']:.5f} | {1 - q['cpu_share']:.4f} |"
        )
    print(
        f"\none poll alone (min over 5 repeats of the mean of {args.polls}, on a store with 20 "
        f"settled revisions and an open write transaction): has_pending_revisions "
        f"{cost['has_pending_revisions']:.1f} µs, pending_revisions "
        f"{cost['pending_revisions']:.1f} µs"
    )
    for r in rows[: len(rows) if args.rounds else 0]:
        print(f"{r['name']} ratio per round: {', '.join(f'{x:.4f}' for x in r['ratios'])}")
        cpu = ", ".join(f"{x:.4f}" for x in r["cpu_ratios"])
        print(f"{r['name']} CPU-time ratio per round: {cpu}")


if __name__ == "__main__":
    main()
