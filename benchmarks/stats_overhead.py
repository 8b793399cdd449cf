"""Activation-statistics overhead: the same engine run with ``train.stats_every`` 0 and 25.

Trains a preset (baby-gpt by default) in alternating rounds, stats off and on, so load from
elsewhere hits both alike. Mid-run evaluations and checkpoints are turned off, so the ratio is
against training alone (they would only dilute it), and the LR schedule is replaced by the
constant ``train.lr`` (it costs nothing per tick, and this way any ``--steps`` is valid).
Throughput counts the ticks between the first and the last training tick by their wall-clock
stamps, so set-up (data, model) is left out and everything a capture costs (hooks, the host
copy, the run-store rows) is in. Prints tokens/s of each, the ratio on/off per round and its
median (target >= 0.95), and what one capture tick costs over an ordinary tick (from the
engine's own per-tick tokens/s, which times the forward with its hooks).

    .venv/bin/python benchmarks/stats_overhead.py [presets/baby-gpt.yaml] [--steps 300]
        [--rounds 4] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import build_task  # noqa: E402
from engine.messages import Scalars  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.runs import RunWriter, open_run  # noqa: E402
from engine.setup import resolve_device  # noqa: E402
from engine.specs import load_spec, replace  # noqa: E402
from engine.stats import StatsRecorder  # noqa: E402
from engine.trainer import batch_loss, start_run  # noqa: E402

STATS_EVERY = 25  # the default of train.stats_every


def timed_run(spec, runs_dir: Path) -> dict:
    """Train ``spec``; its tokens/s between the first and the last training tick, the median
    time of an ordinary tick, and what a capture adds to the ticks around it."""
    walls: dict[int, float] = {}

    def sink(batch):
        for msg in batch:
            if isinstance(msg, Scalars) and "train/loss" in msg.values:
                walls[msg.tick] = msg.wall

    handle = start_run(spec, runs_dir, sink)
    assert handle.join() and handle.status == "finished", handle.error
    tokens = build_task(spec.data, spec.model).tokens_per_batch(spec.train.batch_size)
    ticks = np.array(sorted(walls))
    stamps = np.array([walls[t] for t in ticks])
    assert np.array_equal(ticks, np.arange(len(ticks)))
    # gap[k] (k >= 1): tick k's step, plus whatever followed tick k - 1's stamp (a capture's
    # host copy and run-store rows come after its stamp)
    gap = np.diff(stamps, prepend=np.nan)
    every = spec.train.stats_every
    due = (ticks % every == 0) if every else np.zeros(len(ticks), dtype=bool)
    ordinary = np.median(gap[1:][~due[1:] & ~due[:-1]])
    # medians throughout: a 2-core machine shared with other jobs stalls whole ticks now and then
    hist = open_run(handle.run_dir).activation_stats()
    stored = len(hist[next(iter(hist))].ticks) if hist else 0
    assert stored == due.sum(), f"{stored} captures stored, {due.sum()} due"
    captures = ticks[1:-1][due[1:-1]]
    extra = np.median(gap[captures] + gap[captures + 1] - 2 * ordinary) if len(captures) else 0.0
    return {
        "tokens_per_s": (len(ticks) - 1) * tokens / (stamps[-1] - stamps[0]),
        "tick_ms": 1e3 * ordinary,
        "extra_ms": 1e3 * extra,
        "captures": stored,
        "estimate": every * ordinary / (every * ordinary + extra) if every else 1.0,
    }


def capture_cost(spec, runs_dir: Path, repeats: int = 30) -> float:
    """Milliseconds a capture adds to one training forward: the hooks, the host copy and the
    run-store rows, as the minimum over ``repeats`` interleaved pairs (the minimum is what a
    busy machine distorts least)."""
    task = build_task(spec.data, spec.model)
    model = build_model(spec.model, task.vocab_size).to(resolve_device(spec.train.device))
    batch = task.batch("train", spec.train.batch_size, torch.Generator().manual_seed(0))
    batch = batch.to(next(model.parameters()).device)
    recorder = StatsRecorder(model, 2)  # due at tick 0, not at 1
    writer = RunWriter(runs_dir / "capture-cost")

    def forward(capture: bool) -> float:
        start = time.perf_counter()
        with torch.no_grad(), recorder.capture(0 if capture else 1):
            loss, _ = batch_loss(model, batch)
        loss.item()
        if capture:
            writer.activation_stats(recorder.collect())
        return time.perf_counter() - start

    plain, captured = [], []
    for _ in range(repeats):
        plain.append(forward(False))
        captured.append(forward(True))
    writer.close()
    return 1e3 * (min(captured) - min(plain))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", nargs="?", default="presets/baby-gpt.yaml")
    p.add_argument("--steps", type=int, default=300, help="ticks per run")
    p.add_argument("--rounds", type=int, default=4, help="alternating off/on pairs")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="override train.threads (1 keeps a busy 2-core machine from stalling torch's "
        "OpenMP team, see 'Workbench responsiveness')",
    )
    args = p.parse_args()
    base = replace(
        load_spec(args.spec),
        # the LR schedule costs nothing per tick; dropping it lets any --steps run
        {
            "train.steps": args.steps,
            "train.eval_every": 0,
            "train.checkpoint_every": 0,
            "timeline.lr": [],
        },
    )
    if args.threads is not None:
        base = replace(base, {"train.threads": args.threads})
    specs = {
        "off": replace(base, {"train.stats_every": 0}),
        "on": replace(base, {"train.stats_every": STATS_EVERY}),
    }
    build_task(base.data, base.model)  # warm the corpus cache so neither side pays for it
    results: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        # one-time costs (allocator, oneDNN primitives) would otherwise land on whoever goes first
        timed_run(replace(specs["on"], {"train.steps": 30}), Path(tmp))
        cost = capture_cost(base, Path(tmp))
        for i in range(args.rounds):
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for name in order:
                results[name].append(timed_run(specs[name], Path(tmp)))
    ratios = [
        on["tokens_per_s"] / off["tokens_per_s"] for on, off in zip(results["on"], results["off"])
    ]

    print(
        f"# {base.name}: {args.steps} ticks per run, {args.rounds} alternating rounds, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    print(
        "| stats_every | tokens/s (median of rounds) | ordinary tick (ms) | a capture adds (ms) |"
    )
    print("|---|---|---|---|")
    for name, every in (("off", 0), ("on", STATS_EVERY)):
        rs = results[name]
        tps = statistics.median(r["tokens_per_s"] for r in rs)
        tick = statistics.median(r["tick_ms"] for r in rs)
        extra = f"{statistics.median(r['extra_ms'] for r in rs):.1f}" if every else "-"
        print(f"| {every} | {tps:,.0f} | {tick:.1f} | {extra} |")
    estimates = [r["estimate"] for r in results["on"]]
    print(
        f"\n{results['on'][0]['captures']} captures per run.\n"
        f"wall clock, on / off tokens/s per round: {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f} (target >= 0.95)\n"
        f"within the stats-on runs, ordinary ticks against capture ticks: "
        f"{', '.join(f'{r:.4f}' for r in estimates)}; median {statistics.median(estimates):.4f}"
    )
    tick = statistics.median(r["tick_ms"] for r in results["off"])
    print(
        f"a capture alone (min of interleaved forwards): {cost:.1f} ms; with the ordinary tick "
        f"above, every {STATS_EVERY} ticks: {STATS_EVERY * tick / (STATS_EVERY * tick + cost):.4f}"
    )


if __name__ == "__main__":
    main()
