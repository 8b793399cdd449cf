"""Post-training int8 dynamic quantization of a trained run, against its fp32 self."""

import dataclasses

import pytest
import torch
from torch import nn

from engine.checkpoint import checkpoint_path, load_checkpoint
from engine.cli import main as cli_main
from engine.errors import ConfigError
from engine.model import build_model
from engine.plan import plan_timeline
from engine.qat import install_qat, remove_qat
from engine.quantize import int8_report, quantize_int8
from engine.runs import open_run
from engine.specs import replace
from engine.timeline import compile_timeline
from engine.trainer import resume_run, start_run

from .helpers import cli_run, kill_9_at_checkpoint, tiny_spec


def test_an_int8_copy_quantizes_every_linear_and_leaves_the_model_alone():
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 10))
    int8 = quantize_int8(model)
    assert isinstance(model[1], nn.Linear) and not isinstance(int8[1], nn.Linear)
    assert isinstance(int8[0], nn.Embedding)  # embeddings stay fp32
    x = torch.arange(6).view(2, 3)
    assert (int8(x) - model(x)).abs().max() < 0.05


def test_int8_report_of_a_trained_run(tmp_path):
    spec = tiny_spec(train={"steps": 60, "eval_every": 0, "stats_every": 0, "eval_batches": 4})
    handle = start_run(spec, tmp_path)
    assert handle.join(60) and handle.status == "finished", handle.error
    report = int8_report(handle.run_dir)
    _, val = open_run(handle.run_dir).scalars("val/loss")
    assert report.val_loss_fp32 == val[-1]  # the same batches the trainer scored at the end
    # int8 weights cost little on this model: within 0.02 nats of fp32
    assert abs(report.val_loss_int8 - report.val_loss_fp32) < 0.02
    assert report.bytes_int8 < report.bytes_fp32
    assert report.tokens_per_s_fp32 > 0 and report.tokens_per_s_int8 > 0


# --- QAT: timeline.quantize ---------------------------------------------------------------


def qat_spec(at=20, **train):
    train = {"eval_every": 0, "stats_every": 0, "eval_batches": 4, **train}
    return tiny_spec(train=train, timeline={"quantize": [{"at": at, "mode": "qat"}]})


def finished(spec, runs_dir):
    handle = start_run(spec, runs_dir)
    assert handle.join(60) and handle.status == "finished", handle.error
    return open_run(handle.run_dir)


def test_qat_fake_quantizes_each_linear_as_the_int8_export_holds_it_and_keeps_its_keys():
    model = build_model(tiny_spec().model, 40)
    keys = list(model.state_dict())
    x = torch.randint(0, 40, (2, 8))
    plain = model(x)
    names = install_qat(model)
    assert names == [n for n, m in model.named_modules() if type(m) is nn.Linear]
    assert "head" in names and list(model.state_dict()) == keys  # checkpoints load either way
    int8 = quantize_int8(model)  # the export's per-channel weights, module by module
    for name in names:
        linear, packed = model.get_submodule(name), int8.get_submodule(name)
        fq = linear.__dict__["weight_fake_quant"]
        fq.activation_post_process.reset_min_max_vals()
        assert torch.equal(fq(linear.weight), packed.weight().dequantize()), name
    out = model(x)
    assert 0 < (out - plain).abs().max() < 0.05  # int8 weights: close, not equal
    out.sum().backward()  # straight through: the fp32 weights get gradients
    assert model.blocks[0].mlp.fc.weight.grad.abs().sum() > 0
    remove_qat(model)
    assert torch.equal(model(x), plain)


def test_a_qat_run_and_its_int8_export_evaluate_within_0_01_nats(tmp_path):
    # The fake-quantized forward holds exactly the export's int8 weights (test above); the one
    # difference left is the export's dynamic quantization of activations (uint8 per batch),
    # which QAT does not model: 0.01 nats is ten times what it cost when measured (3e-4 at
    # seed 7, 5e-4 to 1e-3 on baby-gpt's shape).
    run = finished(qat_spec(at=20, steps=60), tmp_path)
    (event,) = [e for e in run.events() if e.kind == "quantize"]
    assert event.tick == 20 and event.detail["mode"] == "qat"
    _, val = run.scalars("val/loss")  # the run's own eval: the fake-quantized forward
    _, int8 = run.scalars("int8/val_loss")
    assert abs(int8[-1] - val[-1]) < 0.01
    # the run's fp32 weights without fake quantization score differently: QAT did something
    assert run.scalars("fp32/val_loss")[1][-1] != val[-1]
    metrics = ["fp32/bytes", "int8/bytes", "int8/tokens_per_s", "fp32/tokens_per_s"]
    ticks = [run.scalars(m)[0].tolist() for m in metrics]
    assert ticks == [[59]] * 4  # logged once, at the last tick
    assert run.scalars("int8/bytes")[1][-1] < run.scalars("fp32/bytes")[1][-1]


