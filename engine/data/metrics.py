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
    """Classification over ``classes``: accuracy, macro precision / recall / F1 and a confusion
    matrix.

    Two ways to read a prediction: with ``label_ids`` (a language-model head that answers with a
    token, e.g. brackets' "N"/"Y") the logits are (B, T, V) and the prediction at each
    loss-bearing position is the argmax over those tokens only; without, the logits are (B, C)
    from a classification head and ``batch.y`` (B,) holds class indices. A tie goes to the lower
    class index.

    Macro averages weigh every class equally (scikit-learn's ``average="macro"``); a class with
    no predicted (or no true) examples has precision (or recall) 0, as ``zero_division=0``.
    """

    def __init__(self, classes: list[str], label_ids: list[int] | None = None):
        if len(classes) < 2:
            raise ValueError(f"classification needs at least two classes, got {classes!r}")
        if label_ids is not None and len(label_ids) != len(classes):
            raise ValueError("label_ids needs one token id per class")
        self.classes = list(classes)
        self.label_ids = None if label_ids is None else torch.tensor(label_ids)
        self.matrix = torch.zeros(len(classes), len(classes), dtype=torch.long)

    def update(self, logits: torch.Tensor, batch: Batch) -> None:
        n = len(self.classes)
        if self.label_ids is not None:
            mask = _check(logits, batch)
            ids = self.label_ids.to(logits.device)
            scores = logits[mask][:, ids]  # (N, C): one row per labelled position
            hits = batch.y[mask][:, None] == ids  # (N, C)
            if not bool(hits.any(dim=1).all()):
                raise ValueError("a classification target is not one of the label tokens")
            truth = hits.int().argmax(dim=1)
        else:
            if logits.dim() != 2 or logits.shape != (batch.y.shape[0], n):
                raise ValueError(
                    f"logits of shape {tuple(logits.shape)} do not match {batch.y.shape[0]} "
                    f"labels of {n} classes"
                )
            scores, truth = logits, batch.y
            if bool(((truth < 0) | (truth >= n)).any()):
                raise ValueError(f"a label is outside the classes 0..{n - 1}")
        pred = scores.argmax(dim=1)
        cells = torch.bincount((truth * n + pred).cpu(), minlength=n * n)
        self.matrix += cells.view(n, n)

    def confusion(self) -> list[list[int]]:
        """Counts [true][predicted] in class order (scikit-learn's ``confusion_matrix``)."""
        return self.matrix.tolist()

    def result(self) -> dict[str, float]:
        m = self.matrix.tolist()
        n = len(m)
        total = sum(map(sum, m))
        tp = [m[i][i] for i in range(n)]
        predicted = [sum(m[r][c] for r in range(n)) for c in range(n)]
        actual = [sum(row) for row in m]
        precision = [_ratio(tp[c], predicted[c]) for c in range(n)]
        recall = [_ratio(tp[c], actual[c]) for c in range(n)]
        f1 = [_ratio(2 * tp[c], predicted[c] + actual[c]) for c in range(n)]  # = 2PR / (P + R)
        out = {
            "accuracy": _ratio(sum(tp), total),
            "precision": sum(precision) / n,
            "recall": sum(recall) / n,
            "f1": sum(f1) / n,
        }
        for i in range(n):
            for j in range(n):
                out[f"confusion/{i}/{j}"] = float(m[i][j])
        return out
