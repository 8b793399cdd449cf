"""Work off the GUI thread (sampling, estimates) with results delivered back on it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal


class TaskRunner(QObject):
    """Runs callables on its own small thread pool; ``on_done(result)`` or ``on_error(exc)``
    is then called on the GUI thread (the signal crosses threads as a queued connection)."""

    _finished = Signal(int, object, object)  # job id, result, exception or None

    def __init__(self, parent: QObject | None = None, threads: int = 2):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._ids = itertools.count()
        self._callbacks: dict[int, tuple[Callable, Callable | None]] = {}
        self._closed = False
        self._finished.connect(self._deliver)

    def submit(
        self,
        fn: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None] | None = None,
    ) -> int | None:
        """Queue ``fn``; None (and nothing runs) once the runner is shut down."""
        if self._closed:
            return None
        job = next(self._ids)
        self._callbacks[job] = (on_done, on_error)
        self.pool.start(lambda: self._run(job, fn))
        return job

    def _run(self, job: int, fn: Callable[[], Any]) -> None:  # on a pool thread
        try:
            result = fn()
        except Exception as exc:  # handed to the GUI thread, which shows it
            self._finished.emit(job, None, exc)
        else:
            self._finished.emit(job, result, None)

    def _deliver(self, job: int, result: Any, error: Exception | None) -> None:
        on_done, on_error = self._callbacks.pop(job)
        if error is None:
            on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            raise error

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def shutdown(self) -> None:
        """Take no more jobs and wait for those running: after this, no job can outlive the
        runner and report to a deleted object."""
        self._closed = True
        self.pool.waitForDone()
