"""Task metrics accumulated over evaluation batches (counts on the host, argmax on the device)."""

from __future__ import annotations

import torch

from engine.data.base import IGNORE, Batch, Metrics


def _check(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The mask of loss-bearing positions, after checking logits (B, T, V) match batch.y (B, T)."""
    if logits.dim() != 3 or logits.shape[:2] != batch.y.shape:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} do not match targets {tuple(batch.y.shape)}"
        )
    return batch.y != IGNORE


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


class LMMetrics(Metrics):
    """Language modelling reports only the loss, which the trainer computes itself."""

    def update(self, logits: torch.Tensor, batch: Batch) -> None:
        _check(logits, batch)

    def result(self) -> dict[str, float]:
        return {}


class Seq2SeqMetrics(Metrics):
    """Exact match and per-token accuracy of the argmax prediction on loss-bearing positions.

    ``accuracy``: share of sequences whose every target position is predicted right. Under teacher
    forcing a sequence is all right iff greedy decoding would reproduce it, so this is the
    greedy-decoding exact match. ``token_accuracy``: share of target positions predicted right.
    """

    def __init__(self) -> None:
        self.seqs = self.seqs_right = self.tokens = self.tokens_right = 0

    def update(self, logits: torch.Tensor, batch: Batch) -> None:
        mask = _check(logits, batch)
        hit = (logits.argmax(-1) == batch.y) & mask
        self.seqs += batch.y.shape[0]
        self.seqs_right += int((hit | ~mask).all(dim=1).sum())
        self.tokens += int(mask.sum())
        self.tokens_right += int(hit.sum())

    def result(self) -> dict[str, float]:
        return {
            "accuracy": _ratio(self.seqs_right, self.seqs),
            "token_accuracy": _ratio(self.tokens_right, self.tokens),
        }


class ClassifyMetrics(Metrics):
    """Binary classification read from the loss-bearing position(s) of each sequence.

    The prediction is the argmax over the two label tokens only (a tie counts as negative).
    ``positive_id`` is the positive class ("Y" = balanced for brackets).
    """

    def __init__(self, negative_id: int, positive_id: int):
        self.negative_id, self.positive_id = negative_id, positive_id
        self.tn = self.fp = self.fn = self.tp = 0

    def update(self, logits: torch.Tensor, batch: Batch) -> None:
        mask = _check(logits, batch)
        scores = logits[mask]  # (N, V), one row per labelled position
        truth = batch.y[mask]
        if not bool(((truth == self.positive_id) | (truth == self.negative_id)).all()):
            raise ValueError("a classification target is not one of the two label tokens")
        pred = scores[:, self.positive_id] > scores[:, self.negative_id]
        true = truth == self.positive_id
        self.tp += int((pred & true).sum())
        self.fp += int((pred & ~true).sum())
        self.fn += int((~pred & true).sum())
        self.tn += int((~pred & ~true).sum())

    def confusion(self) -> list[list[int]]:
        """[[tn, fp], [fn, tp]]: rows are the true class, columns the predicted class, negative
        first (scikit-learn's order for labels [negative, positive])."""
        return [[self.tn, self.fp], [self.fn, self.tp]]

    def result(self) -> dict[str, float]:
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        return {
            "accuracy": _ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn),
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),  # = 2PR / (P + R)
        }
