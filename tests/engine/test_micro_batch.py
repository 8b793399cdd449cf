"""train.micro_batch: a step's batch in micro-batches gives the loss and gradients of the whole
batch (to fp32 rounding in the sums), for language modelling with masked targets and for a
classification head, and a run trains the same with or without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data.base import IGNORE
from engine.distributed import World
from engine.micro_batch import accumulate, split
from engine.runs import open_run
from engine.setup import set_up
from engine.trainer import batch_loss, start_run
from tests.engine.helpers import tiny_spec

HEAD = {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16}
TASKS = {
    # digits of a sum: the prompt bears no loss, and answers differ in length across rows
    "add": dict(model=HEAD, data={"source": "add", "seq_len": 3}),
    "brackets-classify": dict(
        model={**HEAD, "head": "classify"}, data={"source": "brackets", "seq_len": 8}
    ),
    "text": {},
}


def _grads(parts, batch, micro: int) -> tuple[float, list[torch.Tensor]]:
    parts.model.zero_grad(set_to_none=True)
    loss = accumulate(lambda b: batch_loss(parts.net, b)[0], batch, micro)
    return loss.item(), [p.grad.clone() for p in parts.model.parameters() if p.grad is not None]


@pytest.mark.parametrize("task", TASKS)
def test_micro_batches_give_the_whole_batchs_loss_and_gradients(task):
    spec = tiny_spec(**TASKS[task], train={"batch_size": 32})
    parts = set_up(spec, World())
    gen = torch.Generator().manual_seed(5)
    batch = parts.tasks[0].batch("train", 32, gen)
    whole_loss, whole = _grads(parts, batch, 0)
    for micro in (8, 5):  # 4 x 8, and 6 x 5 + 2: parts of unequal size
        loss, grads = _grads(parts, batch, micro)
        assert loss == pytest.approx(whole_loss, rel=1e-6)
        for a, b in zip(grads, whole):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_parts_are_weighted_by_the_positions_that_bear_loss():
    spec = tiny_spec(**TASKS["add"], train={"batch_size": 32})
    parts = set_up(spec, World())
    batch = parts.tasks[0].batch("train", 32, torch.Generator().manual_seed(5))
    bearing = (batch.y != IGNORE).nonzero()
    batch.y[bearing[bearing[:, 0] < 5][:-2].unbind(1)] = IGNORE  # rows 0-4: 2 targets left
    pieces = split(batch, 5)
    counts = [int((p.y != IGNORE).sum()) for p, _ in pieces]
    assert [w for _, w in pieces] == pytest.approx([c / sum(counts) for c in counts])
    whole_loss, whole = _grads(parts, batch, 0)
    loss, grads = _grads(parts, batch, 5)
    assert loss == pytest.approx(whole_loss, rel=1e-6)
    for a, b in zip(grads, whole):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # weighing the parts by their rows instead would be wrong
        by_rows = sum(batch_loss(parts.net, p)[0].item() * p.x.shape[0] / 32 for p, _ in pieces)
    assert abs(by_rows - whole_loss) > 1e-3


def test_a_run_with_micro_batches_trains_like_one_without(tmp_path):
    def losses(micro: int) -> np.ndarray:
        spec = tiny_spec(train={"steps": 12, "batch_size": 8, "micro_batch": micro})
        handle = start_run(spec, tmp_path / f"runs-{micro}")
        assert handle.join(120) and handle.status == "finished", handle.error
        return open_run(handle.run_dir).scalars("train/loss")[1]

    whole, split_run = losses(0), losses(3)
    np.testing.assert_allclose(split_run, whole, rtol=2e-5)
