"""A user's CSV of ``text,label`` rows: classify each text into one of its labels, read in
characters or, with ``data.tokenizer: bpe``, in byte-level BPE tokens (a pretrained model's own,
or one trained on the texts, with a ``<pad>`` token).

The file needs a header with ``text`` and ``label`` columns (others are ignored). Classes are the
distinct labels in sorted order. A row is held out for validation iff a fixed hash of its text
falls in the lowest ``val_fraction`` of the hash range, so the split does not depend on the row
order or the seed, and a text never sits in both splits. Texts longer than ``model.context`` are
cut there (``info["n_truncated"]`` counts them); shorter ones are right-padded with ``PAD``
(BPE: the tokenizer's ``<pad>`` or ``<|endoftext|>``, which no text encodes to).
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
from engine.data.bpe import BpeVocab, trained_bpe
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


def _rows_bpe(data: DataConfig, model: ModelConfig, rows: list[tuple[str, str]]) -> BpeVocab:
    """The pretrained model's BPE, or one of ``data.bpe_vocab`` tokens trained on the texts
    with a ``<pad>`` token."""
    if model.from_pretrained:
        from engine.pretrained.tokenizer import pretrained_tokenizer

        return pretrained_tokenizer(model.from_pretrained)
    return trained_bpe("\n".join(text for text, _ in rows), data.bpe_vocab, ("<pad>",))


class CsvTask(Task):
    """Text classification from a CSV (see module doc); needs ``model.head: classify``."""

    kind = "classify"
    layout = "decoder"

    def __init__(self, data: DataConfig, model: ModelConfig, bpe: BpeVocab | None = None):
        rows = read_rows(data.path)
        self._data, self._model = data, model
        self.classes = sorted({label for _, label in rows})
        if len(self.classes) < 2:
            raise ConfigError(
                "data.path", f"{data.path}: needs at least two labels, found {self.classes!r}"
            )
        if data.tokenizer == "bpe" or bpe is not None:
            self.vocab = bpe or _rows_bpe(data, model, rows)
            self.pad_id = self.vocab.pad_id
            if self.pad_id is None:
                raise ConfigError(
                    "data.tokenizer",
                    "this BPE has no token to pad with (<pad>, <|endoftext|> or a spare row)",
                )
        else:
            chars = sorted({c for text, _ in rows for c in text} - {PAD})
            self.vocab = Vocab(chars + [PAD])
            self.pad_id = self.vocab.id(PAD)
        encoded = [self.vocab.encode(text) for text, _ in rows]
        self.n_classes = len(self.classes)
        self.x_len = min(max(len(t) for t in encoded), model.context)
        self.train_examples = data.train_examples
        index = {c: i for i, c in enumerate(self.classes)}
        ids = torch.full((len(rows), self.x_len), self.pad_id, dtype=torch.long)
        for r, tokens in enumerate(encoded):
            cut = tokens[: self.x_len]
            ids[r, : len(cut)] = torch.tensor(cut, dtype=torch.long)
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
            "n_truncated": sum(len(t) > self.x_len for t in encoded),
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
        if isinstance(vocab, BpeVocab) or isinstance(self.vocab, BpeVocab):
            if vocab == self.vocab:
                return self
            if not isinstance(vocab, BpeVocab):
                raise ConfigError(field, "characters and BPE tokens do not mix")
            return CsvTask(self._data, self._model, vocab)  # the texts through its tokenizer
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
