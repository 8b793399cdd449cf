"""The window the screenshot scripts photograph: a real MainWindow offscreen at 1280x800 on
throwaway settings, and the comparison layout (the Runs table, and the Diff beside it, under the
plots; the Config, Timeline, Log and Sample docks put away: the View menu brings them back)."""

from __future__ import annotations

import tempfile
from pathlib import Path

SIZE = (1280, 800)


def open_window(runs_dir: Path):
    """(app, window): the main window on ``runs_dir``, shown."""
    from PySide6.QtWidgets import QApplication

    from workbench.main_window import MainWindow
    from workbench.settings import open_settings

    app = QApplication.instance() or QApplication([])
    settings = open_settings(Path(tempfile.mkdtemp()) / "shots.ini")
    window = MainWindow(settings, runs_dir=runs_dir)
    window.resize(*SIZE)
    window.show()
    return app, window


def comparison_layout(window, diff: bool, height: int, widths: tuple[int, int]) -> None:
    """The Runs dock ``height`` px tall under the plots, with the Diff dock beside it (``widths``)
    when ``diff``."""
    from PySide6.QtCore import Qt

    for dock in (window.config_dock, window.timeline_dock, window.log_dock, window.sample_dock):
        dock.hide()
    docks = [window.runs_dock, window.diff_dock] if diff else [window.runs_dock]
    for dock in (window.runs_dock, window.diff_dock):
        window.removeDockWidget(dock)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, window.runs_dock)
    if diff:
        window.splitDockWidget(window.runs_dock, window.diff_dock, Qt.Orientation.Horizontal)
    for dock in docks:
        dock.show()
    window.resizeDocks([window.runs_dock], [height], Qt.Orientation.Vertical)
    if diff:
        window.resizeDocks(docks, list(widths), Qt.Orientation.Horizontal)


def save(window, path: Path) -> None:
    """Grab the whole window into ``path`` (its folder made), then close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(path))
    window.runs.shutdown()
    window.shutdown()
