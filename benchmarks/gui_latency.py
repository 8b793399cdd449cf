"""Workbench responsiveness: event-loop delay and training speed while baby-gpt trains in the
window, against the same spec trained headless.

A 10 ms timer on the GUI thread records how late each of its ticks fires (delay = interval
between two firings - 10 ms) while the window trains the preset and redraws its plots on the
frame timer. Each setting runs in its own process (torch's thread count and OpenMP's settings
are process-wide), and the settings take turns round after round, so that other work on the
machine falls on all of them alike:

- ``policy``: the workbench as shipped (``workbench.training.threads``: the process settings the
  ``python -m workbench`` entry point makes before torch starts, and the torch threads a run
  started from the window gets).
- ``torch-default``: the window with torch's defaults (no process settings, no thread limit).
- ``before``: the shipped policy of another checkout (``--before DIR``, e.g. the previous
  commit unpacked with ``git archive``), to put today's code beside it.
- ``headless``: ``python -m engine run PRESET --steps 400`` with torch's default threads, the
  speed the window is measured against.
- ``headless-1``: the same with one torch thread (``OMP_NUM_THREADS=1``), as the window trains.
- ``no-niceness``: the shipped policy with the training threads at the GUI's priority.
- ``threads-2``: the shipped policy with two torch threads (waiting passively).

Per run: ticks trained per second of wall time in the measured window and the tokens/s that makes
(headless: the same over the run's rows after the same warm-up, read from its store), the
engine's median tick tokens/s, the event-loop delay p50 / p99 / max in ms (targets: p99 within
one 60 Hz frame, 16 ms; max 50 ms) and the 1-minute load average when the run started. The
summary gives each setting's median over the rounds and its tokens/s against headless (target:
0.8 or more). Offscreen:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_latency.py [--seconds 30] \\
        [--rounds 2] [--settings policy headless ...] [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE_MS = 10
WARMUP_S = 3.0  # model build, first estimate, first frames: not what a user waits on mid-run
HEADLESS_STEPS = 400
P99_TARGET_MS, MAX_TARGET_MS, SPEED_TARGET = 16.0, 50.0, 0.8

# setting -> how its process is set up: "process" applies the shipped process settings
# (workbench.training.threads.configure_process), "limit" the thread limit for runs started from
# the window; "threads" forces a torch thread count on the run, "niceness" the training threads'.
SETTINGS: dict[str, dict] = {
    "policy": {"process": True, "limit": True},
    "torch-default": {"process": False, "limit": False},
    "before": {"process": True, "limit": True},  # run from --before's checkout
    "headless": {},
    "headless-1": {"env": {"OMP_NUM_THREADS": "1"}},  # headless with the window's one thread
    "no-niceness": {"process": True, "limit": True, "niceness": 0},
    "threads-2": {"process": True, "limit": True, "threads": 2},
}
DEFAULT_SETTINGS = ("before", "policy", "headless")


def measure(setting: str, seconds: float, preset: Path) -> dict:
    """Train ``preset`` in a real MainWindow for ``seconds`` after warm-up; return the numbers."""
    how = SETTINGS[setting]
    if how.get("process"):
        try:
            from workbench.training.threads import configure_process
        except ImportError:  # a checkout from before the process settings existed
            pass
        else:
            configure_process()
    if "niceness" in how:
        import engine

        engine.set_training_niceness(how["niceness"])

    import numpy as np
    import torch
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    import engine
    from workbench.main_window import MainWindow
    from workbench.settings import open_settings

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="tickbench-latency-"))
    window = MainWindow(open_settings(tmp / "settings.ini"), runs_dir=tmp / "runs")
    window.resize(1280, 800)
    window.show()
    window.files.load(preset)
    window.session.limit_threads = how.get("limit", True)
    if "threads" in how:  # a candidate thread count: what the spec would say
        session_start = window.session.start
        window.session.start = lambda spec, preset=None: session_start(
            engine.replace(spec, {"train.threads": how["threads"]}), preset
        )

    fired: list[float] = []
    marks: dict[str, float] = {}
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(PROBE_MS)
    probe.timeout.connect(lambda: fired.append(time.perf_counter()))

    def begin() -> None:
        marks["tick0"] = window.session.handle.tick
        marks["t0"] = time.perf_counter()
        probe.start()
        QTimer.singleShot(round(seconds * 1000), end)

    def end() -> None:
        probe.stop()
        marks["t1"] = time.perf_counter()
        marks["tick1"] = window.session.handle.tick
        marks["run_dir"] = window.session.run_dir
        window.shutdown()
        app.quit()

    def start() -> None:
        try:
            started = window.start_run()
        except Exception as exc:  # raised in a slot, it would leave the loop running
            marks["error"] = repr(exc)
            started = False
        if not started:
            marks.setdefault("error", f"the run did not start: {window.config.error}")
            app.exit(1)
            return
        QTimer.singleShot(round(WARMUP_S * 1000), begin)

    QTimer.singleShot(0, start)
    # a deadline for every wait: a run that hangs ends the measurement instead of the caller
    QTimer.singleShot(round((WARMUP_S + seconds + 120) * 1000), lambda: app.exit(2))
    if app.exec() or "error" in marks:
        raise SystemExit(marks.get("error", "the run did not end in time"))
    delays = np.maximum(np.diff(np.array(fired)) * 1000 - PROBE_MS, 0.0)
    wall = marks["t1"] - marks["t0"]
    ticks = marks["tick1"] - marks["tick0"]
    store = window.plots.store.get("tokens_per_s")
    per_tick = _meta(marks["run_dir"], "tokens_per_tick")
    shutil.rmtree(tmp, ignore_errors=True)  # the run folder, its checkpoints, the settings
    return {
        "torch_threads": torch.get_num_threads(),
        "ticks_per_s": ticks / wall,
        "tokens_per_s": ticks * per_tick / wall,
        "tick_tokens_per_s": float(np.median(store.y[-max(ticks, 1) :])) if store else 0.0,
        "p50_ms": float(np.percentile(delays, 50)),
        "p99_ms": float(np.percentile(delays, 99)),
        "max_ms": float(delays.max()),
    }


def _meta(run_dir: Path, key: str):
    with sqlite3.connect(run_dir / "metrics.sqlite") as con:
        (value,) = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return json.loads(value)


def headless(preset: Path, root: Path, extra_env: dict | None = None) -> dict:
    """``python -m engine run`` with torch's default threads; its speed read from its store:
    the train-loss rows after the first ``WARMUP_S`` seconds, up to the last (before the final
    evaluation and checkpoint), as the window's measured window leaves out its warm-up."""
    import numpy as np

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env.update(extra_env or {})
    with tempfile.TemporaryDirectory(prefix="tickbench-headless-") as tmp:
        cmd = [sys.executable, "-m", "engine", "run", str(preset)]
        cmd += ["--steps", str(HEADLESS_STEPS), "--runs-dir", tmp]
        out = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, check=True, timeout=900
        )
        run_dir = Path(out.stdout.strip().splitlines()[-1])
        with sqlite3.connect(run_dir / "metrics.sqlite") as con:
            rows = con.execute(
                "SELECT tick, wall FROM scalars WHERE metric = 'train/loss' ORDER BY tick"
            ).fetchall()
            tps = con.execute(
                "SELECT value FROM scalars WHERE metric = 'tokens_per_s' ORDER BY tick"
            ).fetchall()
        per_tick = _meta(run_dir, "tokens_per_tick")
        threads = env.get("OMP_NUM_THREADS") or _spec_threads(run_dir)
    ticks, walls = np.array(rows).T
    first = int(np.searchsorted(walls, walls[0] + WARMUP_S))
    span = walls[-1] - walls[first]
    return {
        "torch_threads": threads,
        "ticks_per_s": (ticks[-1] - ticks[first]) / span,
        "tokens_per_s": (ticks[-1] - ticks[first]) * per_tick / span,
        "tick_tokens_per_s": float(np.median([v for (v,) in tps[first:]])),
    }


