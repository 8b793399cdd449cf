"""A step's batch in micro-batches: gradient accumulation with the loss of the whole batch.

``train.micro_batch`` caps the sequences in one forward pass, and with it the activation memory;
the optimizer still steps once per tick on the whole batch. The loss is exactly the mean over
the batch: each micro-batch's mean loss is weighted by its share of the loss-bearing positions
(the targets that are not ``IGNORE``, or the rows of a classification batch), so a batch of 32
and 4 micro-batches of 8 give the same loss and gradients up to fp32 rounding in the sums.

Under DistributedDataParallel the gradients are all-reduced once, on the last micro-batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from engine.data.base import IGNORE, Batch


def split(batch: Batch, micro: int) -> list[tuple[Batch, float]]:
    """``batch`` as (micro-batch, weight) pairs of at most ``micro`` rows each (0: one part),
    the weights summing to 1: each part's share of the positions that bear loss."""
    rows = batch.x.shape[0]
    if micro <= 0 or micro >= rows:
        return [(batch, 1.0)]
    parts = [batch.rows(i, min(i + micro, rows)) for i in range(0, rows, micro)]
    if batch.y.dim() == 1:  # classification: one target per row
        counts = [p.y.shape[0] for p in parts]
    else:
        counts = [int((p.y != IGNORE).sum()) for p in parts]
    total = sum(counts)
    if total == 0:  # nothing bears loss (the mean is NaN anyway): weigh by rows
        counts, total = [p.x.shape[0] for p in parts], rows
    return [(p, c / total) for p, c in zip(parts, counts)]


def accumulate(
    loss_of: Callable[[Batch], torch.Tensor],
    batch: Batch,
    micro: int,
    net: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Run forward and backward over ``batch`` in micro-batches of ``micro`` rows, adding the
    weighted gradients into the parameters' ``.grad``; the batch's mean loss (detached).
    ``net``: a DistributedDataParallel module, whose all-reduce waits for the last part."""
    parts = split(batch, micro)
    total = None
    for i, (part, weight) in enumerate(parts):
        last = i == len(parts) - 1
        hold = net.no_sync() if (net is not None and hasattr(net, "no_sync") and not last) else None
        with hold or contextlib.nullcontext():
            loss = loss_of(part)
            (loss * weight if weight != 1.0 else loss).backward()
        part_loss = loss.detach() * weight
        total = part_loss if total is None else total + part_loss
    return total
