"""LoRA: only the adapters move, a base checkpoint loads into an adapted model, and merged
weights give the adapted model's outputs."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import ConfigError
from engine.checkpoint import load_checkpoint
from engine.config import LoRAConfig, ModelConfig
from engine.lora import apply_lora, merge_lora
from engine.model import build_model
from engine.runs import open_run
from engine.trainer import start_run

from .helpers import tiny_spec

ROOT = Path(__file__).resolve().parents[2]


def as_if_trained(model: torch.nn.Module) -> None:
    """Random adapters (B starts at 0, which would prove nothing about merging)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("lora_B"):
                p.normal_()


def test_merged_weights_give_the_adapted_outputs():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layer=2, n_head=2, d_model=32, d_ff=64, context=16), 20)
    names = apply_lora(model, LoRAConfig(rank=4, alpha=8, targets=["attn.q", "mlp.fc"]))
    assert names == ["blocks.0.attn.q", "blocks.0.mlp.fc", "blocks.1.attn.q", "blocks.1.mlp.fc"]
    as_if_trained(model)
    x = torch.randint(0, 20, (3, 16))
    adapted = model(x)
    plain = merge_lora(model)(x)
    assert not any("lora" in n for n, _ in model.named_parameters())
    torch.testing.assert_close(plain, adapted, rtol=1e-5, atol=1e-5)


def test_unknown_targets_are_a_config_error():
    model = build_model(ModelConfig(n_layer=1, n_head=2, d_model=32, d_ff=64, context=16), 20)
    with pytest.raises(ConfigError, match="train.lora.targets"):
        apply_lora(model, LoRAConfig(rank=2, targets=["attn.query"]))


def test_lora_finetune_moves_only_the_adapters_and_exports_merged(tmp_path):
    base = start_run(tiny_spec(train={"steps": 10}), tmp_path / "base")
    assert base.join(120) and base.status == "finished"
    lora = {"rank": 4, "alpha": 8.0, "targets": ["attn.q", "attn.kv"]}
    run = start_run(
        tiny_spec(train={"steps": 10, "init_from": str(base.run_dir), "lora": lora}),
        tmp_path / "ft",
    )
    assert run.join(120) and run.status == "finished", run.error
    before = load_checkpoint(open_run(base.run_dir).checkpoints()[-1])["model"]
    after = load_checkpoint(open_run(run.run_dir).checkpoints()[-1])["model"]
    for key, value in after.items():
        if not isinstance(value, torch.Tensor) or key.endswith("sigma_bar"):
            continue
        if "lora_" in key:
            assert key.endswith("lora_A") or value.abs().sum() > 0, key  # B moved off zero
        else:
            assert torch.equal(value, before[key]), key  # the base model did not move
    meta = open_run(run.run_dir).meta
    assert 0 < meta["trainable_params"] < meta["params"] / 10

    out = tmp_path / "merged.pt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "export",
            str(run.run_dir),
            "--format",
            "weights",
            "-o",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    merged = torch.load(out, weights_only=True)
    assert not any("lora" in k for k in merged)
    delta = merged["blocks.0.attn.q.weight"] - before["blocks.0.attn.q.weight"]
    scale = 8.0 / 4
    expected = scale * after["blocks.0.attn.q.lora_B"] @ after["blocks.0.attn.q.lora_A"]
    torch.testing.assert_close(delta, expected, rtol=1e-4, atol=1e-6)
