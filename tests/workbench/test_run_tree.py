"""Lineage in the window, on real runs: a branch made with a plot's "Branch here…" sits under its
parent in the Runs browser; the Run tree draws a bar per run joined to its parent at the branch
tick, and a click on a bar focuses that run; a parent and its branch selected together overlay
the branch's curve from its tick on."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt

import engine
from tests.workbench.focus_helpers import click_row
from tests.workbench.helpers import dialog
from workbench.plots.envelope import series_of
from workbench.runs.model import BRANCH_TICK_ROLE
from workbench.runs.runs_view import NameDelegate

WAIT_MS = 30_000


@pytest.fixture
def window(runs_window):  # conftest's: a window over copies of the base runs
    return runs_window


def index_of(panel, path):
    return panel.proxy.mapFromSource(panel.model.index(panel.model.row_of(path), 0))


def child_of(window, parent, tick):
    """The run forked from ``parent`` at ``tick`` once the Runs browser lists it, or None."""
    for row in window.runs.model.rows:
        if row.parent == parent.resolve() and row.branch_tick == tick:
            return row.path
    return None


def plot_point(plot, x: float, y: float):
    """Where the view point (x, y) of ``plot`` is, in its viewport's pixels."""
    vb = plot.getPlotItem().vb
    return plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))


def test_branch_here_makes_a_child_indented_under_its_parent(window, qtbot):
    alpha = window.runs_dir_of_test["alpha"]
    click_row(qtbot, window, alpha)
    qtbot.waitUntil(lambda: window.focus.run_dir == alpha, timeout=WAIT_MS)
    window.tabs.setCurrentWidget(window.plots.loss)
    plot = window.plots.loss.plot
    vb = plot.getPlotItem().vb
    qtbot.waitUntil(lambda: vb.viewRange()[0][1] >= 25, timeout=WAIT_MS)
    where = plot_point(plot, 17, sum(vb.viewRange()[1]) / 2)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.RightButton, pos=where)
    qtbot.waitUntil(vb.menu.isVisible)
    action = next(a for a in vb.menu.actions() if a.objectName() == "branchHere")
    vb.menu.close()
    action.trigger()
    dialog(qtbot, window.runs, "branchDialog").go.click()
    qtbot.waitUntil(lambda: child_of(window, alpha, 17) is not None, timeout=WAIT_MS)

    panel, table = window.runs, window.runs.table
    child, parent = index_of(panel, child_of(window, alpha, 17)), index_of(panel, alpha)
    assert panel.proxy.parent(child) == parent
    qtbot.waitUntil(lambda: table.isExpanded(parent))  # unfolded once it has a branch
    assert child.data() == "alpha-branch" and child.data(BRANCH_TICK_ROLE) == 17
    assert NameDelegate.suffix(child) == "at tick 17"
    window.runs_dock.raise_()
    qtbot.waitUntil(lambda: table.visualRect(child).isValid())
    indent = table.visualRect(child).left() - table.visualRect(parent).left()
    assert indent == table.indentation()
    # the other runs stay at the top level
    assert panel.proxy.rowCount() == len(window.runs_dir_of_test)


def test_the_run_tree_draws_each_run_and_a_click_on_a_bar_focuses_it(window, qtbot):
    runs = window.runs_dir_of_test
    alpha = runs["alpha"]
    handle = engine.branch_run(alpha, 12, name="alpha-12", runs_dir=alpha.parent)
    assert handle.join(WAIT_MS / 1000) and handle.status == "finished", handle.error
    branch = handle.run_dir
    panel, view = window.runs, window.runs.run_tree
    panel.tree_action.trigger()  # the Runs dock's "Run tree" shows the tab
    assert window.tabs.currentWidget() is view and view.isVisible()
    qtbot.waitUntil(lambda: len(view.bars) == len(runs) + 1, timeout=WAIT_MS)

    bars = {bar.path: bar for bar in view.bars}
    assert (bars[alpha].start, bars[alpha].end) == (0, 30)
    assert (bars[branch].start, bars[branch].end) == (12, 30)
    assert bars[branch].parent_row == bars[alpha].row < bars[branch].row
    assert bars[runs["delta"]].end == 20 and bars[runs["delta"]].steps == 60
    assert view.joints == [(12, bars[alpha].row, bars[branch].row)]
    drawn = view._done.opts  # what pyqtgraph was given to draw
    assert list(drawn["x0"]) == [b.start for b in view.bars]
    assert list(drawn["x1"]) == [b.end for b in view.bars]
    links_x, links_y = view._links.getData()
    assert list(links_x) == [12, 12] and list(links_y) == [bars[alpha].row, bars[branch].row]
    assert list(view._planned.opts["x0"]) == [20]  # only delta (interrupted) can go on

    plot = view.plot
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot_point(plot, 20, 0))
    assert view.bar_at(plot.mapToScene(plot_point(plot, 20, 0))) == view.bars[0]
    qtbot.mouseClick(
        plot.viewport(), Qt.MouseButton.LeftButton, pos=plot_point(plot, 20, bars[branch].row)
    )
    qtbot.waitUntil(lambda: window.focus.run_dir == branch, timeout=WAIT_MS)
    assert panel.selected_paths() == [branch]
    # a click beside every bar does nothing
    qtbot.mouseClick(
        plot.viewport(), Qt.MouseButton.LeftButton, pos=plot_point(plot, 5, bars[branch].row)
    )
    assert window.focus.run_dir == branch and panel.selected_paths() == [branch]


def test_a_parent_and_its_branch_overlay_the_branch_from_its_tick(window, qtbot):
    alpha = window.runs_dir_of_test["alpha"]
    handle = engine.branch_run(alpha, 12, name="alpha-12", runs_dir=alpha.parent)
    assert handle.join(WAIT_MS / 1000) and handle.status == "finished", handle.error
    branch = handle.run_dir
    panel = window.runs
    qtbot.waitUntil(lambda: index_of(panel, branch).isValid(), timeout=WAIT_MS)
    click_row(qtbot, window, branch)
    click_row(qtbot, window, alpha, ctrl=True)  # added, and in focus: the plots' own curves
    qtbot.waitUntil(lambda: window.focus.run_dir == alpha, timeout=WAIT_MS)
    assert panel.selected_paths() == [alpha, branch]  # the tree's order: parent first
    plot = window.plots.loss.plot
    qtbot.waitUntil(lambda: (branch, "train/loss") in panel.overlay.curves(plot), timeout=WAIT_MS)
    assert set(panel.overlay.curves(plot)) == {(branch, "train/loss"), (branch, "val/loss")}
    x, _ = series_of(panel.overlay.curves(plot)[(branch, "train/loss")])
    assert list(x) == list(range(12, 30))  # it leaves the parent's curve at its tick
