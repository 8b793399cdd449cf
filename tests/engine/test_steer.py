"""Steering a running run: revisions of its timeline from a tick on, sent from the same process
(the window's path), from ``python -m engine steer`` in another one, and under torchrun; a
resumed run replays them. Every run is on the CPU with one torch thread, so the comparisons are
to the last digit."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import dump_spec, open_run, replace, spec_from_yaml, start_run, steer_run
from engine.cli import main as cli
from engine.runs import run_dirs
from engine.specs import save_spec
from engine.trainer import resume_run
from tests.engine.helpers import tiny_spec

ROOT = Path(__file__).resolve().parents[2]
FAST = {"checkpoint_every": 50, "eval_every": 100, "stats_every": 0, "lr": 1e-3}


def _steered(spec, runs, revisions, at_tick=0):
    """Run ``spec`` in this process, sending ``revisions`` ([(spec, from_tick)]) while paused
    at ``at_tick``; the finished handle."""
    handle = start_run(spec, runs, paused=True)
    for _ in range(at_tick):
        handle.step()
    deadline = time.monotonic() + 60
    while handle.tick < at_tick:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    for rev, frm in revisions:
        handle.steer(dump_spec(rev), frm)
    _wait_settled(handle.run_dir, len(revisions))
    handle.resume()
    assert handle.join(120) and handle.status == "finished", handle.error
    return handle


def _wait_settled(run_dir, n):
    deadline = time.monotonic() + 30
    while True:
        revs = open_run(run_dir).revisions()
        if len(revs) == n and all(r.state != "pending" for r in revs):
            return revs
        assert time.monotonic() < deadline, revs
        time.sleep(0.02)


def _series(run_dir, metric="train/loss"):
    ticks, values = open_run(run_dir).scalars(metric)
    return dict(zip(ticks.tolist(), values.tolist()))


def test_an_lr_edit_applies_from_its_tick_and_the_past_stays(tmp_path):
    spec = tiny_spec(train={"steps": 60, **FAST})
    new = replace(spec, {"train.lr": 3e-4, "train.weight_decay": 0.0})
    handle = _steered(spec, tmp_path, [(new, 40)], at_tick=20)  # sent at 20, applies from 40
    lr = _series(handle.run_dir, "lr")
    assert all(lr[t] == 1e-3 for t in range(40)) and all(lr[t] == 3e-4 for t in range(40, 60))
    decay = [g["weight_decay"] for g in handle._trainer.optimizer.param_groups]
    assert decay == [0.0, 0.0]  # the revision's weight decay rules from 40 on
    (rev,) = open_run(handle.run_dir).revisions()
    assert (rev.state, rev.tick, rev.number, rev.source) == ("applied", 40, 1, "window")
    assert rev.detail == "train.lr, train.weight_decay"
    events = [e for e in open_run(handle.run_dir).events() if e.kind == "revision"]
    assert [(e.tick, e.detail["label"]) for e in events] == [
        (40, "rev 1: train.lr, train.weight_decay")
    ]
    assert open_run(handle.run_dir).spec == spec  # spec.yaml stays the spec it started with
    # the same run, left alone until 40, trained the same losses there
    plain = start_run(spec, tmp_path / "plain")
    assert plain.join(120)
    mine, theirs = _series(handle.run_dir), _series(plain.run_dir)
    assert all(mine[t] == theirs[t] for t in range(41))  # tick 40's loss is before its step
    assert mine[45] != theirs[45]


def test_a_refused_edit_changes_nothing(tmp_path):
    spec = tiny_spec(train={"steps": 40, **FAST})
    bad = [
        (replace(spec, {"train.lr": 5e-4}), 10),  # the past: the run is at 20
        (replace(spec, {"model.d_model": 64}), None),  # the model's shape
        (replace(spec, {"train.batch_size": 8}), None),  # the data stream
        (replace(spec, {"timeline.phases": [{"name": "a"}, {"name": "b", "start": 5}]}), 25),
        (replace(spec, {"train.lr": 5e-4, "train.steps": 22}), 25),  # ends before its tick
    ]
    handle = _steered(spec, tmp_path, bad, at_tick=20)
    revs = open_run(handle.run_dir).revisions()
    assert [r.state for r in revs] == ["refused"] * 5
    reasons = [r.detail for r in revs]
    assert "tick 10 is already trained (the run is at tick 20)" in reasons[0]
    assert reasons[1].startswith("model.d_model cannot change during a run")
    assert reasons[2].startswith("train.batch_size cannot change during a run")
    assert "would start at tick 5, in the past" in reasons[3]
    assert "ends the run before tick 25" in reasons[4]
    assert all("\n" not in r for r in reasons)  # one line each
    plain = start_run(spec, tmp_path / "plain")
    assert plain.join(120)
    assert _series(handle.run_dir) == _series(plain.run_dir)
    assert not [e for e in open_run(handle.run_dir).events() if e.kind == "revision"]


def test_a_later_revision_replaces_an_earlier_one_from_its_own_tick(tmp_path):
    spec = tiny_spec(train={"steps": 50, **FAST})
    first = replace(spec, {"train.lr": 3e-4})
    second = replace(spec, {"train.lr": 2e-4})
    handle = _steered(spec, tmp_path, [(first, 40), (second, 30)], at_tick=10)
    lr = _series(handle.run_dir, "lr")
    assert [lr[29], lr[30], lr[45]] == [1e-3, 2e-4, 2e-4]
    assert [r.number for r in open_run(handle.run_dir).revisions()] == [1, 2]


def test_a_revision_adds_a_layernorm_removal_to_the_future(tmp_path):
    spec = tiny_spec(train={"steps": 40, **FAST})
    ramp = {"at": 10, "action": "ramp", "to": 0.0, "over": 5}  # written before the tick
    new = replace(spec, {"timeline.layernorm": [ramp]})
    handle = _steered(spec, tmp_path, [(new, 25)], at_tick=20)
    strength = _series(handle.run_dir, "ln_strength/final")
    # new's strength is 0 by tick 25: from there it applies, the past stays at 1
    assert strength == {25: 0.0}
    events = [e for e in open_run(handle.run_dir).events() if e.kind == "norm"]
    assert [(e.tick, e.detail["action"]) for e in events] == [(25, "calibrate")]


def _wait_tick(run_dir, tick, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended first"
        ticks, _ = open_run(run_dir).scalars("train/loss")
        if len(ticks) and ticks[-1] >= tick:
            return int(ticks[-1])
        time.sleep(0.01)
    raise AssertionError(f"tick {tick} never came")


def _run_dir(runs, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        found = run_dirs(runs)
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError("no run folder appeared")


def test_steer_cli_against_a_cli_run_then_kill_9_and_resume_replays_it(tmp_path, capsys):
    spec = tiny_spec(train={"steps": 20_000, **FAST})
    path = tmp_path / "spec.yaml"
    save_spec(spec, path)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", path, "--runs-dir", runs],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        run_dir = _run_dir(runs, proc)
        seen = _wait_tick(run_dir, 20, proc)
        # a refused edit: exit 2, one line, and the run goes on as before
        save_spec(replace(spec, {"train.lr": 5e-4}), tmp_path / "past.yaml")
        assert cli(["steer", str(run_dir), str(tmp_path / "past.yaml"), "--from", "1"]) == 2
        said = capsys.readouterr().err.strip()
        assert said.startswith("refused: tick 1 is already trained") and "\n" not in said
        seen = _wait_tick(run_dir, seen, proc)
        _stop_between_writes(proc, run_dir)  # holds still while the steering CLI starts
        new = replace(spec, {"train.lr": 3e-4})  # from the tick the run is really at
        save_spec(new, tmp_path / "new.yaml")
        steer = subprocess.Popen(
            [sys.executable, "-m", "engine", "steer", run_dir, tmp_path / "new.yaml"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(open_run(run_dir).revisions()) < 2:
            assert time.monotonic() < deadline and steer.poll() is None, steer.stderr
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGCONT)
        out, err = steer.communicate(timeout=60)
        assert steer.returncode == 0, err
        at = open_run(run_dir).revisions()[-1].tick
        assert seen < at and out.strip() == f"rev 1 applies from tick {at}: train.lr"
        _wait_tick(run_dir, at + 60, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(30)
    assert open_run(run_dir).status == "interrupted"
    assert [r.state for r in open_run(run_dir).revisions()] == ["refused", "applied"]
    assert cli(["steer", str(run_dir), str(tmp_path / "new.yaml")]) == 2  # not running
    assert "interrupted: only a running run can be steered" in capsys.readouterr().err
    # resumed from its last checkpoint to 20 ticks past what the killed process committed,
    # against the same steered run left alone for as many ticks
    end = max(_series(run_dir)) + 20
    resumed = resume_run(run_dir, paused=True)
    _step_to(resumed, end)
    alone = start_run(spec, tmp_path / "alone", paused=True)
    alone.steer(dump_spec(new), at)
    _step_to(alone, end)
    mine, theirs = _series(run_dir), _series(alone.run_dir)
    assert sorted(mine) == list(range(end)) and mine == theirs  # to the last digit
    lr = _series(run_dir, "lr")
    assert lr[at - 1] == 1e-3 and lr[at] == 3e-4


def _stop_between_writes(proc, run_dir):
    """SIGSTOP the run at a moment it holds no write lock on its store: stopped inside a write
    (a commit), it would keep a steer waiting out its whole deadline, as it would any writer."""
    for _ in range(200):
        os.kill(proc.pid, signal.SIGSTOP)
        stat = Path(f"/proc/{proc.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":  # stopped for sure
            assert time.monotonic() < deadline
            time.sleep(0.001)
        con = sqlite3.connect(run_dir / "metrics.sqlite", timeout=0, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # locked: let it commit, and try again
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        finally:
            con.close()
    raise AssertionError("the run never left its store unlocked")


def _step_to(handle, end):
    """Train a paused run up to tick ``end``, then stop it."""
    for _ in range(end - handle.tick):
        handle.step()
    deadline = time.monotonic() + 300
    while handle.tick < end:
        assert time.monotonic() < deadline and handle.status in ("running", "paused")
        time.sleep(0.01)
    handle.stop()
    assert handle.join(60) and handle.status == "stopped", handle.error


def test_steer_run_is_refused_for_a_run_that_is_not_running(tmp_path):
    spec = tiny_spec(train={"steps": 5, **FAST})
    handle = start_run(spec, tmp_path)
    assert handle.join(60)
    with pytest.raises(RuntimeError, match="finished: only a running run can be steered"):
        steer_run(handle.run_dir, spec)
    for tick in (-5, 10**20):  # SQLite's INTEGER holds neither as a tick
        with pytest.raises(RuntimeError, match=f"--from {tick}: a tick is a whole number"):
            steer_run(handle.run_dir, spec, tick)
    assert open_run(handle.run_dir).revisions() == []


def test_a_store_locked_past_the_deadline_is_one_line_and_leaves_no_revision(tmp_path):
    spec = tiny_spec(train={"steps": 5, **FAST})
    handle = start_run(spec, tmp_path, paused=True)  # live: paused before its first tick
    lock = sqlite3.connect(handle.run_dir / "metrics.sqlite", isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the store
        with pytest.raises(RuntimeError, match="cannot send the revision: database is locked"):
            steer_run(handle.run_dir, replace(spec, {"train.lr": 1e-4}), timeout=0.5)
        lock.execute("ROLLBACK")
    finally:
        lock.close()
        handle.resume()
    assert handle.join(60) and handle.status == "finished", handle.error
    assert open_run(handle.run_dir).revisions() == []


def test_a_torchrun_job_takes_the_cli_revision_on_every_rank(tmp_path, capsys):
    from tests.engine.test_distributed import TORCHRUN

    spec = tiny_spec(train={"steps": 20_000, **FAST})
    path = tmp_path / "spec.yaml"
    save_spec(spec, path)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [*TORCHRUN, "-m", "engine", "run", path, "--runs-dir", runs],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the launcher and both ranks
    )
    try:
        run_dir = _run_dir(runs, proc)
        _wait_tick(run_dir, 10, proc)
        new = replace(spec, {"train.lr": 3e-4})
        save_spec(new, tmp_path / "new.yaml")
        # the CLI's own code (argparse, output, exit status) in this process: a fresh
        # interpreter would add seconds of imports while the job races on
        assert cli(["steer", str(run_dir), str(tmp_path / "new.yaml")]) == 0
        at = open_run(run_dir).revisions()[0].tick  # rank 0 read it; the all-reduce told rank 1
        assert capsys.readouterr().out.strip() == f"rev 1 applies from tick {at}: train.lr"
        _wait_tick(run_dir, at + 50, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    # had rank 1 kept the old LR, the logged loss (the mean over ranks) would leave the
    # single process's after tick ``at``; compared over the ticks the killed job committed
    a = _series(run_dir)
    n = max(a) + 1
    assert sorted(a) == list(range(n)) and n > at + 50
    single = replace(spec, {"train.batch_size": 8, "train.steps": n})
    wider = replace(new, {"train.batch_size": 8, "train.steps": n})
    b = _series(_steered(single, tmp_path / "alone", [(wider, at)]).run_dir)
    assert max(abs(a[t] - b[t]) / b[t] for t in a) < 1e-5  # same batches, reduction order aside


def test_export_lists_the_revisions(tmp_path, capsys):
    import csv
    import io

    spec = tiny_spec(train={"steps": 30, **FAST})
    new = replace(spec, {"train.lr": 3e-4})
    handle = _steered(spec, tmp_path, [(new, 20), (replace(spec, {"seed": 1}), None)], at_tick=10)
    assert cli(["export", str(handle.run_dir), "--format", "revisions"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["rev"], r["state"], r["tick"], r["detail"][:4]) for r in rows] == [
        ("1", "applied", "20", "trai"),
        ("", "refused", "", "seed"),
    ]
    assert spec_from_yaml(rows[0]["spec"]) == new


def test_a_branch_of_a_steered_run_replays_its_revisions(tmp_path):
    from engine import branch_run

    spec = tiny_spec(train={"steps": 60, **FAST, "checkpoint_every": 20})
    new = replace(spec, {"train.lr": 3e-4})
    parent = _steered(spec, tmp_path / "p", [(new, 15)], at_tick=5).run_dir
    # from the checkpoint at 20 (after the revision) and from the start (before it)
    for at in (35, 10):
        child = branch_run(parent, at, name=f"b{at}", runs_dir=tmp_path / "b")
        assert child.join(120) and child.status == "finished", child.error
        mine, theirs = _series(child.run_dir), _series(parent)
        assert sorted(mine) == list(range(at, 60)) and all(mine[t] == theirs[t] for t in mine)
    # an edited branch of it: its own spec from its tick on
    edited = branch_run(parent, 35, replace(new, {"train.lr": 1e-4}), runs_dir=tmp_path / "e")
    assert edited.join(120) and edited.status == "finished", edited.error
    lr = _series(edited.run_dir, "lr")
    assert lr[35] == 1e-4 and lr[59] == 1e-4


def test_rewind_points_spread_over_the_run_shorten_a_branch_replay(tmp_path, monkeypatch):
    from engine import branch_run, replay_start, spec_at
    from engine.checkpoint import checkpoint_tick
    from engine.rewind import REWIND_KEEP, rewind_points

    monkeypatch.setattr("engine.rewind.FIRST_POINT_SECONDS", 0.0)  # one after every tick
    monkeypatch.setattr("engine.rewind.rewind_interval", lambda seconds: 0.0)
    monkeypatch.setattr("engine.rewind.REWIND_BYTES", 0)  # keep the fewest: REWIND_KEEP
    spec = tiny_spec(train={"steps": 60, **FAST, "checkpoint_every": 0})
    new = replace(spec, {"train.lr": 3e-4})
    parent = _steered(spec, tmp_path / "p", [(new, 30)], at_tick=5).run_dir
    ticks = [checkpoint_tick(p) for p in rewind_points(parent)]
    assert len(ticks) == REWIND_KEEP and ticks[0] == 1 and ticks[-1] == 59
    assert max(b - a for a, b in zip(ticks, ticks[1:])) <= 4  # thinned evenly, not the oldest
    assert [c.name for c in open_run(parent).checkpoints()] == ["tick_0000060.pt"]
    start = replay_start(parent, 41)
    assert 37 <= start < 41  # a rewind point, not the start of the run
    assert spec_at(parent, 29) == spec and spec_at(parent, 41) == new
    child = branch_run(parent, 41, runs_dir=tmp_path / "b")
    assert child.join(120) and child.status == "finished", child.error
    assert open_run(child.run_dir).meta["forked_from"]["replayed"] == 41 - start
    mine, theirs = _series(child.run_dir), _series(parent)
    assert sorted(mine) == list(range(41, 60)) and all(mine[t] == theirs[t] for t in mine)


def test_rewind_points_are_kept_by_disk_and_saved_by_their_cost():
    from engine.rewind import REWIND_KEEP, REWIND_MAX, rewind_interval, rewind_keep

    mb = 2**20
    assert rewind_keep(10 * mb) == 25  # baby-gpt's points: 256 MB
    assert rewind_keep(2 * mb) == 128
    assert rewind_keep(1000) == REWIND_MAX and rewind_keep(0) == REWIND_MAX
    assert rewind_keep(2**30) == REWIND_KEEP  # a big model keeps the fewest, past the budget
    assert rewind_interval(0.1) == 5.0 and rewind_interval(0.04) == pytest.approx(2.0)
    assert rewind_interval(0.001) == 1.0 and rewind_interval(3.0) == 5.0
