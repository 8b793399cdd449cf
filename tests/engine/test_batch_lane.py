"""The batch-size lane (``timeline.batch``): rounding, positions in tokens and epochs against the
integrated batch curve, the CSV, what a run logs, resume mid-ramp, ``lr_batch_scaling`` and the
refusals. Tiny CPU runs, one thread.

One batch of 32 against 4 x 8 accumulated (the lane's ticks train in ``train.micro_batch``
parts) is ``test_micro_batch.py::test_micro_batches_give_the_whole_batchs_loss_and_gradients``;
here a ramp trained in micro-batches matches the same ramp trained whole."""

from __future__ import annotations

import csv
import dataclasses
import io
import os

import numpy as np
import pytest

import engine
from engine.batch_schedule import round_half_up
from engine.cli import main as cli_main
from engine.config import RunSpec, from_dict
from engine.distributed import SINGLE
from engine.errors import ConfigError
from engine.runs import open_run
from engine.setup import set_up
from engine.specs import save_spec
from engine.timeline import compile_timeline
from engine.trainer import resume_run, start_run

from .helpers import cli_run, kill_9_at_checkpoint, tiny_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = {"eval_every": 0, "stats_every": 0, "checkpoint_every": 0}
# 3, 4, ..., 10 sequences over ticks 0..7 (u = (t + 1) / 8), then train.batch_size = 4
RAMP = [{"start": 0, "end": 8, "shape": "linear", "from": 2, "to": 10}]


def lane_spec(batch=RAMP, timeline=None, **train):
    """The tiny spec with ``batch`` as its lane (and other timeline lists), validated."""
    return tiny_spec(
        train={**QUIET, "steps": 16, **train}, timeline={"batch": batch, **(timeline or {})}
    )


def raw_spec(timeline, steps=16):
    """The tiny spec's fields without validation (no data read): for compiling by hand."""
    data = {
        "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
        "train": {"steps": steps, "batch_size": 4, "device": "cpu"},
        "timeline": timeline,
    }
    return from_dict(RunSpec, data)


def finished(spec, runs_dir):
    handle = start_run(spec, runs_dir)
    assert handle.join(60) and handle.status == "finished", handle.error
    return open_run(handle.run_dir)


def test_the_curve_is_rounded_half_up_and_train_batch_size_holds_outside():
    spec = lane_spec(
        [
            {"start": 2, "end": 6, "shape": "linear", "from": 2, "to": 5},  # 2.75 3.5 4.25 5
            {"start": 8, "end": 11, "shape": "step", "from": 9, "milestones": [9], "gamma": 0.5},
        ]
    )
    tl = compile_timeline(spec)
    assert tl.batch_curve().tolist() == [4, 4, 3, 4, 4, 5, 4, 4, 9, 5, 5, 4, 4, 4, 4, 4]
    assert round_half_up(np.array([0.5, 1.5, 2.49, 12.5 - 1e-12])).tolist() == [1, 2, 2, 13]
    assert [s.source for s in tl.spans("batch")] == ["timeline.batch[0]", "timeline.batch[1]"]


def test_positions_in_tokens_and_epochs_land_where_the_integral_says():
    # the tokens each tick trains: batch x 16 (text: context tokens per sequence)
    marks = [{"at": f"{n}tok", "action": "note"} for n in (0, 47, 48, 671, 672, 831, 832, 900)]
    spec = raw_spec({"batch": RAMP, "marks": marks + [{"at": "1ep", "action": "note"}]}, 40)
    tl = compile_timeline(spec, tokens_in_split=1000, tokens_per_tick=4 * 16)
    rows = [3, 4, 5, 6, 7, 8, 9, 10] + [4] * 32
    before = [16 * sum(rows[:t]) for t in range(41)]  # the hand integral: tokens before tick t

    def hand(tokens):
        return max(t for t in range(41) if before[t] <= tokens)

    got = [e.tick for e in tl.edges()]
    assert got == sorted(hand(n) for n in (0, 47, 48, 671, 672, 831, 832, 900, 1000))
    assert got == [0, 0, 1, 6, 7, 7, 8, 9, 10]
    assert tl.tokens_at(np.arange(41)).tolist() == before
    assert [tl.tokens_of_tick(t) for t in range(40)] == [16 * r for r in rows]
    # without the lane, the constant fast path: floor(tokens / tokens_per_tick)
    flat = compile_timeline(raw_spec({}), tokens_per_tick=64)
    assert flat.units.curve is None and flat.resolve("831tok") == 12


