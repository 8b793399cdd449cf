"""The shared data types: a batch, a vocabulary, and the Task / Metrics interfaces.

Every random draw goes through :func:`randint` / :func:`rand` with an explicit
``torch.Generator``, so a batch is a pure function of the generator state (a resumed run that
restores the generator gets the same batches) and the global RNG is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

IGNORE = -1
"""Target value meaning "no loss here" (``F.cross_entropy(..., ignore_index=IGNORE)``)."""

SPLITS = ("train", "val")
POOL_SEED = 20_231  # the generator seed of a data.train_examples pool (not the run's seed)


@dataclass(frozen=True)
class Batch:
    """One step's tokens. All tensors are int64.

    ``x`` (B, T): decoder input; ``y`` (B, T): the target for each position of ``x``, ``IGNORE``
    (-1) where no loss is taken, or (B,) class indices for a classification head; ``src`` (B, S):
    encoder input (encoder_decoder layouts only).
    """

    x: torch.Tensor
    y: torch.Tensor
    src: torch.Tensor | None = None

    def rows(self, start: int, stop: int) -> Batch:
        """Sequences ``start:stop`` of this batch (a rank's slice of the global batch)."""
        src = None if self.src is None else self.src[start:stop]
        return Batch(self.x[start:stop], self.y[start:stop], src)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The same batch with every tensor on ``device``."""
        src = None if self.src is None else self.src.to(device, non_blocking=non_blocking)
        return Batch(
            self.x.to(device, non_blocking=non_blocking),
            self.y.to(device, non_blocking=non_blocking),
            src,
        )


class Vocab:
    """Token strings and their ids (id = position in ``tokens``).

    When every token is one character (the char tokenizer, most task vocabularies) text is a plain
    string of them: ``encode("ab")``. Otherwise (e.g. modadd's number tokens "0".."96") tokens are
    written separated by spaces: ``encode("12 + 7 =")``; ``decode`` joins the same way.
    """

    _kinds: dict[str, type[Vocab]] = {}  # subclasses by the key of their stored form

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if not tokens:
            raise ValueError("a vocabulary needs at least one token")
        for t in tokens:
            if not isinstance(t, str) or not t:
                raise ValueError(f"vocabulary tokens must be non-empty strings, got {t!r}")
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"duplicate vocabulary tokens: {dupes}")
        self.tokens: list[str] = tokens
        self.sep = "" if all(len(t) == 1 for t in tokens) else " "
        if self.sep and any(t.split() != [t] for t in tokens):
            # Space-separated text cannot carry a multi-character token containing whitespace.
            raise ValueError("multi-character tokens must not contain whitespace")
        self._index = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.tokens == self.tokens

    def __hash__(self) -> int:
        return hash(tuple(self.tokens))

    def __repr__(self) -> str:
        return f"Vocab({len(self.tokens)} tokens)"

    def id(self, token: str) -> int:
        """The id of one token (ValueError if absent)."""
        try:
            return self._index[token]
        except KeyError:
            raise ValueError(f"{token!r} is not in the vocabulary") from None

    def encode(self, s: str) -> list[int]:
        """Token ids of ``s`` (ValueError naming the first unknown token)."""
        pieces = s.split() if self.sep else s
        try:
            return [self._index[p] for p in pieces]
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]!r} is not in the vocabulary") from None

    def unknown(self, s: str) -> list[str]:
        """The characters of ``s`` this vocabulary has no token for, sorted."""
        return sorted(set(s.split() if self.sep else s) - set(self._index))

    def decode(self, ids) -> str:
        """Text of ids (list, tuple, 1-D tensor or array); ValueError for an id out of range."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        n = len(self.tokens)
        out = []
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{n - 1})")
            out.append(self.tokens[i])
        return self.sep.join(out)

    def to_dict(self) -> dict:
        """Plain data for the run folder; ``Vocab.from_dict`` rebuilds an equal vocabulary."""
        return {"tokens": list(self.tokens)}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if getattr(cls, "stored_as", None):  # its to_dict's key: from_dict reads it back
            Vocab._kinds[cls.stored_as] = cls

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        for key, kind in Vocab._kinds.items():  # another kind of vocabulary (BpeVocab)
            if isinstance(d, dict) and key in d:
                return kind.from_dict(d)
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list):
            raise ValueError("a stored vocabulary is a mapping with a 'tokens' list")
        return cls(d["tokens"])


class Metrics:
    """Accumulates task metrics over evaluation batches."""

    def update(self, logits: torch.Tensor, batch: Batch) -> None:
        """Add one batch; ``logits`` (B, T, V) are the model's output for ``batch.x``."""
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        """The metrics over every batch seen so far (0.0 where a denominator is zero)."""
        raise NotImplementedError


class Task:
    """What ``build_task`` returns: a source of batches plus how to score them.

    ``kind`` is "lm", "seq2seq" or "classify"; ``layout`` is "decoder" or "encoder_decoder";
    ``x_len`` is T, the width of ``Batch.x``; ``src_len`` is S, the width of ``Batch.src`` (None
    for the decoder layout). ``info`` is plain data describing the source (shown and stored).
    """

    kind: str
    layout: str
    vocab: Vocab
    info: dict
    x_len: int
    src_len: int | None = None
    n_classes: int = 0  # > 0: batches carry class indices, y (B,), for a classification head
    pad_id: int | None = None  # the padding token of variable-length inputs (right-padded)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` examples of ``split`` ("train"/"val"), drawn with ``generator`` only."""
        raise NotImplementedError

    def tokens_in_split(self, split: str) -> int:
        """Tokens in one epoch of ``split``, counted as the model consumes them (x positions)."""
        raise NotImplementedError

    def tokens_per_batch(self, batch_size: int) -> int:
        """Tokens the model reads per step: ``batch_size * x_len`` (tokens/s is derived from it)."""
        return batch_size * self.x_len

    def new_metrics(self) -> Metrics:
        raise NotImplementedError


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")


def check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def randint(generator: torch.Generator, high: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform int64 in [0, high), drawn from ``generator`` only; returned on the CPU.

    Drawing happens on the generator's own device (a CUDA generator cannot feed a CPU op).
    """
    return torch.randint(high, shape, generator=generator, device=generator.device).cpu()


def rand(generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform float32 in [0, 1), drawn from ``generator`` only; returned on the CPU."""
    return torch.rand(shape, generator=generator, device=generator.device).cpu()
