"""A pretrained GPT-2 through a whole run: ``model.from_pretrained`` in a spec, trained by the
engine, sampled, its LayerNorms removed on the timeline, exported with ``python -m engine export
--format hf`` and read back by ``transformers`` with the engine's logits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

import engine  # noqa: E402
from engine.data.bpe import BpeVocab, train_bpe  # noqa: E402
from engine.data.text import stdlib_text  # noqa: E402
from engine.pretrained import pretrained_arch  # noqa: E402
from engine.sample import load_model_from_run, sample_run  # noqa: E402

TOL = 1e-4
CONTEXT = 32


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """A tiny random GPT-2 (2 blocks, width 32, gelu_new) saved as transformers saves one,
    with a byte-level BPE of 400 tokens trained on stdlib text."""
    text, _ = stdlib_text(100_000)
    bpe = train_bpe(text, 400, ("<|endoftext|>",))  # GPT-2's one special token
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=CONTEXT, vocab_size=len(bpe),
        bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    folder = tmp_path_factory.mktemp("gpt2-tiny")
    model.save_pretrained(folder)
    bpe.tokenizer.save(str(folder / "tokenizer.json"))
    return folder, model


def spec_from(folder, **train) -> engine.RunSpec:
    return engine.parse_spec(
        {
            "name": "from-gpt2",
            "seed": 3,
            "model": {"from_pretrained": str(folder), "norm_center": "always"},
            "data": {
                "source": "text",
                "path": "builtin:python-stdlib",
                "max_chars": 100_000,
                "tokenizer": "bpe",
            },  # fmt: skip
            "train": {
                "steps": 6,
                "batch_size": 4,
                "eval_every": 3,
                "eval_batches": 2,
                "checkpoint_every": 0,
                "device": "cpu",
                "threads": 1,
                **train,
            },  # fmt: skip
        }
    )


def logits_gap(ours, theirs, vocab: int) -> float:
    idx = torch.randint(vocab, (3, CONTEXT), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return (ours(idx) - theirs(idx).logits).abs().max().item()


def export(run_dir, out) -> transformers.GPT2LMHeadModel:
    """``python -m engine export RUN --format hf OUT``, read back by transformers."""
    done = subprocess.run(
        [sys.executable, "-m", "engine", "export", str(run_dir), "--format", "hf", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    return transformers.GPT2LMHeadModel.from_pretrained(str(out)).eval()


def test_the_spec_takes_the_checkpoints_architecture_and_tokenizer(gpt2_folder):
    folder, _ = gpt2_folder
    spec = spec_from(folder)
    m = spec.model
    fixed, rows = pretrained_arch(str(folder))
    assert set(fixed) == set(engine.PRETRAINED_FIELDS) and rows == 400  # what the form locks
    assert (m.n_layer, m.n_head, m.d_model, m.d_ff, m.context) == (2, 2, 32, 128, CONTEXT)
    assert m.activation == "gelu_tanh" and m.norm_position == "pre" and m.tie_weights
    task = engine.build_task(spec.data, spec.model)
    assert isinstance(task.vocab, BpeVocab) and task.vocab_size == 400
    with pytest.raises(engine.ConfigError) as info:
        engine.replace(spec, {"model.n_layer": 6})
    assert info.value.path == "model.n_layer" and "checkpoint's 2" in str(info.value)


def test_a_run_at_lr_zero_exports_the_checkpoint_it_started_from(gpt2_folder, tmp_path):
    """Nothing moves at LR 0: the run's export gives the original model's logits, so the
    weights went in, through training, a checkpoint and out again unchanged."""
    folder, original = gpt2_folder
    handle = engine.start_run(spec_from(folder, lr=0.0, weight_decay=0.0), tmp_path / "runs")
    assert handle.join(120) and handle.status == "finished", handle.error
    exported = export(handle.run_dir, tmp_path / "out")
    idx = torch.randint(400, (3, CONTEXT), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        gap = (exported(idx).logits - original(idx).logits).abs().max().item()
    assert gap <= TOL
    assert logits_gap(load_model_from_run(handle.run_dir)[3], original, 400) <= TOL
    text = sample_run(handle.run_dir, prompt="def ", tokens=12, seed=0)
    assert text.startswith("def ")


def test_layernorm_removed_on_the_timeline_exports_to_an_ln_free_gpt2(gpt2_folder, tmp_path):
    """Every norm set to strength 0 at tick 2 (FakeLN, sigma-bar calibrated there), trained on
    to the end: transformers computes what the engine computes, LayerNorms and all, within
    1e-4; the run logged the strengths the timeline planned."""
    folder, original = gpt2_folder
    spec = engine.replace(
        spec_from(folder),
        {"timeline.layernorm": [{"at": 2, "action": "set", "strength": 0.0, "layers": "all"}]},
    )
    handle = engine.start_run(spec, tmp_path / "runs")
    assert handle.join(120) and handle.status == "finished", handle.error
    ours = load_model_from_run(handle.run_dir)[3]
    assert all(norm.strength == 0.0 for _, norm in ours.norm_sites())
    exported = export(handle.run_dir, tmp_path / "out")
    assert exported.config.layer_norm_epsilon >= 1e10  # the FakeLN export (engine.pretrained)
    assert logits_gap(ours, exported, 400) <= TOL
    assert logits_gap(ours, original, 400) > 0.01  # it did train, and without LayerNorm


def test_removal_without_centring_is_refused_by_the_export(gpt2_folder, tmp_path):
    folder, _ = gpt2_folder
    spec = engine.replace(
        spec_from(folder, steps=3),
        {
            "model.norm_center": "strength",
            "timeline.layernorm": [{"at": 1, "action": "set", "strength": 0.0, "layers": "all"}],
        },
    )
    handle = engine.start_run(spec, tmp_path / "runs")
    assert handle.join(120) and handle.status == "finished", handle.error
    done = subprocess.run(
        [sys.executable, "-m", "engine", "export", str(handle.run_dir), "--format", "hf",
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "norm_center" in lines[0], done.stderr


def test_lora_and_freezing_train_an_imported_model(gpt2_folder, tmp_path):
    """LoRA trains adapters on the imported weights, which stay as the checkpoint has them;
    a phase that freezes the first block leaves it as imported while the rest trains."""
    folder, original = gpt2_folder
    base = spec_from(folder, steps=4, eval_every=0)
    lora = engine.replace(base, {"train.lora": {"rank": 2, "targets": ["attn.q", "attn.kv"]}})
    freeze = engine.replace(
        base, {"timeline.phases": [{"name": "ft", "start": 0, "freeze": ["blocks.0"]}]}
    )
    models = {}
    for name, spec in (("lora", lora), ("freeze", freeze)):
        handle = engine.start_run(spec, tmp_path / name)
        assert handle.join(120) and handle.status == "finished", handle.error
        models[name] = load_model_from_run(handle.run_dir)[3]
        models[name + " meta"] = engine.open_run(handle.run_dir).meta

    def fc(model, i):
        return model.blocks[i].mlp.fc.weight.detach()

    def theirs(i):
        return original.transformer.h[i].mlp.c_fc.weight.detach().T  # Conv1D: (in, out)

    assert models["lora meta"]["trainable_params"] < models["lora meta"]["params"] / 10
    assert torch.equal(fc(models["lora"], 1), theirs(1))  # base weights untouched
    assert logits_gap(models["lora"], original, 400) > 1e-4  # the adapters moved it
    assert torch.equal(fc(models["freeze"], 0), theirs(0))  # frozen: as imported
    assert not torch.equal(fc(models["freeze"], 1), theirs(1))  # trained


def test_a_classification_head_trains_on_an_imported_model(gpt2_folder, tmp_path):
    """A CSV of texts in the checkpoint's own BPE, right-padded with <|endoftext|>, classified
    by a head on the imported body: it trains, and the body's weights came from the folder."""
    folder, original = gpt2_folder
    rows = ["text,label"] + [
        f"{'def' if i % 2 else 'class'} item_{i}(x): return {i},{'function' if i % 2 else 'type'}"
        for i in range(120)
    ]
    csv = tmp_path / "rows.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = engine.parse_spec(
        {
            "name": "gpt2-classify",
            "model": {"from_pretrained": str(folder), "head": "classify"},
            "data": {"source": "csv", "path": str(csv), "tokenizer": "bpe"},
            "train": {
                "steps": 30,
                "batch_size": 8,
                "lr": 3e-3,
                "eval_every": 30,
                "eval_batches": 4,
                "checkpoint_every": 0,
                "threads": 1,
            },  # fmt: skip
        }
    )
    task = engine.build_task(spec.data, spec.model)
    assert task.pad_id == task.vocab.encode("<|endoftext|>")[0] and task.n_classes == 2
    handle = engine.start_run(spec, tmp_path / "runs")
    assert handle.join(120) and handle.status == "finished", handle.error
    record = engine.open_run(handle.run_dir)
    assert record.scalars("val/accuracy")[1][-1] >= 0.9  # "def" or "class": easy to tell
    ours = load_model_from_run(handle.run_dir)[3]
    assert ours.classify and ours.blocks[0].mlp.fc.weight.shape == (128, 32)


