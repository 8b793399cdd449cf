"""Built-in synthetic tasks: copy, reverse, sort, add, modadd (brackets lives in brackets.py).

Every task is fixed-length (numbers carry leading zeros), so no attention masks are needed.

Layouts, for input tokens ``inp`` (S) and target tokens ``tgt`` (Tt):

- decoder: ``s = inp + [SEP] + tgt``; ``x = s[:-1]``, ``y = s[1:]`` with the first S positions of
  ``y`` set to IGNORE, so the loss falls on the target only. T = S + Tt.
- encoder_decoder: ``src = inp``; ``x = [BOS] + tgt[:-1]``; ``y = tgt``. S and Tt each must fit.

Held-out split: an input is val iff a fixed 64-bit hash of its token ids falls in the lowest
``val_fraction`` of the hash range, so val inputs never occur in train, for any seed. Batches
draw candidate inputs with the generator and keep those of the requested split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import torch

from engine.config import DataConfig, ModelConfig
from engine.data.base import (
    IGNORE,
    POOL_SEED,
    Batch,
    Metrics,
    Task,
    Vocab,
    check_batch_size,
    check_split,
    randint,
)
from engine.data.metrics import LMMetrics, Seq2SeqMetrics
from engine.errors import ConfigError

# Symbols for copy/reverse/sort, in id order (sort means ascending id). 64 = DataConfig.vocab max.
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!?"
SEP, BOS = "|", "^"

ENUMERATE_MAX = 1 << 16  # input spaces up to this size are enumerated to check and count splits
MIN_HELD_FRACTION = 0.001  # rejection sampling of the smaller split must accept often enough
_CELLS_PER_ROUND = 1 << 22  # candidate tokens drawn per rejection round (bounds memory, ~32 MB)
_MAX_ROUNDS = 100_000  # unreachable once the build-time checks pass; a guard against a hang
TOKENS_CAP = 1 << 62  # tokens_in_split for astronomically large input spaces ("unbounded")

# 64-bit FNV-1a over token ids, then the splitmix64 finaliser for avalanche. numpy uint64 array
# arithmetic wraps modulo 2**64 by definition, so the hash is identical on every platform.
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def hash_rows(tokens: torch.Tensor | np.ndarray) -> np.ndarray:
    """A fixed 64-bit hash (uint64) of each row of an (N, L) integer array of token ids."""
    arr = np.asarray(tokens, dtype=np.int64).astype(np.uint64)
    h = np.full(arr.shape[0], _FNV_OFFSET, dtype=np.uint64)
    for column in arr.T:
        h ^= column
        h *= _FNV_PRIME
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


def is_val(tokens: torch.Tensor | np.ndarray, val_fraction: float) -> torch.Tensor:
    """(N,) bool: which rows of input token ids belong to the val split."""
    unit = (hash_rows(tokens) >> np.uint64(11)).astype(np.float64) * 2.0**-53  # in [0, 1)
    return torch.from_numpy(unit < val_fraction)


def share(count: int, fraction: float) -> int:
    """round(count * fraction), exact for counts far beyond float range (64**512 inputs)."""
    return round(count * Fraction(fraction))


def all_sequences(base: int, length: int) -> torch.Tensor:
    """Every sequence of ``length`` digits in ``base``, (base**length, length) int64."""
    n = torch.arange(base**length)
    powers = base ** torch.arange(length - 1, -1, -1)
    return (n[:, None] // powers) % base


class SyntheticTask(Task):
    """Fixed-length input -> target tasks over a small vocabulary; subclasses fill in
    ``_draw`` (inputs of a split) and ``_targets`` (the answer for each input)."""

    kind = "seq2seq"

    def __init__(
        self,
        name: str,
        tokens: list[str],
        sep: str,
        input_len: int,
        target_len: int,
        data: DataConfig,
        model: ModelConfig,
        length_field: str = "data.seq_len",
    ):
        self.name = name
        self.vocab = Vocab(tokens)
        self.layout = model.arch
        self.input_len, self.target_len = input_len, target_len
        self.sep_id, self.bos_id = self.vocab.id(sep), self.vocab.id(BOS)
        self.val_fraction = data.val_fraction
        what = f"{name} with seq_len={data.seq_len}" if length_field == "data.seq_len" else name
        self.objective, self.head = data.objective, model.head
        self.train_examples = data.train_examples
        self._pool: torch.Tensor | None = None
        if self.reads_inputs_only:  # x = [BOS] + inputs: an LM over them, or a classifier's view
            self.x_len, self.src_len = input_len + 1, None
            if self.x_len > model.context:
                raise ConfigError(
                    length_field,
                    f"{what} needs {self.x_len} positions (a start token + {input_len} input "
                    f"tokens); model.context={model.context} is too short",
                )
        elif self.layout == "decoder":
            self.x_len, self.src_len = input_len + target_len, None
            if self.x_len > model.context:
                raise ConfigError(
                    length_field,
                    f"{what} needs {self.x_len} positions ({input_len} input + separator + "
                    f"{target_len} target tokens, less the last); model.context={model.context}"
                    " is too short",
                )
        else:
            self.x_len, self.src_len = target_len, input_len
            if max(input_len, target_len) > model.context:
                raise ConfigError(
                    length_field,
                    f"{what} needs {input_len} encoder and {target_len} decoder positions; "
                    f"model.context={model.context} is too short",
                )
        if self.objective == "lm":
            self.kind = "lm"
        self.info = {
            "source": name,
            "layout": self.layout,
            "objective": self.objective,
            "input_len": input_len,
            "target_len": target_len,
            "vocab_size": len(self.vocab),
            "val_fraction": data.val_fraction,
        }
        self.n_examples: dict[str, int] = {}  # distinct inputs per split; set by subclasses

    def _draw(self, split: str, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, input_len) int64 input token ids of ``split``."""
        raise NotImplementedError

    def _targets(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, target_len) int64 target token ids for (N, input_len) inputs."""
        raise NotImplementedError

    @property
    def reads_inputs_only(self) -> bool:
        """True when x is ``[BOS] + inputs`` (LM pretraining, or a classification head)."""
        return self.objective == "lm" or self.head == "classify"

    def batch(self, split: str, batch_size: int, generator: torch.Generator) -> Batch:
        check_split(split)
        check_batch_size(batch_size)
        if split == "train" and self.train_examples:
            pool = self.train_pool()
            inputs = pool[randint(generator, len(pool), (batch_size,))]
        else:
            inputs = self._draw(split, batch_size, generator)
        if self.objective == "lm":  # y[j] predicts s[j+1]: every input token, then the end
            b = inputs.shape[0]
            bos = torch.full((b, 1), self.bos_id, dtype=torch.long)
            sep = torch.full((b, 1), self.sep_id, dtype=torch.long)
            s = torch.cat([bos, inputs, sep], dim=1)
            return Batch(s[:, :-1].contiguous(), s[:, 1:].contiguous())
        if self.head == "classify":
            bos = torch.full((inputs.shape[0], 1), self.bos_id, dtype=torch.long)
            return Batch(torch.cat([bos, inputs], dim=1), self._classes(inputs))
        return self.layout_batch(inputs, self._targets(inputs))

    def train_pool(self) -> torch.Tensor:
        """The ``data.train_examples`` training inputs, drawn once from a fixed seed (so every
        run with this data section, whatever its seed, sees the same few examples)."""
        if self._pool is None:
            gen = torch.Generator().manual_seed(POOL_SEED)
            self._pool = self._draw("train", self.train_examples, gen)
        return self._pool

    def _classes(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N,) int64 class index of each input (classification tasks only)."""
        raise NotImplementedError

    def layout_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> Batch:
        """A Batch in this task's layout from (B, S) inputs and (B, Tt) targets."""
        b = inputs.shape[0]
        if self.layout == "decoder":
            sep = torch.full((b, 1), self.sep_id, dtype=torch.long)
            s = torch.cat([inputs, sep, targets], dim=1)
            y = s[:, 1:].clone()
            y[:, : self.input_len] = IGNORE  # y[j] predicts s[j+1]; targets start at s[S+1]
            return Batch(s[:, :-1].contiguous(), y)
        bos = torch.full((b, 1), self.bos_id, dtype=torch.long)
        x = torch.cat([bos, targets[:, :-1]], dim=1)
        return Batch(x, targets.contiguous(), inputs.contiguous())

    def tokens_in_split(self, split: str) -> int:
        check_split(split)
        n = self.n_examples[split]
        if split == "train" and self.train_examples:
            n = self.train_examples
        return min(n * self.x_len, TOKENS_CAP)

    def new_metrics(self) -> Metrics:
        return LMMetrics() if self.objective == "lm" else Seq2SeqMetrics()


