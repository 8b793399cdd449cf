"""Which scalars are which, by name: the plots, the Runs overlay and the log agree through these.

The engine logs training scalars (``train/loss``, ``lr``, ...) every tick and, at every
evaluation, ``val/loss`` and the task's metrics (``val/accuracy``, ``val/f1``, ...). A
classification task also logs its confusion matrix one cell per scalar,
``val/confusion/{true}/{predicted}``: counts, shown as a matrix and never as curves. A run with
``train.eval_train`` evaluates the train split too: ``train/accuracy``, ``train/f1``, ...,
``train/eval_loss`` and ``train/confusion/{i}/{j}`` (``train/loss`` stays the per-tick loss).
A run that prunes (``timeline.prune``) logs ``sparsity/<group>`` at each of the group's pruning
steps: the share of the group's weights that are zero.
"""

from __future__ import annotations

import zlib

EVAL_SPLITS = ("val", "train")  # the splits an evaluation scores
TRAINING_LOSS = "train/loss"  # per tick, not an evaluation
LOSSES = ("loss", "eval_loss")  # an evaluation's loss, by split: val/loss, train/eval_loss
# each task metric its own marker on the plots, whichever the split (pyqtgraph symbol names)
METRIC_SYMBOLS = {"accuracy": "o", "f1": "t", "precision": "s", "recall": "d"}
OTHER_SYMBOLS = ("+", "x", "star", "p", "h", "t1", "t2", "t3")


def split_of(name: str) -> str | None:
    """``val/f1`` -> "val", ``train/accuracy`` -> "train"; None for names of no split."""
    head, sep, _ = name.partition("/")
    return head if sep and head in EVAL_SPLITS else None


def metric_of(name: str) -> str:
    """The metric without its split: ``train/f1`` -> "f1" (other names unchanged)."""
    return name.partition("/")[2] if split_of(name) else name


def confusion_cell(name: str, split: str = "val") -> tuple[int, int] | None:
    """``val/confusion/2/0`` -> (2, 0): (true class, predicted class) of ``split``'s matrix;
    None for other names."""
    prefix = f"{split}/confusion/"
    if not name.startswith(prefix):
        return None
    parts = name[len(prefix) :].split("/")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def is_confusion(name: str) -> bool:
    """A confusion-matrix cell of any split."""
    return split_of(name) is not None and metric_of(name).startswith("confusion/")


def is_eval_value(name: str) -> bool:
    """An evaluation's value worth a line in the log: losses and metrics of either split, not
    matrix cells, nor the per-tick training loss."""
    return split_of(name) is not None and name != TRAINING_LOSS and not is_confusion(name)


def is_sparsity(name: str) -> bool:
    """A pruning group's sparsity, ``sparsity/<group>``: drawn on the Sparsity plot."""
    return name.startswith("sparsity/")


def is_task_metric(name: str) -> bool:
    """A metric drawn as a curve on the Metrics plot (accuracy, F1, ... of the validation or the
    train split): not the losses (the loss plot) and not confusion-matrix cells (in the
    classification view)."""
    return is_eval_value(name) and metric_of(name) not in LOSSES


def metric_symbol(name: str) -> str:
    """The marker of a metric's evaluation points: the same for ``val/f1`` and ``train/f1``,
    different for accuracy, F1, precision and recall (others: a stable pick by name)."""
    metric = metric_of(name)
    if metric in METRIC_SYMBOLS:
        return METRIC_SYMBOLS[metric]
    return OTHER_SYMBOLS[zlib.crc32(metric.encode()) % len(OTHER_SYMBOLS)]


def is_dashed_metric(name: str) -> bool:
    """Train-split evaluations are dashed on the Metrics plot, validation solid."""
    return split_of(name) == "train"
