"""What a pretrained checkpoint fixes: the ``ModelConfig`` fields of its architecture and its
vocab size (``pretrained_arch``), and a spec's model section with them filled in
(``apply_pretrained``)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any

from engine.config import ModelConfig
from engine.errors import ConfigError
from engine.pretrained.source import FIELD, file_stamp, one_line, read_nanogpt, resolve_pretrained

# HF activation_function -> engine activation. gelu_fast is the same tanh formula as gelu_new.
HF_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
}
# GPT2Config's defaults, for keys a config.json leaves out.
GPT2_DEFAULTS = {
    "vocab_size": 50257,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_inner": None,
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-5,
    "tie_word_embeddings": True,
}


def _int(value: Any, key: str, where: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(FIELD, f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def _check_limits(fields: dict, where: Path) -> None:
    """The checkpoint's values within the spec fields' limits, and heads dividing the width."""
    meta = {f.name: f.metadata for f in dataclasses.fields(ModelConfig)}
    for name, value in fields.items():
        m = meta[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if ("max" in m and value > m["max"]) or ("min" in m and value < m["min"]):
            raise ConfigError(
                FIELD,
                f"{where}: {name}={value} is outside the engine's range "
                f"{m.get('min', '-inf')}..{m.get('max', 'inf')}",
            )
    if fields["d_model"] % fields["n_head"]:
        raise ConfigError(FIELD, f"{where}: n_embd={fields['d_model']} is not divisible by n_head")


def _fields(n_layer, n_head, d_model, d_ff, context, activation, eps, bias, tied) -> dict:
    return {
        "arch": "decoder",
        "n_layer": n_layer,
        "n_head": n_head,
        "d_model": d_model,
        "d_ff": d_ff,
        "context": context,
        "activation": activation,
        "norm": "layernorm",
        "norm_position": "pre",
        "norm_eps": eps,
        "bias": bias,
        "tie_weights": tied,
    }


def _hf_arch(folder: Path) -> tuple[dict, int]:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(FIELD, f"cannot read {folder / 'config.json'}: {one_line(exc)}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(FIELD, f"{folder / 'config.json'} is not a JSON object")
    kind = cfg.get("model_type")
    if kind != "gpt2":
        raise ConfigError(
            FIELD,
            f"{folder} is a {kind!r} model; only GPT-2-family checkpoints load (model_type gpt2, "
            "or a nanoGPT ckpt.pt)",
        )
    cfg = {**GPT2_DEFAULTS, **cfg}
    act = cfg["activation_function"]
    if act not in HF_ACTIVATIONS:
        raise ConfigError(
            FIELD,
            f"{folder}: activation_function {act!r} has no engine equivalent (supported: "
            f"{', '.join(HF_ACTIVATIONS)})",
        )
    for key, ok in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("add_cross_attention", False),
    ):
        if bool(cfg.get(key, ok)) != ok:
            raise ConfigError(FIELD, f"{folder}: {key}={cfg[key]} is not supported")
    d_model = _int(cfg["n_embd"], "n_embd", folder)
    n_inner = cfg["n_inner"]
    eps = cfg["layer_norm_epsilon"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise ConfigError(FIELD, f"{folder}: layer_norm_epsilon must be > 0, got {eps!r}")
    fields = _fields(
        n_layer=_int(cfg["n_layer"], "n_layer", folder),
        n_head=_int(cfg["n_head"], "n_head", folder),
        d_model=d_model,
        d_ff=4 * d_model if n_inner is None else _int(n_inner, "n_inner", folder),
        context=_int(cfg.get("n_positions", cfg.get("n_ctx")), "n_positions", folder),
        activation=HF_ACTIVATIONS[act],
        eps=float(eps),
        bias=True,
        tied=bool(cfg["tie_word_embeddings"]),
    )
    _check_limits(fields, folder)
    return fields, _int(cfg["vocab_size"], "vocab_size", folder)


def _nanogpt_arch(path: Path) -> tuple[dict, int]:
    args = read_nanogpt(path)["model_args"]
    missing = [
        k for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size") if k not in args
    ]
    if missing:
        raise ConfigError(FIELD, f"{path}: model_args has no {', '.join(missing)}")
    d_model = _int(args["n_embd"], "n_embd", path)
    fields = _fields(
        n_layer=_int(args["n_layer"], "n_layer", path),
        n_head=_int(args["n_head"], "n_head", path),
        d_model=d_model,
        d_ff=4 * d_model,
        context=_int(args["block_size"], "block_size", path),
        activation="gelu",  # nanoGPT's nn.GELU(): exact
        eps=1e-5,  # F.layer_norm's default, which nanoGPT's LayerNorm uses
        bias=bool(args.get("bias", True)),
        tied=True,  # nanoGPT always ties lm_head to wte
    )
    _check_limits(fields, path)
    return fields, _int(args["vocab_size"], "vocab_size", path)


@functools.lru_cache(maxsize=16)
def _arch(path: str, stamp: int) -> tuple[dict, int]:
    p = Path(path)
    return _nanogpt_arch(p) if p.is_file() else _hf_arch(p)


def pretrained_arch(source: str) -> tuple[dict, int]:
    """(ModelConfig fields the checkpoint fixes, its vocab size), read once per file version.

    The fields: arch, n_layer, n_head, d_model, d_ff, context, activation, norm, norm_position,
    norm_eps, bias, tie_weights. One-line ConfigError for anything but a GPT-2-family model.
    """
    path = resolve_pretrained(source)
    fields, vocab_size = _arch(str(path), file_stamp(path))
    return dict(fields), vocab_size


def apply_pretrained(model: ModelConfig) -> ModelConfig:
    """``model`` with the checkpoint's architecture filled in (unchanged without one).

    A field left at its default takes the checkpoint's value; one set to anything else must
    agree with it, or ConfigError names it (``model.n_layer: 4 disagrees with the checkpoint's 12
    (gpt2)``). dropout, norm_center, norm_backend, head and pooling stay as the spec has them.
    """
    if not model.from_pretrained:
        return model
    fields, _ = pretrained_arch(model.from_pretrained)
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    changes = {}
    for name, value in fields.items():
        ours = getattr(model, name)
        if ours == value:
            continue
        if ours != defaults[name]:
            raise ConfigError(
                f"model.{name}",
                f"{ours} disagrees with the checkpoint's {value} ({model.from_pretrained})",
            )
        changes[name] = value
    return dataclasses.replace(model, **changes) if changes else model
