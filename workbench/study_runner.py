"""Training a study from the window: every variant into one study folder, on a thread of its
own, stoppable at any time.

It does what ``engine.study.run_study`` does (the same ``<runs>/<study>-<time>/`` folder with its
``study.yaml``, variants started in list order, ``study.parallel`` at a time) plus what the
window needs and ``run_study`` has no hook for: a signal as each run starts and ends, and
``stop``, which stops the runs training (each writes a checkpoint and can be resumed) and starts
no more. A variant that starts from a sibling's weights (``init_from: "variant:NAME"``) waits
for that run to finish and gets its folder, through the engine's own ``variant_refs`` and
``resolve_refs``; if the sibling did not finish, it does not start, and the others still run.
The loop is ``_train``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

import engine
from engine.config import RunSpec
from engine.runs import new_run_dir
from engine.study import Study, dump_study, resolve_refs, variant_refs
from workbench.run_session import limit_threads

POLL_SECONDS = 0.2  # how often the study's thread looks at its runs (as run_study does)
JOIN_SECONDS = 60.0
NOT_STARTED = "not started"


@dataclass
class StudyResult:
    """How a study ended: its folder and what became of each variant."""

    name: str
    folder: Path
    runs: dict[str, Path] = field(default_factory=dict)  # variant -> run folder, in list order
    statuses: dict[str, str] = field(default_factory=dict)  # variant -> final status
    errors: dict[str, str] = field(default_factory=dict)  # variant -> why it did not start
    stopped: bool = False


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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._handles: list[engine.RunHandle] = []
        self.finished.connect(self._on_finished)
        self.runEnded.connect(lambda name, *_: self.ended.add(name))
        self.runFailed.connect(lambda name, _: self.ended.add(name))

    @property
    def active(self) -> bool:
        """From ``start`` until ``finished`` has been delivered."""
        return self.study is not None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self, study: Study, runs_dir: Path) -> Path:
        """Make the study's folder and start training it; returns the folder. Raises OSError
        when the folder cannot be written."""
        if self.active:
            raise RuntimeError("a study is already running")
        folder = new_run_dir(Path(runs_dir), study.name)
        (folder / "study.yaml").write_text(dump_study(study), encoding="utf-8")
        self.study, self.folder = study, folder
        self.ended = set()
        self._stop.clear()
        self._handles = []
        self._thread = threading.Thread(
            target=self._train, args=(study, folder), name="study", daemon=True
        )
        self._thread.start()
        return folder

    def stop(self) -> None:
        """Stop every run of the study now training (each writes a checkpoint) and start no
        more; ``finished`` follows once they have ended."""
        with self._lock:
            self._stop.set()
            handles = list(self._handles)
        for handle in handles:
            handle.stop()

    def shutdown(self, timeout: float = JOIN_SECONDS) -> None:
        """Stop and wait for the study's runs to end (the window is closing)."""
        thread = self._thread
        if thread is None:
            return
        self.stop()
        thread.join(timeout)

    # --- the study's thread ---
    def _launch(self, spec: RunSpec, folder: Path) -> engine.RunHandle:
        handle = engine.start_run(limit_threads(spec), folder)
        with self._lock:
            self._handles.append(handle)
            stop = self._stop.is_set()
        if stop:  # stopped while this run was being built
            handle.stop()
        return handle

    def _train(self, study: Study, folder: Path) -> None:
        result = StudyResult(study.name, folder)
        pending = list(study.variants)
        running: list[tuple[str, engine.RunHandle]] = []
        try:
            while pending or running:
                while pending and len(running) < study.parallel and not self._stop.is_set():
                    name, spec = pending[0]
                    refs = variant_refs(spec)
                    if refs - set(result.statuses) - set(result.errors):
                        break  # in list order: wait for the runs it starts from to end
                    pending.pop(0)
                    try:
                        for ref in sorted(refs):
                            status = result.statuses.get(ref, "did not start")
                            if status != "finished":
                                raise engine.ConfigError(
                                    "train.init_from",
                                    f"variant {ref} {status}: its weights are not there to "
                                    "start from",
                                )
                        handle = self._launch(resolve_refs(spec, result.runs), folder)
                    except Exception as exc:  # a data or model error: the others still run
                        result.errors[name] = str(exc)
                        self.runFailed.emit(name, str(exc))
                        continue
                    result.runs[name] = handle.run_dir
                    running.append((name, handle))
                    self.runStarted.emit(name, handle.run_dir)
                if self._stop.is_set():
                    pending.clear()
                for name, handle in list(running):
                    if handle.join(timeout=POLL_SECONDS / max(len(running), 1), delivered=False):
                        running.remove((name, handle))
                        result.statuses[name] = handle.status
                        self.runEnded.emit(name, handle.run_dir, handle.status)
        finally:
            for name, handle in running:  # only after an unexpected error: leave nothing behind
                handle.stop()
                handle.join(JOIN_SECONDS, delivered=False)
                result.statuses[name] = handle.status
            for name, _ in study.variants:
                if name not in result.statuses and name not in result.errors:
                    result.statuses[name] = NOT_STARTED
            result.stopped = self._stop.is_set()
            self.finished.emit(result)

    def _on_finished(self, _result: StudyResult) -> None:
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self.study = None
