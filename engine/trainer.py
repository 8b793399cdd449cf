"""Training on a background thread, steered tick by tick by the compiled timeline.

``start_run`` does the set-up in the caller's thread (so a bad spec or a missing data file raises
``ConfigError`` right there), then trains on a daemon thread. The caller steers it through the
returned ``RunHandle``; progress goes to the sink as batched plain-data messages through a pump
thread, so a slow sink can never stall training.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sqlite3
import sys
import threading
import time
import traceback
from collections import deque
from functools import partial
from pathlib import Path

import torch

from engine.checkpoint import load_checkpoint, prune_checkpoints, restore_rng, save_checkpoint
from engine.config import RunSpec
from engine.distributed import (
    SINGLE,
    World,
    average_,
    broadcast_object,
    lost_a_peer,
    reduce_tick,
)
from engine.errors import ConfigError
from engine.handle import Pump, RunHandle, Sink
from engine.live_plan import Accepted, LivePlan, kept_ticks
from engine.loss import batch_loss
from engine.messages import Event, Log, Scalars, Status
from engine.micro_batch import accumulate
from engine.plan import STRENGTH_PREFIX
from engine.quantize import int8_report, int8_scalars, wants_int8_report
from engine.revisions import Refused, Revision, detail_json
from engine.rewind import RewindPoints
from engine.runs import (
    NullWriter,
    RunLock,
    RunRecord,
    RunWriter,
    StoreError,
    default_runs_dir,
    disk_full,
    new_run_dir,
)
from engine.setup import Parts, set_up
from engine.specs import load_spec, save_spec
from engine.steering import diff_snapshots

REVISION_POLL_SECONDS = 0.5  # how often a paused run looks for revisions
STORE_POLL_SECONDS = 0.1  # how often a training run reads the store's revisions table
_niceness = 0  # see set_training_niceness


def set_training_niceness(n: int) -> None:
    """Train every run this process starts from now on with its thread ``n`` nice levels below
    the thread that started it (Linux, where the nice value is per thread; elsewhere a no-op).
    The OpenMP threads torch starts from the training thread inherit it.

    For a GUI that trains in its own process: training then takes the CPU the GUI thread leaves,
    instead of sharing a core with it (and with other work) half and half while a repaint waits,
    holding the GIL (docs/benchmarks.md, "Workbench responsiveness"). The headless CLI leaves it 0.
    """
    global _niceness
    _niceness = max(int(n), 0)


def _lower_priority(n: int) -> None:
    """Raise the calling thread's nice value by ``n`` (at most to 19); never fails."""
    if n <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + n, 19))
    except OSError:  # a sandbox that forbids it: train at the normal priority
        pass


