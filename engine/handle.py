"""What the caller of ``start_run`` holds: the ``RunHandle`` that steers a run on its thread, and
the pump that delivers the run's messages to a sink without ever blocking training."""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.messages import Message

if TYPE_CHECKING:
    from engine.trainer import _Trainer

Sink = Callable[[list[Message]], None]
PUMP_SECONDS = 0.05


class Pump:
    """Delivers messages to the sink in batches from its own thread. ``post`` never blocks."""

    def __init__(self, sink: Sink | None):
        self._sink = sink
        self._queue: deque[Message] = deque()
        self._done = threading.Event()
        self._thread = None
        if sink is not None:
            self._thread = threading.Thread(target=self._loop, name="engine-sink", daemon=True)
            self._thread.start()

    def post(self, msg: Message) -> None:
        if self._sink is not None:
            self._queue.append(msg)

    def _drain(self) -> None:
        batch = []
        while self._queue:
            batch.append(self._queue.popleft())
        if batch:
            try:
                self._sink(batch)
            except Exception:  # a broken listener must not take the run down
                traceback.print_exc()

    def _loop(self) -> None:
        while not self._done.wait(PUMP_SECONDS):
            self._drain()
        self._drain()

    def close(self) -> None:
        """Deliver what is queued, then stop. Never waits for the sink."""
        self._done.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


class RunHandle:
    """Steers a run training on its background thread. Every method is thread-safe."""

    def __init__(self, trainer: _Trainer):
        self._trainer = trainer
        self.run_dir: Path = trainer.run_dir

    @property
    def status(self) -> str:
        return self._trainer.status

    @property
    def tick(self) -> int:
        """Ticks completed so far."""
        return self._trainer.tick

    @property
    def error(self) -> str | None:
        return self._trainer.error

    def pause(self) -> None:
        self._trainer.control("pause")

    def resume(self) -> None:
        self._trainer.control("resume")

    def step(self) -> None:
        """Run exactly one tick, then stay paused (only while paused)."""
        self._trainer.control("step")

    def stop(self) -> None:
        """Stop after the current tick; a checkpoint is written so the run can be resumed."""
        self._trainer.control("stop")

    def steer(self, spec_text: str, from_tick: int | None = None, source: str = "window") -> None:
        """Send a timeline revision (the run's spec, edited; ``engine.revisions``) to apply
        from ``from_tick`` (None: the next tick). Returns at once: the run answers with an
        ``Event`` (``revision``, or ``revision_refused`` with the reason) at its next tick
        boundary, and records it in its store."""
        self._trainer.request_revision(spec_text, from_tick, source)

    def join(self, timeout: float | None = None, delivered: bool = True) -> bool:
        """Wait for the run to end (and, if ``delivered``, for the sink to have received every
        message); True when it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._trainer.thread.join(timeout)
        if self._trainer.thread.is_alive():
            return False
        if delivered:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            return self._trainer.pump.join(remaining)
        return True
