"""Run folders for the Runs-browser tests, made with the headless API (no GUI involved).

``base_runs`` trains them once per test module; ``copy_runs`` gives each test its own copies, so
tests that rename, fork or delete do not see each other's changes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import engine
from engine.runs import RunWriter
from tests.engine.helpers import run_ticks_then_stop, tiny_spec

TIMEOUT = 60
# Shared machine: one core for the run, one for the GUI; no real activation captures (some
# fixtures write synthetic ones).
ONE_THREAD = {"threads": 1, "stats_every": 0}


def spec(name: str, **sections) -> engine.RunSpec:
    train = {**ONE_THREAD, **sections.pop("train", {})}
    return tiny_spec(name=name, train=train, **sections)


def finish(s: engine.RunSpec, runs_dir: Path) -> Path:
    handle = engine.start_run(s, runs_dir)
    assert handle.join(TIMEOUT), "run did not end"
    return handle.run_dir


def mark_writer_dead(run_dir: Path) -> None:
    """Leave the run as a writer that died mid-run does: status running, its process gone."""
    writer = RunWriter(run_dir)
    writer.set_status("running", engine.open_run(run_dir).summary().ticks)
    writer.set_meta(pid=_dead_pid())
    writer.close()


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make_base_runs(root: Path) -> dict[str, Path]:
    """alpha and beta finished (beta: another LR, its note moved), gamma diverged, delta
    interrupted after 20 of 60 ticks (checkpoints at 10 and 20)."""
    runs = {
        "alpha": finish(spec("alpha", timeline={"marks": [{"at": 10, "text": "look"}]}), root),
        "beta": finish(
            spec("beta", train={"lr": 3e-3}, timeline={"marks": [{"at": 15, "text": "look"}]}),
            root,
        ),
        "gamma": finish(
            spec("gamma", train={"optimizer": "sgd", "lr": 1e30, "grad_clip": 0.0, "steps": 50}),
            root,
        ),
    }
    delta = run_ticks_then_stop(spec("delta", train={"steps": 60}), root, 20)
    mark_writer_dead(delta.run_dir)
    runs["delta"] = delta.run_dir
    return runs


def copy_runs(base: dict[str, Path], target: Path) -> dict[str, Path]:
    target.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, path in base.items():
        out[name] = Path(shutil.copytree(path, target / path.name))
    return out
