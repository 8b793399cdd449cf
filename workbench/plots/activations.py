"""Activation distributions of a run, read from its run store (past or still being written).

Three tick-aligned views of the statistics ``engine.stats`` records at every norm site:

- a heatmap of the chosen site's input or output histograms over ticks (x = tick, y = value,
  colour = density), with TensorBoard's percentile bands (min-max, 7-93, 16-84, median) over it;
- the histogram at the tick under the cursor (the latest capture when the cursor is elsewhere);
- the per-token σ of every norm's input over ticks, one line per site: what LayerNorm divides by.

Every plot item is made once; ``refresh`` reads only the captures it has not seen and updates
the items in place, so the main window can call it on its redraw timer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import engine
from workbench.plots.export import add_export_menu

IMAGE_ROWS = 160  # value bins of the heatmap
LOG_FLOOR = -4.0  # log colour: densities below 1e-4 of the column's peak look empty
AXIS_WIDTH = 64  # px: the same left axis on the tick-aligned plots keeps their ticks aligned
KINDS = (("input", "in"), ("output", "out"))
# (line, fill) alpha of the min-max, 7-93 and 16-84 bands: denser towards the median, as in
# TensorBoard, and light enough to leave the heatmap readable under them
BAND_ALPHA = ((110, 14), (160, 20), (220, 26))
BAND_COLOR = "#ff8c1a"
EDGE_COLOR = "#e5484d"


def merge(old: engine.ActivationHistory | None, new: engine.ActivationHistory):
    """``old`` followed by the captures of ``new`` (same site and kind)."""
    if old is None:
        return new
    arrays = {
        f.name: np.concatenate([getattr(old, f.name), getattr(new, f.name)])
        for f in dataclasses.fields(old)
        if isinstance(getattr(old, f.name), np.ndarray)
    }
    return dataclasses.replace(old, **arrays)


def density_image(h: engine.ActivationHistory, rows: int = IMAGE_ROWS, log: bool = False):
    """The histograms of ``h`` resampled onto one value grid: ``(image, rect)``.

    ``image`` is (rows, columns) float32, row 0 at the lowest value, one column per capture
    interval (columns without a capture stay 0). Each capture's mass per row is read off its
    piecewise-linear CDF, so a histogram narrower than one row still shows, and each column is
    scaled to its peak (log: log10 of that, floored at ``LOG_FLOOR``) so its shape stays visible
    while the spread changes by orders of magnitude. ``rect`` places it in (tick, value) space.
    """
    ticks = h.ticks
    gaps = np.diff(ticks)
    step = int(gaps[gaps > 0].min()) if gaps.size and (gaps > 0).any() else 1
    columns = np.rint((ticks - ticks[0]) / step).astype(np.int64)
    finite = np.isfinite(h.lo) & np.isfinite(h.hi)
    y_lo = float(h.lo[finite].min()) if finite.any() else 0.0
    y_hi = float(h.hi[finite].max()) if finite.any() else 1.0
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0
    grid = np.linspace(y_lo, y_hi, rows + 1)
    mass = np.zeros((len(ticks), rows))
    edges = h.edges
    for i in np.flatnonzero(finite):
        cdf = np.concatenate([[0.0], np.cumsum(h.counts[i])])
        mass[i] = np.diff(np.interp(grid, edges[i], cdf))
    peak = mass.max(1, keepdims=True)
    scaled = np.divide(mass, peak, out=np.zeros_like(mass), where=peak > 0)
    if log:
        scaled = np.maximum(np.log10(np.maximum(scaled, 10**LOG_FLOOR)), LOG_FLOOR) - LOG_FLOOR
    image = np.zeros((rows, columns[-1] + 1), dtype=np.float32)
    image[:, columns] = scaled.T
    rect = QRectF(ticks[0] - step / 2, y_lo, (columns[-1] + 1) * step, y_hi - y_lo)
    return image, rect


def _pen(color: str, alpha: int = 255, width: float = 1.2, style=Qt.PenStyle.SolidLine):
    c = QColor(color)
    c.setAlpha(alpha)
    return pg.mkPen(c, width=width, style=style)


class OneTwoFiveLogAxis(pg.AxisItem):
    """A log axis with ticks at 1, 2 and 5 times each power of ten: pyqtgraph's own puts a
    label at every one of 1 to 9, and they overlap when the axis spans a decade or two."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 (pyqtgraph's)
        ticks = [(spacing, t) for spacing, t in stdTicks if spacing >= 1.0]
        if len(ticks) < 3:
            decades = range(int(np.floor(minVal)), int(np.ceil(maxVal)))
            minor = [d + np.log10(m) for d in decades for m in (1, 2, 5)]
            ticks.append((None, [v for v in minor if minVal < v < maxVal]))
        return ticks


