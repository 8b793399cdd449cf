"""Runs ▸ Finetune from…: a run's spec in the Config panel, starting from its weights; the
finetuned run's lineage in the Runs table."""

from __future__ import annotations

import pytest

import engine
from tests.workbench.classify_helpers import write_classify_run
from tests.workbench.helpers import run_to_end
from tests.workbench.runs_helpers import copy_runs, finish, spec
from workbench.runs.model import COLUMNS, lineage_lines

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A finished run with checkpoints at 10, 20 and 30 whose timeline has a phase loading
    weights (the finetune must drop it), and a run with no checkpoint."""
    root = tmp_path_factory.mktemp("pretrained")
    base = finish(spec("base", train={"steps": 20}), root)
    phased = spec(
        "phased",
        timeline={"phases": [{"name": "main", "start": 0, "init_from": str(base)}]},
    )
    return {"phased": finish(phased, root), "base": base}


@pytest.fixture
def runs(pretrained, tmp_path):
    return copy_runs(pretrained, tmp_path / "runs")  # the fixture's window reads tmp_path/runs


@pytest.fixture
def window(make_main_window, runs):
    w = make_main_window()
    yield w
    w.runs.shutdown()


def cell(panel, run_dir, name: str) -> str | None:
    row = panel.model.row_of(run_dir)
    return panel.model.index(row, COLUMNS.index(name)).data() if row >= 0 else None


def test_finetune_from_loads_the_spec_with_init_from(window, runs, qtbot):
    parent = runs["phased"]
    panel, action = window.runs, window.runs.actions.finetune_action
    assert action.objectName() == "runsFinetuneAction"
    assert action in panel.actions.toolbar
    assert cell(panel, parent, "lineage") == f"finetuned from {runs['base'].name}"
    panel.select([parent, runs["base"]])
    assert not action.isEnabled()  # exactly one run
    panel.select([parent])
    assert action.isEnabled()

    action.trigger()
    loaded = window.config.spec
    assert loaded.train.init_from == str(parent.resolve())
    assert loaded.name == "phased-finetune"
    assert [p.init_from for p in loaded.timeline.phases] == [None]
    assert loaded.model == engine.load_spec(parent / "spec.yaml").model
    assert window.config.is_valid
    message = f"weights from {parent.name}: edit data/head, then Run"
    assert window.status.currentMessage() == message
    assert any(message in line for line in window.log.lines())

    # run it: the new run starts from the parent's last checkpoint, and says so in the table
    assert run_to_end(qtbot, window) == "finished"
    child = window.last_run_dir
    lineage = engine.open_run(child).meta["lineage"]
    assert lineage[0]["run"] == str(parent.resolve()) and lineage[0]["tick"] == 0
    qtbot.waitUntil(lambda: cell(window.runs, child, "lineage") is not None, timeout=WAIT_MS)
    assert cell(window.runs, child, "lineage") == f"finetuned from {parent.name}"


def test_finetune_needs_a_checkpoint(make_main_window, tmp_path):
    bare = write_classify_run(tmp_path / "runs" / "bare", "bare", {}, None)  # no checkpoints
    window = make_main_window()
    window.runs.select([bare])
    assert window.runs.selected_paths() == [bare]
    assert not window.runs.actions.finetune_action.isEnabled()
    window.runs.shutdown()


def test_lineage_lines_name_forks_and_phases():
    meta = {
        "lineage": [
            {"phase": "pretrain", "tick": 0, "checkpoint": "/r/a/checkpoints/t.pt", "run": "/r/a"},
            {"phase": "ft", "tick": 50, "checkpoint": "/r/b/checkpoints/t.pt", "run": "/r/b"},
            {"phase": None, "tick": 70, "checkpoint": "/r/c/checkpoints/t.pt", "run": "/r/c"},
        ],
        "forked_from": {"run": "/r/c", "checkpoint": "t.pt", "tick": 70},
    }
    assert lineage_lines(meta) == [
        "finetuned from a",
        "weights of b at tick 50 (ft)",
        "forked from c at tick 70",
    ]
    assert lineage_lines({}) == []
