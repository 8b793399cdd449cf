"""The claims of presets/compression.yaml (docs/presets.md, "Compression on baby-gpt"), re-checked
at seed 1337 with margins: the whole study trained (slow tier: about 13 minutes at 2 runs at a
time on a busy 2-core CPU). Speeds are measured and reported, never checked here."""

from pathlib import Path

import pytest

from engine.study import load_preset, run_study, variant_runs

ROOT = Path(__file__).resolve().parents[2]


def last(run, metric: str) -> float:
    return float(run.scalars(metric)[1][-1])


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_compression_study_claims(tmp_path):
    study = load_preset(ROOT / "presets/compression.yaml")
    folder, _ = run_study(study, tmp_path)
    check_claims(variant_runs(study, folder))


def check_claims(runs: dict) -> None:
    """The claims, on a trained study's runs by variant name."""
    assert {r.status for r in runs.values()} == {"finished"}
    val = {name: last(run, "val/loss") for name, run in runs.items()}
    cost = {name: v - val["dense"] for name, v in val.items()}

    # pruning: the sparsities are reached, counted from the weights
    targets = {"gradual-50": 0.5, "gradual-80": 0.8, "once-50": 0.5, "once-50-early": 0.5}
    for name, target in targets.items():
        assert last(runs[name], "sparsity/blocks") == pytest.approx(target, abs=1e-3), name
    # gradual 50% costs at most 0.05 val loss over dense; 80% costs more than 50%
    assert 0 < cost["gradual-50"] <= 0.05, cost
    assert cost["gradual-80"] > cost["gradual-50"], cost
    # all at once: at the tick where the gradual schedule starts (50) it costs more than the
    # gradual 50%; at the tick where it ends (299), after 250 more dense ticks, it costs less
    assert cost["once-50-early"] > cost["gradual-50"], cost
    assert cost["once-50"] < cost["gradual-50"], cost
    # int8: QAT's fake-quantized forward and its int8 export agree within 0.01 nats; post-
    # training int8 of the dense model costs under 0.01; both within 0.05 of dense
    qat = runs["qat"]
    assert abs(last(qat, "int8/val_loss") - val["qat"]) < 0.01
    dense = runs["dense"]
    assert abs(last(dense, "int8/val_loss") - last(dense, "fp32/val_loss")) < 0.01
    assert last(dense, "fp32/val_loss") == val["dense"]  # the report scores the trainer's batches
    assert abs(cost["qat"]) < 0.05, cost
    # sizes: int8 about 32% of fp32; zlib shrinks a pruned model with its sparsity
    assert last(qat, "int8/bytes") < 0.35 * last(qat, "fp32/bytes")
    zlib = {n: last(r, "fp32/zlib_bytes") for n, r in runs.items()}
    assert zlib["gradual-80"] < zlib["gradual-50"] < 0.9 * zlib["dense"]
