"""The focus run: the one run the window is about.

The window shows one run as its own: the run training in it (started, resumed or forked here:
source ``session``), the newest run of the study training in it (``study``), or the run last
clicked in the Runs dock (``clicked``); before any of these, the spec in the Config panel
(``spec``). Its name is in the window title, the toolbar and the status bar, its state enables
the run controls, the plots draw it as their own (bold) curves and the Sample dock samples it.
Other runs selected in the Runs dock are overlays and nothing else.

``Focus`` holds it and announces changes; ``workbench.training.focus_view`` keeps the views in step.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PySide6.QtCore import QObject, Signal

import engine
from workbench.training.progress import RunProgress

SOURCES = ("spec", "session", "study", "clicked")
TRAINING = ("running", "pausing", "paused", "stopping")
PAUSED = ("pausing", "paused")


class Focus(QObject):
    """What is in focus. ``changed``: another run (or the spec) is in focus, views start over;
    ``updated``: the same run moved on (its state, its progress, the spec's name)."""

    changed = Signal()
    updated = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.source = "spec"
        self.run_dir: Path | None = None
        self.name = ""
        self.spec: engine.RunSpec | None = None
        self.state = "idle"
        self.progress: RunProgress | None = None
        self.start_tick = 0  # a resumed run's first tick: its store holds the ticks before

    @property
    def is_run(self) -> bool:
        return self.run_dir is not None

    @property
    def training(self) -> bool:
        return self.state in TRAINING

    def show_spec(self, spec: engine.RunSpec | None) -> None:
        """The spec in the Config panel is in focus (no run of it yet)."""
        was_spec = self.source == "spec"
        self.source, self.run_dir, self.spec = "spec", None, spec
        self.name = spec.name if spec is not None else self.name
        self.state, self.progress, self.start_tick = "idle", None, 0
        (self.updated if was_spec else self.changed).emit()

    def edit_spec(self, spec: engine.RunSpec) -> None:
        """The Config panel's spec was edited: followed while it is the focus."""
        if self.source == "spec" and spec is not None:
            self.spec, self.name = spec, spec.name
            self.updated.emit()

    def show_run(
        self,
        source: str,
        run_dir: Path,
        name: str,
        spec: engine.RunSpec | None,
        state: str,
        progress: RunProgress | None = None,
        start_tick: int = 0,
    ) -> None:
        if source not in SOURCES[1:]:
            raise ValueError(f"source must be one of {', '.join(SOURCES[1:])}; got {source!r}")
        self.source, self.run_dir, self.name, self.spec = source, Path(run_dir), name, spec
        self.progress, self.start_tick = progress, start_tick
        self.state = ""
        self.changed.emit()
        self.set_state(state)

    def set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self.progress is not None:
            self.progress.set_paused(state in PAUSED)
        self.updated.emit()

    def set_progress(self, progress: RunProgress | None) -> None:
        self.progress = progress
        self.updated.emit()


def run_name(run_dir: Path) -> str:
    """The name the Runs dock shows for the run at ``run_dir`` (its folder's, if unreadable)."""
    try:
        return str(engine.open_run(run_dir).meta.get("name") or Path(run_dir).name)
    except (OSError, sqlite3.Error):  # a folder gone, a store not readable now
        return Path(run_dir).name


def run_spec(run_dir: Path) -> engine.RunSpec | None:
    """The spec the run at ``run_dir`` trains, or None when this engine cannot read it."""
    try:
        return engine.load_spec(Path(run_dir) / "spec.yaml")
    except (engine.ConfigError, OSError):
        return None


def latest_checkpoint_tick(run_dir: Path | None) -> int | None:
    """The tick of the run's newest checkpoint (files ``tick_0000010.pt``), or None."""
    if run_dir is None:
        return None
    try:
        ckpts = engine.open_run(run_dir).checkpoints()
    except (OSError, sqlite3.Error):
        return None
    try:
        return int(ckpts[-1].stem.split("_")[-1]) if ckpts else None
    except ValueError:
        return None
