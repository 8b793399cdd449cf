"""A pretrained checkpoint's weights in an engine Transformer: the GPT-2 and nanoGPT names
mapped onto the engine's (the table in ``engine.pretrained``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from engine.config import ModelConfig
from engine.data.bpe import BpeVocab
from engine.errors import ConfigError
from engine.model import Transformer
from engine.pretrained.arch import pretrained_arch
from engine.pretrained.source import FIELD, one_line, read_nanogpt, resolve_pretrained, torch_load
from engine.pretrained.tokenizer import pretrained_tokenizer

_MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], bool]:
    """(tensors by checkpoint name, whether 2-D projection weights are Conv1D (in, out))."""
    if path.is_file():
        return read_nanogpt(path)["model"], False
    from safetensors.torch import load_file

    try:
        if (path / "model.safetensors").is_file():
            return load_file(path / "model.safetensors"), True
        index = path / "model.safetensors.index.json"
        if index.is_file():
            shards = sorted(
                set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            )
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                out.update(load_file(path / shard))
            return out, True
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(FIELD, f"cannot read the weights in {path}: {one_line(exc)}") from None
    state = torch_load(path / "pytorch_model.bin")
    if not isinstance(state, dict):
        raise ConfigError(FIELD, f"{path / 'pytorch_model.bin'} is not a state dict")
    return state, True


# checkpoint suffix -> engine suffix (per block, then top level)
_BLOCK_NAMES = {
    "ln_1": "ln_attn",
    "ln_2": "ln_mlp",
    "attn.c_proj": "attn.proj",
    "mlp.c_fc": "mlp.fc",
    "mlp.c_proj": "mlp.proj",
}
_TOP_NAMES = {"wte": "embed", "wpe": "pos", "ln_f": "ln_final", "lm_head": "head"}
_BLOCK_BACK = {v: k for k, v in _BLOCK_NAMES.items()} | {
    "attn.q": "attn.c_attn",
    "attn.kv": "attn.c_attn",
}
_TOP_BACK = {v: k for k, v in _TOP_NAMES.items()}


def _engine_name(rel: str) -> str | None:
    """Engine name of a GPT-2 tensor name (``transformer.`` already stripped); None if none.
    ``c_attn`` maps to ``attn.qkv`` (split into q and kv by the caller)."""
    m = re.fullmatch(r"h\.(\d+)\.(.+)\.(weight|bias)", rel)
    if m:
        i, mod, kind = m.groups()
        if mod == "attn.c_attn":
            return f"blocks.{int(i)}.attn.qkv.{kind}"
        if mod in _BLOCK_NAMES:
            return f"blocks.{int(i)}.{_BLOCK_NAMES[mod]}.{kind}"
        return None
    mod, _, kind = rel.rpartition(".")
    if mod in _TOP_NAMES and kind in ("weight", "bias"):
        return f"{_TOP_NAMES[mod]}.{kind}"
    return None


def _check_matches(model: Transformer, source: str) -> None:
    fields, vocab_size = pretrained_arch(source)
    for name, value in fields.items():
        ours = getattr(model.cfg, name)
        if ours != value:
            raise ConfigError(
                f"model.{name}", f"{ours} disagrees with the checkpoint's {value} ({source})"
            )
    if model.vocab_size != vocab_size:
        raise ConfigError(
            FIELD,
            f"the model has {model.vocab_size} tokens, the checkpoint {vocab_size} ({source})",
        )


@torch.no_grad()
def load_pretrained_into(model: Transformer, source: str) -> None:
    """Copy the checkpoint's weights into ``model``, built from ``apply_pretrained``'s config
    with the checkpoint's vocab size. Norm strengths and σ̄ are untouched; a classifier and LoRA
    adapters (not in any GPT-2 checkpoint) keep their values. One-line ConfigError naming the
    tensor for a missing, unexpected or misshapen one."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd model
    path = resolve_pretrained(source)
    _check_matches(model, source)
    state, conv = _read_weights(path)
    tied = model.head.weight is model.embed.weight
    want = {
        name: t
        for name, t in model.state_dict(keep_vars=True).items()
        if not name.endswith(("sigma_bar", "_extra_state", "lora_A", "lora_B"))
        and not name.startswith("classifier.")
        and not (tied and name == "head.weight")
    }
    prefix = "transformer."
    got: dict[str, tuple[torch.Tensor, str]] = {}
    for key, tensor in state.items():
        rel = key.removeprefix("_orig_mod.")
        if rel.startswith(prefix):
            rel = rel[len(prefix) :]
        if _MASK_BUFFER.fullmatch(rel):
            continue
        name = _engine_name(rel)
        if name == "head.weight" and tied:  # the tied copy nanoGPT (or an HF save) keeps
            continue
        if name is not None and ".qkv." in name:
            q, kv = name.replace(".qkv.", ".q."), name.replace(".qkv.", ".kv.")
            if q in want and kv in want:
                expect = (want[q].shape[0] + want[kv].shape[0], *want[q].shape[1:])
                t = _checked(tensor, key, expect, conv, path)
                n = want[q].shape[0]
                got[q], got[kv] = (t[:n], key), (t[n:], key)
                continue
        if name is None or name not in want:
            raise ConfigError(
                FIELD,
                f"unexpected tensor {key} in {path} (not part of a GPT-2 with "
                f"{model.cfg.n_layer} layers and bias={model.cfg.bias})",
            )
        in_block = name.startswith("blocks.")  # Conv1D in HF: (in, out); wte/wpe/lm_head not
        got[name] = (_checked(tensor, key, tuple(want[name].shape), conv and in_block, path), key)
    missing = [name for name in want if name not in got]
    if missing:
        raise ConfigError(FIELD, f"{path} has no tensor for {_ckpt_name(missing[0])}")
    for name, (tensor, _) in got.items():
        want[name].copy_(tensor)


def _checked(tensor, key: str, expect: tuple, conv: bool, path: Path) -> torch.Tensor:
    """``tensor`` in nn.Linear layout, after checking its shape (in the checkpoint's layout)."""
    if not isinstance(tensor, torch.Tensor):
        raise ConfigError(FIELD, f"{key} in {path} is not a tensor")
    transpose = conv and len(expect) == 2
    stored = tuple(reversed(expect)) if transpose else tuple(expect)
    if tuple(tensor.shape) != stored:
        raise ConfigError(
            FIELD,
            f"tensor {key} in {path} has shape {tuple(tensor.shape)}, the model expects {stored}",
        )
    return tensor.t() if transpose else tensor


def _ckpt_name(engine_name: str) -> str:
    """The GPT-2 name (``transformer.h.1.mlp.c_fc.bias``) an engine tensor comes from."""
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", engine_name)
    if m:
        i, mod, kind = m.groups()
        return f"transformer.h.{i}.{_BLOCK_BACK.get(mod, mod)}.{kind}"
    mod, _, kind = engine_name.rpartition(".")
    name = _TOP_BACK.get(mod, mod)
    return f"{name}.{kind}" if name == "lm_head" else f"transformer.{name}.{kind}"


def load_pretrained(source: str) -> tuple[Transformer, BpeVocab]:
    """(the checkpoint as an engine Transformer in eval mode with dropout 0, its tokenizer).

    ``model(idx)`` maps int64 (B, T) token ids to (B, T, vocab) logits, every LayerNorm at full
    strength, as the checkpoint computes them."""
    fields, vocab_size = pretrained_arch(source)
    tokenizer = pretrained_tokenizer(source)
    model = Transformer(ModelConfig(from_pretrained=source, dropout=0.0, **fields), vocab_size)
    load_pretrained_into(model, source)
    return model.eval(), tokenizer
