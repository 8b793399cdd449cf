"""Plain-data messages the engine sends to its sink (the GUI, the CLI's progress line).

Frozen dataclasses of numbers and strings only: no tensors, no modules cross this boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scalars:
    """Metric values recorded at one tick (``train/loss``, ``lr``, ``val/loss``, ...)."""

    tick: int
    values: dict[str, float]
    wall: float


@dataclass(frozen=True)
class Status:
    """The run changed state: running, paused, finished, stopped, diverged, failed."""

    status: str
    tick: int
    steps: int
    detail: str = ""


@dataclass(frozen=True)
class Event:
    """Something applied at a tick: a checkpoint written, an eval, a timeline edge."""

    tick: int
    kind: str
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Log:
    level: str  # "info" | "warning" | "error"
    text: str


Message = Scalars | Status | Event | Log