class _Trainer:
    """The loop that trains. ``set_up`` (which touches no file: everything a bad spec can break
    fails there, before a run folder exists) builds its parts; ``attach`` then binds it to its
    folder and store."""

    def __init__(self, parts: Parts):
        """The parts ``set_up`` made; nothing is built here."""
        self.spec, self.world, self.device = parts.spec, parts.world, parts.device
        self.timeline, self.tokens_per_tick = parts.timeline, parts.tokens_per_tick
        self.tasks, self.first, self.unknown = parts.tasks, parts.tasks[0], parts.unknown
        self.model, self.net, self.optimizer = parts.model, parts.net, parts.optimizer
        self.compiled = parts.compiled
        self.steering, self.stats, self.batches = parts.steering, parts.stats, parts.batches
        self.kept_ticks = parts.kept_ticks
        self.plan = LivePlan(
            parts.spec,
            parts.timeline,
            parts.steering,
            parts.tasks[0],
            parts.world.size,
            parts.model,
            parts.optimizer,
        )
        self._requests: deque[tuple[str, int | None, str]] = deque()  # revisions from this process
        self._announced = False  # a distributed run: rank 0 has pending revisions
        self._polled_at = -math.inf  # the last read of the store's revisions table
        self.rewind = RewindPoints()  # light saves for branching (``engine.rewind``)
        self.pruner = parts.pruner
        self.status = "starting"
        self.error: str | None = None
        self.tick = 0
        self._cond = threading.Condition()
        self._paused = False
        self._steps_allowed = 0
        self._stop = False

    def write_new_run(self, run_dir: Path, preset: str | None = None) -> None:
        """Fill a new run folder: the spec, the metadata, and ``running`` at tick 0 (a process
        killed from here on leaves a run that reads ``interrupted`` and resumes from tick 0)."""
        spec, t = self.spec, self.spec.train
        save_spec(spec, run_dir / "spec.yaml")
        store = RunWriter(run_dir)
        try:
            store.set_meta(
                name=spec.name,
                steps=t.steps,
                started=time.time(),
                device=str(self.device),
                torch=torch.__version__,
                python_version=platform.python_version(),
                data=self.first.info,
                vocab=self.first.vocab.to_dict(),
                world_size=self.world.size,
                **({"preset": preset} if preset else {}),
                global_batch=t.batch_size * self.world.size,
                tokens_per_tick=self.tokens_per_tick,
                lineage=self.steering.lineage(),
                params=sum(p.numel() for p in self.model.parameters()),
                trainable_params=self.steering.trainable_params(0),
                unknown_chars=self.unknown,
            )
            store.set_status("running", 0)
        finally:
            store.close()

    def attach(self, run_dir: Path, sink: Sink | None, resume: bool, lock: RunLock | None):
        """Bind to ``run_dir`` (rank 0 writes it), restore a resumed run, make the thread."""
        self.run_dir = run_dir
        self.lock = lock
        self.store = RunWriter(run_dir) if self.world.is_main else NullWriter(run_dir)
        self.pump = Pump(sink if self.world.is_main else None)
        if resume:
            self._restore()
        for line in self.unknown:
            self._log("warning", line)
        for task in {id(t): t for t in self.tasks}.values():
            cut = task.info.get("n_truncated", 0)
            if cut:
                self._log(
                    "warning",
                    f"{task.info.get('path')}: {cut} of {task.info.get('n_rows')} texts are "
                    f"longer than model.context={self.spec.model.context} and were cut there",
                )
        self.thread = threading.Thread(target=self._run, name="engine-train", daemon=True)

    # --- control, called from any thread ---
    def control(self, action: str) -> None:
        with self._cond:
            if action == "pause":
                self._paused = True
            elif action == "resume":
                self._paused = False
            elif action == "step" and self._paused:
                self._steps_allowed += 1
            elif action == "stop":
                self._stop = True
            self._cond.notify_all()

    def request_revision(self, spec_text: str, from_tick: int | None, source: str) -> None:
        """Queue a revision (any thread); the training thread records and checks it at the next
        tick boundary, paused or not."""
        self._requests.append((spec_text, from_tick, source))
        with self._cond:
            self._cond.notify_all()

    def _take_revisions(self) -> None:
        """Check and apply the revisions sent since the last tick boundary: those queued here
        and those in the store's table (another process's ``engine steer``). Rank 0 reads the
        table; under torchrun it broadcasts them, in a tick whose all-reduce said there are
        some, so every rank applies the same ones at the same tick."""
        queued = bool(self._requests)
        while self._requests:
            self.store.add_revision(*self._requests.popleft())
        if not self.world.distributed:
            due = queued or self._poll_due()
            pending = self.store.pending_revisions() if due else []
        elif self._announced:
            self._announced = False
            rows = self.store.pending_revisions() if self.world.is_main else None
            pending = broadcast_object(rows, self.world)
        else:
            return
        for rev in pending:
            self._revise(rev)

    def _poll_due(self) -> bool:
        """Whether to read the store's revisions now: at most every ``STORE_POLL_SECONDS`` of
        wall time (a read costs ~60 µs inside a run: 1% of a tiny model's tick)."""
        now = time.monotonic()
        if now - self._polled_at < STORE_POLL_SECONDS:
            return False
        self._polled_at = now
        return True

    def _revise(self, rev: Revision) -> None:
        try:
            change = self.plan.check(rev.spec, rev.from_tick, self.tick)
        except Refused as exc:
            self.store.settle_revision(rev.id, "refused", None, str(exc))
            self._log("warning", f"revision refused: {exc}")
            self.pump.post(Event(self.tick, "revision_refused", {"id": rev.id, "reason": str(exc)}))
            return
        self._install(change)
        self.store.settle_revision(rev.id, "applied", change.at, change.what)
        rev = dataclasses.replace(rev, state="applied", tick=change.at, number=self.plan.applied)
        self._event(change.at, "revision", detail_json(rev, change.what))
        self._log("info", f"rev {rev.number} applies from tick {change.at}: {change.what}")

    def _install(self, change: Accepted) -> None:
        self.plan.install(change)
        self.timeline, self.steering = change.timeline, change.steering
        self.kept_ticks |= kept_ticks(change.timeline)
        self.store.set_meta(steps=change.timeline.steps)

    def _replay_revisions(self) -> list[tuple[int, dict]]:
        """A resumed run: apply the revisions it took before, each from its recorded tick, so
        it trains what the run left alone would have. Those at or after the resumed tick get
        their events back (the resume truncates the events from there)."""
        events = []
        for rev in RunRecord(self.run_dir).revisions():
            if rev.state == "applied":
                change = self.plan.replay(rev)
                self._install(change)
                if rev.tick >= self.tick:
                    events.append((rev.tick, detail_json(rev, change.what)))
        return events

    def _wait_if_paused(self) -> bool:
        """Block while paused; False when the run should stop. (A distributed run cannot pause,
        and its ranks agree on stopping after a tick instead: see ``reduce_tick``.)"""
        if self.world.distributed:
            return True
        with self._cond:
            if self._paused and not self._stop and not self._steps_allowed:
                self._set_status("paused")
                while self._paused and not self._stop and not self._steps_allowed:
                    self._cond.wait(REVISION_POLL_SECONDS)  # a paused run takes revisions too
                    self._take_revisions()
                if not self._stop:
                    self._set_status("running")
            if self._steps_allowed:
                self._steps_allowed -= 1
            return not self._stop

    # --- the run ---
    def _restore(self) -> None:
        ckpts = RunRecord(self.run_dir).checkpoints()
        if ckpts:
            state = load_checkpoint(ckpts[-1], map_location=self.device)
            self.tick = state["tick"]
        revised = self._replay_revisions()
        if ckpts:
            if self.tick > 0:  # the timeline must still describe the past that was trained
                expected = self.steering.expected_snapshot(self.tick - 1)
                diff = diff_snapshots(state["steering"], expected)
                if diff:
                    raise ConfigError(
                        "timeline",
                        f"cannot resume from {ckpts[-1].name}: the timeline no longer matches "
                        "what was trained (fork the run to change its past): " + "; ".join(diff),
                    )
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.pruner.load_state_dict(state.get("pruning"), self.tick)
            restore_rng(state, self.batches)
        self.store.truncate_from(self.tick)
        self.store.event(
            self.tick, "resume", {"from_tick": self.tick, "world_size": self.world.size}
        )
        for tick, detail in revised:
            self.store.event(tick, "revision", detail)
        self.store.set_meta(
            world_size=self.world.size, global_batch=self.spec.train.batch_size * self.world.size
        )

    def _set_status(self, status: str, detail: str = "") -> None:
        self.status = status
        self.store.set_status(status, self.tick, detail)
        self.pump.post(Status(status, self.tick, self.timeline.steps, detail))

    def _end(self, status: str, detail: str) -> None:
        """The last status, when something already failed: said to the sink in any case and
        stored when the store still can be written."""
        self.status = status
        self.pump.post(Status(status, self.tick, self.timeline.steps, detail))
        try:
            self.store.set_status(status, self.tick, detail)
        except (StoreError, sqlite3.Error, OSError):
            pass  # the folder reads interrupted once this process is gone: still resumable

    def _diverged(self, tick: int, values: dict[str, float]) -> bool:
        """Mark the run diverged when a metric of ``tick`` is not finite."""
        bad = [(k, v) for k, v in values.items() if not math.isfinite(v)]
        if not bad:
            return False
        metric, value = bad[0]
        detail = f"{metric} became {value} at tick {tick}"
        self._event(tick, "diverged", {"metric": metric, "value": repr(value)})
        self.error = f"{detail}: run marked diverged"
        self._log("error", self.error)
        self._set_status("diverged", detail)
        return True

    def _log(self, level: str, text: str) -> None:
        self.pump.post(Log(level, text))

    def _event(self, tick: int, kind: str, detail: dict) -> None:
        self.store.event(tick, kind, detail)
        self.pump.post(Event(tick, kind, detail))

    def _record(self, tick: int, values: dict[str, float]) -> None:
        self.store.scalars(tick, values)
        self.pump.post(Scalars(tick, values, time.time()))

    def _checkpoint(self) -> None:
        if not self.world.is_main:
            return
        self.store.flush()  # metrics on disk are never behind a checkpoint
        path = self._save(self.run_dir)
        self._event(max(self.tick - 1, 0), "checkpoint", {"path": path.name, "tick": self.tick})
        prune_checkpoints(self.run_dir, self.spec.train.keep_checkpoints, self.kept_ticks)

    def _save(self, root: Path) -> Path:
        self.rewind.saved()
        return save_checkpoint(
            root,
            self.tick,
            self.model,
            self.optimizer,
            self.batches,
            self.steering.snapshot(),
            self.pruner.state_dict(),
        )

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss and task metrics on the same ``eval_batches`` batches every time
        (``val/...``); with ``train.eval_train`` the same on train batches (``train/...``, the
        loss as ``train/eval_loss``: ``train/loss`` is the per-tick training loss)."""
        self.model.eval()
        out = self._score("val", "loss")
        if self.spec.train.eval_train:
            out.update(self._score("train", "eval_loss"))
        self.model.train()
        return out

    def _score(self, split: str, loss_name: str) -> dict[str, float]:
        t = self.spec.train
        gen = torch.Generator().manual_seed(self.spec.seed + (1 if split == "val" else 2))
        total = 0.0
        task = self.steering.task
        metrics = task.new_metrics()
        for _ in range(t.eval_batches):
            batch = task.batch(split, t.batch_size, gen).to(self.device)
            loss, logits = batch_loss(self.model, batch)
            total += loss.item()
            metrics.update(logits, batch)
        out = {f"{split}/{loss_name}": total / t.eval_batches}
        out.update({f"{split}/{k}": v for k, v in metrics.result().items()})
        return out

    def _train_tick(self, t: int, calibrated: list[str]) -> tuple[dict[str, float], bool]:
        """One optimizer step; (its metrics, loss of the global batch included, and whether any
        rank asked to stop)."""
        lr = self.timeline.lr_at(t)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        w, size = self.world, self.timeline.batch_at(t)  # timeline.batch, per rank
        batch = self.steering.task.batch("train", size * w.size, self.batches)
        if w.distributed:  # every rank draws the global batch and trains on its own slice
            batch = batch.rows(w.rank * size, (w.rank + 1) * size)
        # the compiled net, except where the forward does what a graph does not hold: hooks
        # that record statistics, a calibration that measures sigma-bar
        eager = self.compiled is None or calibrated or self.stats.due(t)
        net = self.net if eager else self.compiled
        with self.stats.capture(t):  # forward hooks on stats ticks only, no sync on the others
            # forward and backward, in micro-batches when train.micro_batch asks for them
            loss = accumulate(
                lambda part: batch_loss(net, part)[0],
                batch.to(self.device),
                self.spec.train.micro_batch,
                self.net,
            )
        if calibrated:  # each rank measured σ̄ on its slice: agree on the global-batch mean
            average_([self.steering.norms[s].sigma_bar for s in calibrated], w)
        clip = self.spec.train.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        pruned = self.pruner.after_step(t)  # masks reapplied; sparsity/<group> at its steps
        self.optimizer.zero_grad(set_to_none=True)
        # the one host sync per tick; NaN detection needs it anyway
        announce = w.distributed and w.is_main and self._poll_due()
        announce = announce and self.store.has_pending_revisions()
        loss_value, stop, self._announced = reduce_tick(loss, self._stop, w, announce)
        elapsed = time.perf_counter() - start
        values = {
            "train/loss": loss_value,
            "lr": lr,
            "grad_norm": grad_norm.item(),
            "tokens_per_s": self.timeline.tokens_of_tick(t) / elapsed,
            "batch_size": size,
            **pruned,
        }
        # a norm's strength whenever it changes: the record holds every strength trained with
        strengths = self.timeline.strength_changes(t)
        values.update({f"{STRENGTH_PREFIX}{site}": v for site, v in strengths.items()})
        self._record(t, values)  # the store keeps the finite ones
        if all(math.isfinite(v) for v in values.values()):
            self._record_stats()
        return values, stop

    def _record_stats(self) -> None:
        stats = self.stats.collect()  # None except on stats ticks; the device is idle by now
        if stats is not None:
            self.store.activation_stats(stats)
            self.pump.post(stats)

    def _run(self) -> None:
        _lower_priority(_niceness)  # before torch starts OpenMP threads from this one
        first = self.tick
        try:
            self._set_status("running")
            self.model.train()
            while self.tick < self.timeline.steps:  # steps a revision may change
                if not self._wait_if_paused():
                    if self.tick > first:  # else the last checkpoint already holds this state
                        self._checkpoint()
                    self._set_status("stopped")
                    return
                self._take_revisions()
                t = self.tick
                self.spec = self.plan.spec_at(t)  # eval and checkpoint cadence, grad clip
                self.stats.every = self.spec.train.stats_every if self.world.is_main else 0
                t_cfg = self.spec.train
                for edge in self.steering.begin_tick(t):
                    if edge.kind != "mark":  # marks apply after the step
                        self._event(t, edge.kind, {"label": edge.label, **edge.detail})
                values, stop = self._train_tick(t, self.timeline.calibrate_at(t))
                if self._diverged(t, values):
                    return
                self.tick = t + 1
                marks = {m.detail["action"] for m in self.timeline.marks_at(t)}
                for mark in self.timeline.marks_at(t):
                    self._event(t, "mark", {"label": mark.label, **mark.detail})
                last = self.tick == self.timeline.steps
                due_eval = last or "eval" in marks or _due(self.tick, t_cfg.eval_every)
                if due_eval and self.world.is_main:  # other ranks wait at the next all-reduce
                    scores = self.evaluate()
                    self._record(t, scores)
                    if self._diverged(t, scores):
                        return
                if last or "checkpoint" in marks or _due(self.tick, t_cfg.checkpoint_every):
                    self._checkpoint()
                elif stop and self.world.distributed:  # every rank agreed to stop after t
                    self._checkpoint()
                    self._set_status("stopped")
                    return
                elif self.world.is_main and self.rewind.due():  # for branching: no event
                    self.rewind.write(self.run_dir, self._save, partial(self._log, "warning"))
            if self.world.is_main and wants_int8_report(self.spec):  # from the last checkpoint
                self._record(self.tick - 1, int8_scalars(int8_report(self.run_dir)))
            self._set_status("finished")
        except (StoreError, ConfigError) as exc:  # one line says it all: no traceback
            self.error = str(exc)
            self._log("error", self.error)
            self._end("failed", self.error)
        except Exception as exc:  # surfaced to the user; what was written stays on disk
            self.error = f"{type(exc).__name__}: {exc}"
            if disk_full(exc):
                self.error = f"disk full: {self.run_dir}: {exc}"
            self._log("error", traceback.format_exc())
            if lost_a_peer(exc, self.world):
                self._end("interrupted", f"another rank failed: {self.error}")
            else:
                self._end("failed", self.error)
        finally:
            self._close()

    def _close(self) -> None:
        """Release the store, the pump and the lock, whatever fails on the way."""
        try:
            self.store.close()
        except (StoreError, sqlite3.Error, OSError) as exc:
            self._log("error", str(exc))
        finally:
            self.pump.close()
            if self.lock is not None:
                self.lock.release()


def _due(done: int, every: int) -> bool:
    return bool(every) and done % every == 0


def start_run(
    spec: RunSpec,
    runs_dir: str | Path | None = None,
    sink: Sink | None = None,
    *,
    name: str | None = None,
    paused: bool = False,
    world: World = SINGLE,
    preset: str | None = None,
) -> RunHandle:
    """Create a run folder under ``runs_dir`` and start training ``spec`` in the background
    (``paused``: wait before the first tick for ``resume()`` or ``step()``). ``preset``: the
    preset or study the spec was made from (its file's stem), kept in the run's metadata for
    the Runs browser; a spec edited after loading still names the preset it came from.

    Raises ConfigError (before any thread starts, and before anything is written) when the data
    or model cannot be built, and StoreError when the runs directory cannot be written.
    """
    runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
    if name:
        spec = dataclasses.replace(spec, name=name)
    trainer = _Trainer(set_up(spec, world))
    lock = run_dir = None
    if world.is_main:

        def prepare(folder: Path) -> None:
            nonlocal lock
            lock = RunLock(folder)  # the descriptor stays valid when the folder is renamed
            try:
                trainer.write_new_run(folder, preset)
            except BaseException:
                lock.release()
                raise

        run_dir = new_run_dir(runs_dir, spec.name, prepare)
    # rank 0 names the folder; every rank of a distributed run learns it
    run_dir = Path(broadcast_object(str(run_dir) if world.is_main else None, world))
    return _launch(trainer, run_dir, sink, False, lock, paused)


def resume_run(
    run_dir: str | Path, sink: Sink | None = None, *, paused: bool = False, world: World = SINGLE
) -> RunHandle:
    """Continue a stopped or interrupted run from its last checkpoint, in the same folder.

    Rows logged after that checkpoint are replaced by the replay, so the curve has no duplicates.
    A run another process is training is refused (StoreError) before anything is read.
    """
    run_dir = Path(run_dir)
    record = RunRecord(run_dir)  # only ever a run folder
    lock = RunLock(run_dir) if world.is_main else None
    try:
        if world.is_main and record.status in ("running", "paused"):
            raise StoreError(f"{run_dir} is still being written by another process")
        stored = {**record.meta, "vocab": record.vocab}
        trainer = _Trainer(set_up(load_spec(run_dir / "spec.yaml"), world, stored))
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return _launch(trainer, run_dir, sink, True, lock, paused)


def _launch(
    trainer: _Trainer,
    run_dir: Path,
    sink: Sink | None,
    resume: bool,
    lock: RunLock | None,
    paused: bool,
) -> RunHandle:
    trainer.lock = lock
    try:
        trainer.attach(run_dir, sink, resume, lock)
    except BaseException:
        if hasattr(trainer, "pump"):
            trainer._close()
        elif lock is not None:
            lock.release()
        raise
    if paused:
        trainer.control("pause")
    trainer.thread.start()
    return RunHandle(trainer)
