"""Running a study from the window: asked first, trained in the background with the runs
appearing in the Runs browser, all selected for comparison at the end; stopped cleanly when the
window closes; errors in a dialog and the log."""

from __future__ import annotations

from pathlib import Path

import yaml
from PySide6.QtWidgets import QMessageBox

import engine
from engine.config import to_dict
from tests.workbench.helpers import button, dialog
from tests.workbench.runs_helpers import spec
from workbench.runs.model import COLUMNS
from workbench.studies.runner import NOT_STARTED

STUDY_MS = 120_000


def write_study(
    folder: Path, steps: int = 6, name: str = "tiny-study", every: int = 3, **extra
) -> Path:
    base = to_dict(
        spec("base", train={"steps": steps, "eval_every": every, "checkpoint_every": every})
    )
    data = {
        "study": name,
        "description": "two learning rates",
        "base": base,
        "variants": [
            {"name": "slow", "set": {"train.lr": 1.0e-4}},
            {"name": "fast", "set": {"train.lr": 3.0e-3}},
        ],
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def accept(box: QMessageBox, label: str) -> None:
    next(b for b in box.buttons() if b.text() == label).click()


def status_of(window, path: Path) -> str | None:
    model = window.runs.model
    row = model.row_of(path)
    return model.index(row, COLUMNS.index("status")).data() if row >= 0 else None


def test_run_a_study_from_the_window(make_main_window, tmp_path, qtbot):
    path = write_study(tmp_path)
    window = make_main_window()
    window.commands.run_study.trigger()  # Run ▸ Run study… asks for the file
    picker = dialog(qtbot, window, "studyFileDialog")
    picker.selectFile(str(path))
    picker.accept()
    box = dialog(qtbot, window, "runStudyDialog")
    assert "Run study tiny-study: 2 runs?" in box.text()
    assert "two learning rates" in box.text() and "slow, fast" in box.text()
    accept(box, "Run study")

    assert window.studies.active
    assert not button(window, "runButton").isEnabled()  # one thing trains at a time
    assert not window.commands.run_study.isEnabled()
    assert button(window, "stopButton").isEnabled()
    qtbot.waitUntil(lambda: not window.studies.active, timeout=STUDY_MS)

    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("tiny-study-")]
    assert (folder / "study.yaml").exists()
    runs = engine.run_dirs(folder)
    assert [engine.open_run(p).meta["name"] for p in runs] == ["tiny-study-fast", "tiny-study-slow"]
    assert sorted(window.runs.selected_paths()) == runs  # both selected: compared
    assert all(status_of(window, p) == "finished" for p in runs)
    # the last run started stays in focus (the plots' own curves), the other is overlaid
    focus = window.focus.run_dir
    assert focus == runs[0] and window.focus.state == "finished"  # fast: the second variant
    loss = window.runs.overlay.curves(window.plots.loss.plot)
    assert {(runs[1], "train/loss")} <= set(loss) and not [k for k in loss if k[0] == focus]
    assert len(window.plots.store.get("train/loss")) == 6
    assert window.tabs.currentWidget() is window.plots.loss
    assert window.runs_dock.isVisible()
    assert button(window, "runButton").isEnabled() and window.commands.run_study.isEnabled()
    log = "\n".join(window.log.lines())
    assert "study tiny-study: slow finished" in log and "study tiny-study: fast finished" in log
    assert f"study tiny-study: finished (2 finished) in {folder}" in log
    assert window.status.currentMessage() == f"study tiny-study: finished (2 finished) in {folder}"
    # the run settings the engine recorded are the variants'
    lrs = sorted(engine.open_run(p).spec.train.lr for p in runs)
    assert lrs == [1.0e-4, 3.0e-3]


