"""GPT-2-family checkpoints in (HF folders, nanoGPT ckpt.pt) and HF GPT-2 folders out, checked
against transformers' own GPT2LMHeadModel on tiny random models (no network needed)."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel  # noqa: E402

from engine.config import ModelConfig  # noqa: E402
from engine.data.bpe import train_bpe  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from engine.model import Transformer  # noqa: E402
from engine.pretrained import (  # noqa: E402
    apply_pretrained,
    export_hf,
    load_pretrained,
    load_pretrained_into,
    pretrained_arch,
    pretrained_tokenizer,
    resolve_pretrained,
    source,  # noqa: E402
)
from engine.pretrained.export import FAKE_LN_EPS  # noqa: E402

TOL = 1e-4
CONTEXT = 32
SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun.",
    "A transformer reads tokens, mixes them with attention and predicts the next one.",
    "Layer normalisation rescales every token; removing it changes what the model computes.",
    "Pack my box with five dozen liquor jugs, then count them: 1, 2, 3, 4, 5, 60, 700.",
    "def tokenize(text):\n    return [ord(c) for c in text]  # bytes, naively\n",
    "Numbers like 3.14159 and 2.71828 appear next to words like résumé, café and naïve.",
    "She sells sea shells by the sea shore; the shells she sells are surely sea shells.",
]
TEXT = "\n".join(f"{i}: {SENTENCES[i % 7]} {SENTENCES[(3 * i + 1) % 7]}" for i in range(40))
PARAGRAPH = (
    "The lazy cat reads five tokens, then predicts the next one: 42. Removing normalisation "
    "from a transformer changes what it computes, unless the scale is kept fixed. Naïve café!"
)


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(TEXT, 320)


def hf_model(vocab_size: int, seed: int, **kw) -> GPT2LMHeadModel:
    """A tiny random GPT-2 with every parameter (biases, norms) perturbed away from its init."""
    cfg = GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=CONTEXT, vocab_size=vocab_size,
        bos_token_id=None, eos_token_id=None, **kw,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


HF_VARIANTS = {
    "tied": {},
    "untied": {
        "tie_word_embeddings": False,
        "n_inner": 48,
        "activation_function": "gelu_pytorch_tanh",
        "layer_norm_epsilon": 1e-6,
    },
}


@pytest.fixture(scope="module", params=sorted(HF_VARIANTS))
def hf_folder(request, bpe, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hf-{request.param}")
    model = hf_model(len(bpe), seed=0, **HF_VARIANTS[request.param])
    model.save_pretrained(folder)
    bpe.tokenizer.save(str(folder / "tokenizer.json"))
    return folder, model


def nanogpt_state(model: GPT2LMHeadModel, prefix: str = "") -> dict:
    """nanoGPT's state dict of an HF GPT-2: nn.Linear layouts, lm_head tied, mask buffers."""
    out = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue
        if re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", key):
            value = value.t()  # Conv1D (in, out) -> nn.Linear (out, in)
        out[prefix + key] = value.detach().clone().contiguous()
    out[prefix + "lm_head.weight"] = out[prefix + "transformer.wte.weight"]
    for i in range(model.config.n_layer):
        mask = torch.tril(torch.ones(CONTEXT, CONTEXT)).view(1, 1, CONTEXT, CONTEXT)
        out[f"{prefix}transformer.h.{i}.attn.bias"] = mask
    return out


def save_nanogpt(folder, state: dict, vocab_size: int, bias: bool = True, tokenizer=None):
    folder.mkdir(parents=True, exist_ok=True)
    args = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": CONTEXT, "bias": bias,
            "vocab_size": vocab_size, "dropout": 0.0}  # fmt: skip
    ckpt = {"model_args": args, "model": state, "iter_num": 10, "best_val_loss": 2.5,
            "config": {"dataset": "tiny", "compile": True}}  # fmt: skip
    torch.save(ckpt, folder / "ckpt.pt")
    if tokenizer is not None:
        tokenizer.tokenizer.save(str(folder / "tokenizer.json"))
    return folder / "ckpt.pt"


NANOGPT_VARIANTS = ["plain", "compiled", "nobias"]


