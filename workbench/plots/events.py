"""Runs' timelines on tick-aligned plots: phases shaded, events as labelled lines.

The one component that draws timelines on plots (``EventOverlay``). The focus run's layer is
drawn from what the run recorded (``RunRecord.events()``, or the same ``Event`` messages as a
live run sends them), never from the spec's plan: a past run shows the events it really
applied, a stopped run only those it reached, a resumed one its resume. A compared run's layer
(the Runs overlay's) is its compiled plan (``RunEvents.from_timeline``), in the run's colour,
on the Compare x axis. Events at the same tick share one line whose label lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

import engine

# one colour per phase, in order: the timeline editor's phase lane uses the same
PHASE_COLORS = ("#4c8dff", "#2fb67c", "#ff8c1a", "#b36bff", "#1eb8d4", "#d6409f")
SHADE_ALPHA = 26
MAX_LABELS = 3  # per line; more become "+N"
# line colour and style per kind, most telling first: a tick's line takes its first kind's look
STYLES = {
    "diverged": ("#e5484d", Qt.PenStyle.SolidLine),
    "resume": ("#1eb8d4", Qt.PenStyle.SolidLine),
    "revision": ("#ff8c1a", Qt.PenStyle.DashDotLine),  # the timeline steered from here on
    "phase": ("#2fb67c", Qt.PenStyle.SolidLine),
    "norm": ("#b36bff", Qt.PenStyle.DashLine),
    "quantize": ("#d6409f", Qt.PenStyle.DashLine),  # QAT from here on (timeline.quantize)
    "mark": ("#e0a800", Qt.PenStyle.DashLine),
    "checkpoint": ("#8a8f98", Qt.PenStyle.DotLine),
}
UNDRAWN = ("revision_refused",)  # said in the log: nothing happened at a tick
SHORT = {"checkpoint": "ckpt", "resume": "resume", "diverged": "diverged"}
LABEL_DROP_PX = 20  # event labels start below the phase names
ROW_PX = 14  # a compared run's labels sit this much lower than the previous run's
RUN_LINE_ALPHA = 170  # a compared run's lines: in its colour, a little faded
MAX_ROWS = 8


@dataclass
class EventLine:
    """Everything that happened at one tick."""

    tick: int
    kinds: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return min(self.kinds, key=list(STYLES).index)

    @property
    def label(self) -> str:
        shown = self.labels[:MAX_LABELS]
        more = len(self.labels) - len(shown)
        return " · ".join(shown) + (f" +{more}" if more else "")


class RunEvents:
    """The phases and applied events of one run. ``first_phase`` names the phase at tick 0
    (a run records only the phases it switches to); ``steps`` ends the last phase."""

    def __init__(self, first_phase: str = "", steps: int = 0):
        self.first_phase, self.steps = first_phase, steps
        self._lines: dict[int, EventLine] = {}
        self._phases: list[tuple[int, str]] = []

    @classmethod
    def for_spec(cls, spec: engine.RunSpec) -> RunEvents:
        phases = spec.timeline.phases
        return cls(phases[0].name if phases else "", spec.train.steps)

    @classmethod
    def from_record(cls, record: engine.RunRecord) -> RunEvents:
        """What ``record`` stored (its spec names the first phase)."""
        try:
            events = cls.for_spec(record.spec)
        except engine.ConfigError:  # a spec this version cannot read: events without names
            events = cls()
        for ev in record.events():
            events.add(ev.tick, ev.kind, ev.detail)
        return events

    @classmethod
    def from_timeline(cls, tl: engine.CompiledTimeline, max_lines: int = 0) -> RunEvents:
        """What the compiled plan ``tl`` will apply: its phases, its LN events (one line per
        tick and action, however many layers; the engine's calibrations left out), QAT and notes;
        only the first ``max_lines`` lines when that is set (repeating marks hide curves)."""
        events = cls(tl.phases[0].name if tl.phases else "", tl.steps)
        for p in tl.phases[1:]:
            events.add(p.start, "phase", {"phase": p.name, "label": p.name})
        for e in tl.edges():
            if e.kind == "norm" and not e.detail.get("auto"):
                events.add(e.tick, "norm", {"label": f"LN {e.detail['action']}"})
            elif e.kind == "mark" and e.detail.get("action") == "note":
                events.add(e.tick, "mark", {"label": e.label})
            elif e.kind == "quantize":
                events.add(e.tick, "quantize", {"label": e.label})
        for n, tick in enumerate(tl.revision_ticks(), start=1):
            events.add(tick, "revision", {"label": f"rev {n}"})
        if max_lines:
            for tick in sorted(events._lines)[max_lines:]:
                del events._lines[tick]
        return events

    def add(self, tick: int, kind: str, detail: dict) -> None:
        if kind in UNDRAWN:
            return
        if kind == "phase":
            self._phases.append((tick, detail.get("phase") or detail.get("label", "")))
        line = self._lines.setdefault(tick, EventLine(tick))
        line.kinds.append(kind if kind in STYLES else "mark")
        auto = kind == "norm" and detail.get("auto")  # the engine's own calibration: in tooltips
        label = detail.get("label") or SHORT.get(kind, kind)
        if not auto and label not in line.labels:
            line.labels.append(label)
        self.steps = max(self.steps, tick + 1)

    def lines(self) -> list[EventLine]:
        return [self._lines[t] for t in sorted(self._lines)]

    def phases(self) -> list[tuple[str, int, int]]:
        """(name, start, end) of each phase; empty for a run that never switched phase."""
        if not self._phases:
            return []
        starts = [(0, self.first_phase)] + sorted(self._phases)
        ends = [s for s, _ in starts[1:]] + [max(self.steps, starts[-1][0] + 1)]
        return [(name, start, end) for (start, name), end in zip(starts, ends)]


@dataclass
class Layer:
    """One run's events on the overlay. ``color``: every item in the run's colour (a compared
    run) instead of a colour per kind; ``x_of``: ticks to x (NaN where not known yet) on a
    plot whose x is not the tick; ``row``: how far down its labels sit."""

    events: RunEvents
    color: str | None = None
    x_of: Callable[[np.ndarray], np.ndarray] | None = None
    row: int = 0


class EventOverlay:
    """Draws layers of ``RunEvents`` on every attached plot: the focus run's (``show``) and
    any number of others (``set_layer``); ``set_visible`` hides it all."""

    FOCUS = None  # the layer ``show`` draws

    def __init__(self):
        self.visible = True
        self.layers: dict[Hashable, Layer] = {}
        self._plots: list[pg.PlotItem] = []
        self._items: dict[tuple[int, Hashable], list] = {}
        self._labels: dict[tuple[int, Hashable], list[tuple[pg.TextItem, float, int]]] = {}

    @property
    def events(self) -> RunEvents | None:
        layer = self.layers.get(self.FOCUS)
        return layer.events if layer is not None else None

    def attach(self, plot) -> None:
        item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
        self._plots.append(item)
        item.vb.sigRangeChanged.connect(lambda *_, p=item: self._place_labels(p))
        item.vb.sigResized.connect(lambda *_, p=item: self._place_labels(p))
        for key in self.layers:
            self._draw(item, key)

    def show(self, events: RunEvents | None) -> None:
        """The focus run's events, in a colour per kind (None: none)."""
        if events is None:
            self.drop_layer(self.FOCUS)
        else:
            self.set_layer(self.FOCUS, Layer(events))

    def set_layer(self, key: Hashable, layer: Layer) -> None:
        self.layers[key] = layer
        for plot in self._plots:
            self._draw(plot, key)

    def drop_layer(self, key: Hashable) -> None:
        self.layers.pop(key, None)
        for plot in self._plots:
            self._clear(plot, key)

    def items(self, plot, key: Hashable) -> list:
        """The items layer ``key`` has on ``plot`` (empty while hidden)."""
        item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
        return [i for i in self._items.get((id(item), key), []) if i.isVisible()]

    def set_visible(self, on: bool) -> None:
        self.visible = on
        for items in self._items.values():
            for item in items:
                item.setVisible(on)
        for plot in self._plots:
            self._place_labels(plot)

    def redraw(self) -> None:
        for plot in self._plots:
            for key in self.layers:
                self._draw(plot, key)

    def _clear(self, plot: pg.PlotItem, key: Hashable) -> None:
        for item in self._items.pop((id(plot), key), []):
            plot.removeItem(item)
        self._labels.pop((id(plot), key), None)

    def _taken(self, plot: pg.PlotItem, key: Hashable) -> set[tuple[float, str]]:
        """(x, label) another layer already writes on ``plot``: stacked copies of one label
        are unreadable, so it is written once."""
        return {
            (text.pos().x(), text.toPlainText())
            for (p, k), labels in self._labels.items()
            if p == id(plot) and k != key
            for text, _, _ in labels
        }

    def _draw(self, plot: pg.PlotItem, key: Hashable) -> None:
        self._clear(plot, key)
        layer = self.layers[key]
        events, color = layer.events, layer.color
        phases, lines = events.phases(), events.lines()
        ticks = np.array([s for _, s, _ in phases] + [e for *_, e in phases[-1:]], dtype=float)
        ticks = np.concatenate([ticks, np.array([line.tick for line in lines], dtype=float)])
        xs = layer.x_of(ticks) if layer.x_of is not None else ticks
        phase_x, line_x = xs[: len(ticks) - len(lines)], xs[len(ticks) - len(lines) :]
        drop = (layer.row % MAX_ROWS) * ROW_PX
        taken = self._taken(plot, key)
        items, labels = [], []

        def label(text: str, x: float, c: str, angle: int, anchor, below: int) -> None:
            if (x, text) in taken:
                return
            item = pg.TextItem(text, color=c, angle=angle, anchor=anchor)
            items.append(item)
            labels.append((item, x, below))

        for n, (name, start, end) in enumerate(phases):
            x0, x1 = phase_x[n], phase_x[n + 1]
            if not np.isfinite(x0):
                continue
            x1 = x1 if np.isfinite(x1) else x0
            c = color or PHASE_COLORS[n % len(PHASE_COLORS)]
            if color is None or n % 2:  # a compared run shades every other phase
                fill = QColor(c)
                fill.setAlpha(SHADE_ALPHA)
                no_line = pg.mkPen(None)  # the shading alone: its edges are the event lines
                region = pg.LinearRegionItem(
                    (x0, x1), movable=False, brush=fill, pen=no_line, hoverPen=no_line
                )
                region.setZValue(-10)
                region.setToolTip(f"phase {name}: ticks {start}..{end - 1}")
                items.append(region)
            label(name, x0, c, 0, (0, 0), drop)
        for line, x in zip(lines, line_x):
            if not np.isfinite(x):
                continue
            c, style = STYLES[line.kind]
            pen = pg.mkPen(c, width=1.2, style=style)
            if color is not None:
                faded = QColor(color)
                faded.setAlpha(RUN_LINE_ALPHA)
                solid = Qt.PenStyle.SolidLine if line.kind == "phase" else Qt.PenStyle.DashLine
                c, pen = color, pg.mkPen(faded, width=1.0, style=solid)
            item = pg.InfiniteLine(x, 90, pen=pen, movable=False)
            item.setToolTip(f"tick {line.tick}: {' · '.join(line.labels) or line.kind}")
            item.setZValue(-5)
            items.append(item)
            if line.kind != "checkpoint" and line.labels:
                # a TextItem, not the line's own label: pyqtgraph 0.14 crashes adding any
                # item after a labelled InfiniteLine was removed from the scene
                label(line.label, x, c, 90, (1, 0), LABEL_DROP_PX + drop)
        for item in items:
            plot.addItem(item, ignoreBounds=True)
            item.setVisible(self.visible)
        self._items[(id(plot), key)] = items
        self._labels[(id(plot), key)] = labels
        self._place_labels(plot)

    def _place_labels(self, plot: pg.PlotItem) -> None:
        """Labels stay at the top of the view as it pans and zooms; event labels start a row
        lower, clear of the phase names. An event label longer than the plot is tall is left
        out (cut off by the x axis it was unreadable): its line's tooltip still names it."""
        top = plot.vb.viewRange()[1][1]
        pixel = plot.vb.viewPixelSize()[1]
        height = plot.vb.height()
        for (p, _), labels in self._labels.items():
            if p == id(plot):
                for text, x, drop in labels:
                    text.setPos(x, top - drop * pixel)
                    if text.angle:
                        fits = drop + text.textItem.boundingRect().width() <= height
                        text.setVisible(self.visible and fits)
