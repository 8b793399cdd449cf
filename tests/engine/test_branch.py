"""Branching from any tick: a replay from the nearest checkpoint (or the start) reaches the
parent's exact state, so an unchanged branch trains what the parent trained, to the last digit
(CPU, one torch thread), and an edited one differs only from the edit on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import ConfigError, branch_run, open_run, replace, start_run
from engine.branch import REPLAY_PREFIX
from tests.engine.helpers import tiny_spec

ROOT = Path(__file__).resolve().parents[2]
STEPS = 40


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    spec = tiny_spec(train={"steps": STEPS, "checkpoint_every": 10, "keep_checkpoints": 0})
    handle = start_run(spec, runs)
    assert handle.join(120) and handle.status == "finished", handle.error
    return handle.run_dir


def _losses(run_dir):
    ticks, values = open_run(run_dir).scalars("train/loss")
    return dict(zip(ticks.tolist(), values.tolist()))


def _branch(parent, tmp_path, at, spec=None):
    handle = branch_run(parent, at, spec, name=f"branch-{at}", runs_dir=tmp_path)
    assert handle.join(120) and handle.status == "finished", handle.error
    assert not list(tmp_path.glob(f"{REPLAY_PREFIX}*"))  # the replay is gone
    return handle.run_dir


@pytest.mark.parametrize("at", [25, 5])  # after a checkpoint (20), before any (from the start)
def test_an_unchanged_branch_trains_what_its_parent_trained_from_its_tick(parent, tmp_path, at):
    child = _branch(parent, tmp_path, at)
    mine, theirs = _losses(child), _losses(parent)
    assert sorted(mine) == list(range(at, STEPS))  # its curve starts at its tick
    assert all(mine[t] == theirs[t] for t in mine)  # to the last digit
    origin = open_run(child).meta["forked_from"]
    assert origin["tick"] == at and origin["run"] == str(parent)
    assert origin["replayed"] == 5  # from tick 20, or from the start


def test_a_branch_with_a_new_ln_event_differs_only_from_the_event_on(parent, tmp_path):
    spec = replace(
        open_run(parent).spec,
        {"timeline.layernorm": [{"at": 30, "action": "ramp", "to": 0.0, "over": 5}]},
    )
    child = _branch(parent, tmp_path, 25, spec)
    mine, theirs = _losses(child), _losses(parent)
    assert all(mine[t] == theirs[t] for t in range(25, 30))
    assert all(mine[t] != theirs[t] for t in range(31, STEPS))


def test_a_checkpoint_tick_is_a_plain_fork(parent, tmp_path):
    child = _branch(parent, tmp_path, 20)
    assert open_run(child).meta["forked_from"]["checkpoint"] == "tick_0000020.pt"
    assert all(v == _losses(parent)[t] for t, v in _losses(child).items())


def test_a_tick_outside_the_run_is_refused_in_one_line(parent, tmp_path):
    with pytest.raises(ConfigError, match="not inside the parent's run"):
        branch_run(parent, STEPS, runs_dir=tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "engine", "branch", str(parent), "--at", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --at: tick 0 is not inside the parent's run (1 to 39)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_cli_branches_headless(parent, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "engine", "branch", str(parent), "--at", "33", "--name", "cli",
         "--runs-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    child = Path(done.stdout.strip().splitlines()[-1])
    assert child.parent == tmp_path and open_run(child).status == "finished"
    assert f"branch {child.name} from tick 33 of {parent.name} (3 ticks replayed)" in done.stderr
    assert all(v == _losses(parent)[t] for t, v in _losses(child).items())


def test_a_replay_left_by_a_killed_process_is_swept_by_the_next_branch(parent, tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid names a process that no longer runs, like one killed mid-replay
    dead = tmp_path / f"{REPLAY_PREFIX}{gone.pid}-x1"
    live = tmp_path / f"{REPLAY_PREFIX}{os.getpid()}-x2"  # this process's: still replaying
    for folder in (dead, live):
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "tick_0000021.pt").write_bytes(b"half a replay")
    handle = branch_run(parent, 25, runs_dir=tmp_path)
    assert handle.join(120) and handle.status == "finished", handle.error
    assert not dead.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.glob(f"{REPLAY_PREFIX}*")) == [live.name]


def test_a_replay_that_ends_before_the_tick_says_why_at_once(tmp_path):
    """A parent that diverged at tick 1, branched at tick 20: its replay diverges too, and the
    branch fails in one line as soon as it does, instead of waiting out the replay's deadline."""
    spec = tiny_spec(train={"optimizer": "sgd", "lr": 1e30, "grad_clip": 0.0, "steps": 50})
    parent = start_run(spec, tmp_path)
    assert parent.join(120) and parent.status == "diverged"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="ended diverged at tick 1, not at 20"):
        branch_run(parent.run_dir, 20, runs_dir=tmp_path, replay_timeout=60)
    assert time.monotonic() - started < 30
    assert [p.name for p in tmp_path.iterdir()] == [parent.run_dir.name]  # no replay left
