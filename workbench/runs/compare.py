"""The selected runs overlaid on the live plots: a stable colour per run, x = tick, tokens or
wall time, the loss plot's smoothing, and each run's timeline (phases and events) drawn in its
colour. Within a run, the metrics differ by line style and marker (``curve_style``), and on the
plots of several metrics (loss, task metrics) each curve has its own legend entry,
"<run> · <metric>".

Plot items are made once per (plot, run, metric) and fed when the run's store has new rows
(``update``). A per-tick curve goes through a min/max ``Pyramid`` (``plots/envelope.py``): it
is decimated once per zoom level, so a pan inside its window sets no data and a frame draws two
to four points per pixel column however long the runs are. Evaluation points (markers) are few:
they are set once and never clipped, which would rebuild their markers at every pan.
Curves of the window's own run (the plots' own items, always in ticks) are hidden while x is
tokens or wall time, since they could not share that axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor

import engine
from workbench.metric_kinds import (
    is_dashed_metric,
    is_eval_value,
    is_sparsity,
    is_task_metric,
    metric_symbol,
)
from workbench.plots.envelope import Decimated, detach, set_series
from workbench.plots.events import EventOverlay, Layer, RunEvents
from workbench.plots.smoothing import Ema
from workbench.runs.follow import FollowedRun, Track

# Tableau 10: distinct on dark and light backgrounds, and unlike the live curves' blue/orange
PALETTE = (
    "#5778a4",
    "#e49444",
    "#d1615d",
    "#85b6b2",
    "#6a9f58",
    "#e7ca60",
    "#a87c9f",
    "#f1a2a9",
    "#967662",
    "#b8b0ac",
)
X_MODES = {"tick": "tick", "tokens": "tokens seen", "wall": "wall time (s since start)"}
RAW_ALPHA = 60  # the raw curve under a smoothed one
# 1 px pens: Qt strokes a path, where wider pens make pyqtgraph draw segment by segment
LINE_WIDTH = 1.0
SYMBOL_SIZE = 6  # evaluation points: big enough to tell the metrics' markers apart
SMOOTHING_DELAY_MS = 80  # re-smooth once a slider drag pauses, not at every step of it
MAX_EDGES = 40  # per run and plot: repeating marks would hide the curves


class ColorBook:
    """Colours for runs. A run keeps the colour it first got for the life of the book (the
    window's session): a new run gets the first palette colour that no shown run has, so the
    runs compared at any time look as different as the palette allows."""

    def __init__(self, palette: tuple[str, ...] = PALETTE):
        self.palette = palette
        self._of: dict[Path, int] = {}

    def color(self, path: Path, shown: set[Path] = frozenset()) -> str:
        if path not in self._of:
            busy = [self._of[p] for p in shown if p in self._of]
            self._of[path] = min(range(len(self.palette)), key=lambda i: (busy.count(i), i))
        return self.palette[self._of[path]]


@dataclass
class Shown:
    """A run in the overlay, with what mapping its ticks to x needs."""

    run: FollowedRun
    name: str
    color: str
    spec: engine.RunSpec
    tokens_per_tick: float = 0.0
    started: float | None = None
    timeline: engine.CompiledTimeline | None = None
    events: RunEvents | None = None  # what ``timeline`` draws on the plots

    @classmethod
    def of(cls, run: FollowedRun, name: str, color: str) -> Shown:
        meta = run.record.meta
        spec = run.record.spec  # read once: a run's spec never changes
        per_tick = meta.get("tokens_per_tick")  # the whole world's, as the run measured it
        # the editor's and the trainer's compile, with the run's revisions from their ticks
        timeline = engine.plan_of_run(spec, meta, run.record.revisions())
        if per_tick is None and timeline is not None:
            per_tick = timeline.units.tokens_per_tick
        events = RunEvents.from_timeline(timeline, MAX_EDGES) if timeline is not None else None
        started = meta.get("started")
        return cls(run, name, color, spec, float(per_tick or 0), started, timeline, events)

    def x_of(self, ticks: np.ndarray, mode: str, walls: np.ndarray | None = None) -> np.ndarray:
        """x of ``ticks`` (with their wall times, for ``wall``) in ``mode``."""
        if mode == "tokens":  # tokens seen once tick t has trained
            if self.timeline is not None and self.timeline.units.curve is not None:
                return self.timeline.tokens_at(ticks + 1)  # a batch lane: they vary per tick
            return (ticks + 1) * self.tokens_per_tick
        if mode == "wall":
            start = self.started if self.started is not None else (walls[0] if len(walls) else 0)
            return walls - start
        return ticks

    def x_at_ticks(self, ticks: np.ndarray, mode: str) -> np.ndarray:
        """x of arbitrary ticks (timeline events); NaN where wall time is not known yet."""
        if mode != "wall":
            return self.x_of(ticks.astype(float), mode)
        ref = self.run.tracks.get("train/loss")
        if ref is None or not len(ref):
            return np.full(len(ticks), np.nan)
        walls = np.interp(ticks, ref.x, ref.wall, right=np.nan)
        return self.x_of(ticks, mode, walls)


@dataclass
class Target:
    """A plot the overlay draws on, and which metrics belong on it."""

    plot: pg.PlotWidget
    wants: Callable[[str], bool]
    smoothed: bool = False
    label_metrics: bool = False  # legend "<run> · <metric>" per curve, not "<run>" once
    hidden: dict = field(default_factory=dict)  # the plot's own items hidden, with visibility


@dataclass
class _Curve:
    main: pg.PlotDataItem
    raw: pg.PlotDataItem | None = None  # faint raw values under a smoothed curve
    ema: Ema | None = None

    def remove_from(self, plot: pg.PlotWidget) -> None:
        for item in (self.main, self.raw):
            if item is not None:
                detach(item)
                plot.removeItem(item)


def curve_style(metric: str) -> tuple[Qt.PenStyle, str | None]:
    """(line style, marker) of a metric's curves, the same for every run (the colour is the
    run's): task metrics solid for validation and dashed for the train split, each metric its own
    marker; the validation loss dashed with circles under the solid per-tick training loss;
    sparsities solid with each group's marker; other per-tick scalars solid, no markers."""
    if is_task_metric(metric):
        dashed = is_dashed_metric(metric)
        return (Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine), metric_symbol(metric)
    if is_eval_value(metric):  # evaluations: a point every eval_every ticks
        return Qt.PenStyle.DashLine, "o"
    if is_sparsity(metric):  # a point per pruning step, each group its marker
        return Qt.PenStyle.SolidLine, metric_symbol(metric)
    return Qt.PenStyle.SolidLine, None


def _pen(color: str, alpha: int = 255, width: float = LINE_WIDTH, style=Qt.PenStyle.SolidLine):
    c = QColor(color)
    c.setAlpha(alpha)
    return pg.mkPen(c, width=width, style=style)


class RunOverlay(QObject):
    """Draws the ``Shown`` runs on every attached plot."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.targets: list[Target] = []
        self.runs: dict[Path, Shown] = {}
        self.x_mode = "tick"
        self.smoothing = 0.0
        self.timeline_visible = True
        self._curves: dict[tuple[int, Path, str], _Curve] = {}
        self.timelines = EventOverlay()  # each run's plan, a layer in its colour
        self._smooth_timer = QTimer(self, singleShot=True, interval=SMOOTHING_DELAY_MS)
        self._smooth_timer.timeout.connect(self._resmooth)

    # --- set-up ---
    def attach(
        self,
        plot: pg.PlotWidget,
        wants: Callable[[str], bool],
        smoothed: bool = False,
        label_metrics: bool = False,
    ) -> None:
        """Draw the shown runs' metrics that ``wants`` accepts on ``plot``. ``label_metrics``:
        a plot of several metrics per run names each curve "<run> · <metric>" in its legend."""
        self.targets.append(Target(plot, wants, smoothed, label_metrics))
        self.timelines.attach(plot)

    def curves(self, plot: pg.PlotWidget) -> dict[tuple[Path, str], pg.PlotDataItem]:
        """The overlay's curves on ``plot`` by (run folder, metric): one per run per metric."""
        i = next(i for i, t in enumerate(self.targets) if t.plot is plot)
        return {(p, m): c.main for (j, p, m), c in self._curves.items() if j == i}

    def timeline_items(self, plot: pg.PlotWidget) -> dict[Path, list[pg.GraphicsObject]]:
        return {p: self.timelines.items(plot, p) for p in self.runs}

    # --- runs ---
    def set_runs(self, shown: list[Shown]) -> None:
        """Show exactly these runs (runs already shown keep their items)."""
        wanted = {s.run.path: s for s in shown}
        for path in [p for p in self.runs if p not in wanted]:
            self._drop(path)
        for path, s in wanted.items():
            if path not in self.runs:
                self.runs[path] = s
                self.update(path, set(s.run.tracks))
                self._draw_timeline(path)

    def _drop(self, path: Path) -> None:
        del self.runs[path]
        for key in [k for k in self._curves if k[1] == path]:
            curve = self._curves.pop(key)
            plot = self.targets[key[0]].plot
            curve.remove_from(plot)
        self.timelines.drop_layer(path)

    def update(self, path: Path, metrics: set[str]) -> None:
        """Redraw ``metrics`` of the run at ``path`` (new rows arrived, or it was just added)."""
        s = self.runs.get(path)
        if s is None:
            return
        for i, target in enumerate(self.targets):
            for metric in sorted(metrics):
                track = s.run.tracks.get(metric)
                if track is not None and target.wants(metric):
                    self._draw(i, s, metric, track)
        if self.x_mode == "wall" and "train/loss" in metrics:
            self._draw_timeline(path)  # event positions follow the wall clock
        self._hide_own_curves()

    def _draw(self, i: int, s: Shown, metric: str, track: Track) -> None:
        target = self.targets[i]
        key = (i, s.run.path, metric)
        curve = self._curves.get(key)
        if curve is None:
            curve = self._curves[key] = self._new_curve(target, s, metric)
        x = s.x_of(track.x, self.x_mode, track.wall)
        if curve.ema is not None:
            if len(curve.ema.out) > len(track):  # the run was re-read from the start
                curve.ema = Ema(self.smoothing)
            set_series(curve.main, x, curve.ema.update(track).y)
            set_series(curve.raw, x, track.y)
        else:
            set_series(curve.main, x, track.y)

    def _new_curve(self, target: Target, s: Shown, metric: str) -> _Curve:
        plot = target.plot.getPlotItem()
        if target.label_metrics:  # several metrics per run: each its own entry
            name = f"{s.name} · {metric}"
        else:  # one entry per run, on its first curve
            first = not any(
                k[1] == s.run.path and self.targets[k[0]] is target for k in self._curves
            )
            name = s.name if first else None
        style, symbol = curve_style(metric)
        marks = dict(symbol=symbol, symbolSize=SYMBOL_SIZE, symbolPen=None)

        def item(pen, name=None, symbols=False):
            brush = dict(symbolBrush=QColor(s.color)) if symbols else {}
            made = plot.plot(name=name, pen=pen, **(marks if symbols else {}), **brush)
            if not symbols:
                Decimated(made)
            return made

        main = item(_pen(s.color, style=style), name, symbol is not None)
        if not (target.smoothed and self.smoothing > 0):
            return _Curve(main)
        raw = item(_pen(s.color, RAW_ALPHA))
        raw.setZValue(main.zValue() - 1)
        return _Curve(main, raw, Ema(self.smoothing))

    # --- x axis and smoothing ---
    def set_x_mode(self, mode: str) -> None:
        if mode not in X_MODES:
            raise ValueError(f"x must be one of {', '.join(X_MODES)}; got {mode!r}")
        self.x_mode = mode
        for target in self.targets:
            target.plot.getPlotItem().setLabel("bottom", X_MODES[mode])
        self._redraw_all()

    def set_smoothing(self, weight: float) -> None:
        """Smoothing of the smoothed plots' curves (the loss plot's slider); applied after a
        short pause so a slider drag re-smooths once."""
        self.smoothing = weight
        self._smooth_timer.start()

    def _resmooth(self) -> None:
        for key in [k for k in self._curves if self.targets[k[0]].smoothed]:
            curve = self._curves.pop(key)
            plot = self.targets[key[0]].plot
            curve.remove_from(plot)
        self._redraw_all()

    def _redraw_all(self) -> None:
        for path, s in self.runs.items():
            self.update(path, set(s.run.tracks))
            self._draw_timeline(path)
        self._hide_own_curves()

    def _hide_own_curves(self) -> None:
        """The plots' own (tick-based) curves are hidden unless x is the tick."""
        ours = {id(c.main) for c in self._curves.values()}
        ours |= {id(c.raw) for c in self._curves.values() if c.raw is not None}
        for target in self.targets:
            if self.x_mode == "tick":
                for item, visible in target.hidden.items():
                    item.setVisible(visible)
                target.hidden.clear()
                continue
            for item in target.plot.getPlotItem().listDataItems():
                if id(item) not in ours and item not in target.hidden:
                    target.hidden[item] = item.isVisible()
                    item.setVisible(False)

    # --- timelines ---
    def set_timeline_visible(self, on: bool) -> None:
        self.timeline_visible = on
        for path in self.runs:
            self._draw_timeline(path)

    def _draw_timeline(self, path: Path) -> None:
        """The run's plan in its colour: phases shaded (every other one) and labelled, LN
        events and notes as dashed lines; labels of different runs at different heights."""
        s = self.runs[path]
        if s.events is None or not self.timeline_visible:
            self.timelines.drop_layer(path)
            return
        row = list(self.runs).index(path)
        x_of = None if self.x_mode == "tick" else lambda t: s.x_at_ticks(t, self.x_mode)
        self.timelines.set_layer(path, Layer(s.events, s.color, x_of, row))