def test_the_int8_report_is_only_made_for_runs_that_ask(tmp_path):
    spec = tiny_spec(train={"steps": 10, "eval_every": 0, "stats_every": 0})
    run = finished(spec, tmp_path / "plain")
    assert len(run.scalars("int8/val_loss")[0]) == 0
    asked = finished(replace(spec, {"train.int8_report": True}), tmp_path / "asked")
    assert asked.scalars("int8/val_loss")[0].tolist() == [9]


def test_the_quantize_edge_is_on_the_compiled_timeline():
    spec = qat_spec(at="50%", steps=40)
    tl = compile_timeline(spec)
    (edge,) = [e for e in tl.edges() if e.kind == "quantize"]
    assert (edge.tick, edge.source, edge.label) == (20, "timeline.quantize[0]", "QAT int8")
    assert tl.from_source("timeline.quantize[0]") == [edge]


def test_qat_survives_kill_9_and_resume_after_at_with_identical_losses(tmp_path, capsys):
    spec = qat_spec(at=30, steps=100, checkpoint_every=20, eval_every=50)
    with cli_run(spec, tmp_path) as proc:
        run_dir = kill_9_at_checkpoint(proc, tmp_path / "runs", 40)  # QAT on since tick 30
    assert open_run(run_dir).status == "interrupted"
    assert load_checkpoint(checkpoint_path(run_dir, 40))["steering"]["quantized"] is True
    ref = finished(spec, tmp_path / "ref")
    handle = resume_run(run_dir)
    assert handle.join(60) and handle.status == "finished", handle.error
    resumed = open_run(run_dir)
    for metric in ["train/loss", "val/loss", "grad_norm", "int8/val_loss", "fp32/val_loss"]:
        assert resumed.scalars(metric)[1].tolist() == ref.scalars(metric)[1].tolist(), metric
    assert cli_main(["export", str(run_dir), "--format", "csv"]) == 0
    exported = {r.split(",")[1] for r in capsys.readouterr().out.splitlines()[1:]}
    assert {"int8/val_loss", "int8/bytes", "fp32/tokens_per_s"} <= exported


def test_moving_qat_into_the_past_refuses_to_resume(tmp_path):
    run = finished(qat_spec(at=15, steps=20, checkpoint_every=10), tmp_path)
    spec_path = run.path / "spec.yaml"
    spec_path.write_text(spec_path.read_text().replace("at: 15", "at: 5"))
    (run.path / "checkpoints" / "tick_0000020.pt").unlink()  # resume from tick 10
    with pytest.raises(ConfigError) as err:
        resume_run(run.path)
    assert "QAT: checkpoint False, timeline True" in err.value.reason


@pytest.mark.parametrize(
    "items, train, path",
    [
        ([{"at": 30}], {}, "timeline.quantize[0].at"),
        ([{"at": "2Mtok"}], {}, "timeline.quantize[0].at"),
        ([{"at": 3, "mode": "ptq"}], {}, "timeline.quantize[0].mode"),
        ([{"at": 3, "bits": 4}], {}, "timeline.quantize[0].bits"),
        ([{"at": 3}, {"at": 5}], {}, "timeline.quantize[1]"),
        ([{"at": 3}], {"lora": {"rank": 2}}, "timeline.quantize[0].mode"),
        ([{"at": 3}], {"compile": True}, "timeline.quantize[0].mode"),
    ],
)
def test_bad_quantize_specs_are_refused_naming_their_field(items, train, path):
    with pytest.raises(ConfigError) as err:
        tiny_spec(train=train, timeline={"quantize": items})
    assert err.value.path == path, err.value


def test_a_lenient_compile_leaves_a_bad_quantize_item_out():
    spec = qat_spec(at=5, steps=20)
    bad = dataclasses.replace(spec.timeline.quantize[0], at=500)  # past the end
    spec = dataclasses.replace(spec, timeline=dataclasses.replace(spec.timeline, quantize=[bad]))
    compiled = plan_timeline(spec, lenient=True)  # what the editor draws of a spec being edited
    assert [e.path for e in compiled.errors] == ["timeline.quantize[0].at"]
    assert not [e for e in compiled.edges() if e.kind == "quantize"]
