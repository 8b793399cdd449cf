"""The pruning lane (``timeline.prune``): the cubic schedule, masks that hold through Adam, masks
that survive kill -9 and resume, and the spec's errors. Real CPU runs on a tiny model."""

import csv
import io
import os

import pytest
import torch

from engine.checkpoint import checkpoint_path, load_checkpoint
from engine.cli import main as cli_main
from engine.config import PruneSpec
from engine.errors import ConfigError
from engine.model import build_model
from engine.positions import units_for
from engine.pruning import PruneGroup, compile_prune, prune_edges, prune_spans
from engine.runs import open_run
from engine.trainer import resume_run, start_run

from .helpers import cli_run, kill_9_at_checkpoint, tiny_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MLP = ["blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight"]
Q = ["blocks.0.attn.q.weight"]


def pruned_spec(prune, **train):
    return tiny_spec(train={"eval_every": 0, "stats_every": 0, **train}, timeline={"prune": prune})


def finished(spec, runs_dir):
    handle = start_run(spec, runs_dir)
    assert handle.join(60) and handle.status == "finished", handle.error
    return open_run(handle.run_dir)


def zeros(weights, names):
    return sum(int((weights[n] == 0).sum()) for n in names)


def test_the_cubic_schedule_its_steps_and_its_edges():
    g = PruneGroup(0, "g", start=10, end=30, every=5, from_=0.1, to=0.9, patterns=("blocks",))
    assert g.ticks() == [14, 19, 24, 29]  # every 5th tick of [10, 30), the last tick included
    assert g.target(9) == pytest.approx(0.1)  # from holds just before the span
    assert g.target(14) == pytest.approx(0.9 + (0.1 - 0.9) * (1 - 5 / 20) ** 3)
    assert g.target(29) == 0.9 and g.target(100) == 0.9
    odd = PruneGroup(0, "g", start=0, end=7, every=3, from_=0.0, to=0.5, patterns=("b",))
    assert odd.ticks() == [2, 5, 6]
    assert odd.curve(8).tolist() == [0, 0] + [odd.target(2)] * 3 + [odd.target(5), 0.5, 0.5]
    once = PruneGroup(0, "g", start=4, end=5, every=10, from_=0.0, to=0.5, patterns=("b",))
    assert once.ticks() == [4] and once.target(4) == 0.5  # all at once
    edges = prune_edges([g, once])
    assert [e.tick for e in edges] == [4, 14, 19, 24, 29]
    assert {e.kind for e in edges} == {"prune"} and edges[-1].detail["sparsity"] == 0.9
    (span,) = prune_spans([g])
    assert (span.kind, span.start, span.end, span.source) == ("prune", 10, 30, "timeline.prune[0]")


def test_positions_resolve_in_the_runs_units():
    spec = tiny_spec(
        train={"steps": 200},
        timeline={"prune": [{"start": "25%", "end": "10Ktok", "params": ["blocks"]}]},
    )
    (g,) = compile_prune(spec, units_for(spec, tokens_per_tick=100))
    assert (g.start, g.end) == (50, 100) and g.name == "blocks"


