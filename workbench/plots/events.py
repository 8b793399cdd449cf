"""A run's timeline on tick-aligned plots: phases shaded, applied events as labelled lines.

Drawn from what the run recorded (``RunRecord.events()``, or the same ``Event`` messages as a
live run sends them), never from the spec's plan: a past run shows the events it really
applied, a stopped run only those it reached, a resumed one its resume. Events at the same tick
share one line whose label lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    "phase": ("#2fb67c", Qt.PenStyle.SolidLine),
    "norm": ("#b36bff", Qt.PenStyle.DashLine),
    "mark": ("#e0a800", Qt.PenStyle.DashLine),
    "checkpoint": ("#8a8f98", Qt.PenStyle.DotLine),
}
SHORT = {"checkpoint": "ckpt", "resume": "resume", "diverged": "diverged"}
LABEL_DROP_PX = 20  # event labels start below the phase names


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

    def add(self, tick: int, kind: str, detail: dict) -> None:
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


class EventOverlay:
    """Draws one ``RunEvents`` on every attached plot; ``set_visible`` hides it all."""

    def __init__(self):
        self.events: RunEvents | None = None
        self.visible = True
        self._plots: list[pg.PlotItem] = []
        self._items: dict[int, list] = {}
        self._labels: dict[int, list[tuple[pg.TextItem, float, int]]] = {}

    def attach(self, plot) -> None:
        item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
        self._plots.append(item)
        self._items[id(item)] = []
        self._labels[id(item)] = []
        item.vb.sigRangeChanged.connect(lambda *_, p=item: self._place_labels(p))
        self._draw(item)

    def show(self, events: RunEvents | None) -> None:
        self.events = events
        self.redraw()

    def set_visible(self, on: bool) -> None:
        self.visible = on
        for items in self._items.values():
            for item in items:
                item.setVisible(on)

    def redraw(self) -> None:
        for plot in self._plots:
            self._draw(plot)

    def _draw(self, plot: pg.PlotItem) -> None:
        for item in self._items[id(plot)]:
            plot.removeItem(item)
        items, labels = [], []
        if self.events is not None:
            for n, (name, start, end) in enumerate(self.events.phases()):
                color = PHASE_COLORS[n % len(PHASE_COLORS)]
                fill = QColor(color)
                fill.setAlpha(SHADE_ALPHA)
                no_line = pg.mkPen(None)  # the shading alone: its edges are the event lines
                region = pg.LinearRegionItem(
                    (start, end), movable=False, brush=fill, pen=no_line, hoverPen=no_line
                )
                region.setZValue(-10)
                region.setToolTip(f"phase {name}: ticks {start}..{end - 1}")
                text = pg.TextItem(name, color=color, anchor=(0, 0))
                items += [region, text]
                labels.append((text, start, 0))
            for line in self.events.lines():
                color, style = STYLES[line.kind]
                item = pg.InfiniteLine(line.tick, 90, pen=pg.mkPen(color, width=1.2, style=style))
                item.setToolTip(f"tick {line.tick}: {' · '.join(line.labels) or line.kind}")
                item.setZValue(-5)
                items.append(item)
                if line.kind != "checkpoint" and line.labels:
                    # a TextItem, not the line's own label: pyqtgraph 0.14 crashes adding any
                    # item after a labelled InfiniteLine was removed from the scene
                    text = pg.TextItem(line.label, color=color, angle=90, anchor=(1, 0))
                    items.append(text)
                    labels.append((text, line.tick, LABEL_DROP_PX))
        for item in items:
            plot.addItem(item, ignoreBounds=True)
            item.setVisible(self.visible)
        self._items[id(plot)] = items
        self._labels[id(plot)] = labels
        self._place_labels(plot)

    def _place_labels(self, plot: pg.PlotItem) -> None:
        """Labels stay at the top of the view as it pans and zooms; event labels start a row
        lower, clear of the phase names."""
        top = plot.vb.viewRange()[1][1]
        pixel = plot.vb.viewPixelSize()[1]
        for text, x, drop in self._labels.get(id(plot), []):
            text.setPos(x, top - drop * pixel)
