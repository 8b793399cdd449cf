"""Post-training int8 dynamic quantization of a trained run, against its fp32 self."""

import torch
from torch import nn

from engine.quantize import int8_report, quantize_int8
from engine.runs import open_run
from engine.trainer import start_run

from .helpers import tiny_spec


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
