"""Ways to drive the window the way a user does: buttons, keys, dialogs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QToolButton, QWidget

RUN_TIMEOUT_MS = 60_000


def button(window, name: str) -> QToolButton:
    found = window.findChild(QToolButton, name)
    assert found is not None, name
    return found


def click(qtbot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def dialog(qtbot, window, name: str) -> QDialog:
    """Wait for the window's visible dialog called ``name`` and return it."""
    found: list[QDialog] = []

    def visible() -> bool:
        found[:] = [d for d in window.findChildren(QDialog, name) if d.isVisible()]
        return bool(found)

    qtbot.waitUntil(visible, timeout=5000)
    return found[0]


def type_into(qtbot, widget: QWidget, text: str) -> None:
    """Select everything in ``widget`` and type ``text`` over it, key by key."""
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(widget, text)


def run_to_end(qtbot, window) -> str:
    """Click Run and wait for the run to end; returns its final status."""
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS) as blocker:
        click(qtbot, button(window, "runButton"))
    return blocker.args[0]


ROOT = Path(__file__).resolve().parents[2]


def run_workbench(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m workbench ARGS`` offscreen, with no display, from the repository root."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-m", "workbench", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
