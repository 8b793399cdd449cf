"""Keeps a main window's views on its focus run (``workbench.training.focus``): the title, the
toolbar's label, the status bar, the run controls, the Sample dock, the Runs overlay, the plots,
the planned LR and the Activations tab.

The plots get the focus run's points from where they are: the window's own run from its
messages (``MainWindow._on_messages``), after the history a resumed run already has in its
store; a study's run or a clicked one from its store, followed here on a timer (only new rows
are read). The Activations tab likewise: the window's own new run from its ``Stats``
messages, any other (resumed, a study's, clicked) from its store, topped up at each poll. The
planned LR is the focus run's compiled plan, or the editor's (drags included) for a spec.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer

import engine
from workbench.plots.events import RunEvents
from workbench.runs.follow import FollowedRun, Track
from workbench.training.focus import latest_checkpoint_tick
from workbench.training.progress import WINDOW, RunProgress
from workbench.training.session import target_of

APP_NAME = "Tickbench"
POLL_MS = 500


def title_of(name: str) -> str:
    """``name[*] — Tickbench``: the platform appends the application's display name to a title
    unless it already ends with it, so it is written last, once."""
    return f"{name or 'untitled'}[*] — {APP_NAME}"


def recorded_events(record, spec: engine.RunSpec | None, before: float = np.inf) -> RunEvents:
    """The events ``record`` stored before tick ``before``, its phases named by ``spec`` (read
    once, not at every poll)."""
    events = RunEvents.for_spec(spec) if spec is not None else RunEvents()
    for ev in record.events():
        if ev.tick < before:
            events.add(ev.tick, ev.kind, ev.detail)
    return events


def progress_of(tracks: Mapping[str, Track], steps: int) -> RunProgress:
    """The progress of a run read from its store: ticks done, recent rate and throughput."""
    progress = RunProgress(steps)
    loss = tracks.get("train/loss")
    if loss is None or not len(loss):
        return progress
    rates = tracks.get("tokens_per_s")
    rate_at = dict(zip(rates.x[-WINDOW:], rates.y[-WINDOW:])) if rates is not None else {}
    first = max(len(loss) - WINDOW - 1, 0)
    for tick, wall in zip(loss.x[first:], loss.wall[first:]):
        progress.update(int(tick), float(wall), rate_at.get(tick))
    return progress


class FocusView(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.followed: FollowedRun | None = None
        self._checkpoint: int | None = None
        self._events = None  # what the event overlay shows of a followed run
        window.focus.changed.connect(self._changed)
        window.focus.updated.connect(self._updated)
        window.config.specChanged.connect(lambda _: self.refresh_title())
        window.config.validityChanged.connect(lambda _: self.refresh_title())
        self.timer = QTimer(self, interval=POLL_MS)
        self.timer.timeout.connect(self.poll)

    # --- another run in focus ---
    def _changed(self) -> None:
        w, focus = self.window, self.window.focus
        self.followed, self._events = None, None
        self.timer.stop()
        w.runs.set_focus(focus.run_dir)
        if focus.run_dir is None or focus.spec is None:
            w.plots.clear()
        else:
            w.plots.begin_run(focus.spec, focus.run_dir)
        if focus.source == "session" and focus.start_tick:
            self._preload(focus.run_dir, focus.spec, focus.start_tick)
        elif focus.source in ("study", "clicked"):
            self._follow(focus.run_dir)
        self._show_activations()
        self.show_plan()
        self._checkpoint = latest_checkpoint_tick(focus.run_dir)
        w.sample.set_run(focus.run_dir, self._checkpoint)
        self._updated()

    def _show_activations(self) -> None:
        focus, view = self.window.focus, self.window.activations
        if focus.run_dir is None:
            view.set_record(None)
        elif focus.source == "session" and not focus.start_tick:
            view.begin_run(focus.run_dir)  # a new run: its messages bring every capture
        else:  # what its store holds, then its messages or the polls bring the rest
            try:
                view.set_record(engine.open_run(focus.run_dir))
            except (OSError, sqlite3.Error):
                view.begin_run(focus.run_dir)

    def show_plan(self) -> None:
        """The planned LR: the focus run's plan, or for a spec the editor's compiled timeline
        (drags included), never a compile of its own."""
        w, focus = self.window, self.window.focus
        if focus.is_run:
            try:
                record = engine.open_run(focus.run_dir)
                meta, revisions = record.meta, record.revisions()
            except (OSError, sqlite3.Error):
                meta, revisions = {}, []
            tl = engine.plan_of_run(focus.spec, meta, revisions) if focus.spec else None
        else:
            tl = w.timeline_editor.doc.compiled
        w.plots.set_planned_lr(tl.lr_curve() if tl is not None else None)

    def _preload(self, run_dir: Path, spec: engine.RunSpec, start: int) -> None:
        """What a resumed run logged before ``start``; its messages bring the rest."""
        plots = self.window.plots
        try:
            record = engine.open_run(run_dir)
            events = recorded_events(record, spec, start)
            for name in record.metric_names():
                ticks, values = (np.asarray(a, dtype=float) for a in record.scalars(name))
                keep = ticks < start
                plots.store.sync(name, ticks[keep], values[keep])
        except (OSError, sqlite3.Error):  # a store not readable now: the new ticks only
            return
        plots.show_events(events)
        plots.redraw()

    def _follow(self, run_dir: Path) -> None:
        try:
            self.followed = FollowedRun(run_dir)
        except (OSError, sqlite3.Error):
            return
        self.poll()
        self.timer.start()

    def poll(self) -> None:
        """Top up the plots, progress and state of a followed focus run from its store."""
        run, w = self.followed, self.window
        if run is None:
            return
        try:
            names = run.update()
            if not names:
                return
            status = run.record.status
            events = recorded_events(run.record, w.focus.spec)
            steps = int(run.record.meta.get("steps", 0))
        except (OSError, sqlite3.Error):  # deleted or busy: the next poll
            return
        w.plots.add_tracks(run.tracks, names)
        w.activations.refresh()
        drawn = [(line.tick, line.labels) for line in events.lines()], events.phases()
        if drawn != self._events:  # redrawn only when an event arrived
            self._events = drawn
            w.plots.show_events(events)
        w.plots.redraw()
        checkpoint = latest_checkpoint_tick(run.path)
        if checkpoint != self._checkpoint:
            self._checkpoint = checkpoint
            w.sample.set_run(run.path, checkpoint)
        if not steps and w.focus.spec is not None:
            steps = w.focus.spec.train.steps
        w.focus.progress = progress_of(run.tracks, steps)
        w.focus.set_state(status)
        self._updated()

    # --- the same run moved on ---
    def _updated(self) -> None:
        w, focus = self.window, self.window.focus
        self.refresh_title()
        if focus.is_run:
            w.commands.spec_label.setText(f"run: {focus.name} · {focus.state}")
        else:
            w.commands.spec_label.setText(f"spec: {focus.name}")
        w.status.set_run(focus.name if focus.is_run else "")
        w.status.set_state(focus.state)
        w.status.show_progress(focus.progress, focus.training)
        if focus.spec is not None:
            w.status.set_target(*target_of(focus.spec))
        w.sync_actions()

    def refresh_title(self) -> None:
        w = self.window
        w.setWindowTitle(title_of(w.focus.name))
        w.setWindowModified(w.files.modified)
