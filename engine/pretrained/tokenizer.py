"""A pretrained checkpoint's own byte-level BPE, padded to its embedding's rows."""

from __future__ import annotations

import functools
from pathlib import Path

from engine.data.bpe import BpeVocab, load_tokenizer
from engine.errors import ConfigError
from engine.pretrained.arch import pretrained_arch
from engine.pretrained.source import FIELD, resolve_pretrained


@functools.lru_cache(maxsize=8)
def _tokenizer(folder: str, stamps: tuple) -> BpeVocab:
    return load_tokenizer(folder)


def pretrained_tokenizer(source: str) -> BpeVocab:
    """The checkpoint's tokenizer (cached per file version): the model folder's, or for a
    nanoGPT ckpt.pt a tokenizer.json beside it, padded to the model's vocab size (ids past the
    tokenizer's are ``<unused N>``), so ``len(vocab)`` is the model's vocab size. One-line
    ConfigError when there is none or it has more tokens than the model."""
    path = resolve_pretrained(source)
    folder = path.parent if path.is_file() else path
    files = [folder / f for f in ("tokenizer.json", "vocab.json", "merges.txt")]
    if path.is_file() and not any(f.is_file() for f in files):
        raise ConfigError(
            FIELD,
            f"{path} is a nanoGPT checkpoint without a tokenizer: put the tokenizer.json it was "
            f"trained with (GPT-2's for nanoGPT's gpt2 runs) in {folder}",
        )
    stamps = tuple(f.stat().st_mtime_ns if f.is_file() else 0 for f in files)
    _, vocab_size = pretrained_arch(source)
    return _padded(_tokenizer(str(folder), stamps), vocab_size, folder)


@functools.lru_cache(maxsize=8)
def _padded(vocab: BpeVocab, vocab_size: int, folder: Path) -> BpeVocab:
    if len(vocab) > vocab_size:
        raise ConfigError(
            FIELD,
            f"the tokenizer in {folder} has {len(vocab)} tokens, more than the model's "
            f"vocab_size {vocab_size}",
        )
    return vocab.padded(vocab_size)  # nanoGPT's 50304 rows for GPT-2's 50257 tokens
