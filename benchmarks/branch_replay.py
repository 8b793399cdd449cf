"""Branch replay: how long ``prepare_branch`` replays at each preset's worst tick.

A branch at tick T restores the parent's newest checkpoint at or before T and retrains the
parent's spec from there to T (``engine.branch``). The worst tick is the one just before a
checkpoint, as far from the previous one as the run's checkpoints allow:

- while the run trains, or with every checkpoint kept: ``min(checkpoint_every, steps) - 1``
  ticks (``checkpoint_every: 0`` checkpoints only at the end: the last tick, ``steps - 1``);
- once it has finished, ``train.keep_checkpoints`` (default 3) has deleted all but the newest
  periodic checkpoints (phase starts and marked checkpoints stay), so a tick before the oldest
  kept one replays from the last checkpoint before it, or from the start.

Training a whole preset takes minutes, so per preset this trains its first ``--ticks`` ticks
(the preset's own spec, one torch thread, evaluations every 10 ticks so their cost is timed
too) and estimates a replay as: set-up (start to the first tick) + ticks x mean training tick +
evaluations due in the window x one evaluation. Then it checks the estimate against one real
``prepare_branch`` on baby-gpt at its worst tick under its cadence: a parent stopped right
after its first checkpoint (tick 500), branched at tick 999.

    .venv/bin/python benchmarks/branch_replay.py [--ticks 30] [--no-check]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import Study, compile_timeline, load_preset, prepare_branch, replace  # noqa: E402
from engine.live_plan import kept_ticks  # noqa: E402
from engine.messages import Scalars  # noqa: E402
from engine.trainer import start_run  # noqa: E402
from tests.engine.helpers import run_ticks_then_stop  # noqa: E402

TIMED_EVAL_EVERY = 10


def checkpoint_ticks(spec) -> tuple[list[int], list[int]]:
    """Ticks holding a checkpoint once the run has finished: (all written, those kept)."""
    every, steps = spec.train.checkpoint_every, spec.train.steps
    timeline = compile_timeline(spec)
    kept = kept_ticks(timeline)  # phase starts hold a checkpoint only when one falls there
    marked = {
        e.tick + 1
        for e in timeline.edges()
        if e.kind == "mark" and e.detail.get("action") == "checkpoint"
    }
    written = sorted({*(range(every, steps, every) if every else ()), *marked, steps})
    periodic = [t for t in written if t not in kept]
    keep = spec.train.keep_checkpoints
    gone = set(periodic[:-keep]) if keep > 0 else set()
    return written, [t for t in written if t not in gone]


def worst(ticks: list[int], steps: int) -> tuple[int, int]:
    """(the tick whose branch replays longest, how many ticks it replays), given checkpoints at
    ``ticks`` (a branch at a checkpoint replays nothing)."""
    best = (0, 0)
    previous = 0
    for c in [*ticks, steps]:
        at = min(c, steps) - 1  # just before checkpoint c
        if at > previous and at - previous > best[1]:
            best = (at, at - previous)
        previous = c
    return best


def evals_in(first: int, at: int, every: int) -> int:
    """Evaluations a replay of ticks ``first`` .. ``at - 1`` runs (after tick t when t + 1 is a
    multiple of ``every``)."""
    return sum(1 for t in range(first, at) if every and (t + 1) % every == 0)


def time_ticks(spec, runs_dir: Path, ticks: int) -> dict:
    """Train ``spec``'s first ``ticks`` ticks with an evaluation every ``TIMED_EVAL_EVERY``;
    the set-up, the mean training tick and the median evaluation, in seconds."""
    spec = replace(spec, {"train.eval_every": TIMED_EVAL_EVERY, "train.checkpoint_every": 0})
    train: dict[int, float] = {}
    scored: dict[int, float] = {}

    def sink(batch):
        for msg in batch:
            if isinstance(msg, Scalars):
                if "train/loss" in msg.values:
                    train[msg.tick] = msg.wall
                elif any(k.startswith("val/") for k in msg.values):
                    scored[msg.tick] = msg.wall

    reached = threading.Event()
    began = time.time()

    def watch(batch):
        sink(batch)
        if train and max(train) >= ticks - 1:
            reached.set()

    handle = start_run(spec, runs_dir, watch, paused=True)
    for _ in range(ticks):
        handle.step()
    assert reached.wait(600), handle.error
    handle.stop()
    assert handle.join(600), handle.error
    stamps = np.array([train[t] for t in range(ticks)])
    gaps = np.diff(stamps)  # gaps[k]: tick k + 1, plus an evaluation after tick k if one ran
    evals = [t for t in scored if t < ticks - 1]
    plain = [g for k, g in enumerate(gaps) if k not in evals]
    tick = float(np.mean(plain))
    return {
        "setup": stamps[0] - began - tick,
        "tick": tick,
        "eval": float(np.median([scored[t] - train[t] for t in scored])) if scored else 0.0,
    }


def estimate(spec, timing: dict, at: int, first: int) -> float:
    """Seconds a replay of ticks ``first`` .. ``at - 1`` should take."""
    n_eval = evals_in(first, at, spec.train.eval_every)
    return timing["setup"] + (at - first) * timing["tick"] + n_eval * timing["eval"]


def check_baby_gpt(spec, runs_dir: Path) -> dict:
    """One real ``prepare_branch`` at baby-gpt's worst tick under its cadence."""
    every = spec.train.checkpoint_every
    parent = run_ticks_then_stop(spec, runs_dir / "parent", every, timeout=3600)
    at = 2 * every - 1
    start = time.perf_counter()
    branch = prepare_branch(parent.run_dir, at, runs_dir / "branches")
    took = time.perf_counter() - start
    branch.discard()
    return {"at": at, "from": every, "seconds": took}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=30, help="ticks timed per preset")
    p.add_argument("--no-check", action="store_true", help="skip the real baby-gpt branch")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows, notes = [], []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((ROOT / "presets").glob("*.yaml")):
            preset = load_preset(path)
            if isinstance(preset, Study):
                notes.append(f"{path.stem}: a study (its variants are runs of their own)")
                continue
            if preset.model.from_pretrained or preset.train.device.startswith("cuda"):
                notes.append(f"{path.stem}: needs pretrained weights or a GPU")
                continue
            spec = replace(preset, {"train.threads": 1})
            print(f"timing {path.stem}", file=sys.stderr)
            timing = time_ticks(spec, Path(tmp) / path.stem, args.ticks)
            load.append(os.getloadavg()[0])
            steps, every = spec.train.steps, spec.train.checkpoint_every
            written, kept = checkpoint_ticks(spec)
            cadence = worst(written, steps)
            finished = worst(kept, steps)
            rows.append(
                {
                    "name": path.stem,
                    "spec": spec,
                    "timing": timing,
                    "cadence": cadence,
                    "finished": finished,
                    "kept": kept,
                    "est_cadence": estimate(spec, timing, cadence[0], cadence[0] - cadence[1]),
                    "est_finished": estimate(spec, timing, finished[0], finished[0] - finished[1]),
                    "every": every,
                }
            )
        check = None
        if not args.no_check:
            baby = replace(load_preset(ROOT / "presets/baby-gpt.yaml"), {"train.threads": 1})
            print("a real branch of baby-gpt", file=sys.stderr)
            check = check_baby_gpt(baby, Path(tmp) / "check")
            load.append(os.getloadavg()[0])

    print(
        f"# branch replay: torch {torch.__version__}, 1 thread, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; "
        f"{args.ticks} ticks timed per preset (evaluations every {TIMED_EVAL_EVERY}); 1-min "
        f"load average {min(load):.1f} to {max(load):.1f}"
    )
    print(
        "| preset | steps | checkpoint_every | keep | tick (ms) | eval (ms) | set-up (s) "
        "| worst tick, by cadence: replayed ticks | estimated replay (s) "
        "| finished run, checkpoints kept | worst tick: replayed ticks | estimated replay (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t, s = r["timing"], r["spec"]
        (ca, cn), (fa, fn) = r["cadence"], r["finished"]
        print(
            f"| {r['name']} | {s.train.steps} | {r['every']} | {s.train.keep_checkpoints} "
            f"| {1e3 * t['tick']:.1f} | {1e3 * t['eval']:.0f} | {t['setup']:.2f} "
            f"| {ca}: {cn} | {r['est_cadence']:.1f} | {', '.join(map(str, r['kept']))} "
            f"| {fa}: {fn} | {r['est_finished']:.1f} |"
        )
    for note in notes:
        print(f"skipped {note}")
    if check is not None:
        baby = next(r for r in rows if r["name"] == "baby-gpt")
        predicted = estimate(baby["spec"], baby["timing"], check["at"], check["from"])
        print(
            f"\nbaby-gpt, a real prepare_branch at tick {check['at']} (from the checkpoint at "
            f"{check['from']}, {check['at'] - check['from']} ticks replayed): "
            f"{check['seconds']:.1f} s; estimated {predicted:.1f} s"
        )


if __name__ == "__main__":
    main()
