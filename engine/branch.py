"""Branching: a new run from any tick of an existing run, checkpoint or not.

A branch at tick T continues from the parent's exact state after T ticks (weights, optimizer
moments, RNG streams, data position, norm state) and follows its own spec from T on. When the
parent has a checkpoint at T, that is a fork (``engine.fork``). Otherwise the parent is replayed
from its nearest checkpoint before T (or from its start when it has none) with its own spec, in
a hidden folder beside it that no listing shows; training is deterministic, so after T - C ticks
the replay holds the parent's state at T. Stopping it there writes a checkpoint at T, the branch
forks from it, and the replay is deleted.

How long a replay takes is set by the parent's saved states: its checkpoints
(``train.checkpoint_every`` ticks at most between two, the newest ``train.keep_checkpoints`` of
them kept, checkpoint marks' always) and its rewind points (``engine.rewind``: one every 1 to 5
seconds of training, spread over the whole run, never pruned by ``keep_checkpoints``). The
replay starts from the nearest of either before the tick; with none, from the start.

The branch's metadata names the parent, the tick and the checkpoint the replay started from
(``forked_from``: ``{"run", "tick", "checkpoint", "replayed"}``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.checkpoint import checkpoint_tick
from engine.config import RunSpec
from engine.errors import ConfigError
from engine.fork import fork_run
from engine.handle import RunHandle, Sink
from engine.messages import Scalars
from engine.rewind import rewind_points
from engine.runs import RunRecord, remove_dead_folders
from engine.specs import dump_spec, replace, spec_from_yaml
from engine.trainer import start_run

REPLAY_PREFIX = ".branch-"  # .branch-<pid>-...: hidden, run_dirs never lists it


@dataclass
class Branch:
    """Where a branch starts: a checkpoint at its tick (the parent's own, or a replay's), ready
    for ``start``. ``discard`` deletes the replay when the branch is not started after all."""

    source: Path  # the run folder holding the checkpoint at ``tick``
    tick: int
    origin: dict | None  # the fork's ``forked_from`` (None: a plain fork of ``source``)
    replay_root: Path | None = None
    parent: tuple[RunSpec, list] | None = None  # the parent's spec and applied revisions' rows

    def _revisions(self, spec: RunSpec | None) -> tuple[RunSpec, list]:
        """The fork's spec and revisions. None: the parent's, every revision included (it then
        trains what the parent trained). A spec, for a parent steered before the tick: the
        parent's spec with those revisions, and ``spec`` as one more from the tick on."""
        base, rows = self.parent
        if spec is None:
            return base, rows
        before = [row for row in rows if row[1] < self.tick]
        if not before:
            return spec, []
        return base, [*before, (dump_spec(spec), self.tick, "branch", "the branch's spec")]

    def start(
        self,
        spec: RunSpec | None,
        runs_dir: str | Path,
        sink: Sink | None = None,
        *,
        paused: bool = False,
        name: str | None = None,
    ) -> RunHandle:
        """Fork ``spec`` (None: the parent's, revisions included; ``name``: the fork's name) from
        the checkpoint into ``runs_dir`` (quick: no training before it returns); the replay is
        deleted whatever happens."""
        base, revisions = self._revisions(spec)
        if name:
            base = replace(base, {"name": name})
        try:
            return fork_run(
                self.source,
                base,
                self.tick,
                runs_dir,
                sink,
                paused=paused,
                origin=self.origin,
                revisions=revisions,
            )
        finally:
            self.discard()

    def discard(self) -> None:
        if self.replay_root is not None:
            shutil.rmtree(self.replay_root, ignore_errors=True)
            self.replay_root = None


def prepare_branch(
    run_dir: str | Path,
    at: int,
    runs_dir: str | Path | None = None,
    replay_timeout: float = 3600.0,
    cancel: threading.Event | None = None,
) -> Branch:
    """The parent's state after its tick ``at``: its checkpoint there, or a replay to it from its
    nearest checkpoint before (the slow part: seconds for the presets, on any thread). Raises
    ConfigError (nothing made) when ``at`` is not a tick the parent can reach; TimeoutError when
    the replay takes longer than ``replay_timeout`` seconds; RuntimeError once ``cancel`` is
    set (the replay stops within a tick, and is deleted)."""
    parent = RunRecord(run_dir)
    base = parent.spec
    if not 0 < at < base.train.steps:
        raise ConfigError(
            "--at", f"tick {at} is not inside the parent's run (1 to {base.train.steps - 1})"
        )
    forked = parent.meta.get("forked_from")
    began = int(forked.get("tick", 0)) if isinstance(forked, dict) else 0
    if at < began:
        raise ConfigError(
            "--at",
            f"{parent.path.name} starts at tick {began} (forked from {forked.get('run')}): "
            f"branch that run to start before it",
        )
    target = Path(runs_dir) if runs_dir else parent.path.parent
    start = _start_point(parent, at)
    # the parent's applied revisions as ``fork_run`` takes them: (spec, tick, source, what)
    applied = [r for r in parent.revisions() if r.state == "applied"]
    revs = [(r.spec, r.tick, r.source, r.detail) for r in applied]
    if start is not None and checkpoint_tick(start) == at:
        return Branch(parent.path, at, None, parent=(base, revs))
    origin = {
        "run": str(parent.path),
        "tick": at,
        "checkpoint": start.name if start is not None else None,
        "replayed": at - (checkpoint_tick(start) if start is not None else 0),
    }
    target.mkdir(parents=True, exist_ok=True)
    remove_dead_folders(target, REPLAY_PREFIX)  # replays of processes killed mid-replay
    replay_root = Path(tempfile.mkdtemp(prefix=f"{REPLAY_PREFIX}{os.getpid()}-", dir=target))
    try:
        replay = _replay(parent, base, start, at, replay_root, replay_timeout, cancel, revs)
    except BaseException:
        shutil.rmtree(replay_root, ignore_errors=True)
        raise
    return Branch(replay, at, origin, replay_root, (base, revs))


