"""The timeline steering real training: phase boundaries with freeze and init_from, exact resume
across a boundary, a refused resume when the past was edited, norm calibration."""

import pytest
import torch

from engine import ConfigError, dump_spec, load_spec
from engine.checkpoint import load_checkpoint
from engine.messages import Log
from engine.norm import Norm
from engine.runs import open_run
from engine.trainer import resume_run, start_run

from .helpers import run_ticks_then_stop, tiny_spec

TIMEOUT = 120


def finished(spec, runs_dir):
    handle = start_run(spec, runs_dir)
    assert handle.join(TIMEOUT) and handle.status == "finished", handle.error
    return handle.run_dir


def final_weights(run_dir):
    return load_checkpoint(open_run(run_dir).checkpoints()[-1])["model"]


def finetune_spec(pretrained, start=10, **extra):
    phases = [
        {"name": "warm", "start": 0},
        {
            "name": "finetune",
            "start": start,
            "init_from": str(pretrained),
            "freeze": ["embed", "blocks.0"],
            "lr_scale": 0.3,
            **extra,
        },
    ]
    return tiny_spec(
        model={"n_layer": 2},
        train={"steps": 20},
        timeline={
            "phases": phases,
            "layernorm": [{"at": 12, "action": "ramp", "to": 0.5, "over": 4, "layers": [1]}],
        },
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    spec = tiny_spec(model={"n_layer": 2}, train={"steps": 20})
    return finished(spec, tmp_path_factory.mktemp("pre"))


def test_phase_boundary_loads_weights_and_freezes_what_it_names(pretrained, tmp_path):
    run_dir = finished(finetune_spec(pretrained), tmp_path)
    before, after = final_weights(pretrained), final_weights(run_dir)
    params = [k for k, v in after.items() if isinstance(v, torch.Tensor) and v.dim() >= 1]
    frozen = [k for k in params if k.startswith(("embed.", "blocks.0.", "head."))]
    trained = [k for k in params if k.startswith("blocks.1.")]
    assert len(frozen) >= 10 and len(trained) >= 10
    for k in frozen:  # loaded at tick 10 from the pretrained run, then never touched
        assert torch.equal(after[k], before[k]), k
    for k in trained:  # loaded too, then trained for 10 ticks
        assert not torch.equal(after[k], before[k]), k
    run = open_run(run_dir)
    kinds = [(e.tick, e.kind, e.detail.get("label")) for e in run.events()]
    assert (10, "phase", "finetune") in kinds and (12, "norm", "LN ramp 1") in kinds
    lrs = dict(zip(*run.scalars("lr")))
    assert lrs[10] == pytest.approx(0.3 * lrs[9])  # lr_scale applies from the boundary tick
    ckpt = load_checkpoint(run.checkpoints()[-1])
    assert ckpt["model"]["blocks.1.ln_attn._extra_state"]["strength"] == 0.5
    # calibrated at tick 12 from the real activations, not left at 1.0
    assert ckpt["model"]["blocks.1.ln_attn.sigma_bar"].item() != 1.0


def test_resume_after_the_boundary_gives_identical_losses(pretrained, tmp_path):
    spec = finetune_spec(pretrained)
    whole = open_run(finished(spec, tmp_path / "whole"))
    handle = run_ticks_then_stop(spec, tmp_path / "cut", 14)  # 4 ticks past the boundary
    resumed = resume_run(handle.run_dir)
    assert resumed.join(TIMEOUT) and resumed.status == "finished", resumed.error
    cut = open_run(handle.run_dir)
    assert cut.scalars("train/loss")[1].tolist() == whole.scalars("train/loss")[1].tolist()
    assert torch.equal(
        final_weights(handle.run_dir)["blocks.1.attn.q.weight"],
        final_weights(whole.path)["blocks.1.attn.q.weight"],
    )


def test_editing_the_past_refuses_to_resume_with_a_diff(pretrained, tmp_path):
    spec = finetune_spec(pretrained, start=10)
    handle = run_ticks_then_stop(spec, tmp_path, 14)
    edited = load_spec(handle.run_dir / "spec.yaml")
    edited.timeline.phases[1].start = 19  # the finetune phase now starts after the stop
    (handle.run_dir / "spec.yaml").write_text(dump_spec(edited))
    with pytest.raises(ConfigError, match="the timeline no longer matches.*phase: checkpoint 1"):
        resume_run(handle.run_dir)


def test_phase_data_switch_reencodes_text_and_maps_unknown_characters(tmp_path):
    ok = tmp_path / "ok.txt"
    ok.write_text("def f(x):\n    return x + 1\n" * 200)
    spec = tiny_spec(
        timeline={
            "phases": [{"start": 0}, {"start": 15, "data": {"source": "text", "path": str(ok)}}]
        }
    )
    run = open_run(finished(spec, tmp_path / "runs"))
    assert run.scalars("train/loss")[0].tolist() == list(range(30))
    assert "\ufffd" not in run.vocab["tokens"]  # nothing unknown: the vocabulary as is
    first_vocab = run.vocab["tokens"]

    bad = tmp_path / "bad.txt"
    bad.write_text("snow ☃ and ice\n" * 200)  # the stdlib sources have no snowman
    spec = tiny_spec(
        timeline={
            "phases": [{"start": 0}, {"start": 15, "data": {"source": "text", "path": str(bad)}}]
        }
    )
    logs = []
    handle = start_run(
        spec, tmp_path / "runs", lambda msgs: logs.extend(m for m in msgs if isinstance(m, Log))
    )
    assert handle.join(60)
    run = open_run(handle.run_dir)
    assert run.status == "finished"
    # the unknown token is appended: every pretrained id keeps its meaning
    assert run.vocab["tokens"] == first_vocab + ["\ufffd"]
    said = [m.text for m in logs if "☃" in m.text]
    assert said and "200 character(s)" in said[0], [m.text for m in logs]
    assert run.meta["unknown_chars"] == said
    # and the phase's batches read the snowman as the unknown token
    task = handle._trainer.steering.tasks[1]
    text = task.vocab.decode(task.batch("train", 8, torch.Generator().manual_seed(0)).x.flatten())
    assert "\ufffd" in text and "☃" not in text


def test_freeze_patterns_must_match_a_parameter(tmp_path):
    spec = tiny_spec(timeline={"phases": [{"start": 0, "freeze": ["blocks.7"]}]})
    with pytest.raises(ConfigError, match=r"timeline.phases\[0\].freeze\[0\]: 'blocks.7' matches"):
        start_run(spec, tmp_path)


def test_calibrate_sets_sigma_bar_to_the_mean_token_sigma():
    x = torch.randn(3, 5, 16) * 4 + 2
    for kind, sigma in (
        ("layernorm", (x.var(-1, unbiased=False) + 1e-5).sqrt()),
        ("rmsnorm", (x.pow(2).mean(-1) + 1e-5).sqrt()),
    ):
        norm = Norm(kind, 16, eps=1e-5)
        norm.calibrate_next = True
        norm(x)
        assert norm.sigma_bar.item() == pytest.approx(sigma.mean().item(), rel=1e-6)
        assert norm.calibrate_next is False


def test_backend_switch_mid_run_keeps_the_loss_curve(tmp_path):
    """Triton (here through its CPU interpreter) and torch norms train the same curve, and a
    `backend` event switching between them mid-run causes no jump."""
    model = {
        "n_layer": 1,
        "d_model": 16,
        "n_head": 2,
        "d_ff": 32,
        "context": 8,
        "norm_backend": "triton",
    }
    switch = {
        "layernorm": [
            {"at": 4, "action": "backend", "backend": "torch"},
            {"at": 6, "action": "set", "strength": 0.5},
        ]
    }
    train = {"steps": 8, "batch_size": 2, "eval_every": 0, "checkpoint_every": 0}
    mixed = open_run(finished(tiny_spec(model=model, train=train, timeline=switch), tmp_path))
    model["norm_backend"] = "torch"
    plain = open_run(finished(tiny_spec(model=model, train=train, timeline=switch), tmp_path))
    a, b = mixed.scalars("train/loss")[1], plain.scalars("train/loss")[1]
    assert len(a) == 8 and a == pytest.approx(b, rel=1e-5)
    assert any(e.detail.get("action") == "backend" and e.tick == 4 for e in mixed.events())


def test_train_init_from_starts_from_a_run_and_records_the_lineage(pretrained, tmp_path):
    spec = tiny_spec(model={"n_layer": 2}, train={"steps": 5, "init_from": str(pretrained)})
    handle = start_run(spec, tmp_path)
    assert handle.join(TIMEOUT) and handle.status == "finished", handle.error
    run = open_run(handle.run_dir)
    (entry,) = run.meta["lineage"]
    assert entry["run"] == str(pretrained) and entry["tick"] == 0
    # the first tick trains from the pretrained weights: its loss is the pretrained run's level
    first = run.scalars("train/loss")[1][0]
    assert first < open_run(pretrained).scalars("train/loss")[1][0] - 0.5
    with pytest.raises(ConfigError, match="train.init_from: not found"):
        start_run(tiny_spec(train={"init_from": str(tmp_path / "nope")}), tmp_path)


def test_a_layer_range_freezes_exactly_those_blocks(tmp_path):
    spec = tiny_spec(
        model={"n_layer": 3},
        train={"steps": 3, "checkpoint_every": 0},
        timeline={"phases": [{"start": 0, "freeze": ["blocks.0-1"]}]},
    )
    run = open_run(finished(spec, tmp_path))
    from engine.model import build_model

    model = build_model(spec.model, len(run.vocab["tokens"]))
    params = dict(model.named_parameters())
    frozen = sum(p.numel() for n, p in params.items() if n.startswith(("blocks.0.", "blocks.1.")))
    assert frozen > 0
    assert run.meta["trainable_params"] == run.meta["params"] - frozen
