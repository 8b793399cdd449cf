"""One run in focus, the details: an ETA without paused time, edits kept from a preset load,
the title, one export entry in a plot's menu, the Sample dock per run, distinct metric colours."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

import engine
from tests.workbench.focus_helpers import LONG, WAIT_MS, platform_title, start, write_named
from tests.workbench.helpers import RUN_TIMEOUT_MS, button, click, dialog, run_to_end, type_into
from workbench.plots.scalar_plot import ScalarPlot
from workbench.plots.series import MetricStore
from workbench.training.progress import RunProgress

PAUSE_MS = 2500


def test_progress_leaves_paused_time_and_stepped_ticks_out_of_the_rate():
    p = RunProgress(steps=1000)
    for tick in range(60):
        p.update(tick, wall=tick * 0.1)
    before = p.eta_seconds
    assert before == pytest.approx(940 * 0.1)
    p.set_paused(True)
    p.update(60, wall=40.0)  # a Step, long after the pause began
    assert p.eta_seconds == pytest.approx(939 * 0.1)  # neither grows nor counts the wait
    p.set_paused(False)
    for tick in range(61, 66):
        p.update(tick, wall=100.0 + (tick - 61) * 0.1)  # resumed a minute later
    assert p.eta_seconds == pytest.approx(934 * 0.1)


def test_eta_does_not_grow_while_paused_nor_stay_inflated_after(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    handle = start(qtbot, window, write_named(tmp_path, "long", LONG))
    progress = window.focus.progress
    qtbot.waitUntil(lambda: progress.done >= 60, timeout=RUN_TIMEOUT_MS)
    pause = button(window, "pauseButton")
    click(qtbot, pause)
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: progress.done == handle.tick, timeout=WAIT_MS)  # every tick shown
    eta_text, eta = window.status.eta.text(), progress.eta_seconds
    paused_at = handle.tick
    qtbot.wait(PAUSE_MS)
    assert window.status.eta.text() == eta_text and progress.eta_seconds == eta

    click(qtbot, pause)  # Resume
    qtbot.waitUntil(lambda: progress.done >= paused_at + 5, timeout=RUN_TIMEOUT_MS)
    # the pause is not in the rate: the ETA is what it was give or take the machine's noise
    # (with it, the last 50 ticks would have taken 2.5 s longer)
    seconds_per_tick = progress.eta_seconds / (LONG - progress.done)
    assert seconds_per_tick < eta / (LONG - paused_at) + PAUSE_MS / 1000 / 100
    click(qtbot, button(window, "stopButton"))
    qtbot.waitUntil(lambda: not window.session.active, timeout=RUN_TIMEOUT_MS)


def _preset_action(window, name: str):
    return next(a for a in window.commands.presets_menu.actions() if a.text() == name)


def test_loading_a_preset_asks_before_dropping_edits(qtbot, make_main_window, tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    for name in ("alpha", "beta"):
        write_named(presets, name)
    window = make_main_window(presets_dir=presets)
    _preset_action(window, "alpha").trigger()
    assert window.config.spec.name == "alpha" and not window.isWindowModified()
    assert window.windowTitle() == "alpha[*] — Tickbench"

    type_into(qtbot, window.config.editor("train.lr").widget, "0.002")
    qtbot.waitUntil(lambda: window.config.is_valid and window.config.spec.train.lr == 0.002)
    assert window.isWindowModified()
    assert window.windowHandle().title() == "alpha* — Tickbench"

    _preset_action(window, "beta").trigger()
    box = dialog(qtbot, window, "discardEditsDialog")
    assert "alpha" in box.text() and "beta.yaml" in box.text()
    click(qtbot, box.button(QMessageBox.StandardButton.Cancel))
    assert window.config.spec.name == "alpha" and window.config.spec.train.lr == 0.002
    assert window.isWindowModified()

    _preset_action(window, "beta").trigger()
    box = dialog(qtbot, window, "discardEditsDialog")
    click(qtbot, next(b for b in box.buttons() if b.text() == "Discard edits"))
    assert window.config.spec.name == "beta" and not window.isWindowModified()
    assert window.windowTitle() == "beta[*] — Tickbench"

    # renamed and run: the run still says which preset it was made from
    type_into(qtbot, window.config.editor("name").widget, "mine")
    qtbot.waitUntil(lambda: window.config.is_valid and window.config.spec.name == "mine")
    assert run_to_end(qtbot, window) == "finished"
    assert engine.open_run(window.last_run_dir).meta["preset"] == "beta"
    runs = window.runs
    qtbot.waitUntil(lambda: runs.model.get(window.last_run_dir) is not None, timeout=WAIT_MS)
    assert runs.model.get(window.last_run_dir).preset == "beta"


def test_the_title_names_the_focus_and_tickbench_once(qtbot, make_main_window, tmp_path):
    app = QApplication.instance()
    display = app.applicationDisplayName()
    app.setApplicationDisplayName("Tickbench")  # as the app sets it; Qt then appends it
    try:
        window = make_main_window()
        window.files.load(write_named(tmp_path, "tiny"))
        assert platform_title(window) == "tiny — Tickbench"
        assert run_to_end(qtbot, window) == "finished"
        assert platform_title(window) == "tiny — Tickbench"
        assert window.commands.spec_label.text() == "run: tiny · finished"
        assert window.status.run.text() == "tiny"
    finally:
        app.setApplicationDisplayName(display)


def test_a_plot_menu_has_one_export_entry(qtbot, make_main_window):
    window = make_main_window()
    for widget, plot in ((window.plots.loss, window.plots.loss.plot), (window.plots.lr,) * 2):
        window.tabs.setCurrentWidget(widget)
        qtbot.waitExposed(plot)
        menu = plot.getPlotItem().vb.menu
        with qtbot.waitSignal(menu.aboutToShow, timeout=5000):
            qtbot.mouseClick(
                plot.viewport(), Qt.MouseButton.RightButton, pos=plot.viewport().rect().center()
            )
        exports = [a.text() for a in menu.actions() if "export" in a.text().lower()]
        menu.close()
        assert exports == ["Export as"]


def test_the_sample_dock_starts_empty_for_the_next_run(qtbot, make_main_window, tmp_path):
    window = make_main_window()
    window.files.load(write_named(tmp_path, "first"))
    assert run_to_end(qtbot, window) == "finished"
    sample = window.sample
    sample.tokens.setValue(20)
    with qtbot.waitSignal(sample.sampled, timeout=RUN_TIMEOUT_MS):
        click(qtbot, sample.button)
    assert sample.output.toPlainText()

    window.files.load(write_named(tmp_path, "second", LONG))
    qtbot.waitUntil(button(window, "runButton").isEnabled)
    click(qtbot, button(window, "runButton"))
    assert sample.output.toPlainText() == ""
    assert sample.source.text() == f"{window.session.run_dir.name}: no checkpoint yet"
    assert not sample.button.isEnabled()
    click(qtbot, button(window, "stopButton"))
    qtbot.waitUntil(lambda: not window.session.active, timeout=RUN_TIMEOUT_MS)


def test_task_metrics_get_a_colour_each_the_same_every_run(qtbot):
    """A classification run with a train split has 8 task metrics: none shares a colour (the
    palette has 6), and the next run's look the same."""
    store = MetricStore()
    plot = ScalarPlot(store, "Task metrics", "value", extra=lambda name: "/" in name)
    qtbot.addWidget(plot)
    metrics = ["accuracy", "precision", "recall", "f1", "auc"]
    names = [f"{split}/{m}" for split in ("val", "train") for m in metrics]
    colors = []
    for _ in range(2):  # a run, then the next
        plot.clear_data()
        store.clear()
        store.add(0, {name: 0.5 for name in names})
        plot.refresh(store.take_dirty())
        colors.append({n: plot._raw[n].opts["pen"].color().name() for n in names})
    assert len(set(colors[0].values())) == len(names)
    assert colors[1] == colors[0]
