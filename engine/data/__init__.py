"""The data layer: text corpora and built-in synthetic tasks, as batches plus task metrics.

``build_task(data, model)`` turns the ``data`` section of a run spec into a :class:`Task`, whose
``batch(split, batch_size, generator)`` returns a :class:`Batch` drawn with that generator only.

- ``source: text``: LM on ``builtin:python-stdlib`` or a UTF-8 file (text.py), in characters or
  byte-level BPE tokens (``data.tokenizer: bpe``: bpe.py).
- ``copy``, ``reverse``, ``sort``, ``add``, ``modadd``: seq2seq tasks (tasks.py).
- ``brackets``: balanced-brackets classification (brackets.py).
- ``csv``: a user's ``text,label`` CSV, classified by characters (labelled.py).

A finetune reads its data in its base model's vocabulary (vocabulary.py).

Metrics (metrics.py): none for LM; exact match and token accuracy for seq2seq; accuracy,
macro precision, recall and F1 and a confusion matrix for classification.
"""

from __future__ import annotations

from engine.config import DataConfig, ModelConfig
from engine.data.base import IGNORE, Batch, Metrics, Task, Vocab
from engine.data.brackets import BracketsTask
from engine.data.labelled import CsvTask
from engine.data.metrics import ClassifyMetrics, LMMetrics, Seq2SeqMetrics
from engine.data.tasks import (
    AddTask,
    CopyTask,
    ModAddTask,
    ReverseTask,
    SortTask,
    SyntheticTask,
)
from engine.data.text import STDLIB_CORPUS, TextTask
from engine.errors import ConfigError

_TASKS = {
    "copy": CopyTask,
    "reverse": ReverseTask,
    "sort": SortTask,
    "add": AddTask,
    "modadd": ModAddTask,
    "brackets": BracketsTask,
    "csv": CsvTask,
}


def build_task(data: DataConfig, model: ModelConfig) -> Task:
    """The task for a spec's ``data`` and ``model`` sections.

    Raises ConfigError naming the field for anything that cannot work (a missing or non-UTF-8
    file, a sequence longer than ``model.context``, an odd brackets length, ...).
    """
    if data.source == "text":
        if model.arch != "decoder":
            raise ConfigError(
                "model.arch", "a text corpus trains a decoder; encoder_decoder needs a seq2seq task"
            )
        return TextTask.build(data, model)
    try:
        cls = _TASKS[data.source]
    except KeyError:
        raise ConfigError("data.source", f"unknown source {data.source!r}") from None
    return cls(data, model)


__all__ = [
    "IGNORE",
    "STDLIB_CORPUS",
    "Batch",
    "BracketsTask",
    "CsvTask",
    "ClassifyMetrics",
    "LMMetrics",
    "Metrics",
    "Seq2SeqMetrics",
    "SyntheticTask",
    "Task",
    "TextTask",
    "Vocab",
    "build_task",
]
