"""The training loss, one definition for the trainer, the evaluations and the int8 report."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.data import Batch


def batch_loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy over loss-bearing positions, logits (B, T, V)); for a
    classification head, over the examples, with logits (B, n_classes)."""
    logits = model(batch.x, batch.src)
    if logits.dim() == 2:
        return F.cross_entropy(logits, batch.y), logits
    loss = F.cross_entropy(logits.flatten(0, 1), batch.y.flatten(), ignore_index=-1)
    return loss, logits