@pytest.fixture(scope="module", params=NANOGPT_VARIANTS)
def nanogpt_ckpt(request, bpe, tmp_path_factory):
    # nanoGPT: exact GELU; "plain" pads the vocabulary as nanoGPT pads GPT-2's to 50304
    vocab_size = len(bpe) + (8 if request.param == "plain" else 0)
    model = hf_model(vocab_size, seed=1, activation_function="gelu")
    if request.param == "nobias":  # bias=False: zero biases in the reference, none stored
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(".bias"):
                    p.zero_()
    state = nanogpt_state(model, "_orig_mod." if request.param == "compiled" else "")
    if request.param == "nobias":
        state = {k: v for k, v in state.items() if not k.endswith(("ln_1.bias", "ln_2.bias",
                 "ln_f.bias", "c_attn.bias", "c_proj.bias", "c_fc.bias"))}  # fmt: skip
    folder = tmp_path_factory.mktemp(f"nanogpt-{request.param}")
    path = save_nanogpt(folder, state, vocab_size, request.param != "nobias", bpe)
    return path, model


def batches(vocab_size: int, context: int = CONTEXT):
    """A random (4, T) batch, and a right-padded one with its attention mask."""
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(0, vocab_size, (4, context), generator=gen)
    lengths = torch.tensor([context, context * 2 // 3, 7, 1])
    mask = (torch.arange(context)[None, :] < lengths[:, None]).long()
    padded = torch.where(mask.bool(), idx.flip(0), torch.zeros_like(idx))
    return idx, padded, mask


@torch.no_grad()
def max_logit_diff(ours: torch.nn.Module, ref: GPT2LMHeadModel, idx, mask=None) -> float:
    a = ours(idx)
    b = ref(input_ids=idx, attention_mask=mask).logits
    assert a.shape == b.shape
    if mask is not None:
        real = mask.bool()
        a, b = a[real], b[real]
    return (a - b).abs().max().item()


def check_logits(ours, ref, vocab_size, context=CONTEXT):
    idx, padded, mask = batches(vocab_size, context)
    assert max_logit_diff(ours, ref, idx) <= TOL
    assert max_logit_diff(ours, ref, padded, mask) <= TOL


# --- import ----------------------------------------------------------------------------------


def test_hf_folder_gives_transformers_logits(hf_folder, bpe):
    folder, ref = hf_folder
    model, vocab = load_pretrained(str(folder))
    assert vocab == bpe and not model.training and model.cfg.dropout == 0.0
    assert model.cfg.tie_weights == ref.config.tie_word_embeddings
    assert (model.head.weight is model.embed.weight) == model.cfg.tie_weights
    for _, norm in model.norm_sites():  # ordinary LayerNorms, σ̄ untouched
        assert norm.strength == 1.0 and norm.sigma_bar.item() == 1.0
    check_logits(model, ref, len(bpe))


@pytest.mark.parametrize("layout", ["pytorch_model.bin", "sharded safetensors"])
def test_other_hf_weight_files(bpe, tmp_path, layout):
    """The hub's gpt2 keeps GPT2Model names (no ``transformer.``) and the causal-mask buffers in
    pytorch_model.bin; big models shard model.safetensors."""
    from safetensors.torch import save_file

    ref = hf_model(len(bpe), 7)
    ref.config.save_pretrained(tmp_path)
    bpe.tokenizer.save(str(tmp_path / "tokenizer.json"))
    state = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    if layout == "pytorch_model.bin":
        state = {
            k.removeprefix("transformer."): v for k, v in state.items() if k != "lm_head.weight"
        }
        for i in range(2):
            state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, CONTEXT, CONTEXT))
            state[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        torch.save(state, tmp_path / "pytorch_model.bin")
    else:
        del state["lm_head.weight"]
        keys = sorted(state)
        shards = {
            "model-00001-of-00002.safetensors": keys[:9],
            "model-00002-of-00002.safetensors": keys[9:],
        }
        for shard, names in shards.items():
            save_file({k: state[k] for k in names}, str(tmp_path / shard), {"format": "pt"})
        index = {"weight_map": {k: s for s, names in shards.items() for k in names}}
        (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    model, _ = load_pretrained(str(tmp_path))
    check_logits(model, ref, len(bpe))


def test_nanogpt_checkpoint_gives_the_same_logits(nanogpt_ckpt, bpe):
    path, ref = nanogpt_ckpt
    model, vocab = load_pretrained(str(path))
    assert model.cfg.activation == "gelu"
    assert model.cfg.bias == (not path.parent.name.startswith("nanogpt-nobias"))
    # the tokenizer beside it, padded to the model's rows
    assert len(vocab) == model.vocab_size == ref.config.vocab_size
    assert vocab.encode(PARAGRAPH) == bpe.encode(PARAGRAPH)
    unused = list(range(len(bpe), len(vocab)))  # nanoGPT's padding rows: decoded as nothing
    assert vocab.decode(vocab.encode(PARAGRAPH) + unused) == PARAGRAPH
    check_logits(model, ref, model.vocab_size)
    # nanoGPT's out_dir means its ckpt.pt
    assert resolve_pretrained(str(path.parent)) == path.resolve()


def test_tokenizer_matches_transformers(hf_folder, bpe):
    folder, _ = hf_folder
    vocab = pretrained_tokenizer(str(folder))
    theirs = AutoTokenizer.from_pretrained(str(folder))
    ids = vocab.encode(PARAGRAPH)
    assert ids == theirs(PARAGRAPH, add_special_tokens=False)["input_ids"]
    assert vocab.decode(ids) == PARAGRAPH == theirs.decode(ids)
    assert pretrained_tokenizer(str(folder)) is vocab  # cached


def test_nanogpt_without_a_tokenizer_says_where_to_put_one(bpe, tmp_path):
    path = save_nanogpt(tmp_path / "bare", nanogpt_state(hf_model(len(bpe), 2)), len(bpe))
    with pytest.raises(ConfigError) as exc:
        pretrained_tokenizer(str(path))
    assert exc.value.path == "model.from_pretrained"
    assert "tokenizer.json" in one_line(exc) and str(tmp_path / "bare") in str(exc.value)


def test_arch_reads_what_the_checkpoint_fixes(hf_folder, bpe):
    folder, ref = hf_folder
    fields, vocab_size = pretrained_arch(str(folder))
    c = ref.config
    assert vocab_size == len(bpe)
    assert fields == {
        "arch": "decoder", "n_layer": 2, "n_head": 2, "d_model": 32,
        "d_ff": c.n_inner or 128, "context": CONTEXT, "activation": "gelu_tanh",
        "norm": "layernorm", "norm_position": "pre", "norm_eps": c.layer_norm_epsilon,
        "bias": True, "tie_weights": c.tie_word_embeddings,
    }  # fmt: skip


def test_arch_cache_sees_a_changed_config(bpe, tmp_path):
    hf_model(len(bpe), 4).save_pretrained(tmp_path)
    assert pretrained_arch(str(tmp_path))[0]["context"] == CONTEXT
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "n_positions": 64}))
    assert pretrained_arch(str(tmp_path))[0]["context"] == 64


