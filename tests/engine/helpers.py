"""Small run specs that train in a second or two on a 2-core CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from engine.checkpoint import checkpoint_path
from engine.config import RunSpec
from engine.runs import run_dirs
from engine.specs import parse_spec, save_spec

ROOT = Path(__file__).resolve().parents[2]


def tiny_spec(**sections) -> RunSpec:
    """A tiny decoder on the built-in corpus; ``sections`` override whole dict sections."""
    data = {
        "name": "tiny",
        "seed": 7,
        "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
        "data": {"source": "text", "path": "builtin:python-stdlib", "max_chars": 200_000},
        "train": {
            "steps": 30,
            "batch_size": 4,
            "eval_every": 10,
            "eval_batches": 2,
            "checkpoint_every": 10,
            "device": "cpu",
            # one torch thread: with one per core, a tiny model trains several times slower
            # whenever other processes keep the cores busy (and the losses depend on it)
            "threads": 1,
        },
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_spec(data)


def run_ticks_then_stop(spec, runs_dir, ticks: int, timeout: float = 120):
    """Start ``spec`` paused, step exactly ``ticks`` ticks, stop it; returns the handle."""
    import threading

    from engine.messages import Scalars
    from engine.trainer import start_run

    reached = threading.Event()

    def sink(batch):
        if any(isinstance(m, Scalars) and m.tick >= ticks - 1 for m in batch):
            reached.set()

    handle = start_run(spec, runs_dir, sink, paused=True)
    for _ in range(ticks):
        handle.step()
    assert reached.wait(timeout)
    handle.stop()
    assert handle.join(timeout) and handle.status == "stopped", handle.error
    assert handle.tick == ticks
    return handle


@contextmanager
def cli_run(spec: RunSpec, tmp_path: Path):
    """``python -m engine run`` of ``spec`` in a subprocess, its runs under ``tmp_path/runs``;
    yields the process, killed on the way out if it still runs."""
    spec_path = tmp_path / "spec.yaml"
    save_spec(spec, spec_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", spec_path, "--runs-dir", tmp_path / "runs"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def wait_for_checkpoint(runs: Path, tick: int, proc) -> Path:
    """The folder of the run ``proc`` trains under ``runs`` once its checkpoint at ``tick`` is on
    disk (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        for run_dir in run_dirs(runs):
            if checkpoint_path(run_dir, tick).exists():
                return run_dir
        time.sleep(0.005)
    raise AssertionError("the run never wrote the checkpoint")


def kill_9_at_checkpoint(proc, runs: Path, tick: int) -> Path:
    """SIGKILL ``proc`` once its run wrote the checkpoint at ``tick``; the run's folder."""
    run_dir = wait_for_checkpoint(runs, tick, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return run_dir
