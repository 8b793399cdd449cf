"""An engine model as a Hugging Face GPT-2 folder (the rules in ``engine.pretrained``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from engine.data.bpe import BpeVocab
from engine.errors import ConfigError
from engine.model import Transformer
from engine.norm import Norm

FAKE_LN_EPS = 1e12  # layer_norm_epsilon of a FakeLN export (see engine.pretrained)
EXPORT_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu"}


def _refuse(reason: str) -> ConfigError:
    return ConfigError("model", f"cannot export to a transformers GPT-2: {reason}")


def _norm_plan(norms: list[Norm]) -> tuple[float, list[float]]:
    """(layer_norm_epsilon, factor for each norm's weight) that reproduce ``norms`` in GPT-2."""
    strengths = sorted({n.strength for n in norms})
    if strengths == [1.0]:
        eps = sorted({n.eps for n in norms})
        if len(eps) > 1:
            raise _refuse(
                f"the norms use different eps ({', '.join(map(str, eps))}) and GPT-2 has one "
                "layer_norm_epsilon; give them all the same eps"
            )
        return eps[0], [1.0] * len(norms)
    if strengths == [0.0]:
        if any(getattr(n, "center", "strength") != "always" for n in norms):
            raise _refuse(
                "the norms are removed (strength 0) without centring (norm_center strength), "
                "and a GPT-2 LayerNorm always subtracts the mean; set model.norm_center: always "
                "before removing them"
            )
        sigmas = [float(n.sigma_bar) for n in norms]
        if not all(0 < s < math.inf for s in sigmas):
            raise _refuse("a removed norm has a sigma_bar that is not a positive number")
        return FAKE_LN_EPS, [math.sqrt(FAKE_LN_EPS) / s for s in sigmas]
    if any(0.0 < s < 1.0 for s in strengths):
        raise _refuse(
            f"norms at strength {strengths[0]:g}..{strengths[-1]:g} are mid-ramp, which a GPT-2 "
            "LayerNorm cannot compute; finish the ramp (every norm at 1, or at 0 with "
            "norm_center: always)"
        )
    raise _refuse(
        "some norms are at strength 0 and some at 1, and GPT-2 has one layer_norm_epsilon for "
        "all of them; remove every norm (norm_center: always) or none"
    )


def _check_exportable(model: Transformer) -> None:
    cfg = model.cfg
    if cfg.arch != "decoder":
        raise _refuse("GPT-2 is a decoder; this model is an encoder_decoder")
    if cfg.norm != "layernorm" or cfg.norm_position != "pre":
        raise _refuse(
            f"GPT-2 uses pre-norm LayerNorm; this model has {cfg.norm_position} {cfg.norm}"
        )
    if cfg.activation not in EXPORT_ACTIVATIONS:
        raise _refuse(f"GPT-2's MLP uses gelu or gelu_tanh, not {cfg.activation}")
    if cfg.head != "lm" or getattr(model, "classify", False):
        raise _refuse(
            "GPT2LMHeadModel has no place for a classification head (and a classifier run's "
            "LM head is untrained)"
        )
    if any(hasattr(m, "lora_A") for m in model.modules()):
        raise _refuse("the model has LoRA adapters; merge them first (engine.lora.merge_lora)")


def _f32(t: torch.Tensor | None, like: torch.Tensor | None = None) -> torch.Tensor:
    if t is None:  # a model without biases: GPT-2 always has them, zero is exact
        return torch.zeros(like.shape[0], dtype=torch.float32)
    return t.detach().to("cpu", torch.float32).contiguous()


def export_hf(model: Transformer, vocab, out_dir: Path) -> Path:
    """Write ``model`` (and ``vocab`` when it is a BPE) as a Hugging Face GPT-2 folder that
    ``GPT2LMHeadModel.from_pretrained(out_dir)`` loads; returns ``out_dir``.

    See the module docstring for what is refused and how norms below full strength are written.
    ``vocab`` may be None (or a character vocabulary): then no tokenizer files are written.
    """
    model = getattr(model, "_orig_mod", model)
    _check_exportable(model)
    cfg = model.cfg
    norms = [n for _, n in model.norm_sites()]
    eps, factors = _norm_plan(norms)
    factor = {id(n): f for n, f in zip(norms, factors)}
    tied = model.head.weight is model.embed.weight

    def ln(prefix: str, norm: Norm) -> dict[str, torch.Tensor]:
        w = (norm.weight.detach().double() * factor[id(norm)]).to("cpu", torch.float32)
        return {f"{prefix}.weight": w.contiguous(), f"{prefix}.bias": _f32(norm.bias, norm.weight)}

    def conv(prefix: str, *linears) -> dict[str, torch.Tensor]:
        w = torch.cat([_f32(lin.weight) for lin in linears], dim=0)  # (out, in)
        b = torch.cat([_f32(lin.bias, lin.weight) for lin in linears], dim=0)
        return {f"{prefix}.weight": w.t().contiguous(), f"{prefix}.bias": b}  # Conv1D: (in, out)

    t = "transformer"
    tensors = {
        f"{t}.wte.weight": _f32(model.embed.weight),
        f"{t}.wpe.weight": _f32(model.pos.weight),
    }
    for i, block in enumerate(model.blocks):
        h = f"{t}.h.{i}"
        tensors |= ln(f"{h}.ln_1", block.ln_attn)
        tensors |= conv(f"{h}.attn.c_attn", block.attn.q, block.attn.kv)
        tensors |= conv(f"{h}.attn.c_proj", block.attn.proj)
        tensors |= ln(f"{h}.ln_2", block.ln_mlp)
        tensors |= conv(f"{h}.mlp.c_fc", block.mlp.fc)
        tensors |= conv(f"{h}.mlp.c_proj", block.mlp.proj)
    tensors |= ln(f"{t}.ln_f", model.ln_final)
    if not tied:  # a tied head is wte itself: stored once, HF ties it again on load
        tensors["lm_head.weight"] = _f32(model.head.weight)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    special = None
    if isinstance(vocab, BpeVocab):
        special = vocab.tokenizer.token_to_id("<|endoftext|>")
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": model.vocab_size,
        "n_positions": cfg.context,
        "n_embd": cfg.d_model,
        "n_layer": len(model.blocks),
        "n_head": cfg.n_head,
        "n_inner": cfg.d_ff,
        "activation_function": EXPORT_ACTIVATIONS[cfg.activation],
        "layer_norm_epsilon": eps,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.dropout,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": tied,
        "bos_token_id": special,
        "eos_token_id": special,
        "use_cache": True,
        "dtype": "float32",
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if isinstance(vocab, BpeVocab):
        vocab.tokenizer.save(str(out_dir / "tokenizer.json"))
        tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": cfg.context}
        if special is not None:
            tok_config |= {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
        (out_dir / "tokenizer_config.json").write_text(
            json.dumps(tok_config, indent=2) + "\n", encoding="utf-8"
        )
    return out_dir


def export_run_hf(run_dir: str | Path, out_dir: str | Path) -> Path:
    """The latest checkpoint of the run at ``run_dir`` as a GPT-2 folder in ``out_dir``, its
    LoRA adapters merged (``python -m engine export RUN --format hf OUT``, Runs ▸ Export)."""
    from engine.lora import merge_lora
    from engine.sample import load_model_from_run

    _, _, vocab, model = load_model_from_run(run_dir)
    merge_lora(model)
    return export_hf(model, vocab, Path(out_dir))
