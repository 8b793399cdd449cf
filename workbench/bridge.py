"""Engine thread -> Qt: the run's sink, drained on the GUI thread at a fixed frame rate.

The engine calls ``sink`` from its pump thread (every ~50 ms, with a batch of messages). The
sink only appends to a list under a lock, so it can never stall the engine. A QTimer on the GUI
thread drains that list ``FRAME_HZ`` times a second and emits one ``frame`` with everything that
arrived: plots redraw per frame, never per tick, however fast the run steps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

import engine

FRAME_HZ = 25


class EngineBridge(QObject):
    frame = Signal(list)  # the engine messages that arrived since the last frame (maybe none)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: list[engine.Message] = []
        self._timer = QTimer(self)
        self._timer.setInterval(round(1000 / FRAME_HZ))
        self._timer.timeout.connect(self.flush)

    def sink(self, batch: list[engine.Message]) -> None:
        """Called on the engine's pump thread."""
        with self._lock:
            self._pending.extend(batch)

    def drain(self) -> list[engine.Message]:
        with self._lock:
            batch, self._pending = self._pending, []
        return batch

    def flush(self) -> None:
        self.frame.emit(self.drain())

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()


class Throttle(QObject):
    """Calls ``fn`` at most once every ``ms``: at once when asked after a quiet spell, else once
    when the spell is over, however often it was asked meanwhile (so the last request is always
    served). For GUI work that costs the same whatever it shows: a redraw of the live plots."""

    def __init__(self, ms: int, fn: Callable[[], None], parent: QObject | None = None):
        super().__init__(parent)
        self._fn = fn
        self._pending = False
        self._timer = QTimer(self, singleShot=True, interval=ms)
        self._timer.timeout.connect(self._due)

    def request(self) -> None:
        if self._timer.isActive():
            self._pending = True
        else:
            self._call()

    def flush(self) -> None:
        """Call ``fn`` now if a request waits."""
        if self._pending:
            self._call()

    def cancel(self) -> None:
        """Forget a waiting request."""
        self._pending = False

    def _due(self) -> None:
        if self._pending:
            self._call()

    def _call(self) -> None:
        self._pending = False
        self._fn()
        self._timer.start()
