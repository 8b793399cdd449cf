"""The Runs table: what it lists, how it sorts and filters, how it follows runs being written,
and the actions on runs (resume, fork, rename, tag, delete, open the spec)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

import engine
from engine.specs import replace
from tests.workbench.helpers import dialog
from tests.workbench.runs_helpers import TIMEOUT, copy_runs, make_base_runs, spec
from workbench.runs.model import COLUMNS
from workbench.runs.panel import RunsPanel

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory):
    return make_base_runs(tmp_path_factory.mktemp("base-runs"))


@pytest.fixture
def runs(base_runs, tmp_path):
    return copy_runs(base_runs, tmp_path / "runs")


@pytest.fixture
def panel(qtbot, runs, tmp_path):
    widget = RunsPanel(tmp_path / "runs", poll_ms=100)
    qtbot.addWidget(widget)
    widget.resize(1000, 300)
    widget.show()
    yield widget
    widget.shutdown()


def column(panel, name: str) -> list[str]:
    """The text of one column, in the table's (sorted, filtered) order."""
    col = COLUMNS.index(name)
    proxy = panel.proxy
    return [proxy.index(r, col).data() for r in range(proxy.rowCount())]


def cell(panel, run_dir: Path, name: str) -> str:
    row = panel.model.row_of(run_dir)
    return panel.model.index(row, COLUMNS.index(name)).data() if row >= 0 else None


def test_the_table_lists_every_run_with_its_state(panel, runs):
    assert sorted(column(panel, "name")) == ["alpha", "beta", "delta", "gamma"]
    status = {name: cell(panel, path, "status") for name, path in runs.items()}
    assert status == {
        "alpha": "finished",
        "beta": "finished",
        "gamma": "diverged",
        "delta": "interrupted",
    }
    alpha = engine.open_run(runs["alpha"]).summary()
    assert cell(panel, runs["alpha"], "ticks") == "30/30"
    assert cell(panel, runs["delta"], "ticks") == "20/60"
    assert cell(panel, runs["alpha"], "best val") == f"{alpha.best_val_loss:.4f}"
    assert cell(panel, runs["alpha"], "preset") == "alpha"  # older runs: matched by name
    assert cell(panel, runs["gamma"], "best val") == ""  # diverged before its first evaluation
    assert float(cell(panel, runs["alpha"], "tok/s").replace(",", "")) > 0
    assert cell(panel, runs["alpha"], "duration").count(":") == 1  # m:ss


def test_sorting_and_filtering(panel, runs):
    panel.table.sortByColumn(COLUMNS.index("best val"), Qt.SortOrder.AscendingOrder)
    values = column(panel, "best val")
    present = [float(v) for v in values if v]
    assert present == sorted(present) and values[-1] == ""  # numbers as numbers, blanks last
    panel.table.sortByColumn(COLUMNS.index("ticks"), Qt.SortOrder.DescendingOrder)
    done = [int(t.split("/")[0]) for t in column(panel, "ticks")]
    assert done == sorted(done, reverse=True) and done[0] == 30
    panel.filter.setText("DIVERGED")
    assert column(panel, "name") == ["gamma"]
    panel.filter.setText("")
    assert len(column(panel, "name")) == 4


def test_runs_appear_and_refresh_while_they_train(panel, runs, qtbot, tmp_path):
    live = spec("live", train={"steps": 100_000})
    handle = engine.start_run(live, tmp_path / "runs", preset="baby-gpt")
    try:
        qtbot.waitUntil(lambda: cell(panel, handle.run_dir, "status") == "running", timeout=WAIT_MS)
        assert cell(panel, handle.run_dir, "preset") == "baby-gpt"  # recorded, not guessed
        first = int(cell(panel, handle.run_dir, "ticks").split("/")[0])
        qtbot.waitUntil(
            lambda: int(cell(panel, handle.run_dir, "ticks").split("/")[0]) > first + 5,
            timeout=WAIT_MS,
        )
        panel.select([handle.run_dir])
        assert not panel.actions.delete_action.isEnabled()  # a running run cannot be deleted
        with qtbot.waitSignal(panel.message) as said:
            panel.actions.delete([handle.run_dir])
        assert said.args[0] == "error" and "stop it before deleting" in said.args[1]
        assert handle.run_dir.exists()
    finally:
        handle.stop()
        assert handle.join(TIMEOUT)
    qtbot.waitUntil(lambda: cell(panel, handle.run_dir, "status") == "stopped", timeout=WAIT_MS)


def test_resume_an_interrupted_run(panel, runs, qtbot):
    panel.select([runs["delta"]])
    assert panel.actions.resume_action.isEnabled()
    panel.actions.resume_action.trigger()
    qtbot.waitUntil(lambda: cell(panel, runs["delta"], "status") == "finished", timeout=WAIT_MS)
    assert cell(panel, runs["delta"], "ticks") == "60/60"
    assert panel.selected_paths() == [runs["delta"]]  # shown at once in the overlay
    ticks, _ = engine.open_run(runs["delta"]).scalars("train/loss")
    assert list(ticks) == list(range(60))


