"""LoRA adapters: train a low-rank update of chosen projections instead of the whole model.

A wrapped projection keeps its (frozen) weight W and learns A (r x in) and B (out x r):
``y = x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ``. B starts at zero, so the model starts exactly as the
base model. State-dict keys of the base weights do not change (``blocks.0.attn.q.weight``), so a
base checkpoint loads into an adapted model; the adapters add ``lora_A`` / ``lora_B`` beside them.
``merge_lora`` folds the update into W for export: the merged plain model gives the same outputs.
"""

from __future__ import annotations

import fnmatch
import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import LoRAConfig
from engine.errors import ConfigError


class LoRALinear(nn.Linear):
    """``nn.Linear`` plus a rank-r update (see module docstring)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        self.weight = base.weight
        self.bias = base.bias
        self.rank, self.scale = rank, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (
            F.linear(x, self.weight, self.bias)
            + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale
        )

    def merged(self) -> nn.Linear:
        """A plain Linear whose weight is W + scale · B A."""
        out = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            out.weight.copy_(self.weight + self.scale * self.lora_B @ self.lora_A)
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out


def _targets(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "head"]
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, f"*{t}") for t in cfg.targets)]
    if not chosen:
        raise ConfigError(
            "train.lora.targets",
            f"{cfg.targets} match no projection (e.g. attn.q, attn.kv, "
            "attn.proj, mlp.fc, mlp.proj, cross.q)",
        )
    return chosen


def _swap(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """Wrap the target projections (in place); returns their names. No-op when rank is 0."""
    if cfg.rank == 0:
        return []
    names = _targets(model, cfg)
    for name in names:
        base = model.get_submodule(name)
        if cfg.rank > min(base.in_features, base.out_features):
            raise ConfigError(
                "train.lora.rank",
                f"{cfg.rank} is more than {name} ({base.in_features} -> {base.out_features}) "
                f"takes: at most {min(base.in_features, base.out_features)}",
            )
    for name in names:
        _swap(model, name, LoRALinear(model.get_submodule(name), cfg.rank, cfg.alpha))
    return names


def is_adapter(param_name: str) -> bool:
    return param_name.rsplit(".", 1)[-1] in ("lora_A", "lora_B")


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its weight (in place): a plain model for export."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            _swap(model, name, module.merged())
    return model


def never_trained(names, lora: bool, classify: bool) -> set[str]:
    """Of the parameter ``names``, those a run never trains whatever its timeline says: an
    untied LM head beside a classifier (unused), and with LoRA everything but the adapters and
    a classification head (new in the run)."""
    out = set()
    for n in names:
        if classify and n.startswith("head."):
            out.add(n)
        elif lora and not (is_adapter(n) or n.startswith("classifier.")):
            out.add(n)
    return out
