"""Scripted mode: start the run (or the study), take a screenshot, quit with the verdict.

The app documents itself this way (docs/screenshots/) and tests drive it the same way. Exit
codes: 0 when the run finished (or was stopped), 1 when it failed or diverged, 2 when it could
not start.
"""

from __future__ import annotations

import argparse
import sys

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

SETTLE_MS = 50  # poll interval while waiting for background work before a screenshot
OK_STATUSES = ("finished", "stopped")


class Script(QObject):
    def __init__(self, window, args: argparse.Namespace):
        super().__init__(window)
        self.window = window
        self.args = args
        self.exit_code = 0
        self._shot_taken = False
        self._settle = QTimer(self)
        self._settle.setInterval(SETTLE_MS)
        self._then = None
        self._settle.timeout.connect(self._check_settled)
        window.session.ended.connect(self._ended)
        window.studies.runner.finished.connect(self._study_ended)
        window.session.messages.connect(self._check_tick)
        QTimer.singleShot(0, self._begin)

    # --- steps ---
    def _begin(self) -> None:
        if not self.args.run:
            self._when_settled(self._ready_without_run)
            return
        study = getattr(self.args, "study", None)
        if study is not None:
            if self.window.studies.run(study) is None:
                print(f"tickbench: the study did not start: {study.name}", file=sys.stderr)
                self._quit(2)
            return
        if not self.window.start_run():
            error = self.window.config.error or self.window.status.currentMessage()
            print(f"tickbench: the run did not start: {error}", file=sys.stderr)
            self._quit(2)

    def _ready_without_run(self) -> None:
        self._screenshot()
        if self.args.screenshot or self.args.quit_after_run:
            self._quit(0)

    def _check_tick(self, _batch) -> None:
        at = self.args.screenshot_at_tick
        progress = self.window.progress
        if at is None or self._shot_taken or progress is None or progress.done < at:
            return
        self._screenshot()
        if self.args.quit_after_run:
            self.window.stop_run()

    def _ended(self, status: str) -> None:
        self.exit_code = 0 if status in OK_STATUSES else 1
        print(f"tickbench: run {status}: {self.window.last_run_dir}", file=sys.stderr)
        self._when_settled(self._after_run)

    def _study_ended(self, result) -> None:
        ok = not result.errors and all(s in OK_STATUSES for s in result.statuses.values())
        self.exit_code = 0 if ok else 1
        states = ", ".join(f"{name} {status}" for name, status in result.statuses.items())
        print(f"tickbench: study {result.name}: {states}: {result.folder}", file=sys.stderr)
        self._when_settled(self._after_run)

    def _after_run(self) -> None:
        self._screenshot()
        if self.args.quit_after_run:
            self._quit(self.exit_code)

    # --- helpers ---
    def _when_settled(self, then) -> None:
        """Call ``then`` once background jobs (the parameter estimate) are done and the layout
        has caught up, so a screenshot shows final text."""
        self._then = then
        self._settle.start()

    def _check_settled(self) -> None:
        if self.window.tasks.busy or self.window.config.estimate_pending:
            return
        self._settle.stop()
        then, self._then = self._then, None
        QTimer.singleShot(SETTLE_MS, then)

    def _screenshot(self) -> None:
        path = self.args.screenshot
        if path is None or self._shot_taken:
            return
        self._shot_taken = True
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(path)):
            print(f"tickbench: could not write {path}", file=sys.stderr)
            self.exit_code = self.exit_code or 1
            return
        print(f"tickbench: screenshot {path}", file=sys.stderr)

    def _quit(self, code: int) -> None:
        self.exit_code = code
        self.window.shutdown()
        QApplication.instance().exit(code)
