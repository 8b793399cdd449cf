"""Export any plot to PNG, SVG or CSV with pyqtgraph's exporters, from its right-click menu, and
other entries of that menu that act on the tick under the click."""

from __future__ import annotations

import functools
import importlib
from functools import partial
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters as exporters
from PySide6.QtGui import QAction

from workbench.dialogs import ask_save_path

FORMATS = {
    ".png": ("PNG image…", "PNG image (*.png)", exporters.ImageExporter),
    ".svg": ("SVG image…", "SVG image (*.svg)", exporters.SVGExporter),
    ".csv": ("CSV data…", "CSV data (*.csv)", exporters.CSVExporter),
}


def _drop_close_commands(correct_coordinates):
    """pyqtgraph 0.14's SVG exporter reads path data as "x,y" pairs and fails on the close
    command ``Z`` that Qt >= 6.10 writes after closed shapes (pyqtgraph issue #3485), so every
    plot export failed. Qt closes a shape with an explicit line back to its start before the
    ``Z``, so dropping the command changes nothing that is drawn."""

    @functools.wraps(correct_coordinates)
    def correct(node, *args, **kwargs):
        for path in node.getElementsByTagName("path"):
            d = path.getAttribute("d")
            if "Z" in d or "z" in d:
                path.setAttribute("d", " ".join(t for t in d.split() if t not in ("Z", "z")))
        return correct_coordinates(node, *args, **kwargs)

    correct.drops_close_commands = True
    return correct


_svg = importlib.import_module("pyqtgraph.exporters.SVGExporter")
if not getattr(_svg.correctCoordinates, "drops_close_commands", False):
    _svg.correctCoordinates = _drop_close_commands(_svg.correctCoordinates)


def export_plot(plot_item: pg.PlotItem, path: str | Path) -> Path:
    """Write ``plot_item`` to ``path``; the suffix picks the format. CSV holds every point of
    every curve (not the downsampled view)."""
    path = Path(path)
    try:
        exporter_cls = FORMATS[path.suffix.lower()][2]
    except KeyError:
        raise ValueError(f"cannot export to {path.suffix!r}; use .png, .svg or .csv") from None
    exporter_cls(plot_item).export(str(path))
    return path


def add_export_menu(plot: pg.PlotWidget) -> None:
    """Add Export as ▸ PNG / SVG / CSV to the plot's right-click menu, in place of pyqtgraph's
    own Export… dialog (the same exporters; one entry, not two that do the same)."""
    plot.scene().contextMenu = []  # the scene's entries: only that Export… dialog
    menu = plot.getPlotItem().vb.menu.addMenu("Export as")
    menu.setObjectName("exportMenu")
    for suffix, (label, name_filter, _) in FORMATS.items():
        action = menu.addAction(label)
        action.setObjectName(f"export{suffix[1:].upper()}")
        action.triggered.connect(partial(_ask_and_export, plot, name_filter))


def _ask_and_export(plot: pg.PlotWidget, name_filter: str) -> None:
    ask_save_path(
        plot.window(),
        "Export plot",
        name_filter,
        lambda path: export_plot(plot.getPlotItem(), path),
        object_name="exportDialog",
    )


def add_tick_action(
    plot: pg.PlotWidget, text: str, name: str, on_tick, enabled=lambda: True
) -> QAction:
    """An entry of the plot's right-click menu that acts on the tick under the click
    (``on_tick(tick)``); ``enabled()`` is asked each time the menu opens."""
    vb = plot.getPlotItem().vb
    action = vb.menu.addAction(text)
    action.setObjectName(name)
    shown = vb.raiseContextMenu

    def raise_menu(ev) -> None:
        action.setData(vb.mapSceneToView(ev.scenePos()).x())
        action.setEnabled(bool(enabled()))
        shown(ev)

    vb.raiseContextMenu = raise_menu
    action.triggered.connect(lambda: on_tick(max(int(round(action.data() or 0)), 0)))
    return action
