"""One compiled timeline: the plan (``engine.plan_timeline``) is what the CLI prints, what the
trainer compiles and what a run logs, with positions in the data's real units."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.plan as plan_module
from engine.cli import main as cli_main
from engine.distributed import SINGLE
from engine.runs import open_run
from engine.setup import set_up
from engine.specs import parse_spec, replace
from engine.study import Study, load_preset
from engine.trainer import start_run

from .helpers import run_ticks_then_stop

ROOT = Path(__file__).resolve().parents[2]
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))

# every position unit; the modadd task holds 4 tokens per example, so a tick is 32 tokens,
# not the batch_size x context = 64 an estimate would take, and an epoch is 3536 tokens
MIXED = {
    "name": "mixed-units",
    "seed": 3,
    "model": {"n_layer": 2, "n_head": 2, "d_model": 16, "d_ff": 32, "context": 8},
    "data": {"source": "modadd", "modulus": 47, "val_fraction": 0.6},
    "train": {
        "steps": 160,
        "batch_size": 8,
        "eval_every": 0,
        "eval_batches": 1,
        "checkpoint_every": 0,
        "stats_every": 0,
        "device": "cpu",
        "threads": 1,
    },
    "timeline": {
        "phases": [{"name": "a", "start": 0}, {"name": "b", "start": "4Ktok", "lr_scale": 0.5}],
        "lr": [
            {"start": 0, "end": "320tok", "shape": "linear", "from": 0.0, "to": 1.0e-3},
            {"start": "15%", "end": "1ep", "shape": "cosine", "from": 1.0e-3, "to": 1.0e-4},
            {"start": "1ep", "end": "100%", "shape": "constant", "from": 1.0e-4},
        ],
        "layernorm": [
            {"at": "0.5ep", "action": "ramp", "to": 0.0, "over": 20, "layers": "all", "stagger": 5},
            {"at": 40, "action": "set", "strength": 0.5, "layers": "final"},
        ],
        "marks": [{"at": "1Ktok", "action": "note", "text": "one thousand tokens"}],
    },
}


def preset_specs():
    """(id, path, variant or None, spec) for every preset and every study variant."""
    out = []
    for path in PRESETS:
        preset = load_preset(path)
        if isinstance(preset, Study):
            out += [(f"{path.stem}:{n}", path, n, s) for n, s in preset.variants]
        else:
            out.append((path.stem, path, None, preset))
    return out


ALL = preset_specs()


def csv_of(compiled) -> str:
    out = io.StringIO()
    engine.write_timeline_csv(compiled, out)
    return out.getvalue()


def cli_csv(capsys, path, variant=None) -> str:
    capsys.readouterr()
    args = ["timeline", str(path), "--csv"] + (["--variant", variant] if variant else [])
    assert cli_main(args) == 0
    return capsys.readouterr().out


def runnable(spec):
    """The spec with its weights started fresh (a finetune's base is another run)."""
    phases = [dataclasses.replace(p, init_from=None) for p in spec.timeline.phases]
    spec = dataclasses.replace(spec, timeline=dataclasses.replace(spec.timeline, phases=phases))
    return replace(spec, {"train.init_from": None})


def logged(run_dir, compiled):
    """(lr per tick, {site: strength per tick}) as the run stored them."""
    record = open_run(run_dir)
    ticks, lr = record.scalars("lr")
    assert ticks.tolist() == list(range(len(ticks)))
    strengths = {}
    for site in compiled.sites:
        t, v = record.scalars(f"{engine.STRENGTH_PREFIX}{site}")
        curve = np.ones(len(ticks))
        for tick, value in zip(t.tolist(), v.tolist()):
            curve[tick:] = value  # logged where it changes: in force until the next change
        strengths[site] = curve
    return lr, strengths, record


@pytest.mark.parametrize("name,path,variant,spec", ALL, ids=[a[0] for a in ALL])
def test_every_preset_plans_what_the_cli_prints_and_the_trainer_compiles(
    name, path, variant, spec, capsys
):
    plan = engine.plan_timeline(spec)
    assert cli_csv(capsys, path, variant) == csv_of(plan)
    trained = set_up(runnable(spec), SINGLE).timeline  # set-up only: nothing is written
    assert trained.units == plan.units  # the batch lane's token sums included
    assert np.array_equal(trained.lr_curve(), plan.lr_curve())
    assert np.array_equal(trained.batch_curve(), plan.batch_curve())
    for site in plan.sites:
        assert np.array_equal(trained.strength_curve(site), plan.strength_curve(site)), site
    assert [(e.tick, e.kind, e.label) for e in trained.edges()] == [
        (e.tick, e.kind, e.label) for e in plan.edges()
    ]


def test_a_run_logs_the_planned_lr_strengths_and_edges_in_every_unit(tmp_path, capsys):
    spec = parse_spec(MIXED)
    plan = engine.plan_timeline(spec)
    assert plan.units.tokens_per_tick == 32 and plan.units.tokens_in_split == 3536
    # where each unit fell: 320 tok = tick 10, 15% = 24, 1 epoch = 110, 4K tok = 125
    assert [(s.source, s.start, s.end) for s in plan.spans("lr")] == [
        ("timeline.lr[0]", 0, 10),
        ("timeline.lr[1]", 24, 110),
        ("timeline.lr[2]", 110, 160),
    ]
    assert [(p.start, p.end) for p in plan.phases] == [(0, 125), (125, 160)]
    # an estimate of the units (batch x context tokens per tick) puts them elsewhere
    guess = engine.compile_timeline(spec, tokens_in_split=3536)
    assert [e.tick for e in guess.edges()] != [e.tick for e in plan.edges()]

    path = tmp_path / "mixed.yaml"
    engine.save_spec(spec, path)
    assert cli_csv(capsys, path) == csv_of(plan)

    handle = start_run(spec, tmp_path / "runs")
    assert handle.join(120) and handle.status == "finished", handle.error
    lr, strengths, record = logged(handle.run_dir, plan)
    assert lr.tolist() == plan.lr_curve().tolist()  # exactly: the same float64 values
    for site in plan.sites:
        assert strengths[site].tolist() == plan.strength_curve(site).tolist(), site
    applied = {(e.tick, e.kind) for e in record.events() if e.kind in ("phase", "norm", "mark")}
    assert applied == {(e.tick, e.kind) for e in plan.edges()}


def test_a_token_boundary_on_sort_is_where_the_engine_applies_it(tmp_path):
    """The bug: the editor put "50Ktok" at tick 47 (1024 tokens per tick, a guess) and the
    engine at tick 97 (a sort batch of 64 holds 512 tokens)."""
    spec = load_preset(ROOT / "presets/sort-seq2seq.yaml")
    segments = [
        {"start": 0, "end": "50Ktok", "shape": "linear", "from": 0.0, "to": 1.0e-3},
        {"start": "50Ktok", "end": "100%", "shape": "cosine", "from": 1.0e-3, "to": 5.0e-5},
    ]
    small = {"model.d_model": 8, "model.n_head": 1, "model.d_ff": 8, "train.stats_every": 0}
    spec = replace(spec, {"timeline.lr": segments, "train.eval_every": 0, **small})
    plan = engine.plan_timeline(spec)
    assert plan.units.tokens_per_tick == 512
    assert [s.start for s in plan.spans("lr")] == [0, 97]  # floor(50000 / 512)
    assert engine.compile_timeline(spec).spans("lr")[1].start == 48  # the old guess
    handle = run_ticks_then_stop(spec, tmp_path, 100)
    lr, _, _ = logged(handle.run_dir, plan)
    assert lr.tolist() == plan.lr_curve()[:100].tolist()
    # the warmup's last tick (96) reaches its "to"; the decay starts at 97
    assert lr[95] < lr[96] == 1.0e-3 and lr[97] < 1.0e-3


def test_a_spec_is_compiled_once_however_many_ask(monkeypatch):
    built = []

    class Counted(engine.CompiledTimeline):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(plan_module, "CompiledTimeline", Counted)
    monkeypatch.setattr(plan_module, "_plans", {})
    data = {**MIXED, "seed": 11}
    spec = parse_spec(data)  # validation compiles it
    again = parse_spec(data)  # an equal spec from another reader: no new compile
    assert engine.plan_timeline(spec) is engine.plan_timeline(again)
    assert len(built) == 1
    engine.plan_timeline(replace(spec, {"train.steps": 170}))  # an edit: one more
    assert len(built) == 2


def test_a_lenient_compile_keeps_every_good_item_under_its_written_path():
    spec = parse_spec(MIXED)
    bad_lr = dataclasses.replace(spec.timeline.lr[0], end=100_000)  # past the end
    bad_ln = dataclasses.replace(spec.timeline.layernorm[1], layers=[7])  # no such layer
    tl = dataclasses.replace(
        spec.timeline,
        lr=[bad_lr, *spec.timeline.lr[1:]],
        layernorm=[spec.timeline.layernorm[0], bad_ln],
    )
    spec = dataclasses.replace(spec, timeline=tl)
    with pytest.raises(engine.ConfigError, match=r"timeline\.lr\[0\]\.end"):
        engine.plan_timeline(spec)
    compiled = engine.plan_timeline(spec, lenient=True)
    assert [e.path for e in compiled.errors] == [
        "timeline.lr[0].end",
        "timeline.layernorm[1].layers[0]",
    ]
    # the items kept carry their place in the written spec, not in the trimmed one
    assert [s.source for s in compiled.spans("lr")] == ["timeline.lr[1]", "timeline.lr[2]"]
    assert {e.source for e in compiled.edges() if e.kind == "norm"} == {"timeline.layernorm[0]"}
    assert [e.tick for e in compiled.from_source("timeline.marks[0]")] == [31]


SMALL = {
    "model.d_model": 8,
    "model.n_head": 1,
    "model.d_ff": 8,
    "train.eval_every": 0,
    "train.eval_batches": 1,
    "train.stats_every": 0,
    "train.checkpoint_every": 0,
    "train.threads": 1,
}


@pytest.mark.slow
@pytest.mark.parametrize("name,path,variant,spec", ALL, ids=[a[0] for a in ALL])
def test_every_preset_run_logs_its_plan(name, path, variant, spec, tmp_path):
    """Each preset trained to its end (narrowed: the timeline does not depend on the width)
    logs exactly the planned LR and strengths at every tick."""
    spec = replace(runnable(spec), SMALL)
    plan = engine.plan_timeline(spec)
    handle = start_run(spec, tmp_path)
    assert handle.join(900) and handle.status == "finished", handle.error
    lr, strengths, record = logged(handle.run_dir, plan)
    assert lr.tolist() == plan.lr_curve().tolist()
    assert record.scalars("batch_size")[1].tolist() == plan.batch_curve().tolist()
    for site in plan.sites:
        assert strengths[site].tolist() == plan.strength_curve(site).tolist(), site
