"""Selected runs read off the GUI thread.

Reading a run's scalars costs about a microsecond and a half a row in SQLite and Python (10
runs of 20,000 ticks are 800,000 rows: a second or more), so a big store is read on a reader
thread and its curves are drawn when it arrives; the window keeps painting meanwhile. A small
store (most runs) is read at once, which draws it in the same frame as the click.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from workbench.runs.follow import STORE

INLINE_BYTES = 1_000_000  # a store this size reads in about 25 ms: not worth a round trip


def store_bytes(run_dir: Path) -> int:
    """Size of a run's store and its write-ahead log (what reading it scans)."""
    total = 0
    for name in (STORE, f"{STORE}-wal"):
        try:
            total += (run_dir / name).stat().st_size
        except OSError:
            pass
    return total


class RunLoader(QObject):
    """Runs ``load(path)`` jobs on one reader thread; ``loaded`` brings each result (or the
    exception it raised) to the GUI thread."""

    loaded = Signal(object, object)  # (run folder, the job's result or its exception)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runs-reader")
        self.pending: dict[Path, Future] = {}
        self._closed = False

    def load(self, path: Path, job: Callable[[], object]) -> None:
        if path in self.pending or self._closed:
            return
        future = self._pool.submit(job)
        self.pending[path] = future
        future.add_done_callback(lambda f, p=path: self._done(p, f))

    def _done(self, path: Path, future: Future) -> None:  # on the reader thread
        if future.cancelled() or self._closed:
            return
        error = future.exception()
        try:
            self.loaded.emit(path, error if error is not None else future.result())
        except RuntimeError:  # the panel is gone (the window closed meanwhile)
            pass

    def take(self, path: Path) -> None:
        """``path``'s result arrived (or is no longer wanted)."""
        future = self.pending.pop(path, None)
        if future is not None:
            future.cancel()  # only stops a job that has not started

    def shutdown(self) -> None:
        self._closed = True
        for path in list(self.pending):
            self.take(path)
        self._pool.shutdown(wait=False, cancel_futures=True)
