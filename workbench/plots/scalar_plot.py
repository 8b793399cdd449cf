"""A tick-aligned plot of some metrics: curve items made once, fed new data on the frame timer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from workbench.metric_kinds import is_dashed_metric, metric_symbol
from workbench.plots.envelope import Decimated, set_series
from workbench.plots.export import add_export_menu
from workbench.plots.series import MetricStore
from workbench.plots.smoothing import Ema
from workbench.theme import COLORS, EXTRA_COLORS, Theme

RAW_ALPHA = 70  # the raw curve under a smoothed one, as in TensorBoard
SYMBOL_SIZE = 6  # evaluation points: big enough to tell a triangle from a circle

GOLDEN_ANGLE = 137.508  # degrees: successive hues stay far apart
LEGEND_ALPHA = 150  # of 255: a legend over curves lets them show through


@dataclass(frozen=True)
class Curve:
    metric: str
    color: str
    symbol: str | None = None  # sparse metrics (evaluations) get markers
    dash: bool = False  # train-split evaluations, beside the validation's solid lines


def _pen(color: str, alpha: int = 255, width: float = 1.6, dash: bool = False) -> pg.mkPen:
    c = QColor(color)
    c.setAlpha(alpha)
    pen = pg.mkPen(c, width=width)
    if dash:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class ScalarPlot(pg.PlotWidget):
    """Metrics from a shared ``MetricStore`` against ticks.

    Full data is kept in the store; each per-tick curve shows it through a min/max pyramid
    (``plots/envelope.py``), so a redraw costs about the same at tick 100 and tick 100 000.
    With smoothing, a debiased EMA is drawn over the faint raw curve. ``extra`` picks up
    metrics that appear mid-run (task metrics such as ``val/accuracy``) and gives each its own
    curve, in a colour no other curve of the plot has, kept for the plot's life (the next run's
    curves look the same).
    """

    def __init__(
        self,
        store: MetricStore,
        title: str,
        y_label: str,
        curves: tuple[Curve, ...] = (),
        *,
        smoothing: float | None = None,
        extra: Callable[[str], bool] | None = None,
    ):
        super().__init__()
        self.store = store
        self.item = self.getPlotItem()
        self.item.setTitle(title)
        self.item.setLabel("bottom", "tick")
        self.item.setLabel("left", y_label)
        # "value (x0.001)" with ticks at 700..900 hides that accuracies are 0.7..0.9
        self.item.getAxis("left").enableAutoSIPrefix(False)
        self.item.showGrid(x=True, y=True, alpha=0.25)
        for name in ("left", "bottom"):
            # grid lines at major ticks only: the minor ones tripled the cost of every redraw
            # (9 ms -> 3 ms a frame for the loss plot, measured offscreen)
            self.item.getAxis(name).setStyle(maxTickLevel=0)
        self.legend = self.item.addLegend(offset=(-10, 10))
        self._smoothing = smoothing
        self._extra = extra
        self._extra_colors: dict[str, str] = {}  # by metric, kept across runs
        self._raw: dict[str, pg.PlotDataItem] = {}
        self._colors: dict[str, str] = {}
        self._dashed: dict[str, bool] = {}
        self._named: dict[str, pg.PlotDataItem] = {}  # the item of each metric's legend entry
        self._in_legend: set[str] = set()
        self._smoothed: dict[str, tuple[pg.PlotDataItem, Ema]] = {}
        self._fed: dict[str, object] = {}  # the series each smoothed curve's EMA has read
        self._guide: pg.PlotDataItem | None = None
        for curve in curves:
            self.add_curve(curve)
        add_export_menu(self)

    # --- curves ---
    def _new_item(self, name: str, pen, symbol: str | None = None) -> pg.PlotDataItem:
        marks = {}
        if symbol:
            marks = dict(
                symbol=symbol, symbolSize=SYMBOL_SIZE, symbolPen=None, symbolBrush=pen.color()
            )
        item = self.item.plot(name=name, pen=pen, **marks)
        if not symbol:  # per-tick curves: decimated once per zoom level (evaluations are few)
            Decimated(item)
        return item

    def add_curve(self, curve: Curve) -> None:
        smoothed = self._smoothing is not None
        name = f"{curve.metric} (raw)" if smoothed else curve.metric
        raw = self._new_item(name, _pen(curve.color, dash=curve.dash), curve.symbol)
        self.legend.removeItem(raw)  # named once it has data (``_name_in_legend``)
        self._raw[curve.metric] = raw
        self._colors[curve.metric] = curve.color
        self._dashed[curve.metric] = curve.dash
        self._named[curve.metric] = raw
        if smoothed:  # the legend names the smoothed curve only
            item = self._new_item(curve.metric, _pen(curve.color, dash=curve.dash))
            self.legend.removeItem(item)
            self._named[curve.metric] = item
            self._smoothed[curve.metric] = (item, Ema(self._smoothing))
            self._style_raw(curve.metric)

    def _name_in_legend(self, metric: str, on: bool) -> None:
        """A curve is in the legend while it has data: the empty curves of a window with no run
        of its own would otherwise be named beside the Runs overlay's."""
        if on == (metric in self._in_legend):
            return
        item = self._named[metric]
        if on:
            self._in_legend.add(metric)
            self.legend.addItem(item, metric)
        else:
            self._in_legend.discard(metric)
            self.legend.removeItem(item)

    def _style_raw(self, metric: str) -> None:
        raw, color = self._raw[metric], self._colors[metric]
        faint = bool(self._smoothing)
        alpha = RAW_ALPHA if faint else 255
        raw.setPen(_pen(color, alpha, 1.0 if faint else 1.6, self._dashed[metric]))
        if raw.opts["symbol"]:
            raw.setSymbolBrush(_pen(color, alpha).color())
        self._smoothed[metric][0].setVisible(faint)

    # --- data ---
    def refresh(self, names: set[str]) -> None:
        """Show the new points of ``names`` (the metrics that changed this frame)."""
        for name in sorted(names):  # sorted: extra metrics get the same colours every run
            if name not in self._raw:
                if not (self._extra and self._extra(name)):
                    continue
                # evaluations: a marker per metric, the train split's dashed
                symbol, dash = metric_symbol(name), is_dashed_metric(name)
                self.add_curve(Curve(name, self._extra_color(name), symbol, dash))
            series = self.store.get(name)
            set_series(self._raw[name], series.x, series.y)
            self._name_in_legend(name, len(series) > 0)
            if name in self._smoothed:
                item, ema = self._smoothed[name]
                if self._fed.get(name) is not series:  # a new series: smooth from its start
                    ema = Ema(self._smoothing)
                    self._smoothed[name] = (item, ema)
                    self._fed[name] = series
                out = ema.update(series)
                set_series(item, out.x, out.y)

    def _extra_color(self, name: str) -> str:
        """A colour no curve of this plot has: the palette's first free one, then hues spread
        around the colour wheel (a classification run with a train split has 8 metrics)."""
        if name not in self._extra_colors:
            taken = set(self._colors.values()) | set(self._extra_colors.values())
            free = [c for c in EXTRA_COLORS if c not in taken]
            n = len(self._extra_colors)
            while not free:
                color = QColor.fromHsv(round(n * GOLDEN_ANGLE) % 360, 170, 235).name()
                if color not in taken:
                    free.append(color)
                n += 1
            self._extra_colors[name] = free[0]
        return self._extra_colors[name]

    def clear_data(self) -> None:
        for metric, item in self._raw.items():
            set_series(item, np.empty(0), np.empty(0))
            self._name_in_legend(metric, False)
        for metric, (item, _) in self._smoothed.items():
            set_series(item, np.empty(0), np.empty(0))
            self._smoothed[metric] = (item, Ema(self._smoothing))

    def set_smoothing(self, weight: float) -> None:
        """Re-smooth every curve with EMA weight ``weight`` (0 = raw only)."""
        self._smoothing = weight
        for metric, (item, _) in self._smoothed.items():
            self._smoothed[metric] = (item, Ema(weight))
            self._style_raw(metric)
        self.refresh({m for m in self._smoothed if self.store.get(m) is not None})

    def set_log_y(self, on: bool) -> None:
        self.item.setLogMode(y=on)

    def set_guide(self, values: np.ndarray | None, name: str) -> None:
        """A dashed reference curve, one value per tick (the planned LR), or none."""
        if self._guide is None:
            self._guide = self._new_item(name, _pen(COLORS["planned"], dash=True))
            self._guide.setZValue(-1)
        if values is None:
            set_series(self._guide, np.empty(0), np.empty(0))
        else:
            set_series(self._guide, np.arange(len(values), dtype=float), values)

    # --- look ---
    def apply_theme(self, theme: Theme) -> None:
        self.setBackground(theme.plot_background)
        fg = QColor(theme.plot_foreground)
        for name in ("left", "bottom"):
            axis = self.item.getAxis(name)
            axis.setPen(_pen(theme.plot_foreground, 160, 1.0))
            axis.setTextPen(fg)
        self.item.titleLabel.setText(self.item.titleLabel.text, color=theme.plot_foreground)
        self.legend.setLabelTextColor(fg)  # for entries added later; existing ones:
        for _, label in self.legend.items:
            label.setText(label.text, color=theme.plot_foreground)
        # translucent: with many runs the legend is tall, and the curves under it stay visible
        backdrop = QColor(theme.plot_background)
        backdrop.setAlpha(LEGEND_ALPHA)
        self.legend.setBrush(pg.mkBrush(backdrop))
