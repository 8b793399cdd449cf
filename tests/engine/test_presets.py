"""Every preset loads, starts and trains; the seq2seq preset reaches its stated result (quickly
here, to its end in the slow tier); baby-gpt reaches its stated val loss (slow tier)."""

import threading
from pathlib import Path

import pytest

from engine import load_spec
from engine.messages import Scalars
from engine.runs import open_run
from engine.specs import replace
from engine.study import Study, load_preset, resolve_refs
from engine.trainer import start_run

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted(ROOT.glob("presets/*.yaml"))


SPECS = [p for p in PRESETS if not isinstance(load_preset(p), Study)]
STUDIES = [p for p in PRESETS if isinstance(load_preset(p), Study)]


def train_a_few_ticks(spec, runs_dir):
    """Train ``spec`` for 3 ticks, stop it (which writes a checkpoint); its run folder. One torch
    thread where the spec leaves the count to torch: with one per core, a busy CPU slows it
    several times."""
    if not spec.train.threads:
        spec = replace(spec, {"train.threads": 1})
    started = threading.Event()

    def sink(batch):
        if any(isinstance(m, Scalars) and m.tick >= 2 for m in batch):
            started.set()

    handle = start_run(spec, runs_dir, sink)
    assert started.wait(120)
    handle.stop()
    assert handle.join(120) and handle.status == "stopped", handle.error
    ticks, losses = open_run(handle.run_dir).scalars("train/loss")
    assert len(ticks) >= 3 and all(v == v for v in losses)
    return handle.run_dir


@pytest.mark.parametrize("spec", [load_preset(p) for p in SPECS], ids=lambda spec: spec.name)
def test_every_preset_trains_a_few_ticks(spec, tmp_path):
    assert spec.description, "a preset states what it is for and what it reaches"
    train_a_few_ticks(spec, tmp_path)


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_study_variant_trains_a_few_ticks(path, tmp_path):
    """Each variant in turn; one that starts from another's weights gets that run's
    checkpoint, as ``python -m engine study`` does."""
    study = load_preset(path)
    assert study.description, "a study states what it is for and what it measured"
    done = {}
    for name, spec in study.variants:
        done[name] = train_a_few_ticks(resolve_refs(spec, done), tmp_path)


def train_until(spec, runs_dir, metric: str, tick: int):
    """Train ``spec`` until ``metric`` is logged at ``tick``, then stop; the run's record."""
    reached = threading.Event()

    def sink(batch):
        if any(isinstance(m, Scalars) and m.tick >= tick and metric in m.values for m in batch):
            reached.set()

    handle = start_run(spec, runs_dir, sink)
    assert reached.wait(120) or handle.join(0), handle.error
    handle.stop()
    assert handle.join(60) and handle.status in ("stopped", "finished"), handle.error
    return open_run(handle.run_dir)


def test_sort_preset_learns_to_sort_in_its_first_100_ticks(tmp_path):
    """The fast half of presets/sort-seq2seq.yaml's claim, at its seed and its one torch thread:
    exact match on the 512 held-out sequences 0.877 at tick 99 (0.83 to 0.88 over seeds 1337, 1,
    2). The tolerance allows for another CPU's float rounding. The whole run (1.000 at the end)
    is the slow test below."""
    run = train_until(load_spec(ROOT / "presets/sort-seq2seq.yaml"), tmp_path, "val/accuracy", 99)
    ticks, acc = run.scalars("val/accuracy")
    assert ticks[0] == 99
    assert acc[0] == pytest.approx(0.877, abs=0.05), f"exact match {acc[0]} at tick 99"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sort_preset_sorts_every_held_out_sequence(tmp_path):
    """The claim in presets/sort-seq2seq.yaml: every held-out sequence sorted at the end. Measured
    1.000 from tick 1299 at seed 1337 with the preset's one torch thread (from tick 799 at seeds
    1 and 2), about 1 minute. Another CPU's rounding may cost one of the 512 (this machine gets
    0.998 with two threads), so that much is allowed."""
    handle = start_run(load_spec(ROOT / "presets/sort-seq2seq.yaml"), tmp_path)
    assert handle.join(540) and handle.status == "finished", handle.error
    ticks, acc = open_run(handle.run_dir).scalars("val/accuracy")
    assert acc[-1] >= 511 / 512, f"exact match {acc[-1]} at tick {ticks[-1]}"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_baby_gpt_reaches_its_stated_val_loss(tmp_path):
    """The claim in presets/baby-gpt.yaml: val loss 1.7746 after 2000 ticks at seed 1337 with
    one torch thread (as the workbench trains it on a 2-core CPU; the preset itself leaves the
    thread count to torch). The tolerance allows for another CPU's rounding."""
    spec = replace(load_spec(ROOT / "presets/baby-gpt.yaml"), {"train.threads": 1})
    handle = start_run(spec, tmp_path)
    assert handle.join(1100) and handle.status == "finished", handle.error
    _, val = open_run(handle.run_dir).scalars("val/loss")
    assert val[-1] == pytest.approx(1.7746, abs=0.03)