def test_the_csv_the_run_and_the_tokens_axis_agree_on_a_ramp(tmp_path, capsys):
    phases = [{"name": "ramp", "start": 0, "lr_batch_scaling": "linear"}]
    lr = [{"start": 0, "end": "100%", "shape": "cosine", "from": 1.0e-3, "to": 1.0e-4}]
    spec = lane_spec(timeline={"phases": phases, "lr": lr}, steps=20)
    path = tmp_path / "ramp.yaml"
    save_spec(spec, path)
    capsys.readouterr()
    assert cli_main(["timeline", str(path), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    plan = engine.plan_timeline(spec)
    run = finished(spec, tmp_path / "runs")
    ticks, logged = run.scalars("batch_size")
    assert ticks.tolist() == list(range(20))
    assert [int(r["batch_size"]) for r in rows] == logged.astype(int).tolist()
    assert logged.astype(int).tolist() == plan.batch_curve().tolist()
    assert logged.astype(int).tolist() == [3, 4, 5, 6, 7, 8, 9, 10] + [4] * 12
    # the tokens column is the plots' tokens axis, the sum of what the run trained
    per_row = run.meta["tokens_per_tick"] // spec.train.batch_size
    tokens = [int(r["tokens"]) for r in rows]
    assert tokens == np.cumsum(logged.astype(int) * per_row).tolist()
    assert tokens == plan.tokens_at(ticks + 1).tolist()
    # lr_batch_scaling: linear multiplies the LR by batch / train.batch_size
    _, lr_logged = run.scalars("lr")
    unscaled = np.array([float(r["lr_unscaled"]) for r in rows])
    assert lr_logged.tolist() == plan.lr_curve().tolist() == [float(r["lr"]) for r in rows]
    np.testing.assert_allclose(lr_logged, unscaled * logged / 4, rtol=1e-15)


def test_sqrt_scaling_and_a_phase_without_it():
    phases = [
        {"name": "a", "start": 0, "lr_batch_scaling": "sqrt"},
        {"name": "b", "start": 4},  # none: the LR as written
    ]
    tl = compile_timeline(raw_spec({"batch": RAMP, "phases": phases}))
    batch, lr = tl.batch_curve(), tl.lr_curve()
    np.testing.assert_allclose(lr[:4], 1e-3 * np.sqrt(batch[:4] / 4), rtol=1e-15)
    assert lr[4:].tolist() == [1e-3] * 12 and batch[4:8].tolist() == [7, 8, 9, 10]


def test_a_ramp_in_micro_batches_trains_like_the_ramp_whole(tmp_path):
    whole = finished(lane_spec(steps=10), tmp_path / "whole")
    parts = finished(lane_spec(steps=10, micro_batch=3), tmp_path / "parts")
    np.testing.assert_allclose(
        parts.scalars("train/loss")[1], whole.scalars("train/loss")[1], rtol=1e-5
    )
    assert parts.scalars("batch_size")[1].tolist() == whole.scalars("batch_size")[1].tolist()


def test_kill_9_mid_ramp_and_resume_give_identical_losses(tmp_path):
    ramp = [{"start": 0, "end": 50, "shape": "linear", "from": 1, "to": 12}]
    spec = lane_spec(ramp, steps=80, checkpoint_every=10, eval_every=40)
    with cli_run(spec, tmp_path) as proc:
        ref = finished(spec, tmp_path / "ref")  # while the child starts up
        run_dir = kill_9_at_checkpoint(proc, tmp_path / "runs", 20)  # mid-ramp
    assert open_run(run_dir).status == "interrupted"
    handle = resume_run(run_dir)
    assert handle.join(60) and handle.status == "finished", handle.error
    resumed = open_run(run_dir)
    for metric in ("train/loss", "val/loss", "batch_size", "lr"):
        assert resumed.scalars(metric)[1].tolist() == ref.scalars(metric)[1].tolist(), metric


def test_a_steered_run_splices_the_batch_curve_and_its_tokens():
    old = compile_timeline(raw_spec({"batch": RAMP}), tokens_per_tick=64)
    new = compile_timeline(raw_spec({}), tokens_per_tick=64)
    spliced = old.spliced(new, 5)
    assert spliced.batch_curve().tolist() == [3, 4, 5, 6, 7] + [4] * 11
    assert spliced.tokens_at(16) == 16 * (25 + 4 * 11)
    again = compile_timeline(raw_spec({"batch": RAMP}), tokens_per_tick=64)
    assert old.spliced(again, 3).units == old.units


def _item(**fields):
    return {"start": 4, "end": 12, "shape": "linear", "from": 2, "to": 10} | fields


@pytest.mark.parametrize(
    "item,path,words",
    [
        (_item(**{"from": 0}), ".from", "whole number"),
        (_item(to=2.5), ".to", "whole number"),
        (_item(to=70000), ".to", "1..65536"),
        (_item(shape="points", points=[[0, 4], [1, 0]]), ".points[1]", "1..65536"),
        (_item(shape="step", milestones=[6, 8], gamma=0.1, **{"from": 8}), ".gamma", "at least 1"),
        (_item(shape="step", milestones=[6], gamma=1e300, **{"from": 8}), ".gamma", "at most"),
        (_item(start="10tok"), ".start", "ticks or %"),
        (_item(end="1ep"), ".end", "ticks or %"),
        (_item(end=17), ".end", "past the end"),
        (_item(start=2), ".start", "overlaps"),
    ],
)
def test_bad_batch_values_are_refused_naming_their_field(item, path, words):
    with pytest.raises(ConfigError) as err:
        lane_spec([{"start": 0, "end": 4, "from": 4}, item])
    assert err.value.path == "timeline.batch[1]" + path, err.value
    assert words in err.value.reason


def test_a_bad_scaling_rule_names_its_phase():
    with pytest.raises(ConfigError) as err:
        lane_spec(timeline={"phases": [{"name": "a", "lr_batch_scaling": "square"}]})
    assert err.value.path == "timeline.phases[0].lr_batch_scaling"


def test_a_peak_batch_past_memory_is_refused_at_its_field_unless_micro_batches_hold_it():
    big = {"n_layer": 2, "n_head": 2, "d_model": 64, "d_ff": 128, "context": 512}
    ramp = [{"start": 0, "end": 4, "shape": "linear", "from": 1, "to": 60000}]
    spec = tiny_spec(model=big, train={**QUIET, "steps": 4}, timeline={"batch": ramp})
    with pytest.raises(ConfigError) as err:
        set_up(spec, SINGLE)
    assert err.value.path == "timeline.batch[0].to" and "GB for training" in err.value.reason
    set_up(dataclasses.replace(spec, train=dataclasses.replace(spec.train, micro_batch=4)), SINGLE)