def test_the_schedule_reaches_each_scheduled_sparsity_at_its_tick_counted_from_the_weights(
    tmp_path,
):
    prune = [
        {"start": 2, "end": 20, "every": 4, "from": 0.1, "to": 0.8, "params": ["blocks.0.mlp"]},
        {"start": 12, "end": 13, "to": 0.5, "params": ["*.attn.q.weight"], "name": "q"},
    ]
    spec = pruned_spec(prune, steps=24, checkpoint_every=1, keep_checkpoints=0)
    run = finished(spec, tmp_path)
    groups = {g.name: g for g in compile_prune(spec, units_for(spec))}
    members = {"blocks.0.mlp": MLP, "q": Q}
    for name, g in groups.items():
        ticks, logged = run.scalars(f"sparsity/{name}")
        assert ticks.tolist() == g.ticks()  # logged at every pruning step, and only there
        for t, value in zip(ticks, logged):
            weights = load_checkpoint(checkpoint_path(run.path, t + 1))["model"]  # after t
            count = zeros(weights, members[name])
            expected = sum(round(g.target(t) * weights[n].numel()) for n in members[name])
            assert count == expected, (name, t)  # each tensor to its own round(s·n)
            total = sum(weights[n].numel() for n in members[name])
            assert value == count / total and abs(value - g.target(t)) < 1e-3
    # between its steps a group's sparsity holds; before its first step it is dense
    g = groups["blocks.0.mlp"]  # prunes after ticks 5, 9, 13, 17, 19
    for done, last_step in [(5, None), (6, 5), (9, 5), (11, 9)]:
        weights = load_checkpoint(checkpoint_path(run.path, done))["model"]  # after done ticks
        want = sum(round(g.target(last_step) * weights[n].numel()) for n in MLP) if last_step else 0
        assert zeros(weights, MLP) == want, done
    assert zeros(load_checkpoint(checkpoint_path(run.path, 12))["model"], Q) == 0


def test_masked_weights_stay_zero_through_later_adam_steps(tmp_path):
    # one-shot 60% at tick 3, then 27 AdamW steps with weight decay: every masked weight gets
    # gradients and Adam moments, which would move it off zero without the mask
    prune = [{"start": 3, "end": 4, "to": 0.6, "params": ["blocks.0"]}]
    spec = pruned_spec(prune, steps=30, checkpoint_every=10)
    run = finished(spec, tmp_path)
    masks = None
    for tick in (10, 20, 30):
        state = load_checkpoint(checkpoint_path(run.path, tick))
        saved = state["pruning"]["masks"]
        assert masks is None or all(torch.equal(saved[n], masks[n]) for n in masks)
        masks = saved
        assert set(masks) == {
            "blocks.0.attn.q.weight",
            "blocks.0.attn.kv.weight",
            "blocks.0.attn.proj.weight",
            *MLP,
        }  # matrices only: the block's biases and norm gains are not pruned
        for name, mask in masks.items():
            weight = state["model"][name]
            assert (weight[~mask] == 0).all() and (weight[mask] != 0).all(), name
            assert (~mask).float().mean().item() == pytest.approx(0.6, abs=1e-3)
    # the Adam moments of the masked weights are not zero: the mask is what keeps them at zero
    model = build_model(spec.model, state["model"]["embed.weight"].shape[0])
    matrices = [n for n, p in model.named_parameters() if p.dim() >= 2]  # the decay group,
    index = matrices.index("blocks.0.mlp.fc.weight")  # which the optimizer numbers first
    moment = state["optimizer"]["state"][index]["exp_avg"]
    assert moment.shape == masks["blocks.0.mlp.fc.weight"].shape
    assert (moment[~masks["blocks.0.mlp.fc.weight"]] != 0).float().mean() > 0.5