def _plot(title: str, x_label: str, y_label: str, left: pg.AxisItem | None = None):
    plot = pg.PlotWidget(axisItems={"left": left} if left else None)
    item = plot.getPlotItem()
    item.setTitle(title)
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.getAxis("left").setWidth(AXIS_WIDTH)
    add_export_menu(plot)
    return plot


class ActivationsView(QWidget):
    """Activation distributions of one run: ``set_record`` a run, ``refresh`` for new captures,
    ``add_edges`` for timeline events. The site and input/output are chosen in its own controls
    (or with ``select``)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("activationsView")
        self._record: engine.RunRecord | None = None
        self._history: dict[tuple[str, str], engine.ActivationHistory] = {}
        self._next_tick = 0
        self._cursor_tick: int | None = None  # None: follow the latest capture
        self._edges: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []

        self.site_box = QComboBox(objectName="activationsSite")
        self.site_box.setToolTip("Norm site: <block>.attn / .mlp / .cross, or final")
        self.kind_box = QComboBox(objectName="activationsKind")
        for label, kind in KINDS:
            self.kind_box.addItem(label, kind)
        self.kind_box.setToolTip("input: the residual stream entering the norm; output: after it")
        self.log_color = QCheckBox("Log colour", objectName="activationsLogColor")
        controls = QHBoxLayout()
        for widget in (QLabel("Site"), self.site_box, QLabel("Norm"), self.kind_box):
            controls.addWidget(widget)
        controls.addSpacing(16)
        controls.addWidget(self.log_color)
        controls.addStretch(1)

        self.heat = _plot("Activation distribution", "tick", "value")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.heat.addItem(self.image)
        self._bands = []
        for (a, b), (line_alpha, fill_alpha) in zip(((0, 6), (1, 5), (2, 4)), BAND_ALPHA):
            low = self.heat.plot(pen=_pen(BAND_COLOR, line_alpha, 1.0))
            high = self.heat.plot(pen=_pen(BAND_COLOR, line_alpha, 1.0))
            brush = pg.mkBrush(_pen(BAND_COLOR, fill_alpha).color())
            self.heat.addItem(pg.FillBetweenItem(low, high, brush=brush))
            self._bands.append((a, b, low, high))
        self.median = self.heat.plot(pen=_pen(BAND_COLOR, 255, 1.6))
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=_pen("#ffffff", 110))
        self.heat.addItem(self.cursor)

        self.hist = _plot("", "value", "density")
        self.hist_curve = self.hist.plot(
            stepMode="center", fillLevel=0, pen=_pen("#4c8dff"), brush=(76, 141, 255, 90)
        )

        self.sigma = _plot(
            "Norm-input σ per site", "tick", "σ (mean over tokens)", OneTwoFiveLogAxis("left")
        )
        self.sigma.setXLink(self.heat)
        self.sigma.getPlotItem().setLogMode(y=True)
        sigma_axis = self.sigma.getPlotItem().getAxis("left")
        sigma_axis.enableAutoSIPrefix(False)  # "x0.001" on a log axis reads as a different unit
        self.sigma_legend = self.sigma.getPlotItem().addLegend(offset=(10, 5), colCount=5)
        self.sigma_legend.setBrush(pg.mkBrush(0, 0, 0, 150))  # readable over the lines under it
        self._sigma_curves: dict[str, pg.PlotDataItem] = {}

        splitter = QSplitter(Qt.Orientation.Vertical)
        for plot, stretch in ((self.heat, 5), (self.hist, 2), (self.sigma, 3)):
            splitter.addWidget(plot)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)

        self.site_box.currentIndexChanged.connect(self._redraw)
        self.kind_box.currentIndexChanged.connect(self._redraw)
        self.log_color.toggled.connect(self._redraw)
        for plot in (self.heat, self.sigma):
            plot.scene().sigMouseMoved.connect(lambda pos, p=plot: self._hover(p, pos))

    # --- data ---
    @property
    def record(self) -> engine.RunRecord | None:
        """The run shown (None: nothing)."""
        return self._record

    def set_record(self, record: engine.RunRecord | None) -> None:
        """Show ``record``'s statistics (None: show nothing). Clears the event lines too: they
        belong to the previous run."""
        self._record = record
        self._history.clear()
        self._next_tick = 0
        self._cursor_tick = None
        self.clear_edges()
        self.site_box.blockSignals(True)
        self.site_box.clear()
        self.site_box.blockSignals(False)
        if not self.refresh():
            self._redraw()

    def refresh(self) -> bool:
        """Read the captures written since the last call; True when there were any."""
        if self._record is None:
            return False
        new = self._record.activation_stats(since_tick=self._next_tick)
        if not new:
            return False
        for key, h in new.items():
            self._history[key] = merge(self._history.get(key), h)
        self._next_tick = max(int(h.ticks[-1]) for h in new.values()) + 1
        known = {self.site_box.itemText(i) for i in range(self.site_box.count())}
        self.site_box.blockSignals(True)  # one redraw below, not one per new site
        for site, kind in self._history:
            if kind == "in" and site not in known:
                self.site_box.addItem(site)
        self.site_box.blockSignals(False)
        self._redraw()
        return True

    @property
    def sites(self) -> list[str]:
        return [self.site_box.itemText(i) for i in range(self.site_box.count())]

    def select(self, site: str, kind: str = "in") -> None:
        """Show ``site`` ("0.attn", "final", ...) and ``kind`` ("in" or "out")."""
        self.kind_box.setCurrentIndex(self.kind_box.findData(kind))
        self.site_box.setCurrentText(site)

    def selected(self) -> engine.ActivationHistory | None:
        return self._history.get((self.site_box.currentText(), self.kind_box.currentData()))

    # --- events ---
    def add_edges(self, edges: Iterable[tuple[int, str]]) -> None:
        """Draw a labelled vertical line at each (tick, label) on the tick-aligned plots."""
        for tick, label in edges:
            # labels of neighbouring edges step down, so that they do not print over each other
            position = 0.97 - 0.07 * (len(self._edges) // 2 % 3)
            for plot in (self.heat, self.sigma):
                line = pg.InfiniteLine(
                    pos=tick,
                    angle=90,
                    movable=False,
                    pen=_pen(EDGE_COLOR, 200, 1.0, Qt.PenStyle.DashLine),
                    label=label if plot is self.heat else None,
                    # just right of the line, below the top edge, where nothing clips it
                    labelOpts={
                        "position": position,
                        "color": EDGE_COLOR,
                        "anchors": [(0, 0), (0, 0)],
                    },
                )
                plot.addItem(line)
                self._edges.append((plot, line))

    def clear_edges(self) -> None:
        for plot, line in self._edges:
            plot.removeItem(line)
        self._edges.clear()

    # --- drawing ---
    def _redraw(self) -> None:
        h = self.selected()
        if h is None:
            self.image.clear()
            for _, _, low, high in self._bands:
                low.setData([], [])
                high.setData([], [])
            self.median.setData([], [])
            self.hist_curve.setData([0.0, 1.0], [0.0])
        else:
            image, rect = density_image(h, log=self.log_color.isChecked())
            levels = (0.0, -LOG_FLOOR) if self.log_color.isChecked() else (0.0, 1.0)
            self.image.setImage(image, autoLevels=False, levels=levels)
            self.image.setRect(rect)
            x = h.ticks.astype(float)
            for a, b, low, high in self._bands:
                low.setData(x, h.percentiles[:, a])
                high.setData(x, h.percentiles[:, b])
            self.median.setData(x, h.percentiles[:, 3])
            self.show_tick(self._cursor_tick)
        self._redraw_sigma()

    def _redraw_sigma(self) -> None:
        inputs = [(site, h) for (site, kind), h in self._history.items() if kind == "in"]
        for i, (site, h) in enumerate(inputs):
            curve = self._sigma_curves.get(site)
            if curve is None:  # a site seen for the first time, not a per-frame item
                color = pg.intColor(i, hues=max(len(inputs), 1), maxHue=300, sat=200)
                curve = self.sigma.plot(name=site, pen=pg.mkPen(color, width=1.4))
                self._sigma_curves[site] = curve
            curve.setData(h.ticks.astype(float), h.sigma_mean)
        for site, curve in self._sigma_curves.items():
            if all(site != s for s, _ in inputs):
                curve.setData([], [])

    def show_tick(self, tick: int | None) -> None:
        """Show the histogram of the capture nearest ``tick`` (None: the latest) below the map."""
        h = self.selected()
        if h is None:
            return
        i = len(h.ticks) - 1 if tick is None else int(np.abs(h.ticks - tick).argmin())
        counts = h.counts[i]
        edges = h.edges[i]
        total = max(int(counts.sum()), 1)
        self.hist_curve.setData(edges, counts / (total * np.diff(edges)))
        self.cursor.setPos(int(h.ticks[i]))
        site, kind = h.site, dict((k, label) for label, k in KINDS)[h.kind]
        self.hist.getPlotItem().setTitle(
            f"{site} {kind} at tick {int(h.ticks[i])}: σ {h.sigma_mean[i]:.3g}, "
            f"|μ| {h.abs_mu_mean[i]:.3g}, strength {h.strength[i]:.2f}"
        )

    def _hover(self, plot: pg.PlotWidget, pos: QPointF) -> None:
        item = plot.getPlotItem()
        inside = item.vb.sceneBoundingRect().contains(pos)
        if not inside and self._cursor_tick is None:
            return
        self._cursor_tick = round(item.vb.mapSceneToView(pos).x()) if inside else None
        self.show_tick(self._cursor_tick)
