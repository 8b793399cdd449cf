"""The Runs browser's tree (``RunsProxy``) over rows made by hand: branches nest under their
parent, a missing parent leaves its branch at the top, a parent read late adopts its branches,
sorting and filtering keep the tree, and the selection follows its runs through re-layouts.
Qt's own model tester checks every change."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester

import engine
from workbench.runs.model import COLUMNS, PATH_ROLE, RunRow, RunsTableModel
from workbench.runs.runs_view import RunsTreeView
from workbench.runs.tree_proxy import RunsProxy


def row(
    folder: Path, name: str, parent: Path | None = None, tick=None, ticks=30, status="finished"
):
    summary = engine.RunSummary(
        path=folder,
        name=name,
        status=status,
        ticks=ticks,
        steps=30,
        best_val_loss=None,
        last_val_loss=None,
        tokens_per_s=None,
        started=1000.0 + len(name),
        updated=None,
    )
    return RunRow(
        path=folder,
        summary=summary,
        preset="p",
        tags=(),
        forked_from=parent.name if parent else None,
        parent=parent,
        branch_tick=tick,
    )


@pytest.fixture
def tree(tmp_path):
    model = RunsTableModel()
    proxy = RunsProxy(model)
    tester = QAbstractItemModelTester(proxy, QAbstractItemModelTester.FailureReportingMode.Fatal)
    yield model, proxy, tmp_path
    del tester


def shape(proxy, parent=QModelIndex(), depth=0) -> list[str]:  # noqa: B008
    """``name`` per run, indented by two spaces a level, in the tree's order."""
    out = []
    for r in range(proxy.rowCount(parent)):
        index = proxy.index(r, 0, parent)
        out.append("  " * depth + index.data())
        out += shape(proxy, index, depth + 1)
    return out


def test_branches_nest_under_their_parent_and_chains_go_deep(tree):
    model, proxy, root = tree
    a, b, c, d = (root / n for n in "abcd")
    model.put(row(a, "a"))
    model.put(row(b, "b", a, 10))
    model.put(row(c, "c", b, 20))
    model.put(row(d, "d", root / "deleted", 5))  # its parent is gone: at the top
    assert shape(proxy) == ["a", "  b", "    c", "d"]
    c_index = proxy.mapFromSource(model.index(model.row_of(c), 0))
    assert proxy.depth(c_index) == 2 and proxy.parent(c_index).data() == "b"
    assert proxy.mapToSource(c_index).row() == model.row_of(c)


def test_a_parent_read_after_its_branches_adopts_them_and_a_removed_one_lets_go(tree):
    model, proxy, root = tree
    a, b, c = root / "a", root / "b", root / "c"
    model.put(row(b, "b", a, 10))
    model.put(row(c, "c", a, 12))
    assert shape(proxy) == ["b", "c"]
    selection = QItemSelectionModel(proxy)
    flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
    selection.select(proxy.mapFromSource(model.index(model.row_of(c), 0)), flags)
    model.put(row(a, "a"))
    assert shape(proxy) == ["a", "  b", "  c"]
    assert [i.data(PATH_ROLE) for i in selection.selectedRows()] == [str(c)]
    model.remove(a)
    assert sorted(shape(proxy)) == ["b", "c"]
    assert [i.data(PATH_ROLE) for i in selection.selectedRows()] == [str(c)]


def test_sorting_keeps_branches_under_their_parent(tree):
    model, proxy, root = tree
    a, b = root / "a", root / "b"
    model.put(row(a, "a", ticks=30))
    model.put(row(root / "a1", "a1", a, 5, ticks=8))
    model.put(row(root / "a2", "a2", a, 5, ticks=20))
    model.put(row(b, "b", ticks=10))
    ticks = COLUMNS.index("ticks")
    proxy.sort(ticks, Qt.SortOrder.AscendingOrder)
    assert shape(proxy) == ["b", "a", "  a1", "  a2"]
    proxy.sort(ticks, Qt.SortOrder.DescendingOrder)
    assert shape(proxy) == ["a", "  a2", "  a1", "b"]
    # a live branch overtakes its sibling: it moves, its data follow
    model.put(row(root / "a1", "a1", a, 5, ticks=25, status="running"))
    assert shape(proxy) == ["a", "  a1", "  a2", "b"]


def test_the_filter_keeps_matching_runs_a_hidden_parent_leaves_its_branch_at_the_top(tree):
    model, proxy, root = tree
    a = root / "a"
    model.put(row(a, "alpha"))
    model.put(row(root / "b", "alpha-branch", a, 10))
    model.put(row(root / "g", "gamma", status="diverged"))
    proxy.setFilterFixedString("ALPHA")
    assert shape(proxy) == ["alpha", "  alpha-branch"]
    proxy.setFilterFixedString("branch")
    assert shape(proxy) == ["alpha-branch"]
    proxy.setFilterFixedString("diverged")
    assert shape(proxy) == ["gamma"]
    proxy.setFilterFixedString("")
    assert len(shape(proxy)) == 3


def test_a_run_naming_itself_or_a_loop_stays_at_the_top(tree):
    model, proxy, root = tree
    a, b = root / "a", root / "b"
    model.put(row(a, "a", b, 3))
    model.put(row(b, "b", a, 4))
    model.put(row(root / "c", "c", root / "c", 1))
    assert sorted(s.strip() for s in shape(proxy)) == ["a", "b", "c"]
    assert len(shape(proxy)) == 3


def test_the_view_unfolds_runs_that_get_branches_but_not_those_the_user_folded(tree, qtbot):
    model, proxy, root = tree
    view = RunsTreeView(proxy)
    qtbot.addWidget(view)
    view.show()
    a, b = root / "a", root / "b"
    model.put(row(a, "a"))
    model.put(row(b, "b"))
    model.put(row(root / "a1", "a1", a, 5))
    index = {p: proxy.mapFromSource(model.index(model.row_of(p), 0)) for p in (a, b)}
    qtbot.waitUntil(lambda: view.isExpanded(index[a]))
    view.collapse(index[a])  # as a click on its arrow does
    model.put(row(root / "a2", "a2", a, 6))
    model.put(row(root / "b1", "b1", b, 7))
    qtbot.waitUntil(lambda: view.isExpanded(index[b]))
    assert not view.isExpanded(index[a]) and proxy.rowCount(index[a]) == 2