def test_masks_survive_kill_9_and_resume_with_identical_losses(tmp_path, capsys):
    prune = [{"start": 0, "end": 120, "every": 10, "to": 0.7, "params": ["blocks.0"]}]
    spec = pruned_spec(prune, steps=300, checkpoint_every=20, eval_every=100)
    with cli_run(spec, tmp_path) as proc:
        ref = finished(spec, tmp_path / "ref")  # while the child starts up
        run_dir = kill_9_at_checkpoint(proc, tmp_path / "runs", 40)  # masks made at 9 .. 39
    assert open_run(run_dir).status == "interrupted"

    handle = resume_run(run_dir)
    assert handle.join(60) and handle.status == "finished", handle.error
    resumed = open_run(run_dir)
    metrics = ["train/loss", "val/loss", "grad_norm", "sparsity/blocks.0"]
    for metric in metrics:
        assert resumed.scalars(metric)[1].tolist() == ref.scalars(metric)[1].tolist(), metric
    assert resumed.scalars("sparsity/blocks.0")[0].tolist() == list(range(9, 120, 10))
    last = load_checkpoint(checkpoint_path(run_dir, 300))
    ref_last = load_checkpoint(checkpoint_path(ref.path, 300))
    for name, mask in ref_last["pruning"]["masks"].items():
        assert torch.equal(last["pruning"]["masks"][name], mask), name
        assert torch.equal(last["model"][name], ref_last["model"][name]), name

    assert cli_main(["export", str(run_dir), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    exported = [(int(r[0]), float(r[2])) for r in rows[1:] if r[1] == "sparsity/blocks.0"]
    assert exported == list(zip(*(a.tolist() for a in ref.scalars("sparsity/blocks.0"))))


def test_a_changed_past_schedule_refuses_to_resume(tmp_path):
    prune = [{"start": 0, "end": 20, "every": 5, "to": 0.5, "params": ["blocks.0.mlp"]}]
    run = finished(pruned_spec(prune, steps=20, checkpoint_every=10), tmp_path)
    spec_path = run.path / "spec.yaml"
    spec_path.write_text(spec_path.read_text().replace("blocks.0.mlp", "blocks.0.attn"))
    (run.path / "checkpoints" / "tick_0000020.pt").unlink()  # resume from tick 10
    with pytest.raises(ConfigError) as err:
        resume_run(run.path)
    assert err.value.path == "timeline.prune" and "fork the run" in err.value.reason


@pytest.mark.parametrize(
    "pattern, where",
    [("blocks.1-2", "spec"), ("no.such.weight", "start"), ("blocks.0.ln_attn", "start")],
)
def test_a_bad_pattern_is_a_config_error_naming_its_place(tmp_path, pattern, where):
    prune = [
        {"start": 0, "end": 10, "params": ["blocks.0.mlp"]},
        {"start": 0, "end": 10, "params": ["*.attn.q.weight", pattern], "name": "b"},
    ]
    with pytest.raises(ConfigError) as err:
        spec = pruned_spec(prune, steps=10)  # a layer range past n_layer fails in the spec
        assert where == "start"
        start_run(spec, tmp_path)  # a pattern matching no matrix fails before a folder exists
    assert err.value.path == "timeline.prune[1].params[1]", err.value
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "item, path",
    [
        ({"from": -0.1}, "timeline.prune[0].from"),
        ({"to": 1.0}, "timeline.prune[0].to"),
        ({"from": 1.5}, "timeline.prune[0].from"),
        ({"from": 0.6, "to": 0.5}, "timeline.prune[0].to"),
        ({"every": 0}, "timeline.prune[0].every"),
        ({"params": []}, "timeline.prune[0].params"),
        ({"end": 11}, "timeline.prune[0].end"),
        ({"start": 5, "end": 5}, "timeline.prune[0].end"),
    ],
)
def test_impossible_schedules_are_refused(item, path):
    with pytest.raises(ConfigError) as err:
        pruned_spec([{"params": ["blocks"], **item}], steps=10)
    assert err.value.path == path, err.value


def test_overlapping_schedules_on_one_weight_are_refused(tmp_path):
    prune = [
        {"start": 0, "end": 10, "params": ["blocks.0.mlp"]},
        {"start": 5, "end": 15, "params": ["*.fc.weight"]},
    ]
    spec = pruned_spec(prune, steps=20)
    with pytest.raises(ConfigError) as err:
        start_run(spec, tmp_path)
    assert err.value.path == "timeline.prune[1].start" and "overlap" in err.value.reason
    later = pruned_spec([prune[0], {**prune[1], "start": 10, "to": 0.8}], steps=20)
    assert finished(later, tmp_path).scalars("sparsity/*.fc.weight")[1][-1] == pytest.approx(
        0.8, abs=1e-3
    )


def test_the_spec_round_trips_with_its_yaml_keys():
    spec = pruned_spec([{"start": "10%", "every": 2, "from": 0.2, "params": ["blocks"]}])
    item = spec.timeline.prune[0]
    assert item == PruneSpec(start="10%", every=2, from_=0.2, params=["blocks"])
    from engine.config import to_dict

    assert to_dict(spec)["timeline"]["prune"] == [
        {"start": "10%", "every": 2, "from": 0.2, "params": ["blocks"]}
    ]
