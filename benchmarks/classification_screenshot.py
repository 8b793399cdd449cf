"""Not a benchmark: makes docs/screenshots/classification-metrics.png, the Metrics tab showing a
classification run's latest evaluation (metrics table and confusion matrix) beside its metric
curves, with the run selected in the Runs browser.

The run is a small decoder with a classification head on a user's CSV of ``text,label`` rows,
four classes: lines of the Python standard library's own source, each labelled by what it is
(``comment``, ``definition``, ``import``, ``statement``) with its first word taken away (``#``,
``def``/``class``, ``import``/``from``), so the text only hints at it: 300 lines a class, 200
ticks with a cosine LR decay, evaluated every 25 ticks. The last evaluation still has errors to
show, and four class names to fit under the matrix at 1280x800. It trains headless with the
engine API (about 20 seconds on one CPU core); the real window then opens offscreen at 1280x800
and selects it. Run from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/classification_screenshot.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PER_CLASS = 300
FIRST_WORDS = {  # a line's class, by the word taken away from it
    "comment": ("#",),
    "import": ("import ", "from "),
    "definition": ("def ", "class ", "async def "),
}
SPEC = {
    "name": "python-lines",
    "description": "what a line of Python is, without its first word: a classification head",
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
    "data": {"source": "csv", "path": "lines.csv"},  # written into the runs folder
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


def label_of(line: str) -> str:
    for label, starts in FIRST_WORDS.items():
        if line.startswith(starts):
            return label
    return "statement"


def write_lines(path: Path) -> dict[str, int]:
    """The CSV: ``PER_CLASS`` lines of each class from the standard library's top-level
    modules, the first word of each taken away; the same file on every run of one Python."""
    by_label: dict[str, set[str]] = {}
    for source in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if not (8 <= len(line) <= 60 and line.isascii()) or line.startswith(('"""', "'''")):
                continue
            words = line.split(None, 1)
            if len(words) == 2 and len(words[1]) >= 4:
                by_label.setdefault(label_of(line), set()).add(words[1])
    rows = []
    for label, texts in sorted(by_label.items()):
        # a fixed pick that is not the engine's split hash (that would put them all in val)
        picked = sorted(texts, key=lambda t: hashlib.sha256(t.encode()).digest())[:PER_CLASS]
        rows += [(text, label) for text in picked]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return {label: min(len(texts), PER_CLASS) for label, texts in sorted(by_label.items())}


def train(runs_dir: Path) -> Path:
    import engine

    runs_dir.mkdir(parents=True, exist_ok=True)
    lines = runs_dir / "lines.csv"
    print(f"{lines}: {write_lines(lines)}")
    spec = {**SPEC, "data": {**SPEC["data"], "path": str(lines)}}
    handle = engine.start_run(engine.parse_spec(spec), runs_dir)
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
