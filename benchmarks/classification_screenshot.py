"""Not a benchmark: makes docs/screenshots/classification-metrics.png, the Metrics tab showing a
classification run's latest evaluation (metrics table and confusion matrix) beside its metric
curves, with the run selected in the Runs browser.

The run is a small decoder with a classification head on the built-in balanced-brackets task
(one bracket type, 12 characters), 200 ticks with a cosine LR decay, evaluated every 25 ticks:
short enough that the last evaluation still has a few errors to show. It trains headless with
the engine API (a few seconds on one CPU core); the real window then opens offscreen at 1280x800
and selects it. Run from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/classification_screenshot.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SPEC = {
    "name": "brackets-classify",
    "description": "balanced brackets (one type, 12 characters): a classification head",
    "seed": 1,
    "model": {
        "n_layer": 2,
        "n_head": 2,
        "d_model": 64,
        "d_ff": 128,
        "context": 32,
        "head": "classify",
        "pooling": "mean",
    },
    "data": {"source": "brackets", "seq_len": 12, "vocab": 2},
    "train": {
        "steps": 200,
        "batch_size": 32,
        "eval_every": 25,
        "eval_batches": 8,
        "checkpoint_every": 0,
        "device": "cpu",
        "threads": 1,
        "stats_every": 0,
    },
    "timeline": {
        "lr": [
            {"start": 0, "end": 20, "shape": "linear", "from": 0.0, "to": 1.0e-3},
            {"start": 20, "end": "100%", "shape": "cosine", "from": 1.0e-3, "to": 1.0e-5},
        ]
    },
}


def train(runs_dir: Path) -> Path:
    import engine

    handle = engine.start_run(engine.parse_spec(SPEC), runs_dir)
    assert handle.join(900) and handle.status == "finished", handle.error
    record = engine.open_run(handle.run_dir)
    _, acc = record.scalars("val/accuracy")
    print(f"{SPEC['name']}: val accuracy {acc[-1]:.4f} at the end ({handle.run_dir.name})")
    return handle.run_dir


def screenshot(runs_dir: Path, run: Path, out: Path) -> None:
    from benchmarks.shot_window import open_window, save

    app, window = open_window(runs_dir)
    window.runs_dock.raise_()  # the run selected in the Runs browser, under the plots
    window.tabs.setCurrentWidget(window.plots.metrics_tab)
    window.runs.select([run])
    while window.tasks.busy or window.config.estimate_pending:  # the parameter count's text
        app.processEvents()
    for _ in range(30):
        app.processEvents()
    save(window, out / "classification-metrics.png")
    print(f"wrote classification-metrics.png in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--runs-dir", type=Path, help="reuse the run trained there before")
    args = parser.parse_args()
    if args.runs_dir:
        import engine

        (run,) = engine.run_dirs(args.runs_dir)
    else:
        args.runs_dir = Path(tempfile.mkdtemp(prefix="tickbench-classify-"))
        run = train(args.runs_dir)
    screenshot(args.runs_dir, run, args.out)


if __name__ == "__main__":
    main()
