"""The run the window drives: start, pause, resume, step, stop, and its state for the buttons."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

import engine
from engine import RunSpec, replace, resolve_device
from workbench.bridge import EngineBridge
from workbench.training.threads import SMALL_CPU

Starter = Callable[[Callable[[list], None]], engine.RunHandle]  # sink -> the started run


def limit_threads(spec: RunSpec, cores: int | None = None) -> RunSpec:
    """One torch thread for a CPU run on a machine with two cores or fewer, unless the spec sets
    ``train.threads`` itself.

    The GUI thread needs a core too: with torch's default of one thread per core, every op's
    OpenMP workers spin-wait for the core the GUI holds and training slows down many times over
    (measured in docs/benchmarks.md, "Workbench responsiveness").
    """
    cores = cores or os.cpu_count() or 1
    t = spec.train
    if t.threads == 0 and cores <= SMALL_CPU and resolve_device(t.device).type == "cpu":
        return replace(spec, {"train.threads": 1})
    return spec


def target_of(spec: RunSpec) -> tuple[str, str]:
    """(device, LayerNorm backend) the spec trains on here, as the status bar shows them."""
    device = resolve_device(spec.train.device)
    if spec.model.norm == "none":
        return str(device), "none"
    return str(device), engine.backend_on(spec.model.norm_backend, device)


class RunSession(QObject):
    """Owns the RunHandle and its bridge. ``state`` is ``idle``, ``running``, ``pausing``,
    ``paused``, ``stopping`` or how the last run ended (``finished``, ``stopped``, ...)."""

    messages = Signal(list)  # a frame's worth of engine messages (never empty), GUI thread
    stateChanged = Signal(str)
    ended = Signal(str)  # the final status, after every message of the run was emitted

    def __init__(self, runs_dir: Path | None, parent: QObject | None = None):
        super().__init__(parent)
        self.runs_dir = runs_dir
        self.limit_threads = True
        self.handle: engine.RunHandle | None = None
        self.spec: RunSpec | None = None
        self.state = "idle"
        self.bridge = EngineBridge(self)
        self.bridge.frame.connect(self._on_frame)

    @property
    def active(self) -> bool:
        return self.handle is not None

    @property
    def run_dir(self) -> Path | None:
        return self.handle.run_dir if self.handle else None

    def start(self, spec: RunSpec, preset: str | None = None) -> engine.RunHandle:
        """Start ``spec`` (made from the preset or spec file named ``preset``); raises
        ConfigError when its data or model cannot be built."""
        if self.limit_threads:
            spec = limit_threads(spec)
        runs_dir = self.runs_dir
        return self.launch(lambda sink: engine.start_run(spec, runs_dir, sink, preset=preset), spec)

    def launch(self, start: Starter, spec: RunSpec | None = None) -> engine.RunHandle:
        """Train the run that ``start(sink)`` starts (a new run, a resume, a fork) as this
        session's run. ``spec``: what it trains (default: the spec in its folder). Raises what
        ``start`` raises, and RuntimeError while a run is active."""
        if self.active:
            raise RuntimeError("a run is already active")
        self.bridge.drain()  # nothing of an earlier run may leak into this one
        self.handle = start(self.bridge.sink)
        self.spec = spec or engine.load_spec(self.handle.run_dir / "spec.yaml")
        self._set_state("running")
        self.bridge.start()
        return self.handle

    def pause(self) -> None:
        if self.state == "running":
            self.handle.pause()
            self._set_state("pausing")

    def resume(self) -> None:
        if self.state in ("paused", "pausing"):
            self.handle.resume()
            self._set_state("running")

    def step(self) -> None:
        if self.state == "paused":
            self.handle.step()

    def stop(self) -> None:
        if self.active and self.state != "stopping":
            self.handle.stop()
            self._set_state("stopping")

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop the run and wait for it (window closing, tests). Emits ``ended``."""
        if not self.active:
            return
        self.stop()
        self.handle.join(timeout)
        self._on_frame(self.bridge.drain())

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _on_frame(self, batch: list[engine.Message]) -> None:
        if self.handle is None:
            return
        done = self.handle.join(timeout=0)  # thread over and every message in the sink
        if done:
            batch += self.bridge.drain()
        # The engine's live status, not the Status messages in the batch: those can be older
        # than a request made since (a "paused" from a Step arriving after Resume was clicked).
        live = self.handle.status
        if self.state == "pausing" and live == "paused":
            self._set_state("paused")
        elif self.state not in ("pausing", "stopping") and live in ("running", "paused"):
            self._set_state(live)
        if batch:
            self.messages.emit(batch)
        if done:
            final = self.handle.status
            self.bridge.stop()
            self.handle = None
            self._set_state(final)
            self.ended.emit(final)
