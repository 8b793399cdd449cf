"""Not a benchmark: makes docs/screenshots/compare-*.png, the Runs browser comparing three short
variants of presets/ln-warm-in.yaml (120 ticks each, scaled from the preset's 1000):

- ``ln-warm-in``: LayerNorm at strength 0 (σ̄ calibrated at tick 0), ramped to 1 from tick 12
  over 36 ticks, after a 12-tick LR warm-up (the preset's timeline, scaled);
- ``ln-late-ramp``: the same ramp starting at tick 60;
- ``ln-throughout``: no LayerNorm events (ordinary LayerNorm from the start).

Each trains headless with the engine API, then the real window (offscreen, 1280x800) selects the
three: their loss curves overlaid in their colours with their timelines, the spec diff beside the
table. Run from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/compare_screenshot.py [--out DIR]
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

SHORT = {
    "train.steps": 120,
    "train.eval_every": 20,
    "train.eval_batches": 5,
    "train.threads": 1,
    "timeline.lr": [
        {"start": 0, "end": 12, "shape": "linear", "from": 0.0, "to": 1.0e-3},
        {"start": 12, "end": "100%", "shape": "cosine", "from": 1.0e-3, "to": 1.0e-4},
    ],
}
WARM_IN = [{"at": 0, "action": "set", "strength": 0.0}]
VARIANTS = {
    "ln-warm-in": {
        "timeline.layernorm": [*WARM_IN, {"at": 12, "action": "ramp", "to": 1.0, "over": 36}]
    },
    "ln-late-ramp": {
        "timeline.layernorm": [*WARM_IN, {"at": 60, "action": "ramp", "to": 1.0, "over": 36}]
    },
    "ln-throughout": {"timeline.layernorm": []},
}


def train_variants(runs_dir: Path) -> list[Path]:
    import engine
    from engine.specs import replace

    base = engine.load_spec(ROOT / "presets" / "ln-warm-in.yaml")
    out = []
    for name, overrides in VARIANTS.items():
        spec = replace(base, {**SHORT, **overrides, "name": name})
        handle = engine.start_run(spec, runs_dir)
        assert handle.join(600) and handle.status == "finished", handle.error
        summary = engine.open_run(handle.run_dir).summary()
        print(f"{name:<14} val loss {summary.last_val_loss:.4f} ({handle.run_dir.name})")
        out.append(handle.run_dir)
    return out


def screenshot(runs_dir: Path, paths: list[Path], out: Path) -> None:
    from PySide6.QtCore import Qt

    from benchmarks.shot_window import comparison_layout, open_window, save
    from workbench.runs.model import COLUMNS

    app, window = open_window(runs_dir)
    comparison_layout(window, diff=True, height=290, widths=(560, 710))
    # oldest first: ln-warm-in, the preset's own timeline, is the diff's reference column
    window.runs.table.sortByColumn(COLUMNS.index("started"), Qt.SortOrder.AscendingOrder)
    window.tabs.setCurrentWidget(window.plots.loss)
    window.runs.select(paths)
    for _ in range(30):
        app.processEvents()
    out.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out / "compare-loss.png"))
    window.runs.x_box.setCurrentIndex(window.runs.x_box.findData("tokens"))
    window.runs.timeline_check.setChecked(False)
    window.runs.diff_view.all_fields.setChecked(True)
    for _ in range(30):
        app.processEvents()
    save(window, out / "compare-tokens-all-fields.png")
    print(f"wrote compare-loss.png and compare-tokens-all-fields.png in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--runs-dir", type=Path, help="reuse the three runs trained there before")
    args = parser.parse_args()
    if args.runs_dir:
        import engine

        paths = engine.run_dirs(args.runs_dir)
    else:
        args.runs_dir = Path(tempfile.mkdtemp(prefix="tickbench-compare-"))
        paths = train_variants(args.runs_dir)
    screenshot(args.runs_dir, paths, args.out)


if __name__ == "__main__":
    main()
