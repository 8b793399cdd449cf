"""Activation distributions of a run: the window's own, fed by its ``Stats`` messages, or another
read from its run store (past, or still being written by another process).

Three tick-aligned views of the statistics ``engine.stats`` records at every norm site:

- a heatmap of the chosen site's input or output histograms over ticks (x = tick, y = value,
  colour = density), with TensorBoard's percentile bands (min-max, 7-93, 16-84, median) over it;
- the histogram at the tick under the cursor (the latest capture when the cursor is elsewhere);
- the per-token σ of every norm's input over ticks, one line per site: what LayerNorm divides by.

Every plot item is made once; ``add_stats`` (messages) and ``refresh`` (the store) append only
the captures not seen yet and update the items in place, so either can run once per frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

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
# px: below these the tab's scroll area scrolls instead of squeezing the plots until their
# labels overlap (the σ plot's log axis needs room for its labels)
HEAT_HEIGHT, SIGMA_HEIGHT, HIST_WIDTH = 140, 150, 260
HIST_EMPTY = "Histogram at the cursor's tick (no capture yet)"
MIN_LABEL_GAP = 20  # px between the labels of the σ plot's log axis
KINDS = (("input", "in"), ("output", "out"))
# (line, fill) alpha of the min-max, 7-93 and 16-84 bands: denser towards the median, as in
# TensorBoard, and light enough to leave the heatmap readable under them
BAND_ALPHA = ((110, 14), (160, 20), (220, 26))
BAND_COLOR = "#ff8c1a"


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


def _pen(color: str, alpha: int = 255, width: float = 1.2):
    c = QColor(color)
    c.setAlpha(alpha)
    return pg.mkPen(c, width=width)


class OneTwoFiveLogAxis(pg.AxisItem):
    """A log axis with ticks at 1, 2 and 5 times each power of ten, or at 1 and 3 (or only the
    powers) when the axis is too short for those labels to stay apart: pyqtgraph's own puts a
    label at every one of 1 to 9, and they overlap when the axis spans a decade or two."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802, N803 (pyqtgraph's)
        ticks = [(spacing, t) for spacing, t in stdTicks if spacing >= 1.0]
        if len(ticks) < 3:
            px_per_decade = size / max(maxVal - minVal, 1e-9)
            # (mantissas, the smallest gap between their labels in decades)
            choices = (((1, 2, 5), np.log10(2)), ((1, 3), np.log10(10 / 3)), ((1,), 1.0))
            mantissas = next(
                (m for m, gap in choices if px_per_decade * gap >= MIN_LABEL_GAP), (1,)
            )
            decades = range(int(np.floor(minVal)), int(np.ceil(maxVal)))
            minor = [d + np.log10(m) for d in decades for m in mantissas]
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
    """Activation distributions of one run: ``begin_run`` then ``add_stats`` for the run the
    window trains, ``set_record`` then ``refresh`` for any other. The site and input/output are
    chosen in its own controls (or with ``select``). Timeline events are drawn over ``heat``
    and ``sigma`` by the plots' event overlay."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("activationsView")
        self._run_dir: Path | None = None
        self._record: engine.RunRecord | None = None  # None: fed by add_stats (or empty)
        self._history: dict[tuple[str, str], engine.ActivationHistory] = {}
        self._next_tick = 0
        self._cursor_tick: int | None = None  # None: follow the latest capture

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
        # a label that wraps, not the plot's title: pyqtgraph's title is one line, and one wider
        # than the panel pushes the plot past its right edge
        self.hist_title = QLabel(objectName="activationsHistTitle", wordWrap=True)
        self.hist_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hist_panel = QWidget()
        hist_layout = QVBoxLayout(hist_panel)
        hist_layout.setContentsMargins(0, 0, 0, 0)
        hist_layout.addWidget(self.hist_title)
        hist_layout.addWidget(self.hist, 1)
        self.hist_curve = self.hist.plot(
            stepMode="center", fillLevel=0, pen=_pen("#4c8dff"), brush=(76, 141, 255, 90)
        )

        # "mean over tokens" in the title: as the axis label it was cut off in a short plot
        self.sigma = _plot(
            "Norm-input σ per site (mean over tokens)", "tick", "σ", OneTwoFiveLogAxis("left")
        )
        self.sigma.setXLink(self.heat)
        self.sigma.getPlotItem().setLogMode(y=True)
        sigma_axis = self.sigma.getPlotItem().getAxis("left")
        sigma_axis.enableAutoSIPrefix(False)  # "x0.001" on a log axis reads as a different unit
        # the sites' colours in a line of text above the plot, not a legend inside it: with
        # 4 to 12 layers a legend covered the curves it named; a click shows that site above
        self.sigma_key = QLabel(objectName="activationsSigmaKey", wordWrap=True)
        self.sigma_key.setTextFormat(Qt.TextFormat.RichText)
        self.sigma_key.setToolTip("Click a site to show its distribution above")
        self.sigma_key.linkActivated.connect(
            lambda site: self.select(site, self.kind_box.currentData())
        )
        self._sigma_curves: dict[str, pg.PlotDataItem] = {}

        # the map and σ share their tick axis, one above the other at the same width; the
        # histogram at the cursor goes beside them, as tall as both (below them, at 1280x800 it
        # was a strip a few pixels high)
        self.heat.setMinimumHeight(HEAT_HEIGHT)
        self.sigma.setMinimumHeight(SIGMA_HEIGHT)
        hist_panel.setMinimumWidth(HIST_WIDTH)
        sigma_panel = QWidget()
        sigma_layout = QVBoxLayout(sigma_panel)
        sigma_layout.setContentsMargins(0, 0, 0, 0)
        sigma_layout.setSpacing(0)
        self.sigma_key.setContentsMargins(AXIS_WIDTH, 2, 4, 2)  # under the plots' data area
        sigma_layout.addWidget(self.sigma_key)
        sigma_layout.addWidget(self.sigma, 1)
        ticks = QSplitter(Qt.Orientation.Vertical, objectName="activationsTickPlots")
        sides = QSplitter(Qt.Orientation.Horizontal, objectName="activationsSplitter")
        for splitter, parts in (
            (ticks, ((self.heat, 1), (sigma_panel, 1))),
            (sides, ((ticks, 5), (hist_panel, 2))),
        ):
            for widget, stretch in parts:
                splitter.addWidget(widget)
                splitter.setStretchFactor(splitter.count() - 1, stretch)
            splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(sides, 1)

        self.site_box.currentIndexChanged.connect(self._redraw)
        self.kind_box.currentIndexChanged.connect(self._redraw)
        self.log_color.toggled.connect(self._redraw)
        for plot in (self.heat, self.sigma):
            plot.scene().sigMouseMoved.connect(lambda pos, p=plot: self._hover(p, pos))

    # --- data ---
    @property
    def record(self) -> engine.RunRecord | None:
        """The store of a run shown from its store (None: nothing, or the window's own run)."""
        return self._record

    @property
    def run_dir(self) -> Path | None:
        """The folder of the run shown, however it is fed (None: nothing)."""
        return self._run_dir

    def begin_run(self, run_dir: Path | None) -> None:
        """Show the run at ``run_dir`` that this window started: empty until ``add_stats``
        brings its captures. Its store is not read: a capture reaches it up to a commit
        interval after its message, so reading it would leave the view behind."""
        self._reset(run_dir, None)
        self._redraw()

    def set_record(self, record: engine.RunRecord | None) -> None:
        """Show a run read from its store (one the window did not start: past, or written by
        another process; ``refresh`` reads what it commits since). None: show nothing."""
        self._reset(record.path if record else None, record)
        if not self.refresh():
            self._redraw()

    def add_stats(self, captures: Iterable[engine.Stats]) -> bool:
        """Append the engine's ``Stats`` messages (tick order) and redraw; captures at ticks
        already shown are skipped. True when there were new ones."""
        new = [c for c in captures if c.tick >= self._next_tick]
        return bool(new) and self._append(engine.activation_histories(new))

    def refresh(self) -> bool:
        """Read the captures the store committed since the last call (a run shown with
        ``set_record``); True when there were any."""
        if self._record is None:
            return False
        return self._append(self._record.activation_stats(since_tick=self._next_tick))

    def _reset(self, run_dir: Path | None, record: engine.RunRecord | None) -> None:
        self._run_dir = run_dir
        self._record = record
        self._history.clear()
        self._next_tick = 0
        self._cursor_tick = None
        self.site_box.blockSignals(True)
        self.site_box.clear()
        self.site_box.blockSignals(False)

    def _append(self, new: dict[tuple[str, str], engine.ActivationHistory]) -> bool:
        if not new:
            return False
        for key, h in new.items():
            self._history[key] = merge(self._history.get(key), h)
        self._next_tick = max(int(h.ticks[-1]) for h in new.values()) + 1
        known = set(self.sites)
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
            self.hist_title.setText(HIST_EMPTY)
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
        key = " ".join(
            f'<a href="{site}" style="color:{self._sigma_curves[site].opts["pen"].color().name()};'
            f' text-decoration:none">\u25a0&nbsp;{site}</a>'
            for site, _ in inputs
        )
        if key != self.sigma_key.text():
            self.sigma_key.setText(key)

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
        self.hist_title.setText(
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