@pytest.mark.parametrize(
    "change, words",
    [
        ({"model_type": "llama"}, "'llama' model"),
        ({"activation_function": "relu"}, "activation_function 'relu'"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ],
)
def test_arch_refuses_what_the_engine_cannot_compute(bpe, tmp_path, change, words):
    hf_model(len(bpe), 4).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    with pytest.raises(ConfigError) as exc:
        pretrained_arch(str(tmp_path))
    assert exc.value.path == "model.from_pretrained" and words in one_line(exc)


def test_apply_pretrained_fills_defaults_and_keeps_other_fields(hf_folder):
    folder, ref = hf_folder
    spec = ModelConfig(from_pretrained=str(folder), dropout=0.1, norm_center="always")
    got = apply_pretrained(spec)
    fields, _ = pretrained_arch(str(folder))
    assert {k: getattr(got, k) for k in fields} == fields
    assert got.dropout == 0.1 and got.norm_center == "always"
    assert got.norm_backend == spec.norm_backend and got.head == "lm"
    # a field set to the checkpoint's own value is fine
    agreeing = dataclasses.replace(spec, n_layer=2, d_model=32)
    assert apply_pretrained(agreeing) == got


def test_apply_pretrained_without_a_source_changes_nothing():
    spec = ModelConfig(n_layer=3)
    assert apply_pretrained(spec) is spec


@pytest.mark.parametrize(
    "field, value", [("n_layer", 3), ("d_model", 64), ("activation", "relu"), ("context", 16)]
)
def test_apply_pretrained_names_a_disagreeing_field(hf_folder, field, value):
    folder, _ = hf_folder
    spec = ModelConfig(from_pretrained=str(folder), **{field: value})
    with pytest.raises(ConfigError) as exc:
        apply_pretrained(spec)
    assert exc.value.path == f"model.{field}"
    assert f"{value} disagrees with the checkpoint's" in one_line(exc)


def test_an_unknown_hub_name_fails_fast_with_how_to_get_it(monkeypatch):
    # offline this fails at name resolution; with a network that drops packets, the look-up
    # gives up after HUB_TIMEOUT (per connect and read); with one, the hub answers 404 at once
    monkeypatch.setattr(source, "HUB_TIMEOUT", 2)
    name = "gpt2-does-not-exist-here"
    start = time.monotonic()
    with pytest.raises(ConfigError) as exc:
        resolve_pretrained(name)
    assert time.monotonic() - start < 10
    msg = one_line(exc)
    assert exc.value.path == "model.from_pretrained"
    assert "neither a local" in msg and f"download {name} --local-dir {name}" in msg


def test_a_missing_local_path_is_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(ConfigError) as exc:
        resolve_pretrained(str(tmp_path / "nope" / "ckpt.pt"))
    assert "does not exist" in one_line(exc)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as exc:
        resolve_pretrained(str(tmp_path / "empty"))
    assert "holds no GPT-2 checkpoint" in one_line(exc)


def _broken(state: dict, kind: str) -> tuple[dict, str]:
    state = dict(state)
    if kind == "missing":
        del state["transformer.h.1.mlp.c_fc.bias"]
        return state, "transformer.h.1.mlp.c_fc.bias"
    if kind == "unexpected":
        state["transformer.h.1.mlp.gate.weight"] = torch.zeros(3)
        return state, "transformer.h.1.mlp.gate.weight"
    state["transformer.wpe.weight"] = torch.zeros(CONTEXT + 1, 32)
    return state, "transformer.wpe.weight"


@pytest.mark.parametrize("kind", ["missing", "unexpected", "shape"])
def test_a_bad_tensor_is_named(bpe, tmp_path, kind):
    state, name = _broken(nanogpt_state(hf_model(len(bpe), 5, activation_function="gelu")), kind)
    path = save_nanogpt(tmp_path, state, len(bpe), tokenizer=bpe)
    fields, vocab_size = pretrained_arch(str(path))
    model = Transformer(ModelConfig(**fields), vocab_size)
    with pytest.raises(ConfigError) as exc:
        load_pretrained_into(model, str(path))
    assert name in one_line(exc)


def test_loading_into_a_mismatched_model_names_the_field(hf_folder, bpe):
    folder, _ = hf_folder
    fields, vocab_size = pretrained_arch(str(folder))
    model = Transformer(ModelConfig(**{**fields, "n_layer": 1}), vocab_size)
    with pytest.raises(ConfigError) as exc:
        load_pretrained_into(model, str(folder))
    assert exc.value.path == "model.n_layer"


# --- export ----------------------------------------------------------------------------------


def load_hf(folder) -> GPT2LMHeadModel:
    return GPT2LMHeadModel.from_pretrained(str(folder)).eval()


def test_export_round_trip(hf_folder, bpe, tmp_path):
    folder, _ = hf_folder
    model, vocab = load_pretrained(str(folder))
    out = export_hf(model, vocab, tmp_path / "export")
    theirs = load_hf(out)
    check_logits(model, theirs, len(bpe))
    # tied weights are stored once
    from safetensors.torch import load_file

    stored = load_file(out / "model.safetensors")
    assert ("lm_head.weight" in stored) != model.cfg.tie_weights
    # the tokenizer travels and transformers reads it
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok(PARAGRAPH, add_special_tokens=False)["input_ids"] == vocab.encode(PARAGRAPH)
    # and the engine reads its own export back
    again, _ = load_pretrained(str(out))
    idx, _, _ = batches(len(bpe))
    with torch.no_grad():
        assert (again(idx) - model(idx)).abs().max().item() <= TOL


def calibrated(model: Transformer, vocab_size: int) -> Transformer:
    """Every norm's σ̄ set from a batch of real activations, as a timeline calibrate does."""
    for _, norm in model.norm_sites():
        norm.calibrate_next = True
    with torch.no_grad():
        model(batches(vocab_size)[0])
    return model


def remove_norms(model: Transformer, center: str, strengths=None) -> Transformer:
    for i, (_, norm) in enumerate(model.norm_sites()):
        if getattr(norm, "center", None) is None:
            pytest.skip("engine.norm.Norm has no `center` attribute yet")
        norm.center = center
        norm.set_strength(0.0 if strengths is None else strengths[i % len(strengths)])
    return model


def test_export_of_a_model_without_layernorm(hf_folder, bpe, tmp_path):
    folder, _ = hf_folder
    model, vocab = load_pretrained(str(folder))
    model = remove_norms(calibrated(model, len(bpe)), "always")
    sigmas = {round(n.sigma_bar.item(), 6) for _, n in model.norm_sites()}
    assert len(sigmas) > 1 and 1.0 not in sigmas  # calibrated: per-norm scales, not the init
    out = export_hf(model, vocab, tmp_path / "fakeln")
    assert json.loads((out / "config.json").read_text())["layer_norm_epsilon"] == FAKE_LN_EPS
    check_logits(model, load_hf(out), len(bpe))


@pytest.mark.parametrize(
    "center, strengths, words",
    [
        ("always", [0.0, 1.0], "some norms are at strength 0 and some at 1"),
        ("always", [0.5], "mid-ramp"),
        ("strength", [0.0], "norm_center: always"),
    ],
)
def test_export_refuses_norms_gpt2_cannot_compute(hf_folder, tmp_path, center, strengths, words):
    model, vocab = load_pretrained(str(hf_folder[0]))
    remove_norms(model, center, strengths)
    with pytest.raises(ConfigError) as exc:
        export_hf(model, vocab, tmp_path)
    assert exc.value.path == "model" and words in one_line(exc)
    assert not (tmp_path / "model.safetensors").exists()


TINY = {"n_layer": 1, "n_head": 2, "d_model": 16, "d_ff": 32, "context": 16}


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"arch": "encoder_decoder"}, "encoder_decoder"),
        ({"norm": "rmsnorm"}, "rmsnorm"),
        ({"norm": "none"}, "none"),
        ({"norm_position": "post"}, "post"),
        ({"activation": "swiglu"}, "swiglu"),
        ({"activation": "relu"}, "relu"),
        ({"head": "classify"}, "classification head"),
        ({"lora": True}, "merge them first"),
    ],
)
def test_export_refuses_what_gpt2_cannot_express(tmp_path, fields, words):
    lora = fields.pop("lora", False)
    n_classes = 2 if fields.get("head") == "classify" else 0
    model = Transformer(ModelConfig(**TINY, **fields), 50, n_classes=n_classes)
    if lora:
        from engine.config import LoRAConfig
        from engine.lora import apply_lora

        apply_lora(model, LoRAConfig(rank=2))
    with pytest.raises(ConfigError) as exc:
        export_hf(model, None, tmp_path)
    assert exc.value.path == "model" and words in one_line(exc)


def test_export_without_biases_writes_zero_biases(tmp_path):
    torch.manual_seed(6)
    cfg = ModelConfig(**TINY, bias=False, tie_weights=False, activation="gelu_tanh")
    model = Transformer(cfg, 50).eval()
    out = export_hf(model, None, tmp_path)
    assert not (out / "tokenizer.json").exists()
    check_logits(model, load_hf(out), 50, context=16)
