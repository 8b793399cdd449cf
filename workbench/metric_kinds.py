"""Which scalars are which, by name: the plots, the Runs overlay and the log agree through these.

The engine logs training scalars (``train/loss``, ``lr``, ...) every tick and, at every
evaluation, ``val/loss`` and the task's metrics (``val/accuracy``, ``val/f1``, ...). A
classification task also logs its confusion matrix one cell per scalar,
``val/confusion/{true}/{predicted}``: counts, shown as a matrix and never as curves.
"""

from __future__ import annotations

CONFUSION_PREFIX = "val/confusion/"


def confusion_cell(name: str) -> tuple[int, int] | None:
    """``val/confusion/2/0`` -> (2, 0): (true class, predicted class); None for other names."""
    if not name.startswith(CONFUSION_PREFIX):
        return None
    parts = name[len(CONFUSION_PREFIX) :].split("/")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def is_confusion(name: str) -> bool:
    return name.startswith(CONFUSION_PREFIX)


def is_eval_value(name: str) -> bool:
    """An evaluation's value worth a line in the log: loss and metrics, not matrix cells."""
    return name.startswith("val/") and not is_confusion(name)


def is_task_metric(name: str) -> bool:
    """A metric drawn as a curve on the Metrics plot (accuracy, F1, ...): not the loss (on the
    Loss plot) and not confusion-matrix cells (in the classification view)."""
    return is_eval_value(name) and name != "val/loss"
