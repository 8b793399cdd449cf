"""A user's CSV of ``text,label`` rows: classify each text (characters) into one of its labels.

The file needs a header with ``text`` and ``label`` columns (others are ignored). Classes are the
distinct labels in sorted order. A row is held out for validation iff a fixed hash of its text
falls in the lowest ``val_fraction`` of the hash range, so the split does not depend on the row
order or the seed, and a text never sits in both splits. Texts longer than ``model.context`` are
cut there (``info["n_truncated"]`` counts them); shorter ones are right-padded with ``PAD``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
from pathlib import Path

import torch

from engine.config import DataConfig, ModelConfig
from engine.data.base import (
    POOL_SEED,
    Batch,
    Metrics,
    Task,
    Vocab,
    check_batch_size,
    check_split,
    randint,
)
from engine.data.metrics import ClassifyMetrics
from engine.data.vocabulary import PAD, reencode_table, unknown_info
from engine.errors import ConfigError


def _unit_hash(text: str) -> float:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def read_rows(path: str) -> list[tuple[str, str]]:
    """(text, label) rows of a CSV file; ConfigError on ``data.path`` naming the line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("data.path", f"file not found: {path}")
    rows = []
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "text" not in fields or "label" not in fields:
                raise ConfigError(
                    "data.path",
                    f"{path}: the first line must be a header with text and label columns, got "
                    f"{fields!r}",
                )
            for row in reader:
                line = reader.line_num
                text, label = row.get("text"), row.get("label")
                if text is None or label is None:
                    raise ConfigError("data.path", f"{path}, line {line}: too few columns")
                if not text:
                    raise ConfigError("data.path", f"{path}, line {line}: the text is empty")
                if not label.strip():
                    raise ConfigError("data.path", f"{path}, line {line}: the label is empty")
                rows.append((text, label.strip()))
    except UnicodeDecodeError as exc:
        raise ConfigError("data.path", f"not UTF-8 text: {path} ({exc.reason})") from None
    except csv.Error as exc:
        raise ConfigError("data.path", f"{path}: not a valid CSV ({exc})") from None
    except OSError as exc:
        raise ConfigError("data.path", f"cannot read {path}: {exc.strerror or exc}") from None
    return rows


class CsvTask(Task):
    """Text classification from a CSV (see module doc); needs ``model.head: classify``."""

    kind = "classify"
    layout = "decoder"

    def __init__(self, data: DataConfig, model: ModelConfig):
        rows = read_rows(data.path)
        self.classes = sorted({label for _, label in rows})
        if len(self.classes) < 2:
            raise ConfigError(
                "data.path", f"{data.path}: needs at least two labels, found {self.classes!r}"
            )
        chars = sorted({c for text, _ in rows for c in text} - {PAD})
        self.vocab = Vocab(chars + [PAD])
        self.pad_id = self.vocab.id(PAD)
        self.n_classes = len(self.classes)
        self.x_len = min(max(len(t) for t, _ in rows), model.context)
        self.train_examples = data.train_examples
        index = {c: i for i, c in enumerate(self.classes)}
        ids = torch.full((len(rows), self.x_len), self.pad_id, dtype=torch.long)
        for r, (text, _) in enumerate(rows):
            cut = text[: self.x_len]
            ids[r, : len(cut)] = torch.tensor(self.vocab.encode(cut))
        labels = torch.tensor([index[label] for _, label in rows])
        val = torch.tensor([_unit_hash(text) < data.val_fraction for text, _ in rows])
        self._splits = {"train": (ids[~val], labels[~val]), "val": (ids[val], labels[val])}
        for split, (x, _) in self._splits.items():
            if len(x) == 0:
                raise ConfigError(
                    "data.val_fraction",
                    f"{data.path}: {len(rows)} rows leave none in the {split} split "
                    f"(val_fraction={data.val_fraction})",
                )
        if self.train_examples:
            n_train = len(self._splits["train"][0])
            if self.train_examples > n_train:
                raise ConfigError(
                    "data.train_examples",
                    f"{self.train_examples} asked, the train split has {n_train} rows",
                )
            order = torch.randperm(n_train, generator=torch.Generator().manual_seed(POOL_SEED))
            keep = order[: self.train_examples]
            x, y = self._splits["train"]
            self._splits["train"] = (x[keep], y[keep])
        self.info = {
            "source": "csv",
            "path": data.path,
            "classes": list(self.classes),
            "n_rows": len(rows),
            "n_examples_train": len(self._splits["train"][0]),
            "n_examples_val": len(self._splits["val"][0]),
            "n_truncated": sum(len(t) > self.x_len for t, _ in rows),
            "vocab_size": len(self.vocab),
        }

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        check_split(split)
        check_batch_size(batch_size)
        x, y = self._splits[split]
        pick = randint(generator, len(x), (batch_size,))
        return Batch(x[pick], y[pick])

    def tokens_in_split(self, split: str) -> int:
        check_split(split)
        return len(self._splits[split][0]) * self.x_len

    def reencoded(self, vocab: Vocab, field: str = "data.path") -> CsvTask:
        """These rows in ``vocab`` (a base model's), characters it lacks mapped to its unknown
        token (``info["n_unknown"]`` counts them)."""
        del field
        table, unknown = reencode_table(self.vocab, vocab)
        other = copy.copy(self)
        other.vocab, other.pad_id = vocab, vocab.id(PAD)
        other._splits = {k: (table[x], y) for k, (x, y) in self._splits.items()}
        other.info = {
            **self.info,
            "vocab_size": len(vocab),
            **unknown_info(self.vocab, unknown, [x for x, _ in self._splits.values()]),
        }
        return other

    def new_metrics(self) -> Metrics:
        return ClassifyMetrics(list(self.classes))
