"""The classification view: the latest evaluation's metrics and its confusion matrix.

At every evaluation a classification run logs ``val/accuracy``, ``val/precision``,
``val/recall``, ``val/f1`` (macro averages, 0..1), ``val/loss``, and one scalar per cell of the
confusion matrix, ``val/confusion/{true}/{predicted}`` (a count of validation examples). The
view reads them from any mapping of metric name -> series with ``x`` (ticks) and ``y`` (values):
the live run's ``MetricStore`` or a followed run's tracks. Class names come from the run's
metadata (``meta["data"]["classes"]``, index = class); runs without them get "0", "1", ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.metric_kinds import confusion_cell
from workbench.theme import Theme

METRICS = ("accuracy", "precision", "recall", "f1", "loss")
MATRIX_TITLE = "Confusion matrix (rows: true, columns: predicted)"
COLORMAP = "viridis"  # as the activations heatmap
MAX_LABEL = 12  # characters of a class name on an axis (the full name is in the tooltip)
MAX_LINES = 3  # column names too wide for a cell alternate over up to this many lines
EDGE_CHARS = 4  # room right of the matrix, in characters, for the last column's name


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class Evaluation:
    """One evaluation of a classification run."""

    tick: int
    metrics: dict[str, float]  # "accuracy", "precision", "recall", "f1", "loss" (those logged)
    confusion: np.ndarray  # (classes, classes) int64: rows the true class, columns the predicted

    @property
    def examples(self) -> int:
        return int(self.confusion.sum())


def _value_at(series: Any, tick: float) -> float | None:
    x = series.x
    if len(x) and x[-1] == tick:  # the usual case: the evaluation is the series' last point
        return float(series.y[-1])
    hits = np.flatnonzero(x == tick)
    return float(series.y[hits[-1]]) if hits.size else None


def last_evaluation(series: Mapping[str, Any]) -> Evaluation | None:
    """The latest evaluation with a confusion matrix in ``series`` (metric name -> an object
    with ``x``/``y`` arrays), or None when the run logged no confusion matrix."""
    cells = {}
    for name, s in series.items():
        ij = confusion_cell(name)
        if ij is not None and len(s):
            cells[ij] = s
    if not cells:
        return None
    tick = max(float(s.x[-1]) for s in cells.values())
    n = 1 + max(max(ij) for ij in cells)
    confusion = np.zeros((n, n), dtype=np.int64)
    for (i, j), s in cells.items():
        value = _value_at(s, tick)
        if value is not None:
            confusion[i, j] = round(value)
    metrics = {}
    for name in METRICS:
        s = series.get(f"val/{name}")
        value = _value_at(s, tick) if s is not None and len(s) else None
        if value is not None:
            metrics[name] = value
    return Evaluation(int(tick), metrics, confusion)


def class_names(meta: Mapping, n: int) -> list[str]:
    """Names of classes 0..n-1 from run metadata; their indices where the run names none."""
    data = meta.get("data")
    named = data.get("classes") if isinstance(data, Mapping) else None
    names = [str(c) for c in named] if isinstance(named, list) else []
    return names[:n] + [str(i) for i in range(len(names), n)]


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


class ClassificationView(QWidget):
    """The metrics table (``classificationTable``) and the confusion matrix
    (``confusionPlot``) of one evaluation; ``show_evaluation(None, ...)`` empties both."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("classificationView")
        self.evaluation: Evaluation | None = None
        self.classes: list[str] = []

        self.heading = QLabel(objectName="classificationHeading")
        self.heading.setWordWrap(True)
        self.table = QTableWidget(0, 2, objectName="classificationTable")
        self.table.setHorizontalHeaderLabels(["metric", "value"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

        # the title is a label, not the plot's: a plot title's text sets the plot's minimum
        # width, and this plot must fit beside the table in half the Metrics tab
        self.title = QLabel(MATRIX_TITLE, objectName="confusionTitle")
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.matrix = pg.PlotWidget(objectName="confusionPlot")
        plot = self.matrix.getPlotItem()
        plot.setLabel("left", "true class")
        plot.setLabel("bottom", "predicted class")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.vb.setMouseEnabled(x=False, y=False)
        plot.vb.invertY(True)  # row 0 at the top, as a matrix is written
        plot.vb.sigResized.connect(lambda *_: self._fit_column_labels())
        plot.vb.setAspectLocked(True)  # square cells
        self.cmap = pg.colormap.get(COLORMAP)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(self.cmap)
        plot.addItem(self.image)
        self.texts: list[list[pg.TextItem]] = []

        matrix = QVBoxLayout()
        matrix.setContentsMargins(0, 0, 0, 0)
        matrix.addWidget(self.title)
        matrix.addWidget(self.matrix, 1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.table)
        row.addLayout(matrix, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.heading)
        layout.addLayout(row, 1)
        self.show_evaluation(None, [])

    # --- data ---
    def show_evaluation(self, ev: Evaluation | None, classes: list[str], source: str = "") -> None:
        """Show ``ev`` with class names ``classes`` (as many as its matrix has rows) and say
        whose run it is (``source``)."""
        self.evaluation = ev
        self.classes = list(classes)
        if ev is None:
            self.heading.setText("")
            self.table.setRowCount(0)
            self._draw_matrix(np.zeros((0, 0), dtype=np.int64))
            return
        of = f" of {source}" if source else ""
        self.heading.setText(f"Last evaluation{of}: tick {ev.tick}")
        rows = [("tick", str(ev.tick))]
        rows += [(name, f"{value:.4f}") for name, value in ev.metrics.items()]
        rows.append(("examples", str(ev.examples)))
        self.table.setRowCount(len(rows))
        for r, (name, value) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(value)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, 1, item)
        self._fit_table(rows)
        self._draw_matrix(ev.confusion)

    def rows(self) -> list[tuple[str, str]]:
        """The table's (metric, value) texts, top to bottom."""
        return [
            (self.table.item(r, 0).text(), self.table.item(r, 1).text())
            for r in range(self.table.rowCount())
        ]

    def cell_texts(self) -> list[list[str]]:
        """The counts written in the matrix, row (true class) by row."""
        return [[t.textItem.toPlainText() for t in row] for row in self.texts]

    def _fit_table(self, rows: list[tuple[str, str]]) -> None:
        """Columns as wide as their text (measured: the table may be hidden, unlaid-out)."""
        fm = self.table.fontMetrics()
        pad = 3 * fm.averageCharWidth()
        widths = [
            max(fm.horizontalAdvance(text) for text in [header, *column]) + pad
            for header, column in zip(("metric", "value"), zip(*rows))
        ]
        self.table.setColumnWidth(0, widths[0])
        self.table.setColumnWidth(1, widths[1])
        self.table.setFixedWidth(sum(widths) + 2 * self.table.frameWidth() + 2)

    def _draw_matrix(self, confusion: np.ndarray) -> None:
        n = confusion.shape[0]
        plot = self.matrix.getPlotItem()
        if len(self.texts) != n:  # items made once per matrix size, not per evaluation
            for text in (t for row in self.texts for t in row):
                plot.removeItem(text)
            self.texts = [[self._new_text(i, j) for j in range(n)] for i in range(n)]
        top = max(int(confusion.max()), 1) if n else 1
        if n:
            self.image.setImage(confusion.astype(np.float64), autoLevels=False, levels=(0, top))
            self.image.setRect(QRectF(0, 0, n, n))
            self.image.show()
        else:
            self.image.hide()
        for i in range(n):
            for j in range(n):
                count = int(confusion[i, j])
                fill = self.cmap.map(count / top, mode="qcolor")
                ink = "#000000" if fill.lightnessF() > 0.5 else "#ffffff"
                self.texts[i][j].setText(str(count), color=ink)
        plot.getAxis("left").setTicks([[(k + 0.5, _short(c)) for k, c in enumerate(self.classes)]])
        self.matrix.setToolTip("\n".join(f"{k}: {c}" for k, c in enumerate(self.classes)))
        plot.vb.setRange(xRange=(0, max(n, 1)), yRange=(0, max(n, 1)), padding=0.02)
        self._fit_column_labels()

    def _fit_column_labels(self) -> None:
        """Column names that fit under their columns: on one line when every name is narrower
        than a cell, else alternating over two (or three) lines, so each name has two (three)
        cells of room; a name wider than that is cut with "…" (the full names are in the
        tooltip). Without this the axis drew names over each other, or cut them to a letter."""
        plot = self.matrix.getPlotItem()
        axis = plot.getAxis("bottom")
        fm = QFontMetrics(axis.style["tickFont"] or axis.font())
        n = len(self.texts)
        if not n:
            axis.setTicks([[]])
            axis.setHeight(None)
            return
        vb = plot.vb
        cell = vb.mapViewToScene(QPointF(1, 0)).x() - vb.mapViewToScene(QPointF(0, 0)).x()
        gap = fm.averageCharWidth()  # between neighbouring names
        names = self.classes[:n]
        widest = max(fm.horizontalAdvance(c) for c in names)
        lines = next((k for k in range(1, MAX_LINES) if widest <= k * cell - gap), MAX_LINES)
        # one line fits in the cells; more lines reach past the last column, into a margin
        edge = 0 if lines == 1 else EDGE_CHARS * fm.averageCharWidth()
        plot.layout.setContentsMargins(1, 1, 1 + edge, 1)  # pyqtgraph's 1 px, and the margin
        labels = []
        for k, name in enumerate(names):
            room = lines * cell - gap
            if k == n - 1:  # the last name may reach into the margin right of the matrix only
                room = min(room, cell + 2 * edge - gap)
            text = fm.elidedText(name, Qt.TextElideMode.ElideRight, max(int(room), gap))
            labels.append((k + 0.5, "\n" * (k % lines) + text))
        # names may reach past the axis' ends (pyqtgraph drops those reaching further)
        axis.setStyle(hideOverlappingLabels=int(lines * cell + edge))
        axis.setTicks([labels])
        if lines == 1:
            axis.setHeight(None)  # pyqtgraph's own: one line and the axis label
        else:
            offset = axis.style["tickTextOffset"][1] + max(0, axis.style["tickLength"])
            axis.setHeight(lines * fm.height() + offset + axis.label.boundingRect().height())

    def _new_text(self, i: int, j: int) -> pg.TextItem:
        text = pg.TextItem("", anchor=(0.5, 0.5))
        text.setPos(j + 0.5, i + 0.5)
        self.matrix.getPlotItem().addItem(text)
        return text

    # --- look ---
    def apply_theme(self, theme: Theme) -> None:
        self.matrix.setBackground(theme.plot_background)
        plot = self.matrix.getPlotItem()
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(QColor(theme.plot_foreground)))
            axis.setTextPen(QColor(theme.plot_foreground))