def test_fork_continues_from_the_checkpoint(panel, runs, qtbot):
    parent = engine.open_run(runs["alpha"])
    before = parent.all_scalars()
    edited = replace(parent.spec, {"name": "alpha-fork", "train.steps": 40, "train.lr": 5e-4})
    handle = panel.actions.fork(runs["alpha"], 10, edited)
    assert handle.join(TIMEOUT) and handle.status == "finished", handle.error
    fork = engine.open_run(handle.run_dir)
    ticks, _ = fork.scalars("train/loss")
    assert ticks[0] == 10 and list(ticks) == list(range(10, 40))
    assert fork.spec.train.lr == 5e-4 and fork.meta["forked_from"]["tick"] == 10
    assert fork.meta["lineage"][-1]["run"] == str(runs["alpha"])
    assert parent.all_scalars() == before  # the parent is untouched
    qtbot.waitUntil(lambda: cell(panel, handle.run_dir, "status") == "finished", timeout=WAIT_MS)
    assert cell(panel, handle.run_dir, "name") == "alpha-fork"


def test_fork_dialog_shows_what_the_engine_refuses(panel, runs, qtbot):
    panel.select([runs["alpha"]])
    panel.actions.fork_action.trigger()
    box = dialog(qtbot, panel, "forkDialog")
    assert box.checkpoint.currentText() == "tick 30"  # the latest first
    box.checkpoint.setCurrentIndex(box.checkpoint.findText("tick 20"))
    text = box.editor.toPlainText().replace("steps: 30", "steps: 15")
    box.editor.setPlainText(text)
    box.fork_button.click()
    assert box.isVisible() and "tick 20" in box.error.text()  # too few steps: stays open
    box.editor.setPlainText(text.replace("steps: 15", "steps: 25"))
    before = set(Path(runs["alpha"]).parent.iterdir())
    box.fork_button.click()
    assert not box.isVisible()
    (new,) = set(Path(runs["alpha"]).parent.iterdir()) - before
    qtbot.waitUntil(lambda: cell(panel, new, "status") == "finished", timeout=WAIT_MS)
    assert cell(panel, new, "name") == "alpha-fork"


def test_rename_and_tag_through_their_dialogs(panel, runs, qtbot):
    heartbeat = engine.open_run(runs["beta"]).meta["heartbeat"]
    panel.select([runs["beta"]])
    panel.actions.rename_action.trigger()
    box = dialog(qtbot, panel, "renameDialog")
    box.setTextValue("beta (higher lr)")
    box.accept()
    qtbot.waitUntil(lambda: cell(panel, runs["beta"], "name") == "beta (higher lr)")
    panel.select([runs["alpha"], runs["beta"]])
    panel.actions.tags_action.trigger()
    box = dialog(qtbot, panel, "tagsDialog")
    box.setTextValue("baseline, lr , baseline,")
    box.accept()
    qtbot.waitUntil(lambda: cell(panel, runs["alpha"], "tags") == "baseline, lr")
    assert cell(panel, runs["beta"], "tags") == "baseline, lr"
    meta = engine.open_run(runs["beta"]).meta
    assert meta["name"] == "beta (higher lr)" and meta["tags"] == ["baseline", "lr"]
    assert meta["heartbeat"] == heartbeat  # renaming is not activity: the duration stays
    panel.filter.setText("baseline")
    assert sorted(column(panel, "name")) == ["alpha", "beta (higher lr)"]


def test_delete_asks_then_removes_the_folders(panel, runs, qtbot):
    panel.select([runs["gamma"], runs["delta"]])
    panel.actions.delete_action.trigger()
    box = dialog(qtbot, panel, "deleteDialog")
    assert "gamma" in box.text() and "delta" in box.text()
    box.button(box.StandardButton.Cancel).click()
    assert runs["gamma"].exists()
    panel.actions.delete_action.trigger()
    box = dialog(qtbot, panel, "deleteDialog")
    next(b for b in box.buttons() if b.text() == "Delete").click()
    assert not runs["gamma"].exists() and not runs["delta"].exists()
    assert sorted(column(panel, "name")) == ["alpha", "beta"]
    assert panel.selected_paths() == []


def test_open_spec_and_reveal_target(panel, runs, qtbot):
    panel.select([runs["beta"]])
    with qtbot.waitSignal(panel.openSpecRequested) as blocker:
        panel.actions.open_spec_action.trigger()
    assert blocker.args == [runs["beta"] / "spec.yaml"]
    assert engine.load_spec(blocker.args[0]).train.lr == 3e-3
    assert panel.actions.reveal_action.isEnabled()
