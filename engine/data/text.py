"""Language modelling on the built-in stdlib corpus or a user's UTF-8 text file, in characters
or in byte-level BPE tokens (``engine.data.bpe``: a pretrained model's, or one trained here)."""

from __future__ import annotations

import copy
import functools
import os
import platform
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.config import DataConfig, ModelConfig
from engine.data.base import Batch, Metrics, Task, Vocab, check_batch_size, check_split, randint
from engine.data.bpe import BpeVocab, trained_bpe
from engine.data.metrics import LMMetrics
from engine.data.vocabulary import reencode_table, unknown_info
from engine.errors import ConfigError

STDLIB_CORPUS = "builtin:python-stdlib"
TESTS_CORPUS = "builtin:python-tests"  # the stdlib's own test suite: a second corpus everywhere

# Tests are third-party-looking code with odd encodings and fixtures; site-packages is not the
# standard library at all (and walking it can take seconds).
_SKIP_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
)


@dataclass(frozen=True)
class Corpus:
    """A tokenized text: ``tokens`` (N,) int32 ids into ``vocab``; ``info`` is plain data;
    ``text``: the text itself, kept for BPE corpora (re-tokenized for another tokenizer)."""

    tokens: torch.Tensor
    vocab: Vocab
    info: dict
    text: str | None = None


def _tokenize(text: str) -> tuple[torch.Tensor, Vocab]:
    """Char tokens of ``text``; the vocabulary is the sorted set of its characters.

    Vectorised through code points (a Python loop over 2 M characters would take ~0.3 s).
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    present = np.flatnonzero(np.bincount(codes))  # sorted code points = sorted(set(text))
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.int32)
    lookup[present] = np.arange(len(present), dtype=np.int32)
    tokens = torch.from_numpy(lookup[codes])
    return tokens, Vocab([chr(c) for c in present])


def stdlib_files(tests: bool = False) -> tuple[Path, list[str]]:
    """The stdlib folder (or its ``test`` package) and its .py files as sorted POSIX paths
    relative to it."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = _SKIP_DIRS
    if tests:
        root, skip = root / "test", frozenset({"__pycache__"})
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]  # prune: never walk into them
        rel = Path(folder).relative_to(root)
        found.extend((rel / f).as_posix() for f in files if f.endswith(".py"))
    return root, sorted(found)


@functools.lru_cache(maxsize=4)
def load_stdlib(max_chars: int, tests: bool = False) -> Corpus:
    """The running Python's standard-library sources (or, with ``tests``, its own test suite),
    concatenated in sorted path order and cut at ``max_chars`` characters, in characters.
    Cached per arguments (a 2 M-char corpus loads in ~0.1 s)."""
    text, info = stdlib_text(max_chars, tests)
    tokens, vocab = _tokenize(text)
    return Corpus(tokens, vocab, info)


@functools.lru_cache(maxsize=4)
def stdlib_text(max_chars: int, tests: bool = False) -> tuple[str, dict]:
    """The text ``load_stdlib`` tokenizes, and its ``info``."""
    corpus_name = TESTS_CORPUS if tests else STDLIB_CORPUS
    root, names = stdlib_files(tests)
    parts, total, used = [], 0, 0
    for name in names:
        if total >= max_chars:
            break
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a stray non-UTF-8 or unreadable file: skipping it keeps the order stable
        if text and not text.endswith("\n"):
            text += "\n"
        parts.append(text)
        total += len(text)
        used += 1
    if not parts:
        raise ConfigError("data.path", f"{corpus_name}: no .py sources found under {root}")
    text = "".join(parts)
    truncated = len(text) > max_chars
    text = text[:max_chars]
    info = {
        "source": "text",
        "path": corpus_name,
        "python_version": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "stdlib_dir": str(root),
        "n_files": used,
        "last_file": names[used - 1] if used else None,
        "n_chars": len(text),
        "truncated": truncated,
    }
    return text, info


@functools.lru_cache(maxsize=4)
def _load_file_cached(path: str, mtime_ns: int, size: int, max_chars: int) -> Corpus:
    text, info = _file_text_cached(path, mtime_ns, size, max_chars)
    tokens, vocab = _tokenize(text)
    return Corpus(tokens, vocab, info)


