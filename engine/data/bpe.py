"""Byte-level BPE tokens: a pretrained model's own tokenizer, or one trained on the run's text.

Tokenization is the ``tokenizers`` library's (the Rust tokenizer Hugging Face models ship as
``tokenizer.json``); nothing here splits text by hand. ``BpeVocab`` gives it the ``Vocab``
interface the engine reads everywhere else (its length, ``encode``, ``decode``, ``to_dict`` for
the run folder), so sampling, the run store and finetuning need no BPE branch of their own.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from engine.data.base import Vocab
from engine.errors import ConfigError

TRAIN_CHUNK = 100_000  # characters per piece fed to the BPE trainer (it never splits a word)
PAD_TOKENS = ("<pad>", "<|endoftext|>")  # tokens that pad inputs, in order of preference


class BpeVocab(Vocab):
    """The tokens of a ``tokenizers.Tokenizer``; id = the tokenizer's id. Text goes through
    the tokenizer both ways: ``decode(encode(s)) == s`` for any text a byte-level BPE reads.

    ``size``: the model's vocabulary when it has more rows than the tokenizer has tokens
    (nanoGPT pads GPT-2's 50257 to 50304); the extra ids are named ``<unused N>``, never
    produced by ``encode`` and decoded as nothing."""

    stored_as = "bpe"  # to_dict's key, by which Vocab.from_dict knows it

    def __init__(self, tokenizer, size: int | None = None):  # a tokenizers.Tokenizer
        self.tokenizer = tokenizer
        index = tokenizer.get_vocab(with_added_tokens=True)
        n = tokenizer.get_vocab_size(with_added_tokens=True)
        self.n_real = n
        tokens = [""] * n
        for token, i in index.items():
            if 0 <= i < n:
                tokens[i] = token
        tokens += [f"<unused {i}>" for i in range(n, max(size or n, n))]
        self.tokens = tokens
        self.sep = ""
        self._index = index
        self._json = tokenizer.to_str()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BpeVocab)
            and other._json == self._json
            and len(other.tokens) == len(self.tokens)
        )

    def __hash__(self) -> int:
        return hash((self._json, len(self.tokens)))

    @property
    def pad_id(self) -> int | None:
        """A token no text encodes to, to right-pad variable-length inputs with: ``<pad>``,
        GPT-2's ``<|endoftext|>``, or the first spare row; None when there is none."""
        for token in PAD_TOKENS:
            if token in self._index:
                return self._index[token]
        return self.n_real if len(self.tokens) > self.n_real else None

    def padded(self, size: int) -> BpeVocab:
        """This tokenizer for a model of ``size`` rows (itself when that is no more)."""
        return self if size <= len(self.tokens) else BpeVocab(self.tokenizer, size)

    def __repr__(self) -> str:
        return f"BpeVocab({len(self.tokens)} tokens)"

    def unknown(self, s: str) -> list[str]:
        return []  # byte-level: every text encodes

    def encode(self, s: str) -> list[int]:
        return self.tokenizer.encode(s, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        n = len(self.tokens)
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{n - 1})")
        real = [i for i in ids if i < self.n_real]
        return self.tokenizer.decode(real, skip_special_tokens=False)

    def to_dict(self) -> dict:
        return {"bpe": json.loads(self._json), "size": len(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> BpeVocab:
        return cls.from_json(json.dumps(d["bpe"]), d.get("size"))

    @classmethod
    def from_json(cls, text: str, size: int | None = None) -> BpeVocab:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(text), size)


def load_tokenizer(folder: str | Path) -> BpeVocab:
    """The tokenizer saved with a model in ``folder``: ``tokenizer.json``, or GPT-2's older
    ``vocab.json`` plus ``merges.txt``. ConfigError on ``model.from_pretrained`` when there is
    neither."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        try:
            return BpeVocab(Tokenizer.from_file(str(folder / "tokenizer.json")))
        except Exception as exc:  # the library raises its own Exception for a bad file
            raise ConfigError(
                "model.from_pretrained", f"cannot read {folder / 'tokenizer.json'}: {exc}"
            ) from None
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    if vocab.is_file() and merges.is_file():
        tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        return BpeVocab(tok)
    raise ConfigError(
        "model.from_pretrained",
        f"{folder} has no tokenizer (tokenizer.json, or vocab.json with merges.txt)",
    )


def train_bpe(text: str, vocab_size: int, specials: tuple[str, ...] = ()) -> BpeVocab:
    """A byte-level BPE of ``vocab_size`` tokens trained on ``text`` (GPT-2's pre-tokenizer:
    every byte is a token, so any text encodes), with ``specials`` as tokens of their own
    (``<pad>``). Deterministic: the same text and size give the same tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(specials),
        show_progress=False,
    )
    pieces = (text[i : i + TRAIN_CHUNK] for i in range(0, len(text), TRAIN_CHUNK))
    tok.train_from_iterator(pieces, trainer)
    return BpeVocab(tok)


@functools.lru_cache(maxsize=4)
def trained_bpe(text: str, vocab_size: int, specials: tuple[str, ...] = ()) -> BpeVocab:
    """``train_bpe``, cached per text and size (a 2 M-character corpus trains in about 1 s)."""
    return train_bpe(text, vocab_size, specials)
