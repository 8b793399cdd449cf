"""Not a benchmark: makes docs/screenshots/branch-overlay.png and run-tree.png, a run and two
branches of it in the window (1280x800).

The parent is presets/baby-gpt.yaml shortened to 400 ticks (checkpoints every 100). Two branches
leave it between checkpoints, so each is replayed from the checkpoint before it: ``lr-hold`` at
tick 150 keeps the LR at 6e-4 from there on; ``ln-off`` at tick 250 ramps every LayerNorm to
strength 0 over 50 ticks. All three train headless with one torch thread; the window then
selects them: their loss curves overlaid (each branch's leaving the parent's at its tick), and
the Run tree tab (the lineage on the tick axis). Run from the repository root, on a real X server
or offscreen:

    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python benchmarks/branch_screenshot.py [--out DIR]
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

SHORT = {
    "train.steps": 400,
    "train.threads": 1,
    "train.checkpoint_every": 100,
    "train.eval_every": 50,
    "train.keep_checkpoints": 0,
}


def settle(app, seconds: float = 1.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main(out: Path) -> None:
    import engine
    from benchmarks.shot_window import comparison_layout, open_window, save

    runs = Path(tempfile.mkdtemp())
    spec = engine.replace(engine.load_spec(ROOT / "presets/baby-gpt.yaml"), SHORT)
    parent = engine.start_run(spec, runs, name="baby-gpt")
    assert parent.join(600) and parent.status == "finished", parent.error
    hold = engine.replace(
        spec,
        {
            "name": "lr-hold",
            "timeline.lr": [
                *engine.to_dict(spec.timeline)["lr"][:1],
                {"start": 100, "end": 150, "shape": "cosine", "from": 1e-3, "to": 1e-4},
                {"start": 150, "end": "100%", "shape": "constant", "from": 6e-4},
            ],
        },
    )
    off = engine.replace(
        spec,
        {"name": "ln-off", "timeline.layernorm": [{"at": 250, "action": "ramp", "to": 0.0,
                                                    "over": 50}]},
    )  # fmt: skip
    children = [
        engine.branch_run(parent.run_dir, 150, hold, runs_dir=runs),
        engine.branch_run(parent.run_dir, 250, off, runs_dir=runs),
    ]
    for child in children:
        assert child.join(600) and child.status == "finished", child.error

    app, window = open_window(runs)
    comparison_layout(window, diff=True, height=230, widths=(760, 520))
    window.runs.poll()
    settle(app)
    window.runs.select([parent.run_dir, *(c.run_dir for c in children)])
    window.tabs.setCurrentWidget(window.plots.loss)
    settle(app, 3)
    window.grab().save(str(out / "branch-overlay.png"))
    window.tabs.setCurrentWidget(window.runs.run_tree)
    settle(app, 2)
    save(window, out / "run-tree.png")
    print(out / "branch-overlay.png", out / "run-tree.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    main(parser.parse_args().out)