@functools.lru_cache(maxsize=4)
def _file_text_cached(path: str, mtime_ns: int, size: int, max_chars: int) -> tuple[str, dict]:
    # mtime and size are in the key so an edited file is read again.
    del mtime_ns, size
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: a leading BOM is not text
            text = f.read(max_chars)
            truncated = bool(f.read(1))
    except UnicodeDecodeError as exc:
        raise ConfigError("data.path", f"not UTF-8 text: {path} ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError("data.path", f"cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise ConfigError("data.path", f"the file is empty: {path}")
    return text, {"source": "text", "file": path, "n_chars": len(text), "truncated": truncated}


def _stat_file(path: str) -> tuple[Path, os.stat_result]:
    """``path`` resolved and its stat; ConfigError on ``data.path`` if it is missing, not a
    file or unreadable."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError("data.path", f"file not found: {path}") from None
    except OSError as exc:
        raise ConfigError("data.path", f"cannot read {path}: {exc.strerror or exc}") from None
    if not p.is_file():
        raise ConfigError("data.path", f"not a file: {path}")
    return p.resolve(), st


def load_text_file(path: str, max_chars: int) -> Corpus:
    """A user's UTF-8 text file (universal newlines), first ``max_chars`` characters.

    Raises ConfigError on ``data.path`` if it is missing, not a file, unreadable or not UTF-8.
    """
    p, st = _stat_file(path)
    corpus = _load_file_cached(str(p), st.st_mtime_ns, st.st_size, max_chars)
    return Corpus(corpus.tokens, corpus.vocab, {"path": path, **corpus.info})


def _check_builtin(path: str) -> None:
    if path.startswith("builtin:") and path not in (STDLIB_CORPUS, TESTS_CORPUS):
        raise ConfigError(
            "data.path",
            f"unknown built-in corpus {path!r}; available: {STDLIB_CORPUS}, {TESTS_CORPUS}",
        )


def load_text(path: str, max_chars: int) -> tuple[str, dict]:
    """The text of ``builtin:python-stdlib`` (or -tests) or a file, and its ``info``."""
    _check_builtin(path)
    if path in (STDLIB_CORPUS, TESTS_CORPUS):
        return stdlib_text(max_chars, tests=path == TESTS_CORPUS)
    p, st = _stat_file(path)
    text, info = _file_text_cached(str(p), st.st_mtime_ns, st.st_size, max_chars)
    return text, {"path": path, **info}


def load_corpus(path: str, max_chars: int) -> Corpus:
    """``builtin:python-stdlib`` or a file path -> Corpus. Every failure is a ConfigError."""
    _check_builtin(path)
    if path in (STDLIB_CORPUS, TESTS_CORPUS):
        return load_stdlib(max_chars, tests=path == TESTS_CORPUS)
    return load_text_file(path, max_chars)


def bpe_corpus(path: str, max_chars: int, vocab: BpeVocab) -> Corpus:
    """The text at ``path`` in the BPE tokens of ``vocab``."""
    text, info = load_text(path, max_chars)
    return Corpus(_bpe_tokens(text, vocab), vocab, {**info, "tokenizer": "bpe"}, text)


@functools.lru_cache(maxsize=4)
def _bpe_tokens(text: str, vocab: BpeVocab) -> torch.Tensor:
    """(N,) int32: ``text`` encoded (about 1 s per million characters; cached)."""
    return torch.tensor(vocab.encode(text), dtype=torch.int32)


def corpus_vocab(data: DataConfig, model: ModelConfig) -> BpeVocab | None:
    """The BPE of a ``data.tokenizer: bpe`` run: the pretrained model's own, else one of
    ``data.bpe_vocab`` tokens trained on the train part of the text; None for characters."""
    if data.tokenizer != "bpe":
        return None
    if model.from_pretrained:
        from engine.pretrained.tokenizer import pretrained_tokenizer

        return pretrained_tokenizer(model.from_pretrained)  # padded to the embedding's rows
    text, _ = load_text(data.path, data.max_chars)
    train = text[: int(len(text) * (1.0 - data.val_fraction))]
    return trained_bpe(train, data.bpe_vocab, ("<pad>",))  # <pad>: for a CSV finetune later


def clear_cache() -> None:
    """Forget loaded corpora (tests use it to check that loading is deterministic)."""
    load_stdlib.cache_clear()
    stdlib_text.cache_clear()
    _load_file_cached.cache_clear()
    _file_text_cached.cache_clear()
    _bpe_tokens.cache_clear()


class TextTask(Task):
    """Next-character prediction: x = text[i:i+T], y = text[i+1:i+T+1] at random offsets i.

    The first (1 - val_fraction) of the tokens are train, the rest val (as in nanoGPT).
    """

    kind = "lm"
    layout = "decoder"

    def __init__(self, corpus: Corpus, context: int, val_fraction: float):
        self._corpus, self._val_fraction = corpus, val_fraction
        n = len(corpus.tokens)
        n_train = int(n * (1.0 - val_fraction))
        self.vocab = corpus.vocab
        self.x_len = context
        self._splits = {"train": corpus.tokens[:n_train], "val": corpus.tokens[n_train:]}
        unit = "tokens" if isinstance(corpus.vocab, BpeVocab) else "characters"
        for split, tokens in self._splits.items():
            if len(tokens) < context + 1:
                raise ConfigError(
                    "data.path",
                    f"too short: {corpus.info['path']} has {n} {unit}; its {split} split "
                    f"({len(tokens)}) is shorter than one window of model.context+1="
                    f"{context + 1}",
                )
        self.info = {
            **corpus.info,
            "n_chars_train": n_train,
            "n_chars_val": n - n_train,
            "vocab_size": len(self.vocab),
        }

    @classmethod
    def build(cls, data: DataConfig, model: ModelConfig) -> TextTask:
        bpe = corpus_vocab(data, model)
        if bpe is not None:
            corpus = bpe_corpus(data.path, data.max_chars, bpe)
        else:
            corpus = load_corpus(data.path, data.max_chars)
        return cls(corpus, model.context, data.val_fraction)

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        check_split(split)
        check_batch_size(batch_size)
        tokens, t = self._splits[split], self.x_len
        starts = randint(generator, len(tokens) - t, (batch_size,))  # last start: len - t - 1
        window = tokens[starts[:, None] + torch.arange(t + 1)].long()  # (B, T+1)
        return Batch(window[:, :-1].contiguous(), window[:, 1:].contiguous())

    def tokens_in_split(self, split: str) -> int:
        check_split(split)
        return len(self._splits[split])

    def reencoded(self, vocab: Vocab, field: str = "data.path") -> TextTask:
        """This text in another vocabulary, e.g. a finetune corpus in the base model's.

        Characters the vocabulary lacks become its unknown token (``info["n_unknown"]`` counts
        them, ``info["unknown_chars"]`` lists them); nothing is dropped.
        """
        if isinstance(self.vocab, BpeVocab) or isinstance(vocab, BpeVocab):
            return self._retokenized(vocab, field)
        table, unknown = reencode_table(self.vocab, vocab)
        other = copy.copy(self)
        other.vocab = vocab
        other._splits = {k: table[v.long()].to(torch.int32) for k, v in self._splits.items()}
        other.info = {
            **self.info,
            "vocab_size": len(vocab),
            **unknown_info(self.vocab, unknown, list(self._splits.values())),
        }
        return other

    def _retokenized(self, vocab: Vocab, field: str) -> TextTask:
        """BPE text in another BPE: the same text through that tokenizer (ids of two BPEs
        have nothing to do with each other, so there is no table to map one onto the other)."""
        if vocab == self.vocab:
            return self
        text = self._corpus.text
        if not isinstance(vocab, BpeVocab) or text is None:
            raise ConfigError(
                field,
                "characters and BPE tokens do not mix: this data and the weights it trains "
                "must use the same data.tokenizer",
            )
        corpus = Corpus(_bpe_tokens(text, vocab), vocab, self._corpus.info, text)
        return TextTask(corpus, self.x_len, self._val_fraction)

    def new_metrics(self) -> Metrics:
        return LMMetrics()
