"""Training on the background thread: the run store, controls, divergence and exact resume."""

import threading

import numpy as np
import pytest

from engine import ConfigError
from engine.messages import Scalars, Status
from engine.runs import open_run
from engine.specs import load_spec
from engine.trainer import resume_run, start_run

from .helpers import run_ticks_then_stop, tiny_spec

TIMEOUT = 120  # a hang guard only; no test waits on time


class Recorder:
    """A sink that keeps every message and lets a test wait for a status."""

    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    def __call__(self, batch):
        with self.cond:
            self.messages.extend(batch)
            self.cond.notify_all()

    def wait_for(self, predicate):
        with self.cond:
            assert self.cond.wait_for(lambda: any(predicate(m) for m in self.messages), TIMEOUT)

    def statuses(self):
        return [m.status for m in self.messages if isinstance(m, Status)]


def run_to_end(spec, runs_dir, sink=None):
    handle = start_run(spec, runs_dir, sink)
    assert handle.join(TIMEOUT)
    return handle


def test_a_run_trains_and_keeps_everything_on_disk(tmp_path):
    spec = tiny_spec()
    rec = Recorder()
    handle = run_to_end(spec, tmp_path, rec)
    assert handle.status == "finished", handle.error
    run = open_run(handle.run_dir)
    assert run.status == "finished"
    assert load_spec(handle.run_dir / "spec.yaml") == spec  # exactly what ran
    ticks, losses = run.scalars("train/loss")
    assert list(ticks) == list(range(30))
    assert losses[-5:].mean() < losses[0] - 0.5  # it learns: ~4.6 (uniform) falls well below
    val_ticks, _ = run.scalars("val/loss")
    assert list(val_ticks) == [9, 19, 29]
    assert {"lr", "grad_norm", "tokens_per_s"} <= set(run.metric_names())
    assert [p.name for p in run.checkpoints()] == [
        "tick_0000010.pt",
        "tick_0000020.pt",
        "tick_0000030.pt",
    ]
    assert run.meta["python_version"] and run.vocab and "vocab" not in run.meta
    # the sink saw the same numbers, batched, and the final status
    seen = {
        m.tick: m.values["train/loss"]
        for m in rec.messages
        if isinstance(m, Scalars) and "train/loss" in m.values
    }
    assert np.allclose([seen[t] for t in range(30)], losses)
    assert rec.statuses()[0] == "running" and rec.statuses()[-1] == "finished"


def test_pause_step_resume_stop_from_another_thread(tmp_path):
    rec = Recorder()
    handle = start_run(tiny_spec(train={"steps": 100_000}), tmp_path, rec)
    handle.pause()
    rec.wait_for(lambda m: isinstance(m, Status) and m.status == "paused")
    paused_at = handle.tick
    assert open_run(handle.run_dir).meta["status"] == "paused"
    handle.step()
    handle.step()
    rec.wait_for(lambda m: isinstance(m, Scalars) and m.tick == paused_at + 1)
    assert handle.status == "paused" and handle.tick == paused_at + 2
    handle.resume()
    rec.wait_for(lambda m: isinstance(m, Scalars) and m.tick >= paused_at + 10)
    handle.stop()
    assert handle.join(TIMEOUT)
    assert handle.status == "stopped"
    run = open_run(handle.run_dir)
    assert run.status == "stopped"
    assert run.checkpoints()[-1].name == f"tick_{handle.tick:07d}.pt"  # resumable from there


def test_stop_then_resume_gives_the_same_losses_as_one_run(tmp_path):
    spec = tiny_spec(train={"steps": 40, "checkpoint_every": 0})
    whole = open_run(run_to_end(spec, tmp_path / "a").run_dir)
    handle = run_ticks_then_stop(spec, tmp_path / "b", 17)
    resumed = resume_run(handle.run_dir)
    assert resumed.join(TIMEOUT) and resumed.status == "finished", resumed.error
    run = open_run(handle.run_dir)
    for metric in ("train/loss", "val/loss", "grad_norm", "lr"):
        t1, v1 = whole.scalars(metric)
        t2, v2 = run.scalars(metric)
        assert list(t1) == list(t2)
        assert v1.tolist() == v2.tolist(), metric  # bit for bit, not approximately
    assert [e.kind for e in run.events()].count("resume") == 1


def test_non_finite_loss_marks_the_run_diverged(tmp_path):
    spec = tiny_spec(train={"optimizer": "sgd", "lr": 1e30, "grad_clip": 0.0, "steps": 50})
    rec = Recorder()
    handle = run_to_end(spec, tmp_path, rec)
    assert handle.status == "diverged"
    run = open_run(handle.run_dir)
    assert run.status == "diverged"
    bad_tick = run.meta["status_tick"]
    assert 0 < bad_tick < 50
    ticks, losses = run.scalars("train/loss")
    assert list(ticks) == list(range(bad_tick))  # every finite tick before it was kept
    assert np.isfinite(losses).all()
    assert any(e.kind == "diverged" and e.tick == bad_tick for e in run.events())


def test_a_blocked_sink_never_stalls_training(tmp_path):
    release = threading.Event()
    handle = start_run(tiny_spec(), tmp_path, lambda batch: release.wait())
    try:
        # finished while the sink was still stuck on its first batch
        assert handle.join(TIMEOUT, delivered=False)
        assert not handle.join(0)  # ... which still holds the rest of the messages
        assert handle.status == "finished"
    finally:
        release.set()


def test_bad_data_path_raises_before_any_thread_and_leaves_no_folder(tmp_path):
    spec = tiny_spec(data={"path": str(tmp_path / "missing.txt")})
    with pytest.raises(ConfigError, match="data.path"):
        start_run(spec, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # set-up fails before anything is written


SEQ_TASKS = ["copy", "reverse", "sort", "add", "modadd", "brackets"]


@pytest.mark.parametrize("arch", ["decoder", "encoder_decoder"])
@pytest.mark.parametrize("source", SEQ_TASKS)
def test_every_task_trains_with_both_architectures(tmp_path, arch, source):
    data = {"source": source, "seq_len": 4, "modulus": 11, "val_fraction": 0.2}
    spec = tiny_spec(
        model={"arch": arch, "context": 16},
        data=data,
        train={"steps": 3, "eval_every": 3, "checkpoint_every": 0},
    )
    handle = run_to_end(spec, tmp_path)
    assert handle.status == "finished", handle.error
    names = set(open_run(handle.run_dir).metric_names())
    expected = (
        {"val/accuracy", "val/precision", "val/recall", "val/f1"}
        if source == "brackets"
        else {"val/accuracy", "val/token_accuracy"}
    )
    assert expected <= names