def test_the_gpu_preset_removes_every_norm_of_gpt2_small_in_the_papers_order(tmp_path):
    """presets/gpu/gpt2-ln-removal-small.yaml with a 12-block stand-in for GPT-2 small (its
    weights cannot be downloaded here): the spec reads, and its timeline removes the MLP norms,
    then attention's, then the final norm, every one by the end."""
    import yaml

    bpe = train_bpe(stdlib_text(30_000)[0], 300, ("<|endoftext|>",))
    config = transformers.GPT2Config(
        n_layer=12, n_head=2, n_embd=16, n_positions=1024, vocab_size=len(bpe),
        bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    bpe.tokenizer.save(str(tmp_path / "gpt2" / "tokenizer.json"))
    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "presets/gpu/gpt2-ln-removal-small.yaml").read_text())
    data["model"]["from_pretrained"] = str(tmp_path / "gpt2")
    data["data"]["max_chars"] = 200_000
    data["train"]["device"] = "cpu"
    spec = engine.parse_spec(data)
    assert (spec.model.n_layer, spec.model.context, spec.model.norm_center) == (12, 1024, "always")
    tl = engine.plan_timeline(spec)
    gone = {}
    for site in ("0.mlp", "11.mlp", "0.attn", "11.attn", "final"):
        gone[site] = next(t for t in range(tl.steps) if tl.at(t).strength[site] == 0.0)
    assert gone == {"0.mlp": 200, "11.mlp": 420, "0.attn": 440, "11.attn": 990, "final": 1040}
    assert all(v == 0.0 for v in tl.at(tl.steps - 1).strength.values())
