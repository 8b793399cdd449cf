"""The plan of a run while it trains: the spec it started with, then each applied revision.

The trainer asks it which spec is in force at a tick (``spec_at``: eval and checkpoint cadence,
grad clip, steps) and trains with its ``timeline`` (the base timeline spliced with every
revision) and its ``steering``. ``check`` turns a revision's text into an ``Accepted`` change or
raises ``Refused``; ``install`` makes it the plan. Nothing here writes a file: the trainer records
the outcome in the run store (``engine.revisions``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.config import RunSpec
from engine.data import Task
from engine.errors import ConfigError
from engine.plan import units_of
from engine.revisions import (
    Refused,
    Revision,
    apply_tick,
    check_fields,
    check_started_phases,
    summary,
)
from engine.specs import spec_from_yaml
from engine.steering import Steering, build_phase_tasks
from engine.timeline import CompiledTimeline


@dataclass
class Accepted:
    """A checked revision: the spec in force from ``at`` on, the run's whole timeline with it,
    a steering that applies it, and what it changes (``summary``)."""

    spec: RunSpec
    timeline: CompiledTimeline
    steering: Steering
    at: int
    what: str


def kept_ticks(timeline: CompiledTimeline) -> set[int]:
    """Ticks whose checkpoints are never pruned: phase starts and marked checkpoints."""
    return {p.start for p in timeline.phases} | {
        e.tick + 1
        for e in timeline.edges()
        if e.kind == "mark" and e.detail.get("action") == "checkpoint"
    }


class LivePlan:
    """The spec and timeline of a run in training, revisions applied."""

    def __init__(
        self,
        spec: RunSpec,
        timeline: CompiledTimeline,
        steering: Steering,
        first: Task,
        world_size: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
    ):
        self.timeline, self.steering = timeline, steering
        self._specs: list[tuple[int, RunSpec]] = [(0, spec)]  # (from tick, spec), by tick
        self._first, self._world_size = first, world_size
        self._model, self._optimizer = model, optimizer
        self.applied = 0  # revisions installed so far

    def spec_at(self, tick: int) -> RunSpec:
        """The spec in force during ``tick``."""
        return next(s for at, s in reversed(self._specs) if at <= tick)

    def check(self, text: str, from_tick: int | None, now: int) -> Accepted:
        """Check a revision sent while the run is about to train tick ``now``; raises Refused
        (one line) when it cannot apply."""
        try:
            new = spec_from_yaml(text)
        except ConfigError as exc:
            raise Refused(str(exc)) from None
        at = apply_tick(now, from_tick, self.timeline.steps, new.train.steps)
        return self._accept(new, at)

    def replay(self, rev: Revision) -> Accepted:
        """An applied revision again, from its recorded tick (a resumed run)."""
        try:
            return self._accept(spec_from_yaml(rev.spec), int(rev.tick))
        except (ConfigError, Refused) as exc:
            raise ConfigError(
                "timeline", f"revision {rev.number} (tick {rev.tick}) no longer applies: {exc}"
            ) from None

    def _accept(self, new: RunSpec, at: int) -> Accepted:
        before = self.spec_at(at)
        check_fields(before, new)
        try:
            compiled = CompiledTimeline(new, units_of(new, self._first, self._world_size))
            check_started_phases(self.timeline, compiled, at)
            timeline = self.timeline.spliced(compiled, at)
            tasks = build_phase_tasks(new, timeline, self._first, self._first.vocab)
            steering = Steering(new, timeline, self._model, self._optimizer, tasks)
        except ConfigError as exc:
            raise Refused(str(exc)) from None
        return Accepted(new, timeline, steering, at, summary(before, new))

    def install(self, change: Accepted) -> None:
        """Make ``change`` the plan: from its tick on, its spec and timeline rule (a later
        revision applying earlier than an earlier one replaces it from there)."""
        self.timeline, self.steering = change.timeline, change.steering
        self._specs = [(at, s) for at, s in self._specs if at < change.at]
        self._specs.append((change.at, change.spec))
        self.applied += 1
