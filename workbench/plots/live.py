"""The live plots of the current run: one metric store, the plot tabs that read it."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QTabWidget

from workbench.plots.events import EventOverlay, RunEvents
from workbench.plots.loss import LossPanel
from workbench.plots.scalar_plot import Curve, ScalarPlot
from workbench.plots.series import MetricStore
from workbench.theme import COLORS, Theme


def _is_task_metric(name: str) -> bool:
    return name.startswith("val/") and name != "val/loss"


class LivePlots:
    """Scalars go in as they arrive (``add``); ``redraw`` on the frame timer shows what changed.

    Plots are tabs in the centre: Loss, LR, Grad norm, Tokens/s, Metrics (task metrics such as
    accuracy, which appear when the first evaluation reports them).
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
        self.task = ScalarPlot(
            self.store, "Task metrics (validation)", "value", extra=_is_task_metric
        )
        names = ("lrPlot", "gradNormPlot", "tokensPlot", "metricsPlot")
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
        return [self.loss.plot, self.lr, self.grad_norm, self.tokens, self.task]

    def add_tabs(self, tabs: QTabWidget) -> None:
        for widget, title in (
            (self.loss, "Loss"),
            (self.lr, "LR"),
            (self.grad_norm, "Grad norm"),
            (self.tokens, "Tokens/s"),
            (self.task, "Metrics"),
        ):
            tabs.addTab(widget, title)

    def add(self, tick: int, values: dict[str, float]) -> None:
        self.store.add(tick, values)

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
        if self._events_dirty:  # events are rare: redraw the overlay only when one arrived
            self._events_dirty = False
            self.overlay.show(self.events)

    def clear(self) -> None:
        self.store.clear()
        for plot in self.plots:
            plot.clear_data()
        self.show_events(RunEvents())

    def begin_run(self, spec) -> None:
        """Empty plots for a new run of ``spec`` (its first phase names the events' shading)."""
        self.clear()
        self.show_events(RunEvents.for_spec(spec))

    def set_planned_lr(self, curve: np.ndarray | None) -> None:
        self.lr.set_guide(curve, "planned")

    def apply_theme(self, theme: Theme) -> None:
        for plot in self.plots:
            plot.apply_theme(theme)
