"""Run, Pause/Resume, Step, Stop: buttons, shortcuts, the status bar, errors, closing."""

from __future__ import annotations

import math
import os

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

import engine
from tests.workbench.helpers import RUN_TIMEOUT_MS, button, click, dialog, run_to_end, type_into
from workbench.plots.envelope import series_of


def _start(qtbot, window, spec_file):
    window.files.load(spec_file)
    qtbot.waitUntil(button(window, "runButton").isEnabled)
    click(qtbot, button(window, "runButton"))
    assert window.session.active
    return window.session.handle


def test_tiny_run_trains_to_completion(qtbot, make_main_window, tiny_spec_file):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    frames = []
    window.session.messages.connect(frames.append)
    assert run_to_end(qtbot, window) == "finished"

    status = window.status
    assert status.tick.text() == "tick 30/30"
    assert status.progress.objectName() == "statusProgress"
    assert status.progress.value() == status.progress.maximum()
    assert status.state.text() == "finished"
    assert status.eta.text() == "ETA 0:00"
    assert status.rate.text().endswith("tok/s") and not status.rate.text().startswith("--")
    assert status.device.text() == "cpu"
    assert status.backend.text() == "LayerNorm: torch"

    loss = window.plots.store.get("train/loss")
    assert list(loss.x) == list(range(30))
    assert len(window.plots.store.get("val/loss")) == 3  # evals at ticks 10, 20, 30
    assert len(frames) < 30  # batched per frame, never once per tick
    curve_x, curve_y = series_of(window.plots.loss.plot._raw["train/loss"])
    assert np.array_equal(curve_y, loss.y)

    record = engine.open_run(window.last_run_dir)
    assert record.status == "finished"
    ticks, values = record.scalars("train/loss")
    assert np.allclose(values, loss.y)
    assert any(line.endswith("finished at tick 30/30") for line in window.log.lines())
    assert button(window, "runButton").isEnabled()
    assert window.config._form.isEnabled()
    # on a small CPU the run trains with one torch thread (see run_session.limit_threads)
    ran = engine.load_spec(window.last_run_dir / "spec.yaml")
    assert ran.train.threads == (1 if (os.cpu_count() or 1) <= 2 else 0)


def test_pause_step_resume_stop_with_buttons(qtbot, make_main_window, long_spec_file):
    window = make_main_window()
    handle = _start(qtbot, window, long_spec_file)
    pause, stop, step = (button(window, n) for n in ("pauseButton", "stopButton", "stepButton"))
    assert not button(window, "runButton").isEnabled()
    assert not window.config._form.isEnabled()  # the spec is in use
    assert not step.isEnabled()
    qtbot.waitUntil(lambda: handle.tick >= 3, timeout=RUN_TIMEOUT_MS)

    click(qtbot, pause)
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    assert pause.text() == "Resume"
    assert step.isEnabled()
    paused_at = handle.tick
    qtbot.waitUntil(lambda: window.status.tick.text() == f"tick {paused_at}/100000")
    assert handle.tick == paused_at  # really paused

    click(qtbot, step)
    qtbot.waitUntil(lambda: handle.tick == paused_at + 1, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    assert handle.tick == paused_at + 1

    click(qtbot, pause)  # now reads Resume
    qtbot.waitUntil(lambda: handle.tick > paused_at + 5, timeout=RUN_TIMEOUT_MS)
    # the Step's own "paused" may arrive after Resume: the buttons follow the engine, not it
    qtbot.waitUntil(lambda: pause.text() == "Pause" and not step.isEnabled())
    assert window.session.state == "running"

    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS) as ended:
        click(qtbot, stop)
    assert ended.args == ["stopped"]
    record = engine.open_run(window.last_run_dir)
    assert record.status == "stopped"
    assert record.checkpoints()
    assert button(window, "runButton").isEnabled()
    assert not pause.isEnabled() and not stop.isEnabled()


def test_keyboard_shortcuts_drive_the_run(qtbot, make_main_window, long_spec_file):
    window = make_main_window()
    window.files.load(long_spec_file)
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.waitUntil(lambda: window.config.is_valid)
    window.tabs.setFocus()

    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.session.active and window.session.handle.tick >= 2)
    handle = window.session.handle
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    paused_at = handle.tick
    qtbot.keyClick(window, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: handle.tick == paused_at + 1, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.session.state == "paused", timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS):
        qtbot.keyClick(window, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)
    assert window.session.state == "stopped"


def test_engine_errors_reach_the_log_and_status_bar_and_the_app_goes_on(
    qtbot, make_main_window, tiny_spec_file
):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    # a learning rate no model survives: the engine's thread reports the divergence
    window.config.editor("train.optimizer").widget.setCurrentText("sgd")
    type_into(qtbot, window.config.editor("train.lr").widget, "1e30")
    type_into(qtbot, window.config.editor("train.grad_clip").widget, "0")
    qtbot.waitUntil(lambda: window.config.is_valid)
    assert run_to_end(qtbot, window) == "diverged"
    errors = [line for line in window.log.lines() if "error:" in line]
    assert any("run marked diverged" in line for line in errors)
    assert "diverged" in window.status.currentMessage()
    assert window.status.state.text() == "diverged"

    # the window keeps working: fix the spec and train again
    type_into(qtbot, window.config.editor("train.lr").widget, "1e-3")
    qtbot.waitUntil(lambda: window.config.is_valid)
    assert run_to_end(qtbot, window) == "finished"
    assert all(math.isfinite(v) for v in window.plots.store.get("train/loss").y)


def test_closing_during_a_run_asks_then_stops_it_cleanly(qtbot, make_main_window, long_spec_file):
    window = make_main_window()
    handle = _start(qtbot, window, long_spec_file)
    qtbot.waitUntil(lambda: handle.tick >= 2, timeout=RUN_TIMEOUT_MS)

    window.close()
    ask = dialog(qtbot, window, "closeDialog")
    assert window.isVisible()
    ask.button(QMessageBox.StandardButton.Cancel).click()  # changed my mind
    assert window.isVisible() and window.session.active

    window.close()
    ask = dialog(qtbot, window, "closeDialog")
    stop_and_close = next(b for b in ask.buttons() if b.text() == "Stop and close")
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS):
        click(qtbot, stop_and_close)
    qtbot.waitUntil(lambda: not window.isVisible())
    record = engine.open_run(handle.run_dir)
    assert record.status == "stopped"
    ticks, _ = record.scalars("train/loss")
    assert len(ticks) == handle.tick
    assert record.checkpoints()[-1].name == f"tick_{handle.tick:07d}.pt"


def test_sample_panel_generates_from_the_latest_checkpoint(qtbot, make_main_window, tiny_spec_file):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    sample = window.sample
    assert not sample.button.isEnabled()  # nothing to sample from yet
    assert run_to_end(qtbot, window) == "finished"
    assert "tick 30" in sample.source.text()

    sample.tokens.setValue(40)
    sample.top_k.setValue(5)
    type_into(qtbot, sample.prompt, "def ")
    with qtbot.waitSignal(sample.sampled, timeout=RUN_TIMEOUT_MS) as done:
        click(qtbot, sample.button)
    text = done.args[0]
    assert text.startswith("def ") and len(text) == 44
    assert sample.output.toPlainText() == text
    assert text == engine.sample_run(window.last_run_dir, "def ", 40, 0.8, 5, 0)
