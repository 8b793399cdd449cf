"""Steering the window's run from the Timeline editor: a drag during the run is a revision the
run applies from its next tick, drawn on the plots; a refused one is said and undone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine
from tests.workbench.helpers import RUN_TIMEOUT_MS, button, click
from tests.workbench.test_plot_events import labels_of, lines_of
from tests.workbench.timeline_helpers import drag, handle, write_spec


@pytest.fixture
def paused_run(make_main_window, tmp_path, qtbot):
    """The window training tests' 200-tick timeline, paused after a few ticks."""
    window = make_main_window()
    assert window.files.load(write_spec(tmp_path))
    click(qtbot, button(window, "runButton"))
    window.session.pause()
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    done = window.session.handle.tick + 5  # it is waiting: no tick trains until a step
    for _ in range(5):
        window.session.step()
    qtbot.waitUntil(lambda: window.session.handle.tick == done, timeout=RUN_TIMEOUT_MS)
    yield window
    window.session.shutdown()


def test_dragging_an_lr_handle_during_a_run_steers_it(paused_run, qtbot):
    window = paused_run
    editor, lane = window.timeline_editor, window.timeline_editor.lr_lane
    now = window.session.handle.tick  # paused: the next tick to train
    assert 5 <= now < 100 and editor.live and editor.editable
    # point 1 of the points segment ([120, 200)) sits at tick 159: drag it up to 6e-4
    assert handle(lane, ("lr", 2, "pt", 1)).view_pos.y() == 2e-4
    drag(qtbot, editor, lane, (159, 2e-4), (139, 6e-4))
    wanted = engine.compile_timeline(window.config.spec).lr_curve()  # the edited plan
    run_dir = window.session.run_dir

    def applied() -> bool:
        revs = engine.open_run(run_dir).revisions()
        return bool(revs) and revs[-1].state == "applied"

    qtbot.waitUntil(applied, timeout=10_000)  # a paused run looks twice a second
    (rev,) = engine.open_run(run_dir).revisions()
    assert (rev.tick, rev.source, rev.detail) == (now, "window", "timeline.lr[2]")
    # the revision shows on the plots: a line at its tick, labelled, on the LR plot too
    qtbot.waitUntil(lambda: now in lines_of(window.plots.lr), timeout=5_000)
    assert any("rev 1: timeline.lr[2]" in label for label in labels_of(window.plots.lr))
    # the planned LR is now the run's plan with the revision
    guide = window.plots.lr._guide.getData()[1]
    assert np.array_equal(guide, wanted)
    assert window.steerer.following.timeline == window.config.spec.timeline
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS):
        window.session.resume()
    ticks, logged = engine.open_run(run_dir).scalars("lr")
    assert np.array_equal(logged, wanted[ticks])  # what ran is the edited plan from `now` on


def test_an_edit_the_run_refuses_is_said_and_undone(paused_run, qtbot):
    window = paused_run
    editor = window.timeline_editor
    before = window.config.spec.timeline
    # move the finetune phase (starts at 150) to tick 0+: a phase starting in the past
    phases = list(before.phases)
    phases[1] = dataclasses.replace(phases[1], start=1)
    assert editor.commit(dataclasses.replace(before, phases=phases), "move phase")
    qtbot.waitUntil(lambda: window.config.spec.timeline == before, timeout=10_000)
    assert "Refused by the run:" in editor.message_text
    assert "would start at tick 1, in the past" in editor.message_text
    (rev,) = engine.open_run(window.session.run_dir).revisions()
    assert rev.state == "refused"


def test_the_diff_lists_each_runs_revisions():
    from tests.engine.helpers import tiny_spec
    from workbench.runs.spec_diff import spec_diff

    spec = tiny_spec(train={"steps": 40})
    plan = engine.compile_timeline(spec)
    steered = plan.spliced(engine.compile_timeline(engine.replace(spec, {"train.lr": 3e-4})), 25)
    assert steered.revision_ticks() == [25] and steered.lr_at(24) != steered.lr_at(25)
    rows = {r.path: r for r in spec_diff([spec, spec], timelines=[plan, steered])}
    assert rows["revision 1"].values == ("—", "from tick 25")
    assert rows["revision 1"].kind == "added"


def test_a_run_another_process_trains_is_steered_from_the_runs_dock(
    make_main_window, tmp_path, qtbot
):
    """Runs ▸ Steer… on a run `python -m engine run` trains: the run's spec, edited, goes to
    it as a revision; a refusal stays in the dialog."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from PySide6.QtWidgets import QDialog

    from tests.engine.helpers import tiny_spec
    from tests.workbench.focus_helpers import click_row
    from tests.workbench.helpers import dialog

    window = make_main_window()
    spec = tiny_spec(train={"steps": 50_000, "checkpoint_every": 0, "eval_every": 0})
    engine.save_spec(spec, tmp_path / "long.yaml")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", tmp_path / "long.yaml", "--runs-dir",
         window.runs.runs_dir],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        qtbot.waitUntil(lambda: bool(window.runs.model.rows), timeout=60_000)
        path = window.runs.model.rows[0].path
        qtbot.waitUntil(lambda: window.runs.model.get(path).summary.ticks > 5, timeout=60_000)
        click_row(qtbot, window, path)
        actions = window.runs.actions
        qtbot.waitUntil(actions.steer_action.isEnabled, timeout=10_000)
        actions.steer_action.trigger()
        box = dialog(qtbot, window.runs, "steerDialog")
        assert engine.spec_from_yaml(box.editor.toPlainText()) == spec  # its name kept
        box.editor.setPlainText(engine.dump_spec(engine.replace(spec, {"model.d_model": 64})))
        box.go.click()
        qtbot.waitUntil(lambda: box.error.isVisible(), timeout=20_000)
        assert box.error.text().startswith("model.d_model cannot change during a run")
        box.editor.setPlainText(engine.dump_spec(engine.replace(spec, {"train.lr": 3e-4})))
        box.go.click()

        def applied() -> bool:
            return [r.state for r in engine.open_run(path).revisions()] == ["refused", "applied"]

        qtbot.waitUntil(applied, timeout=20_000)
        qtbot.waitUntil(lambda: window.runs.findChild(QDialog, "steerDialog") is None)  # closed
        revs = engine.open_run(path).revisions()
        assert [(r.state, r.source, r.detail) for r in revs] == [
            ("refused", "window", revs[0].detail),
            ("applied", "window", "train.lr"),
        ]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
