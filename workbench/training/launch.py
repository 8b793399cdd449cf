"""Which run a main window is about (``workbench.training.focus``), and starting the runs it trains.

- Run trains the Config panel's spec; Resume and Fork in the Runs dock train a run of another
  spec (``adopt``), whose spec the locked Config panel shows while it trains. Each is the
  window's run: in focus, with Pause, Step and Stop, the only selected row in the Runs dock (so
  runs compared earlier do not stay on its plots).
- A run clicked in the Runs dock comes into focus unless the window's own run is training.
"""

from __future__ import annotations

from pathlib import Path

import engine
from workbench.training.focus import run_name, run_spec
from workbench.training.progress import RunProgress
from workbench.training.session import Starter

BUSY = "a run or a study is in progress: stop it first, or wait for it to end"


class Launcher:
    def __init__(self, window):
        self.window = window
        self.lent = False  # the Config panel shows the spec of the run training, not the draft

    def start(self) -> bool:
        """Train the Config panel's spec (Run); False when it cannot start now."""
        w = self.window
        spec = w.config.spec
        if spec is None or w.busy:
            return False
        try:
            handle = w.session.start(spec, w.files.path.stem if w.files.path else None)
        except engine.ConfigError as exc:
            w.config.report(exc)
            w.report_error(f"cannot start: {exc}")
            return False
        except OSError as exc:
            w.report_error(f"cannot start: {exc}")
            return False
        self._began(handle, w.session.spec, spec.name, lend=False)
        threads = w.session.spec.train.threads
        w.log.add("info", f"started {handle.run_dir} (torch threads: {threads or 'default'})")
        return True

    def adopt(self, start: Starter, history: int = 0) -> engine.RunHandle:
        """Train the run ``start(sink)`` starts (a resume, a fork) as the window's run; its
        store holds its ticks before ``history`` already (a resumed run's). Raises RuntimeError
        while the window trains something, and what ``start`` raises."""
        w = self.window
        if w.busy:
            raise RuntimeError(BUSY)
        handle = w.session.launch(start)
        self._began(handle, w.session.spec, run_name(handle.run_dir), lend=True, history=history)
        return handle

    def _began(self, handle, spec, name: str, lend: bool, history: int = 0) -> None:
        w = self.window
        w.last_run_dir = handle.run_dir
        w._run_error = None
        if lend:
            w.files.lend(spec)
            self.lent = True
        progress = RunProgress(spec.train.steps, done=history)
        w.focus.show_run("session", handle.run_dir, name, spec, w.session.state, progress,
                         start_tick=history)  # fmt: skip
        w.status.clearMessage()
        w.config.set_locked(True)
        w.runs.refresh_now(handle.run_dir)
        w.runs.select([handle.run_dir])
        w.tabs.setCurrentWidget(w.plots.loss)
        w.sync_actions()

    def ended(self) -> None:
        """The window's run ended: the draft back in the Config panel."""
        if self.lent:
            self.lent = False
            self.window.files.give_back()

    def clicked(self, path: Path) -> None:
        """A run clicked in the Runs dock: in focus, unless the window's own run trains."""
        w = self.window
        if w.session.active or path == w.focus.run_dir:
            return
        row = w.runs.model.get(path)
        name = row.name if row is not None else run_name(path)
        state = row.summary.status if row is not None else ""
        w.focus.show_run("clicked", path, name, run_spec(path), state)