def _spec_threads(run_dir: Path) -> str:
    import yaml

    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    return str(spec.get("train", {}).get("threads") or "default")


def child_env(setting: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    if not SETTINGS[setting].get("process", True):
        for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
            env.pop(name, None)
    return env


def run_one(setting: str, args: argparse.Namespace) -> dict:
    root = args.before if setting == "before" else ROOT
    load = os.getloadavg()[0]
    if setting.startswith("headless"):
        r = headless(args.preset, ROOT, SETTINGS[setting].get("env"))
    else:
        cmd = [sys.executable, __file__, "--child", setting, "--seconds", str(args.seconds)]
        cmd += ["--preset", str(args.preset), "--root", str(root)]
        limit = WARMUP_S + args.seconds + 300
        out = subprocess.run(
            cmd, env=child_env(setting), capture_output=True, text=True, timeout=limit
        )
        if out.returncode:
            raise SystemExit(f"{setting} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"setting": setting, "load": load, **r}


def _ms(r: dict, key: str) -> str:
    return f"{r[key]:.1f} ms" if key in r else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="measured time per window run")
    p.add_argument("--rounds", type=int, default=1, help="each setting this many times, in turn")
    p.add_argument("--preset", type=Path, default=ROOT / "presets" / "baby-gpt.yaml")
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=None)
    p.add_argument("--before", type=Path, help="checkout whose workbench the `before` row runs")
    p.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        sys.path.insert(0, str(args.root))
        print(json.dumps(measure(args.child, args.seconds, args.preset.resolve())))
        return 0
    args.preset = args.preset.resolve()
    settings = args.settings or [s for s in DEFAULT_SETTINGS if s != "before" or args.before]
    if "before" in settings and args.before is None:
        p.error("the `before` setting needs --before DIR")

    import PySide6
    import torch

    print(
        f"# {args.preset.name}: {args.seconds:.0f} s per window run after {WARMUP_S:.0f} s, "
        f"headless --steps {HEADLESS_STEPS}; {args.rounds} round(s), settings in turn; "
        f"{os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}, "
        f"PySide6 {PySide6.__version__}, QT_QPA_PLATFORM="
        f"{os.environ.get('QT_QPA_PLATFORM', 'offscreen')}"
    )
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        "| round | setting | torch threads | ticks/s | tokens/s | median tick tokens/s | "
        "loop delay p50 | p99 | max | load |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    results: dict[str, list[dict]] = {s: [] for s in settings}
    for n in range(1, args.rounds + 1):
        for setting in settings:
            r = run_one(setting, args)
            results[setting].append(r)
            print(
                f"| {n} | {setting} | {r['torch_threads']} | {r['ticks_per_s']:.1f} | "
                f"{r['tokens_per_s']:,.0f} | {r['tick_tokens_per_s']:,.0f} | {_ms(r, 'p50_ms')} | "
                f"{_ms(r, 'p99_ms')} | {_ms(r, 'max_ms')} | {r['load']:.2f} |",
                flush=True,
            )
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    def med(setting: str, key: str) -> float:
        return statistics.median(r[key] for r in results[setting])

    base = med("headless", "tokens_per_s") if "headless" in results else None
    print(f"\nmedians over {args.rounds} round(s):")
    print("| setting | tokens/s | against headless | loop delay p99 | max |")
    print("| --- | --- | --- | --- | --- |")
    for setting in settings:
        tps = med(setting, "tokens_per_s")
        ratio = f"{tps / base:.2f}x" if base else "-"
        lat = not setting.startswith("headless")
        p99 = f"{med(setting, 'p99_ms'):.1f} ms" if lat else "-"
        worst = f"{max(r['max_ms'] for r in results[setting]):.1f} ms" if lat else "-"
        print(f"| {setting} | {tps:,.0f} | {ratio} | {p99} | {worst} |")
    if "policy" in results:
        p99, worst = med("policy", "p99_ms"), max(r["max_ms"] for r in results["policy"])
        verdict = [
            f"p99 {p99:.1f} ms ({'meets' if p99 <= P99_TARGET_MS else 'MISSES'} "
            f"{P99_TARGET_MS:.0f} ms)",
            f"max {worst:.1f} ms ({'meets' if worst <= MAX_TARGET_MS else 'MISSES'} "
            f"{MAX_TARGET_MS:.0f} ms)",
        ]
        if base:
            ratio = med("policy", "tokens_per_s") / base
            verdict.append(
                f"{ratio:.2f}x headless ({'meets' if ratio >= SPEED_TARGET else 'MISSES'} "
                f"{SPEED_TARGET}x)"
            )
        print("\nworkbench as shipped: " + ", ".join(verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
