"""Training a study from the window: ``engine.StudyRun`` on a thread of its own, with its
progress as Qt signals and ``stop`` for the Stop button and for closing the window.

The engine does the work (the study folder and its ``study.yaml``, variants in list order,
``variant:NAME`` references, a variant that cannot start reported while the others run); this
adds the thread, the signals, and the GUI's one-torch-thread rule (``limit_threads``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine import NOT_STARTED, Study, StudyResult, StudyRun
from workbench.training.session import limit_threads

__all__ = ["NOT_STARTED", "StudyResult", "StudyRunner"]
JOIN_SECONDS = 60.0


class StudyRunner(QObject):
    """Trains one study at a time. Signals arrive on the GUI thread (queued from the study's)."""

    runStarted = Signal(str, object)  # variant name, run folder
    runEnded = Signal(str, object, str)  # variant name, run folder, final status
    runFailed = Signal(str, str)  # variant name, why it could not start
    finished = Signal(object)  # StudyResult

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.study: Study | None = None
        self.folder: Path | None = None
        self.ended: set[str] = set()  # variants ended (or that could not start) so far
        self._thread: threading.Thread | None = None
        self._run: StudyRun | None = None
        self.finished.connect(self._on_finished)
        self.runEnded.connect(lambda name, *_: self.ended.add(name))
        self.runFailed.connect(lambda name, _: self.ended.add(name))

    @property
    def active(self) -> bool:
        """From ``start`` until ``finished`` has been delivered."""
        return self.study is not None

    @property
    def stopping(self) -> bool:
        return self._run is not None and self._run.stopping

    def start(self, study: Study, runs_dir: Path) -> Path:
        """Make the study's folder and start training it; returns the folder. Raises OSError
        when the folder cannot be written."""
        if self.active:
            raise RuntimeError("a study is already running")
        self._run = StudyRun(study, runs_dir, prepare=limit_threads)
        self.study, self.folder = study, self._run.folder
        self.ended = set()
        self._thread = threading.Thread(target=self._train, name="study", daemon=True)
        self._thread.start()
        return self.folder

    def stop(self) -> None:
        """Stop every run of the study now training (each writes a checkpoint) and start no
        more; ``finished`` follows once they have ended."""
        if self._run is not None:
            self._run.stop()

    def shutdown(self, timeout: float = JOIN_SECONDS) -> None:
        """Stop and wait for the study's runs to end (the window is closing)."""
        thread = self._thread
        if thread is None:
            return
        self.stop()
        thread.join(timeout)

    def _train(self) -> None:
        run = self._run
        try:
            run.run(self.runStarted.emit, self.runEnded.emit, self.runFailed.emit)
        finally:
            self.finished.emit(run.result)

    def _on_finished(self, _result: StudyResult) -> None:
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self.study = None
