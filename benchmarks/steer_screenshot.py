"""Not a benchmark: makes docs/screenshots/steer-live.png, a run steered from the Timeline editor
while it trains.

presets/baby-gpt.yaml, shortened to 600 ticks, trains in the real window (1280x800). At tick
250 the script edits the timeline in the editor, as a drag would: the cosine decay now runs from
5e-4 to 1e-5 instead of 1e-3 to 1e-4 (so the LR drops at the revision's tick), and a LayerNorm
ramp to strength 0.5 over 100 ticks starts at tick 350 on every block. The window sends the edit
as a revision; the run applies it from its next tick. The screenshot is taken at tick 450: the
editor with the trained past hatched up to the "now" line, and the LR plot with the revision's
dash-dot line, where the logged LR leaves the old plan, and the LN ramp's line. Run from the
repository root, on a real X server or offscreen:

    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python benchmarks/steer_screenshot.py [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

STEPS, EDIT_AT, SHOT_AT = 600, 250, 450


def wait(app, until, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not get there")
        app.processEvents()
        time.sleep(0.01)


def main(out: Path) -> None:
    import engine
    from benchmarks.shot_window import open_window, save

    app, window = open_window(Path(tempfile.mkdtemp()))
    assert window.files.load(ROOT / "presets/baby-gpt.yaml")
    spec = engine.replace(window.config.spec, {"train.steps": STEPS, "train.threads": 1})
    window.config.set_spec(spec)
    window.timeline_dock.raise_()
    window.start_run()
    session = window.session
    wait(app, lambda: session.handle is not None and session.handle.tick >= EDIT_AT)
    timeline = window.timeline_editor.doc.timeline
    lr = list(timeline.lr)
    lr[1] = dataclasses.replace(lr[1], from_=5.0e-4, to=1.0e-5)
    ramp = engine.NormEvent(at=350, action="ramp", to=0.5, over=100)
    edited = dataclasses.replace(timeline, lr=lr, layernorm=[*timeline.layernorm, ramp])
    assert window.timeline_editor.commit(edited, "steer")  # what a drag commits
    wait(app, lambda: window.steerer.following is not None and window.steerer._sent == [])
    wait(app, lambda: session.handle is None or session.handle.tick >= SHOT_AT)
    session.pause()
    wait(app, lambda: session.state in ("paused", "finished"))
    for _ in range(50):  # the throttled redraws and the editor's cursor catch up
        app.processEvents()
        time.sleep(0.02)
    window.timeline_editor.show_tick(session.handle.tick - 1)
    window.tabs.setCurrentWidget(window.plots.lr)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    save(window, out / "steer-live.png")
    print(out / "steer-live.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    main(parser.parse_args().out)
