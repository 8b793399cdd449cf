"""Branching from the window: Runs ▸ Branch… at any tick, and "Branch here…" in a plot's
right-click menu at the tick under the click; the replay runs off the GUI thread and the branch
trains what its parent trained from that tick on."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QMenu

import engine
from tests.workbench.focus_helpers import click_row
from tests.workbench.helpers import dialog

WAIT_MS = 30_000


@pytest.fixture
def window(runs_window):  # conftest's: a window over copies of the base runs
    return runs_window


def _losses(path):
    ticks, values = engine.open_run(path).scalars("train/loss")
    return dict(zip(ticks.tolist(), values.tolist()))


def _branch_appears(qtbot, window, parent, tick):
    """The branch's folder once it finished, found by its ``forked_from``."""
    found = []

    def done() -> bool:
        for row in window.runs.model.rows:
            origin = engine.open_run(row.path).meta.get("forked_from") or {}
            if origin.get("run") == str(parent) and origin.get("tick") == tick:
                found[:] = [row.path]
                return row.summary.status == "finished"
        return False

    qtbot.waitUntil(done, timeout=WAIT_MS)
    return found[0]


def test_runs_branch_dialog_says_what_it_replays_and_branches(window, qtbot):
    alpha = window.runs_dir_of_test["alpha"]
    click_row(qtbot, window, alpha)
    actions = window.runs.actions
    qtbot.waitUntil(actions.branch_action.isEnabled)
    actions.branch_action.trigger()
    box = dialog(qtbot, window.runs, "branchDialog")
    box.tick.setValue(25)
    assert box.replay.text() == "replayed from its checkpoint at tick 20: 5 ticks"
    box.tick.setValue(20)
    assert box.replay.text() == "a checkpoint: no replay"
    box.tick.setValue(25)
    box.go.click()
    assert not box.isVisible()
    child = _branch_appears(qtbot, window, alpha, 25)
    mine, theirs = _losses(child), _losses(alpha)
    assert sorted(mine) == list(range(25, 30)) and all(mine[t] == theirs[t] for t in mine)
    assert engine.open_run(child).spec.name == "alpha-branch"


def test_branch_here_from_a_plots_menu_at_the_clicked_tick(window, qtbot):
    alpha = window.runs_dir_of_test["alpha"]
    click_row(qtbot, window, alpha)  # alpha in focus: the plots draw it
    qtbot.waitUntil(lambda: window.focus.run_dir == alpha, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.plots.loss)
    plot = window.plots.loss.plot
    vb = plot.getPlotItem().vb
    qtbot.waitUntil(lambda: vb.viewRange()[0][1] >= 25, timeout=WAIT_MS)
    y = sum(vb.viewRange()[1]) / 2
    where = plot.mapFromScene(vb.mapViewToScene(QPointF(17, y)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.RightButton, pos=where)
    menu = vb.menu  # what pyqtgraph pops up on a right click in the plot
    qtbot.waitUntil(menu.isVisible)
    action = next(a for a in menu.actions() if a.objectName() == "branchHere")
    assert action.isEnabled() and round(action.data()) == 17
    menu.close()
    action.trigger()
    box = dialog(qtbot, window.runs, "branchDialog")
    assert box.tick.value() == 17
    box.go.click()
    child = _branch_appears(qtbot, window, alpha, 17)
    assert all(v == _losses(alpha)[t] for t, v in _losses(child).items())


def test_a_branch_started_paused_waits_at_its_tick_with_its_future_editable(window, qtbot):
    alpha = window.runs_dir_of_test["alpha"]
    click_row(qtbot, window, alpha)
    actions = window.runs.actions
    qtbot.waitUntil(actions.branch_action.isEnabled)
    actions.branch_action.trigger()
    box = dialog(qtbot, window.runs, "branchDialog")
    box.tick.setValue(25)
    box.paused.setChecked(True)
    box.go.click()
    session, editor = window.session, window.timeline_editor
    qtbot.waitUntil(lambda: session.state == "paused", timeout=WAIT_MS)
    assert session.handle.tick == 25  # nothing trained past the branch tick yet
    assert editor.live and editor.editable  # its timeline, the past hatched, the future open
    qtbot.waitUntil(lambda: editor.pasts[0].isVisible(), timeout=WAIT_MS)
    assert editor.pasts[0].getRegion()[1] <= 25.5
    with qtbot.waitSignal(session.ended, timeout=WAIT_MS):
        session.resume()
    child = window.last_run_dir
    mine, theirs = _losses(child), _losses(alpha)
    assert sorted(mine) == list(range(25, 30)) and all(mine[t] == theirs[t] for t in mine)


def test_the_menu_bars_runs_menu_holds_branch_and_steer(window, qtbot):
    bar = window.menuBar()
    assert [a.text() for a in bar.actions()] == [
        "&File",
        "&Presets",
        "&Run",
        "R&uns",
        "&View",
        "&Help",
    ]
    menu = window.findChild(QMenu, "runsMenu")
    names = [a.objectName() for a in menu.actions()]
    assert {"runsBranchAction", "runsSteerAction", "runsExportAction"} <= set(names)
    branch = next(a for a in menu.actions() if a.objectName() == "runsBranchAction")
    assert branch is window.runs.actions.branch_action  # the toolbar's: enabled together
    click_row(qtbot, window, window.runs_dir_of_test["alpha"])
    qtbot.waitUntil(branch.isEnabled)
    branch.trigger()
    box = dialog(qtbot, window.runs, "branchDialog")
    assert box.isVisible()
    box.reject()
