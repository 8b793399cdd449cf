"""One vocabulary for a whole run: a finetune's data in its base model's tokens.

A run's weights fix its vocabulary: a run that starts from another run's checkpoint, or a phase
that swaps in other data, must read its data in the tokens the embedding was trained on.
``fit_vocab`` re-encodes each task into that vocabulary. Characters it lacks become ``UNK``
(counted, never dropped), and tokens a task needs that it lacks (``UNK``, ``PAD``) are appended,
so every old id keeps its meaning; the loader gives the new embedding rows the mean of the
old ones.
"""

from __future__ import annotations

import copy

import torch

from engine.data.base import Task, Vocab
from engine.data.bpe import BpeVocab
from engine.errors import ConfigError

UNK = "\ufffd"  # U+FFFD REPLACEMENT CHARACTER: what a base model reads for a character it lacks
PAD = "\x00"  # padding of variable-length inputs (a CSV field cannot hold NUL, so no clash)


def reencode_table(src: Vocab, dst: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """(table, unknown): ``table[i]`` is the ``dst`` id of ``src`` token i (``UNK``'s id for a
    token ``dst`` lacks); ``unknown[i]`` says which tokens those are."""
    unk = dst.id(UNK) if UNK in dst.tokens else -1
    known = set(dst.tokens)
    table = torch.tensor([dst.id(t) if t in known else unk for t in src.tokens], dtype=torch.long)
    unknown = torch.tensor([t not in known for t in src.tokens], dtype=torch.bool)
    if unk < 0 and bool(unknown.any()):
        raise ValueError(f"{dst!r} has no {UNK!r} token for the characters it lacks")
    return table, unknown


def unknown_info(src: Vocab, unknown: torch.Tensor, ids: list[torch.Tensor]) -> dict:
    """``info`` entries of a re-encoded task: how many of its tokens (``ids``, in ``src``) were
    unknown, and which characters those were."""
    return {
        "n_unknown": sum(int(unknown[x.long()].sum()) for x in ids),
        "unknown_chars": [t for t, u in zip(src.tokens, unknown.tolist()) if u],
    }


def _reencodable(task: Task) -> bool:
    return hasattr(task, "reencoded")  # character data: text corpora and CSV rows


def fit_vocab(tasks: list[Task], base: Vocab | None, fields: list[str]) -> list[Task]:
    """``tasks`` (one per phase) in one vocabulary: ``base`` (the vocabulary of the weights the
    run starts from) or the first task's, plus the tokens they need appended.

    ``fields`` names each task's spec field for errors. A synthetic task whose tokens differ
    from the run's (other than by appended tokens) is a ConfigError: its ids are not
    characters to re-encode.
    """
    bpe = any(isinstance(v, BpeVocab) for v in [base, *(t.vocab for t in tasks)])
    # BPE text has no characters to re-encode and no unknown token: each task is its text
    # through the run's tokenizer (``reencoded`` says when that cannot be)
    vocab = (base or tasks[0].vocab) if bpe else _grown_chars(tasks, base)
    out = []
    for task, field in zip(tasks, fields):
        if task.vocab == vocab:
            out.append(task)
        elif _reencodable(task):
            out.append(task.reencoded(vocab, field))
        elif not bpe and vocab.tokens[: len(task.vocab)] == task.vocab.tokens:
            grown = copy.copy(task)  # the same ids; the embedding just has more rows
            grown.vocab = vocab
            out.append(grown)
        elif bpe:
            raise ConfigError(field, "a synthetic task cannot be read in BPE tokens")
        else:
            whose = "the base run's" if base is not None else "the run's first data"
            raise ConfigError(field, f"its vocabulary differs from {whose} ({len(vocab)} tokens)")
    return out


def _grown_chars(tasks: list[Task], base: Vocab | None) -> Vocab:
    """``base`` (or the first task's vocabulary) with the PAD and UNK tokens the tasks need."""
    tokens = list((base or tasks[0].vocab).tokens)
    have = set(tokens)
    if any(t.pad_id is not None for t in tasks) and PAD not in have:
        tokens.append(PAD)
    if UNK not in have and any(
        _reencodable(t) and set(t.vocab.tokens) - have - {PAD} for t in tasks
    ):
        tokens.append(UNK)
    return Vocab(tokens)


def unknown_report(tasks: list[Task]) -> list[str]:
    """One line per distinct task that had characters mapped to ``UNK``."""
    lines, seen = [], set()
    for task in tasks:
        n = task.info.get("n_unknown", 0)
        if n and id(task) not in seen:
            seen.add(id(task))
            where = task.info.get("path") or task.info.get("file") or task.info.get("source")
            lines.append(
                f"{where}: {n} character(s) the base vocabulary lacks "
                f"({', '.join(map(repr, task.info.get('unknown_chars', [])[:10]))}) read as {UNK}"
            )
    return lines
