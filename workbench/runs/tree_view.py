"""The Run tree: the Runs browser's lineage drawn on the tick axis.

One row per run, in the browser's order (parents above their branches, all expanded): a bar
from the run's first tick (0, or the tick it branched from its parent at) to the tick it has
reached, and, for a run that can still train on, an outline on to its planned ``train.steps``. A
branch is joined to its parent at its branch tick: a dot on the parent's bar and a line down to
the branch's start. The run in focus is drawn in the plots' own colour, the other selected runs
in their overlay colours, the rest grey. A click on a bar focuses that run (Ctrl+click adds it to
the selection, as in the table).

It reads the browser's tree (``RunsProxy``) and redraws shortly after it changes, only while
shown.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

from workbench.runs.model import STATUS_COLORS, RunsTableModel
from workbench.runs.tree_proxy import RunsProxy
from workbench.theme import COLORS

BAR_HEIGHT = 0.56  # of a row
ROWS_SHOWN = 14  # at most this many rows fit the view at first; the rest are a pan away
REDRAW_MS = 100
NAME_CHARS = 28  # a longer name is elided in its middle on the axis (the tooltip has it whole)
CLICK_SLACK_PX = 4
ENDED = ("finished", "diverged", "failed")  # no planned ticks left to draw


@dataclass(frozen=True)
class Bar:
    """One run as drawn: on ``row`` (0 at the top), ticks ``start`` to ``end``."""

    path: Path
    name: str
    row: int
    depth: int  # how many runs it descends from in the tree
    start: int  # its first tick: 0, or its branch tick
    end: int  # the ticks it has reached (its last recorded tick + 1)
    steps: int  # planned
    status: str
    parent_row: int | None  # its parent's row, when its parent is drawn


def _elide(name: str, chars: int = NAME_CHARS) -> str:
    if len(name) <= chars:
        return name
    half = (chars - 1) // 2
    return f"{name[:half]}…{name[-(chars - 1 - half) :]}"


def _set_bars(item: pg.BarGraphItem, spans: list[tuple[int, int, int]], brushes, pens) -> None:
    """Bars ``(x0, x1, row)``, each with its brush and pen (pyqtgraph fails on empty lists)."""
    a = np.array(spans, dtype=float).reshape(-1, 3)
    style = {"brushes": brushes, "pens": pens} if spans else {"pen": None, "brush": None}
    if not spans:
        style.update(brushes=None, pens=None)
    item.setOpts(x0=a[:, 0], x1=a[:, 1], y0=a[:, 2] - BAR_HEIGHT / 2, height=BAR_HEIGHT, **style)


class RunTreeView(QWidget):
    """The Run tree (``runTree``), its plot ``runTreePlot``; ``bars`` and ``joints`` are what it
    drew last."""

    barClicked = Signal(Path, bool)  # (the run, Ctrl held: add to the selection)

    def __init__(self, proxy: RunsProxy, model: RunsTableModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runTree")
        self.proxy, self.model = proxy, model
        self.focus_path: Path | None = None
        self.bars: list[Bar] = []
        self.joints: list[tuple[int, int, int]] = []  # (tick, parent's row, branch's row)
        self._dirty = True
        self._fitted = -1  # rows the view was last fitted to
        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self.redraw)

        self.plot = pg.PlotWidget(objectName="runTreePlot")
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "tick")
        item.hideButtons()
        item.setMenuEnabled(False)
        self.vb = item.getViewBox()
        self.vb.invertY(True)
        self.vb.setDefaultPadding(0.02)
        item.getAxis("left").setWidth(
            self.fontMetrics().horizontalAdvance("m" * (NAME_CHARS * 2 // 3))
        )
        self._planned = pg.BarGraphItem(x0=[], x1=[], y0=[], height=BAR_HEIGHT)
        self._done = pg.BarGraphItem(x0=[], x1=[], y0=[], height=BAR_HEIGHT)
        self._links = pg.PlotDataItem(connect="pairs")
        self._dots = pg.ScatterPlotItem(size=8)
        for part in (self._planned, self._done, self._links, self._dots):
            item.addItem(part)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.scene().sigMouseMoved.connect(self._hover)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

        for signal in (
            proxy.rowsInserted,
            proxy.rowsRemoved,
            proxy.layoutChanged,
            proxy.modelReset,
            proxy.dataChanged,
        ):
            signal.connect(self._changed)
        self._style()

    # --- when to draw ---
    def set_focus(self, path: Path | None) -> None:
        """The window's focus run: drawn in the plots' own colour."""
        if path != self.focus_path:
            self.focus_path = path
            self._changed()

    def _changed(self, *_) -> None:
        self._dirty = True
        if self.isVisible() and not self._timer.isActive():
            self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if self._dirty:
            self.redraw()

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._style()
            self._changed()

    # --- what to draw ---
    def _layout(self) -> tuple[list[Bar], list[tuple[int, int, int]]]:
        bars: list[Bar] = []
        proxy = self.proxy

        def visit(parent, depth: int, up: int | None) -> None:
            for r in range(proxy.rowCount(parent)):
                index = proxy.index(r, 0, parent)
                row = self.model.row_at(proxy.mapToSource(index).row())
                s, start = row.summary, row.branch_tick or 0
                bar = Bar(
                    path=row.path,
                    name=row.name,
                    row=len(bars),
                    depth=depth,
                    start=start,
                    end=max(s.ticks, start),
                    steps=max(s.steps, s.ticks, start),
                    status=s.status,
                    parent_row=up,
                )
                bars.append(bar)
                visit(index, depth + 1, bar.row)

        visit(QModelIndex(), 0, None)
        joints = [(b.start, b.parent_row, b.row) for b in bars if b.parent_row is not None]
        return bars, joints

    def redraw(self) -> None:
        """Draw the browser's runs as they are now."""
        self._timer.stop()
        self._dirty = False
        bars, joints = self._layout()
        self.bars, self.joints = bars, joints
        looks = [self._look(b) for b in bars]
        brush, pen = functools.cache(pg.mkBrush), functools.cache(pg.mkPen)  # one per look
        _set_bars(
            self._done,
            [(b.start, b.end, b.row) for b in bars],
            [brush(fill) for fill, _, _ in looks],
            [pen(line, width=width) for _, line, width in looks],
        )
        later = [b for b in bars if b.status not in ENDED and b.steps > b.end]
        dash = Qt.PenStyle.DashLine
        _set_bars(
            self._planned,
            [(b.end, b.steps, b.row) for b in later],
            [brush(None) for _ in later],
            [pen(looks[b.row][0], width=1, style=dash) for b in later],
        )
        ticks = np.array([t for t, _, _ in joints for _ in (0, 1)], dtype=float)
        ys = np.array([y for _, up, row in joints for y in (up, row)], dtype=float)
        self._links.setData(ticks, ys, pen=pen(self._muted, width=1.5))
        self._dots.setData(
            x=[t for t, _, _ in joints],
            y=[up for _, up, _ in joints],
            brush=[brush(looks[row][0]) for _, _, row in joints],
            pen=pen(self._text, width=1),
        )
        axis = self.plot.getPlotItem().getAxis("left")
        axis.setTicks([[(b.row, _elide(b.name)) for b in bars], []])
        n = max(len(bars), 1)
        self.vb.setLimits(yMin=-1, yMax=n, xMin=-0.05 * self._span(), xMax=1.05 * self._span())
        if len(bars) != self._fitted:  # a run more or less: all of them in view again
            self._fitted = len(bars)
            self.vb.setYRange(-0.6, min(n, ROWS_SHOWN) - 0.4, padding=0)
            self.vb.setXRange(0, self._span(), padding=0.02)

    def _span(self) -> float:
        return float(max([b.steps for b in self.bars] + [1]))

    def _look(self, bar: Bar) -> tuple[str, str, float]:
        """(fill, outline, outline width) of a bar: the focus run in the plots' own colour,
        outlined; the other selected runs in their overlay colours; a run that diverged or
        failed outlined in its status colour."""
        if bar.path == self.focus_path:
            return COLORS["train"], self._text, 2.0
        fill = self.model.colors.get(bar.path) or self._idle
        if bar.status in ("diverged", "failed"):
            return fill, STATUS_COLORS[bar.status], 2.0
        return fill, QColor(fill).darker(130).name(), 1.0

    def _style(self) -> None:
        palette = QApplication.palette() if QApplication.instance() else QPalette()
        self._text = palette.color(QPalette.ColorRole.Text).name()
        self._muted = palette.color(QPalette.ColorRole.PlaceholderText).name()
        self._idle = COLORS["planned"]
        self.plot.setBackground(palette.color(QPalette.ColorRole.Base))
        item = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(self._muted))
            axis.setTextPen(pg.mkPen(self._text))

    # --- the mouse ---
    def bar_at(self, scene_pos) -> Bar | None:
        """The bar under a point of the scene (its planned outline included), or None."""
        if not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        at = self.vb.mapSceneToView(scene_pos)
        row = round(at.y())
        slack_x, slack_y = (CLICK_SLACK_PX * s for s in self.vb.viewPixelSize())
        if not 0 <= row < len(self.bars) or abs(at.y() - row) > BAR_HEIGHT / 2 + slack_y:
            return None
        bar = self.bars[row]
        if bar.start - slack_x <= at.x() <= max(bar.end, bar.steps) + slack_x:
            return bar
        return None

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        bar = self.bar_at(event.scenePos())
        if bar is not None:
            event.accept()
            ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
            self.barClicked.emit(bar.path, ctrl)

    def _hover(self, scene_pos) -> None:
        bar = self.bar_at(scene_pos)
        if bar is None:
            self.plot.setToolTip("")
            return
        origin = f", branched at tick {bar.start}" if bar.start else ""
        self.plot.setToolTip(
            f"{bar.name}: {bar.status}, ticks {bar.start} to {bar.end} of {bar.steps}{origin}\n"
            "click to focus it, Ctrl+click to add it to the selection"
        )
