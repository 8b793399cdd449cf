"""Not a benchmark: makes docs/screenshots/timeline-12-layers.png, the Timeline editor at 1280x800
on a deep model, where the LayerNorm lane has 13 rows (12 blocks and the final norm) to fit in
about 72 px and the properties panel shares the dock with the lanes.

The spec is presets/baby-gpt.yaml with ``model.n_layer: 12`` and the timeline of
presets/ln-removal-finetune.yaml: from 50% the LR is halved and every norm ramps to strength 0
over 40 ticks, each block 40 ticks after the one before (``stagger: 40``), the final norm last.
The ramp is selected (its values in the properties panel) after one edit made there, as a user
would (``over`` 60 -> 40), so Undo has an edit to name in its tooltip. Nothing is trained. Run
from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/timeline_screenshot.py [--out DIR]
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

DEEP = {
    "name": "baby-gpt-12-layers",
    "description": "baby-gpt with 12 layers; from 50% LayerNorm is ramped to 0 block by block",
    "model.n_layer": 12,
    "timeline.phases": [
        {"name": "pretrain", "start": 0},
        {"name": "remove-ln", "start": "50%", "lr_scale": 0.5},
    ],
    "timeline.layernorm": [
        {"at": "50%", "action": "ramp", "to": 0.0, "over": 60, "layers": "all", "stagger": 40}
    ],
    "timeline.marks": [{"at": "50%", "action": "note", "text": "LN removal starts"}],
}
SETTLE_EVENTS = 40  # event-loop passes for the docks to lay out and the lanes to draw


def deep_spec():
    import engine

    return engine.replace(engine.load_spec(ROOT / "presets" / "baby-gpt.yaml"), DEEP)


def screenshot(out: Path) -> Path:
    from benchmarks.shot_window import open_window, save
    from workbench.app import show_dock
    from workbench.timeline.lanes import Selection

    app, window = open_window(Path(tempfile.mkdtemp(prefix="tickbench-timeline-")))
    show_dock(window, "timeline")
    window.files.show_spec(deep_spec(), None)
    editor = window.timeline_editor
    for _ in range(SETTLE_EVENTS):
        app.processEvents()
    editor.select(Selection("layernorm", 0))
    over = editor.properties.form.widget("over")
    over.setText("40")
    over.editingFinished.emit()  # as leaving the field does: one edit
    assert editor.doc.timeline.layernorm[0].over == 40, editor.message_text
    while window.tasks.busy or window.config.estimate_pending:  # the parameter count's text
        app.processEvents()
    for _ in range(SETTLE_EVENTS):
        app.processEvents()
    path = out / "timeline-12-layers.png"
    save(window, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    print(f"wrote {screenshot(args.out)}")


if __name__ == "__main__":
    main()