def _start_point(parent: RunRecord, at: int) -> Path | None:
    """The saved state a branch at ``at`` starts from: the latest checkpoint at or before it, or
    rewind point before it (one at ``at`` itself is not a checkpoint a fork can name: it is
    replayed to); None: from the start."""
    saved = [
        *parent.checkpoints(),
        *(p for p in rewind_points(parent.path) if checkpoint_tick(p) < at),
    ]
    earlier = sorted((c for c in saved if checkpoint_tick(c) <= at), key=checkpoint_tick)
    return earlier[-1] if earlier else None


def replay_start(run_dir: str | Path, at: int) -> int:
    """The tick a branch of ``run_dir`` at ``at`` is replayed from (``at``: no replay; 0: from
    the run's start), for saying so before it is made."""
    start = _start_point(RunRecord(run_dir), at)
    return checkpoint_tick(start) if start is not None else 0


def spec_at(run_dir: str | Path, tick: int) -> RunSpec:
    """The spec a run followed at ``tick``: its own, or that of the last revision it applied
    from that tick or before (a steered run; ``engine.revisions``)."""
    record = RunRecord(run_dir)
    ruling = [r for r in record.revisions() if r.state == "applied" and r.tick <= tick]
    return spec_from_yaml(ruling[-1].spec) if ruling else record.spec


def branch_run(
    run_dir: str | Path,
    at: int,
    spec: RunSpec | None = None,
    *,
    name: str | None = None,
    runs_dir: str | Path | None = None,
    sink: Sink | None = None,
    paused: bool = False,
    replay_timeout: float = 3600.0,
) -> RunHandle:
    """Start a run that continues ``run_dir`` after its tick ``at`` with ``spec`` (default:
    the parent's own, which then trains what the parent trained from ``at`` on, to the last
    digit on a CPU with pinned threads), named ``name``, in ``runs_dir`` (default: beside the
    parent): ``prepare_branch`` then ``Branch.start``. Raises ConfigError (nothing made) when
    ``at`` is not a tick the parent can reach or ``spec`` cannot continue from its state there;
    TimeoutError when the replay takes longer than ``replay_timeout`` seconds."""
    parent = RunRecord(run_dir)
    target = Path(runs_dir) if runs_dir else parent.path.parent
    branch = prepare_branch(parent.path, at, target, replay_timeout)
    return branch.start(spec, target, sink, paused=paused, name=name)


def _replay(
    parent: RunRecord,
    base: RunSpec,
    start: Path | None,
    at: int,
    root: Path,
    timeout: float,
    cancel: threading.Event | None = None,
    steered: list = (),
) -> Path:
    """Train the parent's spec from ``start`` (a checkpoint of it, or None: from scratch) to
    tick ``at`` in a folder under ``root``, stopped there with a checkpoint at ``at``."""
    reached = threading.Event()

    def sink(batch: list) -> None:
        if any(isinstance(m, Scalars) and m.tick >= at - 1 for m in batch):
            reached.set()

    if start is None and not steered:  # ``steered``: the parent's revisions, replayed
        handle = start_run(base, root, sink, paused=True)
        first = 0
    elif start is None:  # from tick 0, with the revisions: a fork of no checkpoint
        handle = _steered_from_scratch(base, root, sink, steered)
        first = 0
    else:
        handle = fork_run(parent.path, base, start, root, sink, paused=True, revisions=steered)
        first = checkpoint_tick(start)
    try:
        for _ in range(at - first):
            handle.step()
        deadline = time.monotonic() + timeout
        while not reached.wait(0.1):
            if handle.join(0, delivered=False):  # it ended before ``at``: diverged, failed
                break
            if cancel is not None and cancel.is_set():
                raise RuntimeError(f"the branch of {parent.path.name} was cancelled")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replaying {parent.path.name} to tick {at} took over {timeout} s"
                )
    finally:
        handle.stop()
        if not handle.join(timeout):
            raise TimeoutError(f"the replay of {parent.path.name} did not stop in {timeout} s")
    if handle.tick != at or handle.status != "stopped":
        raise RuntimeError(
            f"the replay of {parent.path.name} ended {handle.status} at tick {handle.tick}, "
            f"not at {at}: {handle.error or 'no error recorded'}"
        )
    return handle.run_dir


def _steered_from_scratch(base: RunSpec, root: Path, sink, steered: list) -> RunHandle:
    """A replay from tick 0 of a steered parent: its spec, paused, sent the parent's revisions
    (each from the tick it applied from; taken before the first tick)."""
    handle = start_run(base, root, sink, paused=True)
    for text, tick, _source, _what in steered:
        handle.steer(text, tick, "replay")
    return handle
