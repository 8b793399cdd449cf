"""Distribution compare: the activation histogram of one norm site (input or output) for two of
the selected runs at the same tick, each as a density in the run's colour.

Runs capture every ``train.stats_every`` ticks; at the tick chosen each run shows its capture
nearest to it, and the legend says which tick that was when it is not the same. The captures are
read from the run store (``RunRecord.activation_stats``) when the runs or the choice change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

import engine
from workbench.plots.export import add_export_menu
from workbench.runs.compare import Shown

KINDS = (("input", "in"), ("output", "out"))
FILL_ALPHA = 60


def density(h: engine.ActivationHistory, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin edges, density) of capture ``i``: the area under it is 1."""
    edges = h.edges[i]
    counts = h.counts[i]
    total = max(int(counts.sum()), 1)
    return edges, counts / (total * np.diff(edges))


class DistributionCompare(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsDistributions")
        self._shown: list[Shown] = []
        self._stats: dict[Path, dict] = {}
        self.run_boxes = (QComboBox(objectName="distRunA"), QComboBox(objectName="distRunB"))
        self.site_box = QComboBox(objectName="distSite")
        self.kind_box = QComboBox(objectName="distKind")
        for label, kind in KINDS:
            self.kind_box.addItem(label, kind)
        self.tick_box = QSpinBox(objectName="distTick")
        self.tick_box.setToolTip("Tick to compare at; each run shows its capture nearest to it")
        for box in (*self.run_boxes, self.site_box):  # long run names must not widen the window
            box.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            box.setMinimumContentsLength(4)
        self.note = QLabel(objectName="distNote")
        self.note.setWordWrap(True)  # a long note wraps instead of widening the tab
        # two rows: the tab must not set the window's minimum width
        runs_row, what_row = QHBoxLayout(), QHBoxLayout()
        for widget in (QLabel("Runs"), *self.run_boxes):
            runs_row.addWidget(widget)
        runs_row.addWidget(self.note, 1)
        for widget in (QLabel("Site"), self.site_box, self.kind_box, QLabel("Tick")):
            what_row.addWidget(widget)
        what_row.addWidget(self.tick_box)
        what_row.addStretch(1)
        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "activation value")
        item.setLabel("left", "density")
        item.showGrid(x=True, y=True, alpha=0.25)
        self.legend = item.addLegend(offset=(-10, 10))
        add_export_menu(self.plot)
        self.curves = [self.plot.plot(stepMode="center", fillLevel=0) for _ in range(2)]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(runs_row)
        layout.addLayout(what_row)
        layout.addWidget(self.plot, 1)
        for box in (*self.run_boxes, self.site_box):
            box.currentIndexChanged.connect(self._on_choice)
        self.kind_box.currentIndexChanged.connect(self.redraw)
        self.tick_box.valueChanged.connect(self.redraw)

    # --- runs ---
    def set_runs(self, shown: list[Shown]) -> None:
        """The runs to choose from (the selection); the first two are compared."""
        self._shown = list(shown)
        self._stats = {p: v for p, v in self._stats.items() if any(s.run.path == p for s in shown)}
        for n, box in enumerate(self.run_boxes):
            box.blockSignals(True)
            box.clear()
            for s in shown:
                box.addItem(s.name, str(s.run.path))
            box.setCurrentIndex(min(n, len(shown) - 1))
            box.blockSignals(False)
        self._on_choice()

    def reload(self, paths: set[Path]) -> None:
        """Runs whose stores changed: read their captures again if they are compared."""
        if any(p in paths for p in self._chosen_paths()):
            for p in paths:
                self._stats.pop(p, None)
            self._on_choice()

    def _chosen_paths(self) -> list[Path]:
        return [Path(box.currentData()) for box in self.run_boxes if box.currentData()]

    def _history(self, path: Path) -> dict:
        if path not in self._stats:
            self._stats[path] = engine.open_run(path).activation_stats()
        return self._stats[path]

    def _on_choice(self) -> None:
        sites = []
        ticks: list[set[int]] = []
        for path in self._chosen_paths():
            history = self._history(path)
            sites += [site for site, kind in history if kind == "in" and site not in sites]
            ticks.append({int(t) for h in history.values() for t in h.ticks})
        site = self.site_box.currentText()
        self.site_box.blockSignals(True)
        self.site_box.clear()
        self.site_box.addItems(sites)
        if site in sites:
            self.site_box.setCurrentText(site)
        self.site_box.blockSignals(False)
        every = set.union(*ticks) if ticks else set()
        common = set.intersection(*ticks) if ticks else set()
        self.tick_box.blockSignals(True)
        self.tick_box.setRange(min(every, default=0), max(every, default=0))
        self.tick_box.setValue(max(common or every, default=0))  # the latest tick both have
        self.tick_box.blockSignals(False)
        self.redraw()

    # --- drawing ---
    def redraw(self) -> None:
        site, kind, tick = self.site_box.currentText(), self.kind_box.currentData(), None
        tick = self.tick_box.value()
        self.legend.clear()
        drawn = 0
        for curve, path in zip(self.curves, self._chosen_paths() + [None, None]):
            h = self._history(path).get((site, kind)) if path else None
            s = next((s for s in self._shown if s.run.path == path), None)
            if h is None or s is None or not len(h.ticks):
                curve.setData([0.0, 1.0], [0.0])
                curve.hide()
                continue
            i = int(np.abs(h.ticks - tick).argmin())
            edges, dens = density(h, i)
            color = QColor(s.color)
            curve.setPen(pg.mkPen(color, width=1.6))
            color.setAlpha(FILL_ALPHA)
            curve.setBrush(pg.mkBrush(color))
            curve.setData(edges, dens)
            curve.show()
            at = int(h.ticks[i])
            self.legend.addItem(curve, s.name if at == tick else f"{s.name} (tick {at})")
            drawn += 1
        what = dict((k, label) for label, k in KINDS).get(kind, "")
        self.plot.getPlotItem().setTitle(f"{site} {what} at tick {tick}" if drawn else "")
        self.note.setText(
            "" if drawn else "no activation statistics in these runs (train.stats_every)"
        )
