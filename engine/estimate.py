"""Sizes without training: parameter counts, trainable counts and the training-memory estimate
(what the Config panel shows as you type), and the memory check a run makes before it allocates.

Models are built on the meta device, so every answer is cheap and allocates nothing.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from engine.config import LoRAConfig, ModelConfig
from engine.errors import ConfigError
from engine.lora import apply_lora, never_trained
from engine.model import Transformer

BYTES_FP32 = 4


def head_size(cfg: ModelConfig, n_classes: int = 0) -> int:
    """Outputs of the classification head: the task's count when known, else 2 (the fewest a
    classifier has), for estimates made before the data is read; 0 without the head."""
    return (n_classes or 2) if cfg.head == "classify" else 0


def count_params(cfg: ModelConfig, vocab_size: int, n_classes: int = 0) -> int:
    """Number of parameters (tied weights counted once), without allocating any memory.

    The model is built on the meta device with one and two layers (the count is linear in
    n_layer), so this is cheap enough to run on every keystroke, whatever the model's size.
    """

    def count(n_layer: int) -> int:
        with torch.device("meta"):
            small = dataclasses.replace(cfg, n_layer=n_layer)
            model = Transformer(small, vocab_size, head_size(cfg, n_classes))
        return sum(p.numel() for p in model.parameters())

    one = count(1)
    return one + (cfg.n_layer - 1) * (count(2) - one)


def _activation_floats_per_token(cfg: ModelConfig) -> int:
    """Floats saved for backward per token per block (decoder-stack block for encoder_decoder).

    Rough count: attention sublayer ~ norm in/out, q, k, v, attention output, projection output
    (7·C) plus the softmax probabilities (nh·T: the math attention kernel used on CPU keeps them;
    fused kernels do not, so this errs high on GPUs); MLP sublayer ~ norm in/out and output (3·C)
    plus hidden pre- and post-activation (2·d_ff, 4·d_ff for SwiGLU's gate, value, silu, product).
    Dropout masks and small per-row statistics are ignored.
    """
    attn = 7 * cfg.d_model + cfg.n_head * cfg.context
    mlp = 3 * cfg.d_model + (4 if cfg.activation == "swiglu" else 2) * cfg.d_ff
    return attn + mlp


def estimate_memory(
    cfg: ModelConfig, vocab_size: int, batch_size: int, optimizer: str
) -> dict[str, int]:
    """Rough training memory in bytes (fp32), for the GUI's live estimate.

    Returns a dict of ints: ``params``, ``grads``, ``optimizer`` (adam/adamw keep two moments,
    sgd one momentum buffer), ``activations`` and ``total``. Activations assume ``batch_size``
    sequences of ``cfg.context`` tokens (and sources of the same length for encoder_decoder): per
    block see ``_activation_floats_per_token``; an encoder_decoder decoder block adds a cross-
    attention sublayer (same as self-attention); plus the embedding output (C per token) and the
    logits with their softmax gradient (2·V per token). Expect it within a factor of about two.
    """
    states = {"adam": 2, "adamw": 2, "sgd": 1}
    if optimizer not in states:
        raise ValueError(f"optimizer must be one of {', '.join(states)}; got {optimizer!r}")
    n = count_params(cfg, vocab_size)
    tokens = batch_size * cfg.context
    per_block = _activation_floats_per_token(cfg)
    floats = cfg.n_layer * per_block + cfg.d_model + 2 * vocab_size
    if cfg.arch == "encoder_decoder":
        cross = 7 * cfg.d_model + cfg.n_head * cfg.context
        floats += cfg.n_layer * (per_block + cross) + cfg.d_model
    out = {
        "params": n * BYTES_FP32,
        "grads": n * BYTES_FP32,
        "optimizer": states[optimizer] * n * BYTES_FP32,
        "activations": tokens * floats * BYTES_FP32,
    }
    out["total"] = sum(out.values())
    return out


def available_memory(device: torch.device) -> int:
    """Bytes a run could still use on ``device``: free memory on a CUDA device, else the host's
    available memory (MemAvailable in /proc/meminfo, or the free physical pages)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf(
        "SC_AVPHYS_PAGES" if "SC_AVPHYS_PAGES" in os.sysconf_names else "SC_PHYS_PAGES"
    )
    return pages * os.sysconf("SC_PAGE_SIZE")


def check_memory(
    cfg: ModelConfig,
    vocab_size: int,
    batch_size: int,
    optimizer: str,
    available_bytes: int,
    field: str = "model",
) -> None:
    """ConfigError at ``field`` when ``estimate_memory`` says training needs more than
    ``available_bytes``."""
    need = estimate_memory(cfg, vocab_size, batch_size, optimizer)["total"]
    if need > available_bytes:
        raise ConfigError(
            field,
            f"needs about {need / 1e9:.1f} GB for training, the device has "
            f"{available_bytes / 1e9:.1f} GB (make train.batch_size, model.context or the "
            "model smaller)",
        )


def count_trainable(model_cfg, vocab_size: int, lora: LoRAConfig, n_classes: int = 0) -> int:
    """Parameters a run trains before any freezing (see ``never_trained``). Built on the meta
    device: no memory, cheap enough for every edit."""
    with torch.device("meta"):
        model = Transformer(model_cfg, vocab_size, head_size(model_cfg, n_classes))
        apply_lora(model, lora)
    params = dict(model.named_parameters())
    frozen = never_trained(params, lora.rank > 0, model.classify)
    return sum(p.numel() for n, p in params.items() if n not in frozen)