def test_opening_a_study_asks_to_run_it_and_cancel_changes_nothing(
    make_main_window, tmp_path, qtbot
):
    path = write_study(tmp_path)
    window = make_main_window()
    before = window.config.spec
    assert not window.files.load(path)
    box = dialog(qtbot, window, "runStudyDialog")
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert not window.studies.active and window.config.spec == before
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_broken_study_shows_its_error(make_main_window, tmp_path, qtbot):
    path = write_study(tmp_path, parallel=0)
    window = make_main_window()
    window.studies.ask_run(path)
    box = dialog(qtbot, window, "studyErrorDialog")
    assert "parallel: must be an integer >= 1, got 0" in box.text()
    assert any("cannot run study" in line and "parallel" in line for line in window.log.lines())
    box.close()
    assert not window.studies.active


def test_a_variant_that_cannot_start_is_reported_and_the_others_run(
    make_main_window, tmp_path, qtbot
):
    path = write_study(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["variants"][0]["set"]["data.path"] = str(tmp_path / "missing.txt")
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    window = make_main_window()
    window.studies.run(engine.study.load_preset(path))
    box = dialog(qtbot, window, "studyErrorDialog")
    assert "slow" in box.text() and "missing.txt" in box.text()
    qtbot.waitUntil(lambda: not window.studies.active, timeout=STUDY_MS)
    (run,) = window.runs.selected_paths()
    assert engine.open_run(run).meta["name"] == "tiny-study-fast"
    assert any("1 finished, 1 did not start" in line for line in window.log.lines())


def test_closing_the_window_stops_the_study(make_main_window, tmp_path, qtbot):
    path = write_study(tmp_path, steps=100_000, name="long-study")
    window = make_main_window()
    results = []
    window.studies.runner.finished.connect(results.append)
    window.studies.run(engine.study.load_preset(path))
    qtbot.waitUntil(lambda: len(window.studies.paths) == 1, timeout=STUDY_MS)
    first = window.studies.paths[0]
    qtbot.waitUntil(lambda: engine.open_run(first).summary().ticks > 0, timeout=STUDY_MS)

    window.close()  # asks first
    box = dialog(qtbot, window, "closeDialog")
    assert "A study is in progress" in box.text()
    accept(box, "Stop and close")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=STUDY_MS)
    assert not window.studies.active
    (result,) = results
    assert result.stopped and result.statuses == {"slow": "stopped", "fast": NOT_STARTED}
    record = engine.open_run(first)
    assert record.status == "stopped" and record.checkpoints()  # resumable


def test_a_variant_starts_from_its_siblings_run(make_main_window, tmp_path, qtbot):
    """``init_from: "variant:NAME"`` waits for that variant to end (even with room to run both
    at once) and starts from its run folder."""
    path = write_study(tmp_path, parallel=2)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["variants"] = [
        {"name": "pre", "set": {}},
        {"name": "ft", "set": {"train.init_from": "variant:pre", "train.lr": 1.0e-4}},
    ]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    window = make_main_window()
    results = []
    window.studies.runner.finished.connect(results.append)
    window.studies.run(engine.study.load_preset(path))
    qtbot.waitUntil(lambda: not window.studies.active, timeout=STUDY_MS)
    (result,) = results
    assert result.statuses == {"pre": "finished", "ft": "finished"}
    pre, ft = engine.open_run(result.runs["pre"]), engine.open_run(result.runs["ft"])
    assert ft.spec.train.init_from == str(result.runs["pre"])
    assert ft.meta["lineage"][0]["run"] == str(result.runs["pre"])
    assert ft.meta["started"] >= pre.meta["heartbeat"]  # after pre had ended


def test_a_variant_whose_sibling_did_not_run_does_not_start(make_main_window, tmp_path, qtbot):
    path = write_study(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["variants"] = [
        {"name": "pre", "set": {"data.path": str(tmp_path / "missing.txt")}},
        {"name": "ft", "set": {"train.init_from": "variant:pre"}},
    ]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    window = make_main_window()
    results = []
    window.studies.runner.finished.connect(results.append)
    window.studies.run(engine.study.load_preset(path))
    qtbot.waitUntil(lambda: bool(results), timeout=STUDY_MS)
    (result,) = results
    assert set(result.errors) == {"pre", "ft"} and result.runs == {}
    assert "variant pre did not start" in result.errors["ft"]
    assert any("ft did not start" in line for line in window.log.lines())
