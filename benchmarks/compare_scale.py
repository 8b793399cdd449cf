"""Runs browser at scale: 50 runs of 20,000 ticks in the runs directory, 10 of them overlaid.

The runs' stores are written directly with the engine's ``RunWriter`` (no training): per tick
train/loss, lr, grad_norm and tokens/s, and val/loss every 100 ticks, i.e. 80,200 rows a run and
4 million in all. They are made once and kept in ``--runs-dir`` (default under /tmp).

Then, in a real MainWindow at 1280x800 with the Loss tab showing (offscreen):

- ``table open``: a Runs panel's first poll, reading all 50 summaries (timed on its own);
- ``select 10``: selecting 10 runs, i.e. reading their 802,000 rows and building the curves:
  the click's own frame (the GUI thread's time until its first paint), the event loop's delay
  while the reader thread loads the stores (how late a 10 ms timer fires, as in
  ``gui_latency.py``), and the time until all 10 are drawn;
- per frame, the cost of one redraw of the loss plot (``grab``: a full paint) when
  ``idle`` (nothing changed), ``pan`` (the view moved: downsampling and clipping redone) and
  ``live`` (one of the 10 got 25 new ticks in its store: the poll reads them, the curves are set
  again, then the paint);
- ``re-smooth``: moving the smoothing slider re-smooths all 10 (a one-off, not per frame).

Prints one row per measure: median and p95 over the frames, in ms (target: under 100 ms a frame).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/compare_scale.py [--frames 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

RUNS, TICKS, OVERLAID, LIVE_TICKS = 50, 20_000, 10, 25


def make_runs(root: Path, runs: int = RUNS, ticks: int = TICKS) -> list[Path]:
    """``runs`` synthetic run folders of ``ticks`` ticks each (kept: made once)."""
    from engine.runs import RunWriter
    from engine.specs import load_spec, replace, save_spec

    base = load_spec(ROOT / "presets" / "baby-gpt.yaml")
    made = sorted(p for p in root.glob("scale-*") if (p / "metrics.sqlite").exists())
    if len(made) >= runs:
        return made[:runs]
    rng = np.random.default_rng(0)
    out = []
    for i in range(runs):
        path = root / f"scale-{i:02d}"
        spec = replace(
            base, {"name": f"scale-{i:02d}", "train.steps": ticks, "train.lr": 1e-3 * (1 + i % 5)}
        )
        writer = RunWriter(path)
        save_spec(spec, path / "spec.yaml")
        writer.set_meta(
            name=spec.name, steps=ticks, started=time.time() - 3600, world_size=1, preset="baby-gpt"
        )  # as the engine records a run's preset (older runs are named from their spec.yaml)
        t = np.arange(ticks)
        loss = 1.2 + 3.0 * np.exp(-t / (2000 + 300 * i)) + rng.normal(0, 0.05, ticks)
        for tick in range(ticks):
            values = {"train/loss": loss[tick], "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 9e3}
            if tick % 100 == 99:
                values["val/loss"] = loss[tick] + 0.05
            writer.scalars(tick, values)
        writer.set_status("finished", ticks)
        writer.close()
        out.append(path)
    return out


def _ms(samples: list[float]) -> tuple[float, float]:
    a = np.array(samples) * 1000
    return float(np.median(a)), float(np.percentile(a, 95))


def measure(runs_dir: Path, frames: int) -> list[tuple[str, float, float]]:
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.runs import RunWriter
    from workbench.main_window import MainWindow
    from workbench.runs.panel import RunsPanel
    from workbench.settings import open_settings

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="tickbench-scale-"))
    start = time.perf_counter()
    alone = RunsPanel(runs_dir)  # the table by itself: its first poll reads every summary
    opened = time.perf_counter() - start
    assert alone.model.rowCount() == RUNS, alone.model.rowCount()
    alone.shutdown()
    window = MainWindow(open_settings(tmp / "settings.ini"), runs_dir=runs_dir)
    window.resize(1280, 800)
    window.show()
    window.tabs.setCurrentWidget(window.plots.loss)
    panel = window.runs
    panel.timer.stop()  # polls are made by hand below, one per frame
    settle = time.perf_counter() + 3.0  # the window's start-up work (the Config estimate) ends
    while time.perf_counter() < settle:
        app.processEvents()
        time.sleep(0.01)

    chosen = [r.path for r in panel.model.rows[:OVERLAID]]
    plot = window.plots.loss.plot
    start = time.perf_counter()
    panel.select(chosen)
    plot.grab()
    blocked = time.perf_counter() - start  # the click's own frame: the GUI thread is busy
    # then the event loop runs as in the app (repainting what changed) while the reader thread
    # loads the big stores; a 10 ms timer measures how late the loop serves it (its delay)
    fired: list[float] = []
    loop = QEventLoop()

    def probe() -> None:
        fired.append(time.perf_counter())
        if len(panel.overlay.curves(plot)) == 2 * OVERLAID or fired[-1] - start > 120:
            loop.quit()

    ticker = QTimer(interval=10)
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.timeout.connect(probe)
    ticker.start()
    loop.exec()
    ticker.stop()
    delays = [max(b - a - 0.010, 0.0) for a, b in zip(fired, fired[1:])]
    if len(panel.overlay.curves(plot)) < 2 * OVERLAID:
        raise TimeoutError("the selected runs did not arrive in 120 s")
    selected = time.perf_counter() - start

    rows: list[tuple[str, float, float]] = [
        ("table open (50 runs)", opened * 1000, opened * 1000),
        (f"select {OVERLAID}: the click's frame", blocked * 1000, blocked * 1000),
        (f"select {OVERLAID}: loop delay loading", *_ms(delays or [0.0])),
        (f"select {OVERLAID}: all drawn", selected * 1000, selected * 1000),
    ]

    def frame_times(step) -> list[float]:
        out = []
        for i in range(frames):
            t0 = time.perf_counter()
            step(i)
            plot.grab()
            out.append(time.perf_counter() - t0)
        return out

    rows.append(("frame: idle", *_ms(frame_times(lambda i: None))))
    vb = plot.getPlotItem().vb

    def pan(i: int) -> None:
        lo = (i % 10) * 1000
        vb.setXRange(lo, lo + 10_000, padding=0)

    rows.append(("frame: pan", *_ms(frame_times(pan))))
    vb.enableAutoRange()
    live = chosen[0]
    writer = RunWriter(live)
    writer.set_status("running", TICKS)
    next_tick = [TICKS]

    def grow(i: int) -> None:
        for _ in range(LIVE_TICKS):
            writer.scalars(next_tick[0], {"train/loss": 1.3, "lr": 1e-3, "grad_norm": 0.5})
            next_tick[0] += 1
        writer.flush()
        panel.poll()

    rows.append((f"frame: live (+{LIVE_TICKS} ticks)", *_ms(frame_times(grow))))
    writer.set_status("finished", next_tick[0])
    writer.close()

    t0 = time.perf_counter()
    window.plots.loss.slider.setValue(900)
    panel.overlay._resmooth()  # what the debounce timer runs once the slider stops
    plot.grab()
    resmooth = time.perf_counter() - t0
    rows.append(("re-smooth 10 runs", resmooth * 1000, resmooth * 1000))
    panel.shutdown()
    window.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument(
        "--runs-dir", type=Path, default=Path(tempfile.gettempdir()) / "tickbench-scale"
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    paths = make_runs(args.runs_dir)
    print(
        f"{len(paths)} runs x {TICKS} ticks in {args.runs_dir} ({time.perf_counter() - t0:.1f} s)"
    )
    rows = measure(args.runs_dir, args.frames)
    print(f"{'measure':<32} {'median ms':>10} {'p95 ms':>8}")
    for name, median, p95 in rows:
        print(f"{name:<32} {median:>10.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
