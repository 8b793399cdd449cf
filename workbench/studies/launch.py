"""Running a study from the window: Run ▸ Run study…, or opening a study preset.

The window asks first ("Run study X: N runs?"), then trains the study with a ``StudyRunner``
while it stays usable: each run appears in the Runs browser as it starts (selected with its
siblings, so their curves overlay the plots as they train) and comes into focus
(``workbench.training.focus``: its name in the title and the status bar, its curves the
plots' own, its spec in the locked Config panel), progress goes to the status bar and the
log, and Run waits.
When the study ends, all its runs are selected for comparison, the Runs dock and the Loss tab
come forward, and the Config panel shows the user's spec again. Stop (or closing the window)
stops the runs training, each with a checkpoint, and starts no more.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

import engine
from engine import Study, load_preset, safe_name
from workbench.dialogs import ask_confirm, ask_open_path, show_error
from workbench.studies.runner import StudyResult, StudyRunner
from workbench.training.focus import run_spec

STUDY_FILTER = "Studies (*.yaml *.yml);;All files (*)"


def load_study(path: str | Path) -> Study:
    """The study in ``path``; ConfigError when it is broken or a plain run spec."""
    loaded = load_preset(path)
    if not isinstance(loaded, Study):
        raise engine.ConfigError(
            "variants", "this is a run spec, not a study (open it with File ▸ Open spec)"
        )
    return loaded


class Studies(QObject):
    """Asks for and trains one study at a time; dialogs open over ``parent``, study folders go
    in ``runs_dir()``, and nothing starts while ``busy()`` (a run or a study trains). What the
    window does about it (focus, Runs browser, Config lock) it learns from the signals."""

    started = Signal()  # a study began training: lock the draft
    runStarted = Signal(object, object)  # a run of it began: (its folder, its RunSpec or None)
    runEnded = Signal(object, str)  # (a run's folder, its final status)
    finished = Signal(list)  # the study ended: the folders of the runs that trained
    changed = Signal()  # active or stopping changed: the run controls follow
    message = Signal(str, str)  # (level, text) for the log: "info" or "error"
    status = Signal(str)  # one line for the status bar

    def __init__(self, parent: QWidget, runs_dir: Callable[[], Path], busy: Callable[[], bool]):
        super().__init__(parent)
        self.parent_widget, self.runs_dir, self.busy = parent, runs_dir, busy
        self.runner = StudyRunner(self)
        self.paths: list[Path] = []  # the current study's runs, in the order they started
        self.runner.runStarted.connect(self._run_started)
        self.runner.runEnded.connect(self._run_ended)
        self.runner.runFailed.connect(self._run_failed)
        self.runner.finished.connect(self._finished)

    @property
    def active(self) -> bool:
        return self.runner.active

    @property
    def stopping(self) -> bool:
        return self.runner.active and self.runner.stopping

    # --- asking ---
    def ask_open(self) -> None:
        ask_open_path(
            self.parent_widget, "Run study", STUDY_FILTER, self.ask_run, "studyFileDialog"
        )

    def ask_run(self, path: str | Path) -> bool:
        """Read the study in ``path`` and ask whether to run it; False (with an error dialog)
        when it cannot be read."""
        try:
            study = load_study(path)
        except (engine.ConfigError, OSError) as exc:
            self._error("Cannot run study", f"cannot run study {path}: {exc}", f"{path}\n\n{exc}")
            return False
        if self._refuse_while_busy(study):
            return False
        n = len(study.variants)
        where = f"{self.runs_dir()}/{safe_name(study.name)}-<time>/"
        about = f"{study.description.strip()}\n\n" if study.description.strip() else ""
        ask_confirm(
            self.parent_widget,
            "Run study?",
            f"Run study {study.name}: {n} runs?\n\n{about}"
            f"Variants: {', '.join(name for name, _ in study.variants)}, "
            f"{study.parallel} at a time, into {where}",
            "Run study",
            lambda: self.run(study),
            "runStudyDialog",
        )
        return True

    # --- running ---
    def run(self, study: Study) -> Path | None:
        """Start training ``study``; its folder, or None when it cannot start now."""
        if self._refuse_while_busy(study):
            return None
        try:
            folder = self.runner.start(study, self.runs_dir())
        except OSError as exc:
            self._error("Cannot run study", f"cannot run study {study.name}: {exc}", str(exc))
            return None
        self.paths = []
        self.message.emit("info", f"study {study.name}: {len(study.variants)} runs into {folder}")
        self.started.emit()
        self._progress()
        self.changed.emit()
        return folder

    def stop(self) -> None:
        if self.active and not self.runner.stopping:
            self.runner.stop()
            self._say(f"study {self.runner.study.name}: stopping")
            self.changed.emit()

    def shutdown(self) -> None:
        self.runner.shutdown()

    # --- what the runner reports ---
    def _progress(self) -> None:
        study = self.runner.study
        started, total = len(self.paths), len(study.variants)
        ended = len(self.runner.ended)
        text = f"study {study.name}: running, {max(started, 1)} of {total} runs"
        if ended:
            text += f" ({ended} ended)"
        self.status.emit(text)

    def _run_started(self, name: str, path: Path) -> None:
        path = Path(path)
        self.paths.append(path)
        self.message.emit("info", f"study {self.runner.study.name}: {name} started in {path}")
        self.runStarted.emit(path, run_spec(path))
        self._progress()

    def _run_ended(self, name: str, path: Path, status: str) -> None:
        level = "error" if status in ("failed", "diverged") else "info"
        self.message.emit(level, f"study {self.runner.study.name}: {name} {status}")
        self.runEnded.emit(Path(path), status)
        self._progress()

    def _run_failed(self, name: str, error: str) -> None:
        study = self.runner.study.name
        self._error(
            f"Study {study}: {name} did not start",
            f"study {study}: {name} did not start: {error}",
            f"{name}: {error}\n\nThe study goes on with its other runs.",
        )

    def _finished(self, result: StudyResult) -> None:
        counts: dict[str, int] = {}
        for status in result.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        if result.errors:
            counts["did not start"] = len(result.errors)
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        verb = "stopped" if result.stopped else "finished"
        self._say(f"study {result.name}: {verb} ({summary}) in {result.folder}")
        self.finished.emit(list(result.runs.values()))
        self.changed.emit()

    # --- helpers ---
    def _refuse_while_busy(self, study: Study) -> bool:
        if not self.busy():
            return False
        self._error(
            "Cannot run study",
            f"cannot run study {study.name}: a run or a study is in progress",
            "A run or a study is in progress: stop it first, or wait for it to end.",
        )
        return True

    def _say(self, text: str) -> None:
        self.message.emit("info", text)
        self.status.emit(text)

    def _error(self, title: str, line: str, text: str) -> None:
        self.message.emit("error", line)  # the window logs it and shows it in the status bar
        show_error(self.parent_widget, title, text, "studyErrorDialog")
