"""The live plots of the current run: one metric store, the plot tabs that read it."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QTabWidget

import engine
from workbench.metric_kinds import is_sparsity, is_task_metric
from workbench.plots.classify import ClassificationView, Evaluation, class_names, last_evaluation
from workbench.plots.events import EventOverlay, RunEvents
from workbench.plots.loss import LossPanel
from workbench.plots.scalar_plot import Curve, ScalarPlot
from workbench.plots.series import MetricStore
from workbench.theme import COLORS, Theme

TASK_TITLE = "Task metrics (validation solid, train split dashed)"
SPARSITY_TITLE = "Sparsity of each timeline.prune group (runs that prune)"
CLASSIFY_SHARE = 0.45  # of the Metrics tab's width, when a run has a confusion matrix


class LivePlots:
    """Scalars go in as they arrive (``add``); ``redraw`` on the frame timer shows what changed.

    Plots are tabs in the centre: Loss, LR, Grad norm, Tokens/s, Metrics (task metrics such as
    accuracy, which appear when the first evaluation reports them, the train split's dashed when
    the run evaluates it too; beside them, for a classification run, the latest evaluation's
    table and confusion matrix).

    The classification view follows the live run, unless ``show_run`` pins it to another run
    (the one selected in the Runs browser) until ``unpin`` or the next ``begin_run``.
    """

    def __init__(self):
        self.store = MetricStore()
        self.loss = LossPanel(self.store)
        self.lr = ScalarPlot(self.store, "Learning rate", "lr", (Curve("lr", COLORS["lr"]),))
        self.grad_norm = ScalarPlot(
            self.store,
            "Gradient norm (before clipping)",
            "‖g‖₂",
            (Curve("grad_norm", COLORS["grad_norm"]),),
        )
        self.tokens = ScalarPlot(
            self.store,
            "Throughput",
            "tokens / s",
            (Curve("tokens_per_s", COLORS["tokens_per_s"]),),
        )
        self.task = ScalarPlot(self.store, TASK_TITLE, "value", extra=is_task_metric)
        self.sparsity = ScalarPlot(
            self.store, SPARSITY_TITLE, "share of zero weights", extra=is_sparsity
        )
        # metrics and sparsities rise at the right: their legends go bottom right, off the curves
        self.task.legend.setOffset((-10, -10))
        self.sparsity.legend.setOffset((-10, -10))
        self.classify = ClassificationView()
        self.metrics_tab = QSplitter(Qt.Orientation.Horizontal, objectName="metricsSplitter")
        self.metrics_tab.addWidget(self.task)
        self.metrics_tab.addWidget(self.classify)
        self.metrics_tab.setChildrenCollapsible(False)
        self.classify.hide()  # until a run with a confusion matrix is shown
        self._run_dir: Path | None = None  # the live run's folder: its class names
        self._classes: list[str] | None = None
        self._pinned: str | None = None  # the name of the run shown instead of the live one
        names = ("lrPlot", "gradNormPlot", "tokensPlot", "metricsPlot", "sparsityPlot")
        for plot, name in zip(self.plots[1:], names):
            plot.setObjectName(name)
        # the run's phases and applied events on every tick-aligned plot
        self.events = RunEvents()
        self.overlay = EventOverlay()
        self._events_dirty = False
        for plot in self.plots:
            self.overlay.attach(plot)
        self.loss.events_check.toggled.connect(self.overlay.set_visible)

    @property
    def plots(self) -> list[ScalarPlot]:
        return [self.loss.plot, self.lr, self.grad_norm, self.tokens, self.task, self.sparsity]

    def add_tabs(self, tabs: QTabWidget) -> None:
        for widget, title in (
            (self.loss, "Loss"),
            (self.lr, "LR"),
            (self.grad_norm, "Grad norm"),
            (self.tokens, "Tokens/s"),
            (self.metrics_tab, "Metrics"),
            (self.sparsity, "Sparsity"),
        ):
            tabs.addTab(widget, title)

    def add(self, tick: int, values: dict[str, float]) -> None:
        self.store.add(tick, values)

    def add_tracks(self, tracks: Mapping[str, Any], names: set[str] | None = None) -> None:
        """Take the points of a run followed through its store (``workbench.runs.follow.Track``s by
        metric; ``names``: those with new rows, default all); ``redraw`` shows them."""
        for name in sorted(tracks if names is None else names):
            track = tracks.get(name)
            if track is not None:
                self.store.sync(name, track.x, track.y)

    def add_event(self, tick: int, kind: str, detail: dict) -> None:
        self.events.add(tick, kind, detail)
        self._events_dirty = True

    def show_events(self, events: RunEvents) -> None:
        """Show ``events`` (a new run's, or a past run's: ``RunEvents.from_record``)."""
        self.events = events
        self.overlay.show(events)
        self._events_dirty = False

    def redraw(self) -> None:
        dirty = self.store.take_dirty()
        if dirty:
            for plot in self.plots:
                plot.refresh(dirty)
            if self._pinned is None and any(name.startswith("val/") for name in dirty):
                self._show_live_evaluation()
        if self._events_dirty:  # events are rare: redraw the overlay only when one arrived
            self._events_dirty = False
            self.overlay.show(self.events)

    def clear(self) -> None:
        self.store.clear()
        for plot in self.plots:
            plot.clear_data()
        self.show_events(RunEvents())
        self._run_dir, self._classes, self._pinned = None, None, None
        self._show_classification(None, [], "")

    def begin_run(self, spec, run_dir: Path | None = None) -> None:
        """Empty plots for a new run of ``spec`` (its first phase names the events' shading),
        written to ``run_dir`` (whose metadata names the classes of a classification task)."""
        self.clear()
        self._run_dir = run_dir
        self.show_events(RunEvents.for_spec(spec))

    # --- the classification view ---
    def show_run(self, series: Mapping[str, Any], meta: Mapping, name: str) -> bool:
        """Show the latest evaluation of another run (``series``: its metrics by name, ``meta``:
        its metadata) instead of the live run's. False, and the live run's shown, when it logged
        no confusion matrix."""
        ev = last_evaluation(series)
        if ev is None:
            self.unpin()
            return False
        self._pinned = name
        self._show_classification(ev, class_names(meta, len(ev.confusion)), name)
        return True

    @property
    def pinned(self) -> str | None:
        """The name of the run the classification view shows instead of the live one."""
        return self._pinned

    def unpin(self) -> None:
        """Back to the live run's latest evaluation."""
        if self._pinned is not None:
            self._pinned = None
            self._show_live_evaluation()

    def _show_live_evaluation(self) -> None:
        names = [n for n in self.store.names() if n.startswith("val/")]
        ev = last_evaluation({n: self.store.get(n) for n in names})
        classes = []
        if ev is not None:
            n = len(ev.confusion)
            if self._classes is None or len(self._classes) != n:
                self._classes = self._read_classes(n)
            classes = self._classes or class_names({}, n)
        self._show_classification(ev, classes, "this run")

    def _read_classes(self, n: int) -> list[str] | None:
        """The live run's class names from its metadata (None: not readable now, ask again at
        the next evaluation)."""
        if self._run_dir is None:
            return class_names({}, n)
        try:
            return class_names(engine.open_run(self._run_dir).meta, n)
        except (OSError, sqlite3.Error):
            return None

    def _show_classification(self, ev: Evaluation | None, classes: list[str], source: str):
        appearing = ev is not None and self.classify.isHidden()
        self.classify.show_evaluation(ev, classes, source)
        self.classify.setVisible(ev is not None)
        if appearing:
            width = max(self.metrics_tab.width(), 2)
            share = round(width * CLASSIFY_SHARE)
            self.metrics_tab.setSizes([width - share, share])

    def set_planned_lr(self, curve: np.ndarray | None) -> None:
        self.lr.set_guide(curve, "planned")

    def apply_theme(self, theme: Theme) -> None:
        for plot in self.plots:
            plot.apply_theme(theme)
        self.classify.apply_theme(theme)
