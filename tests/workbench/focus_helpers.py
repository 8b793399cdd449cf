"""Driving the focus-run tests: named tiny specs, studies, and clicks on Runs-table rows."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QToolButton

from tests.workbench.conftest import write_tiny
from tests.workbench.helpers import RUN_TIMEOUT_MS, button, click
from tests.workbench.test_studies import write_study

WAIT_MS = 20_000
LONG = 100_000  # ticks: more than any test waits for


def write_named(folder: Path, name: str, steps: int = 30) -> Path:
    """The tiny spec of the GUI tests, called ``name``."""
    path = write_tiny(folder, steps, f"{name}.yaml")
    path.write_text(path.read_text().replace("name: tiny", f"name: {name}"), encoding="utf-8")
    return path


def write_long_study(folder: Path, name: str = "duo") -> Path:
    """Two variants that train for longer than a test waits: stopped by the test."""
    return write_study(folder, steps=LONG, name=name, every=5)


def start(qtbot, window, spec_file: Path):
    """Load ``spec_file`` and click Run; the run's handle."""
    window.files.load(spec_file)
    qtbot.waitUntil(button(window, "runButton").isEnabled)
    click(qtbot, button(window, "runButton"))
    assert window.session.active
    return window.session.handle


def stop(qtbot, window) -> str:
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS) as ended:
        click(qtbot, button(window, "stopButton"))
    return ended.args[0]


def runs_button(window, name: str) -> QToolButton:
    found = window.runs.findChild(QToolButton, name)
    assert found is not None and found.isVisible(), name
    return found


def click_row(qtbot, window, path: Path, ctrl: bool = False) -> None:
    """Click the Runs table's row of ``path`` (with Ctrl: add it to the selection)."""
    window.runs_dock.raise_()
    panel = window.runs
    qtbot.waitUntil(lambda: panel.model.row_of(path) >= 0, timeout=WAIT_MS)
    index = panel.proxy.mapFromSource(panel.model.index(panel.model.row_of(path), 0))
    panel.table.scrollTo(index)
    modifier = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    center = panel.table.visualRect(index).center()
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, modifier, center)


def platform_title(window) -> str:
    """The title the window system gets: ``[*]`` resolved (Qt appends the application's display
    name unless the title already ends with it)."""
    title = window.windowHandle().title()
    display = QApplication.applicationDisplayName()
    return title if title.endswith(display) else f"{title} \N{EM DASH} {display}"