Candidates = tuple[torch.Tensor, torch.Tensor]  # (inputs (n, S) int64, usable (n,) bool)


class HashSplitTask(SyntheticTask):
    """Inputs drawn at random; the split of an input is fixed by its hash (see module doc)."""

    def _space_size(self) -> int:
        """How many distinct inputs exist."""
        raise NotImplementedError

    def _all_inputs(self) -> torch.Tensor:
        """Every distinct input (only called when ``_space_size() <= ENUMERATE_MAX``)."""
        raise NotImplementedError

    def _candidates(self, n: int, generator: torch.Generator) -> Candidates:
        """(n, input_len) random inputs and an (n,) bool mask of those usable (before the split
        filter)."""
        raise NotImplementedError

    def _setup_split(self) -> None:
        """Check that both splits can be sampled and count them; call at the end of __init__."""
        vf = self.val_fraction
        if min(vf, 1.0 - vf) < MIN_HELD_FRACTION:
            raise ConfigError(
                "data.val_fraction",
                f"synthetic tasks hold out inputs by hash and need {MIN_HELD_FRACTION} <= "
                f"val_fraction <= {1 - MIN_HELD_FRACTION}, got {vf}",
            )
        space = self._space_size()
        self._enumerated = self._all_inputs() if space <= ENUMERATE_MAX else None
        if self._enumerated is not None:
            val = is_val(self._enumerated, vf)
            self.n_examples = {"train": int((~val).sum()), "val": int(val.sum())}
            for split, count in self.n_examples.items():
                if count == 0:
                    raise ConfigError(
                        "data.seq_len",
                        f"{self.name} has only {space} distinct inputs and none falls in the "
                        f"{split} split (val_fraction={vf}); raise data.seq_len or data.vocab",
                    )
            self.info["n_examples_exact"] = True
        else:
            n_val = share(space, vf)
            self.n_examples = {"train": space - n_val, "val": n_val}
            self.info["n_examples_exact"] = False  # the hash split is exact, the count estimated
        # info is plain data for JSON/YAML readers: cap counts at 2**62 (= "at least that many").
        self.info["n_inputs"] = min(space, TOKENS_CAP)
        self.info["n_examples_train"] = min(self.n_examples["train"], TOKENS_CAP)
        self.info["n_examples_val"] = min(self.n_examples["val"], TOKENS_CAP)

    def _draw(self, split: str, n: int, generator: torch.Generator) -> torch.Tensor:
        return self._draw_by_hash(split, n, generator, self._candidates)

    def _draw_by_hash(
        self,
        split: str,
        n: int,
        generator: torch.Generator,
        candidates: Callable[[int, torch.Generator], Candidates],
    ) -> torch.Tensor:
        """(n, input_len) usable inputs of ``split``: rejection sampling from ``candidates``."""
        if n == 0:
            return torch.empty(0, self.input_len, dtype=torch.long)
        want_val = split == "val"
        frac = self.val_fraction if want_val else 1.0 - self.val_fraction
        per_round = max(1, _CELLS_PER_ROUND // self.input_len)
        kept, have = [], 0
        for _ in range(_MAX_ROUNDS):
            # Oversample by the split share (+20%); the round size depends only on counts, so the
            # whole draw is a pure function of the generator state.
            m = min(per_round, math.ceil((n - have) / frac * 1.2) + 16)
            inputs, usable = candidates(m, generator)
            keep = usable & (is_val(inputs, self.val_fraction) == want_val)
            kept.append(inputs[keep])
            have += int(keep.sum())
            if have >= n:
                return torch.cat(kept)[:n]
        raise RuntimeError(f"{self.name}: could not draw {n} {split} inputs (a bug)")


class SymbolTask(HashSplitTask):
    """copy / reverse / sort: ``seq_len`` symbols from an alphabet of ``vocab`` symbols."""

    def __init__(self, name: str, data: DataConfig, model: ModelConfig):
        self.symbols = data.vocab
        tokens = list(ALPHABET[: data.vocab]) + [SEP, BOS]
        super().__init__(name, tokens, SEP, data.seq_len, data.seq_len, data, model)
        self._setup_split()

    def _space_size(self) -> int:
        return self.symbols**self.input_len

    def _all_inputs(self) -> torch.Tensor:
        return all_sequences(self.symbols, self.input_len)

    def _candidates(self, n, generator):
        inputs = randint(generator, self.symbols, (n, self.input_len))
        return inputs, torch.ones(n, dtype=torch.bool)


class CopyTask(SymbolTask):
    """Output = input."""

    def __init__(self, data: DataConfig, model: ModelConfig):
        super().__init__("copy", data, model)

    def _targets(self, inputs):
        return inputs.clone()


class ReverseTask(SymbolTask):
    """Output = input reversed."""

    def __init__(self, data: DataConfig, model: ModelConfig):
        super().__init__("reverse", data, model)

    def _targets(self, inputs):
        return inputs.flip(1)


class SortTask(SymbolTask):
    """Output = input sorted ascending by symbol id (the order of ``ALPHABET``)."""

    def __init__(self, data: DataConfig, model: ModelConfig):
        super().__init__("sort", data, model)

    def _targets(self, inputs):
        return inputs.sort(dim=1).values


class AddTask(HashSplitTask):
    """Two ``seq_len``-digit numbers -> their ``seq_len+1``-digit sum, most significant digit
    first, leading zeros kept. Decoder text: ``0123+0456=00579``."""

    def __init__(self, data: DataConfig, model: ModelConfig):
        n = data.seq_len
        self.digits = n
        tokens = list("0123456789") + ["+", "=", BOS]
        self.plus_id = 10
        super().__init__("add", tokens, "=", 2 * n + 1, n + 1, data, model)
        self._setup_split()

    def _assemble(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        plus = torch.full((a.shape[0], 1), self.plus_id, dtype=torch.long)
        return torch.cat([a, plus, b], dim=1)

    def _space_size(self) -> int:
        return 10 ** (2 * self.digits)

    def _all_inputs(self) -> torch.Tensor:
        both = all_sequences(10, 2 * self.digits)
        return self._assemble(both[:, : self.digits], both[:, self.digits :])

    def _candidates(self, n, generator):
        both = randint(generator, 10, (n, 2 * self.digits))
        inputs = self._assemble(both[:, : self.digits], both[:, self.digits :])
        return inputs, torch.ones(n, dtype=torch.bool)

    def _targets(self, inputs):
        n = self.digits
        a, b = inputs[:, :n], inputs[:, n + 1 :]
        out = torch.empty(inputs.shape[0], n + 1, dtype=torch.long)
        carry = torch.zeros(inputs.shape[0], dtype=torch.long)
        for i in range(n - 1, -1, -1):  # schoolbook addition: any length, no int64 overflow
            s = a[:, i] + b[:, i] + carry
            out[:, i + 1] = s % 10
            carry = s // 10
        out[:, 0] = carry
        return out


class ModAddTask(SyntheticTask):
    """``a + b = (a + b) mod p``, each number one token (``data.vocab`` and ``seq_len`` unused).

    All p² pairs are ordered by a fixed hash (no seed involved) and the first
    round(p²·val_fraction) of them (at least 1, at most p²-1) are held out; batches sample pairs
    uniformly, with replacement, from the split.
    """

    def __init__(self, data: DataConfig, model: ModelConfig):
        p = self.modulus = data.modulus
        tokens = [str(i) for i in range(p)] + ["+", "=", BOS]
        self.plus_id = p
        super().__init__("modadd", tokens, "=", 3, 1, data, model, length_field="model.context")
        a, b = all_sequences(p, 2).unbind(1)
        pairs = self._assemble(a, b)
        order = torch.from_numpy(np.argsort(hash_rows(pairs), kind="stable"))
        n_val = min(max(round(p * p * data.val_fraction), 1), p * p - 1)
        self._pairs = {"val": pairs[order[:n_val]], "train": pairs[order[n_val:]]}
        self.n_examples = {split: len(v) for split, v in self._pairs.items()}
        self.info.update(
            modulus=p,
            n_inputs=p * p,
            n_examples_exact=True,
            n_examples_train=self.n_examples["train"],
            n_examples_val=n_val,
        )

    def _assemble(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.stack([a, torch.full_like(a, self.plus_id), b], dim=1)

    def split_inputs(self, split: str) -> torch.Tensor:
        """Every (a, +, b) input of ``split``, (N, 3) int64."""
        check_split(split)
        return self._pairs[split]

    def _draw(self, split, n, generator):
        pairs = self._pairs[split]
        return pairs[randint(generator, len(pairs), (n,))]

    def _targets(self, inputs):
        return ((inputs[:, 0] + inputs[:, 2]) % self.modulus)[:, None]
