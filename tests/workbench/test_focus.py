"""One run in focus: the run trained, resumed or clicked is the window's (its name in the title,
toolbar and status bar; its controls; the plots' own curves); runs compared are overlays only."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import engine
from tests.engine.helpers import run_ticks_then_stop
from tests.workbench.focus_helpers import (
    LONG,
    WAIT_MS,
    click_row,
    runs_button,
    start,
    stop,
    write_long_study,
    write_named,
)
from tests.workbench.helpers import RUN_TIMEOUT_MS, button, click, dialog, run_to_end
from tests.workbench.runs_helpers import finish, spec
from workbench.plots.envelope import series_of
from workbench.theme import COLORS

STUDY_MS = 120_000


def test_a_run_resumed_from_the_runs_dock_is_in_focus_with_its_controls(
    qtbot, make_main_window, tmp_path
):
    window = make_main_window()
    handle = start(qtbot, window, write_named(tmp_path, "long", LONG))
    qtbot.waitUntil(lambda: handle.tick >= 3, timeout=RUN_TIMEOUT_MS)
    assert stop(qtbot, window) == "stopped"
    stopped, stopped_at = handle.run_dir, handle.tick
    window.files.load(write_named(tmp_path, "short"))
    assert run_to_end(qtbot, window) == "finished"
    assert window.status.tick.text() == "tick 30/30"

    click_row(qtbot, window, stopped)
    assert window.focus.run_dir == stopped  # clicked: in focus, nothing to control
    assert window.windowTitle() == "long[*] — Tickbench"
    assert not button(window, "pauseButton").isEnabled()
    resume = runs_button(window, "runsResumeButton")
    qtbot.waitUntil(resume.isEnabled, timeout=WAIT_MS)
    click(qtbot, resume)

    assert window.session.active and window.session.run_dir == stopped
    pause, stop_button = button(window, "pauseButton"), button(window, "stopButton")
    assert pause.isEnabled() and stop_button.isEnabled()
    assert not button(window, "runButton").isEnabled()
    assert window.windowTitle() == "long[*] — Tickbench"
    assert window.commands.spec_label.text() == "run: long · running"
    assert window.status.run.text() == "long"
    assert window.config.spec.name == "long" and not window.config._form.isEnabled()
    resumed = window.session.handle
    qtbot.waitUntil(lambda: resumed.tick >= stopped_at + 3, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: (
            window.status.tick.text().endswith(f"/{LONG}")
            and int(window.status.tick.text().split()[1].split("/")[0]) > stopped_at
        ),
        timeout=WAIT_MS,
    )
    # its history before the checkpoint is on the plots with what it trains now
    loss = window.plots.store.get("train/loss")
    qtbot.waitUntil(lambda: len(loss) >= stopped_at + 3, timeout=WAIT_MS)
    ticks = loss.x
    assert ticks[0] == 0 and list(ticks[: stopped_at + 3]) == list(range(stopped_at + 3))

    click(qtbot, pause)
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    assert button(window, "stepButton").isEnabled()
    window.activateWindow()  # Ctrl+. goes to the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS) as ended:
        qtbot.keyClick(window, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    assert ended.args == ["stopped"]
    assert window.status.state.text() == "stopped"
    assert window.config.spec.name == "short"  # the draft is back, editable
    assert window.config._form.isEnabled()


def test_a_study_run_is_the_focus_while_the_study_trains(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    window.files.load(write_named(tmp_path, "before"))
    assert run_to_end(qtbot, window) == "finished"
    assert window.status.tick.text() == "tick 30/30"

    window.studies.ask_run(write_long_study(tmp_path))
    box = dialog(qtbot, window, "runStudyDialog")
    click(qtbot, next(b for b in box.buttons() if b.text() == "Run study"))
    focus = window.focus
    qtbot.waitUntil(lambda: focus.source == "study" and focus.progress is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: focus.progress.done >= 8, timeout=STUDY_MS)
    run, name = focus.run_dir, focus.name
    assert name == "duo-slow"
    assert window.windowTitle() == "duo-slow[*] — Tickbench"
    assert window.commands.spec_label.text() == "run: duo-slow · running"
    assert window.status.run.text() == "duo-slow" and window.status.state.text() == "running"
    assert window.status.tick.text().endswith(f"/{LONG}")
    assert window.status.eta.text() != "ETA 0:00"
    assert window.config.spec.name == "duo-slow"  # the spec training, locked
    assert not window.config._form.isEnabled()
    # the plots' own (bold) curve is the study's run, not the run before
    own = window.plots.store.get("train/loss")
    ticks, values = engine.open_run(run).scalars("train/loss")
    n = min(len(own), len(values))
    assert n >= 5 and np.allclose(own.y[:n], values[:n]) and own.x[-1] < LONG
    assert not [k for k in window.runs.overlay.curves(window.plots.loss.plot) if k[0] == run]
    assert window.activations.run_dir == run  # the Activations tab follows it too
    assert button(window, "stopButton").isEnabled()
    assert not button(window, "pauseButton").isEnabled()

    click(qtbot, button(window, "stopButton"))
    qtbot.waitUntil(lambda: not window.studies.active, timeout=STUDY_MS)
    assert window.config.spec.name == "before" and window.config._form.isEnabled()
    assert button(window, "runButton").isEnabled()


def test_the_run_training_is_drawn_once(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    handle = start(qtbot, window, write_named(tmp_path, "live", LONG))
    qtbot.waitUntil(lambda: handle.tick >= 3, timeout=RUN_TIMEOUT_MS)
    click_row(qtbot, window, handle.run_dir)  # the user clicks the live run's row
    assert window.runs.selected_paths() == [handle.run_dir]
    assert window.focus.run_dir == handle.run_dir and window.focus.source == "session"
    qtbot.waitUntil(lambda: len(window.plots.store.get("train/loss") or ()) >= 3)
    loss = window.plots.loss.plot
    assert window.runs.overlay.curves(loss) == {}
    window.plots.redraw()
    legend = [label.text for _, label in loss.legend.items]
    assert "train/loss" in legend and not [t for t in legend if "·" in t]
    assert stop(qtbot, window) == "stopped"


def test_runs_selected_earlier_do_not_stretch_a_new_runs_axis(qtbot, make_main_window, tmp_path):
    old = finish(spec("old", train={"steps": 60}), tmp_path / "runs")
    window = make_main_window()
    window.files.load(write_named(tmp_path, "new"))
    click_row(qtbot, window, old)
    assert window.focus.name == "old"
    assert len(window.plots.store.get("train/loss")) == 60  # a clicked run: the plots' own

    assert run_to_end(qtbot, window) == "finished"
    assert window.runs.selected_paths() == [window.last_run_dir]
    for plot in (window.plots.loss.plot, window.plots.lr, window.plots.grad_norm):
        plot.getPlotItem().vb.updateAutoRange()
        x_max = plot.getPlotItem().vb.viewRange()[0][1]
        assert 29 <= x_max < 40, (plot, x_max)


def test_runs_shown_together_never_share_a_colour(qtbot, make_main_window, tmp_path):
    runs = {n: finish(spec(n, train={"steps": 10}), tmp_path / "runs") for n in "abc"}
    window = make_main_window()
    for name in "abc":  # each alone first: each got the first colour
        click_row(qtbot, window, runs[name])
    click_row(qtbot, window, runs["b"], ctrl=True)
    click_row(qtbot, window, runs["a"], ctrl=True)
    assert sorted(window.runs.selected_paths()) == sorted(runs.values())
    assert window.focus.run_dir == runs["a"]  # the last clicked: the plots' own curves

    curves = window.runs.overlay.curves(window.plots.loss.plot)
    assert {p for p, _ in curves} == {runs["b"], runs["c"]}  # the others, overlaid
    colors = {p: item.opts["pen"].color().name() for (p, m), item in curves.items()}
    assert len(set(colors.values())) == 2
    assert not set(colors.values()) & set(COLORS.values())  # unlike the focus run's curves
    swatches = window.runs.model.colors
    assert set(swatches) == {runs["b"], runs["c"]}
    assert len(set(swatches.values())) == len(swatches)


def test_runs_dock_buttons_follow_a_run_that_stops(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    handle = start(qtbot, window, write_named(tmp_path, "live", LONG))
    qtbot.waitUntil(lambda: handle.tick >= 2, timeout=RUN_TIMEOUT_MS)
    click_row(qtbot, window, handle.run_dir)
    resume, delete = (runs_button(window, n) for n in ("runsResumeButton", "runsDeleteButton"))
    qtbot.waitUntil(lambda: window.runs.model.get(handle.run_dir).summary.status == "running")
    assert not resume.isEnabled() and not delete.isEnabled()  # running

    assert stop(qtbot, window) == "stopped"
    # no re-selecting: the buttons follow the row
    qtbot.waitUntil(lambda: resume.isEnabled() and delete.isEnabled(), timeout=WAIT_MS)
    assert window.runs.selected_paths() == [handle.run_dir]


def test_a_run_cannot_be_resumed_while_another_trains(qtbot, make_main_window, tmp_path):
    stopped = run_ticks_then_stop(spec("halted", train={"steps": 30}), tmp_path / "runs", 5)
    window = make_main_window()
    handle = start(qtbot, window, write_named(tmp_path, "live", LONG))
    click_row(qtbot, window, stopped.run_dir)
    assert window.focus.run_dir == handle.run_dir  # a click does not take the focus from it
    resume = runs_button(window, "runsResumeButton")
    qtbot.waitUntil(resume.isEnabled, timeout=WAIT_MS)
    click(qtbot, resume)
    assert window.session.handle is handle
    assert any("cannot resume" in line and "in progress" in line for line in window.log.lines())
    assert engine.open_run(stopped.run_dir).status == "stopped"
    assert stop(qtbot, window) == "stopped"


def test_a_clicked_run_brings_its_activations_and_its_planned_lr(qtbot, make_main_window, tmp_path):
    """The Activations tab and the planned-LR guide follow the run clicked, not the draft: its
    captures from its store, its plan (another LR and a warmup) from the engine's compile."""
    warm = {"lr": [{"start": 0, "end": 20, "shape": "linear", "from": 0.0, "to": 3e-3}]}
    clicked = finish(
        spec("clicked", train={"steps": 40, "stats_every": 10, "lr": 3e-3}, timeline=warm),
        tmp_path / "runs",
    )
    window = make_main_window()
    window.files.load(write_named(tmp_path, "draft"))
    draft_lr = window.plots.lr.getPlotItem().listDataItems()
    guide = window.plots.lr._guide
    assert series_of(guide)[1][0] == window.config.spec.train.lr  # the draft's: flat

    click_row(qtbot, window, clicked)
    assert window.focus.run_dir == clicked and window.activations.run_dir == clicked
    stored = engine.open_run(clicked).activation_stats()
    assert stored and set(window.activations.sites) == {site for site, _ in stored}
    ticks = window.activations.selected().ticks
    assert list(ticks) == list(next(iter(stored.values())).ticks)  # every capture, the last too
    plan = engine.plan_timeline(engine.open_run(clicked).spec).lr_curve()
    np.testing.assert_allclose(series_of(guide)[1], plan)
    assert plan[0] < 3e-4 and plan[-1] == pytest.approx(3e-3)  # its warmup, not a flat LR
    assert draft_lr  # the LR plot kept its items

    window.files.load(write_named(tmp_path, "other"))  # a spec in focus again: its plan
    qtbot.waitUntil(lambda: window.focus.run_dir is None)
    assert window.activations.run_dir is None and window.activations.sites == []
    assert series_of(guide)[1][0] == window.config.spec.train.lr
