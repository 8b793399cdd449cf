"""Balanced-brackets classification: is a string of ``seq_len`` brackets balanced?

Brackets use ``min(vocab // 2, 4)`` types (at least 1) from ``()[]{}<>``; the default vocab=10
gives all four. Each example's label is a fair coin. Balanced examples are uniformly random
balanced strings; unbalanced ones are near misses made from balanced strings by one edit (swap
two neighbours, swap any two, change one bracket's type, or flip one bracket's direction), kept
only if the edit really unbalanced them.
Three of the four edits keep the count of opening and closing brackets, so counting is not
enough. With the language-model head, the label is the target token "Y" (balanced) or "N"; with a
classification head it is the class index (0 unbalanced, 1 balanced).

Token ids: type t opens with id 2t and closes with 2t+1.
"""

from __future__ import annotations

import math

import torch

from engine.config import DataConfig, ModelConfig
from engine.data.base import Metrics, rand, randint
from engine.data.metrics import ClassifyMetrics, LMMetrics
from engine.data.tasks import BOS, SEP, HashSplitTask, all_sequences, is_val, share
from engine.errors import ConfigError

BRACKETS = "()[]{}<>"
CLASSES = ("unbalanced", "balanced")  # class indices 0 and 1 (the label tokens "N" and "Y")


def _pair_order(dirs: torch.Tensor) -> torch.Tensor:
    """(N, L) positions reordered so that each opening bracket is directly followed by the closing
    bracket that matches it (valid for balanced shapes; ``dirs`` is +1 open / -1 close).

    Why it works: give an open the depth before it and a close the depth after it. At any one
    level, brackets alternate open, close, open, close, ... in position order (everything between
    a pair is deeper), so sorting by (level, position) puts every pair side by side.
    """
    length = dirs.shape[1]
    depth_before = dirs.cumsum(1) - dirs
    level = torch.where(dirs > 0, depth_before, depth_before - 1)
    return (level * length + torch.arange(length)).argsort(dim=1)  # keys unique per row


def random_balanced(n: int, pairs: int, types: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2·pairs) uniformly random balanced strings (token ids) with ``types`` bracket types.

    Shape by the cycle lemma: a random arrangement of ``pairs`` opens and ``pairs + 1`` closes has
    exactly one rotation whose proper prefixes never dip below zero (start just after the first
    minimum of the prefix sums); dropping its final close leaves a uniform Dyck word. Each matched
    pair then gets a uniform random type.
    """
    length = 2 * pairs + 1
    opens = rand(generator, (n, length)).topk(pairs, dim=1).indices  # a uniform subset
    steps = torch.full((n, length), -1, dtype=torch.long)
    steps.scatter_(1, opens, 1)
    prefix = torch.cat([torch.zeros(n, 1, dtype=torch.long), steps.cumsum(1)], dim=1)
    key = prefix * (length + 1) + torch.arange(length + 1)  # ties -> the first minimum
    start = key.argmin(dim=1)
    dirs = steps.gather(1, (start[:, None] + torch.arange(2 * pairs)) % length)
    kinds = randint(generator, types, (n, pairs))
    rank = torch.arange(2 * pairs)
    paired = 2 * kinds[:, rank // 2] + rank % 2  # pair q = (open 2t, close 2t+1) of type t
    return torch.empty_like(dirs).scatter_(1, _pair_order(dirs), paired)


def is_balanced(ids: torch.Tensor) -> torch.Tensor:
    """(N,) bool: which rows of bracket token ids (N, L) are balanced (no Python loop)."""
    if ids.shape[1] % 2:
        return torch.zeros(ids.shape[0], dtype=torch.bool)
    dirs = 1 - 2 * (ids % 2)  # open +1, close -1
    prefix = dirs.cumsum(1)
    shape_ok = (prefix >= 0).all(dim=1) & (prefix[:, -1] == 0)
    kinds = (ids // 2).gather(1, _pair_order(dirs))
    return shape_ok & (kinds[:, 0::2] == kinds[:, 1::2]).all(dim=1)


def near_miss(ids: torch.Tensor, types: int, generator: torch.Generator) -> torch.Tensor:
    """One random edit per row (see module doc); the result may still be balanced."""
    n, length = ids.shape
    rows = torch.arange(n)
    edit = randint(generator, 4, (n,))
    i = randint(generator, length, (n,))
    j = randint(generator, length, (n,))
    shift = randint(generator, max(types - 1, 1), (n,)) + 1
    if types == 1:
        edit = torch.where(edit == 2, 1, edit)  # no other type to change to: swap instead
    out = ids.clone()
    neighbour = edit == 0
    a = torch.where(neighbour, i.clamp(max=length - 2), i)
    b = torch.where(neighbour, a + 1, j)
    swap = edit <= 1
    va, vb = out[rows, a], out[rows, b]
    out[rows, a] = torch.where(swap, vb, va)
    out[rows, b] = torch.where(swap, va, out[rows, b])
    v = out[rows, i]
    retyped = 2 * ((v // 2 + shift) % types) + v % 2
    v = torch.where(edit == 2, retyped, torch.where(edit == 3, v ^ 1, v))
    out[rows, i] = v
    return out


def all_near_misses(ids: torch.Tensor, types: int) -> torch.Tensor:
    """Every string one ``near_miss`` edit away from a row of ``ids`` (N, L), with repeats."""
    n, length = ids.shape
    edits = []
    a, b = torch.triu_indices(length, length, offset=1)
    for i, j in zip(a.tolist(), b.tolist()):  # swaps (neighbours included)
        e = ids.clone()
        e[:, [i, j]] = ids[:, [j, i]]
        edits.append(e)
    for i in range(length):
        for shift in range(types):  # shift 0 flips direction; others change the type
            e = ids.clone()
            v = ids[:, i]
            e[:, i] = v ^ 1 if shift == 0 else 2 * ((v // 2 + shift) % types) + v % 2
            edits.append(e)
    return torch.cat(edits)


class BracketsTask(HashSplitTask):
    """Classification of bracket strings (see module doc); kind "classify".

    With ``model.head: classify`` x is ``[BOS] + brackets`` and y the class index (0 unbalanced,
    1 balanced); with ``data.objective: lm`` x is the same and y the next token (no labels).
    """

    kind = "classify"

    def __init__(self, data: DataConfig, model: ModelConfig):
        n = data.seq_len
        if n % 2:
            raise ConfigError(
                "data.seq_len", f"brackets needs an even seq_len (brackets come in pairs), got {n}"
            )
        self.types = max(1, min(data.vocab // 2, 4))
        tokens = list(BRACKETS[: 2 * self.types]) + [SEP, BOS, "N", "Y"]
        super().__init__("brackets", tokens, SEP, n, 1, data, model)
        self.negative_id, self.positive_id = self.vocab.id("N"), self.vocab.id("Y")
        self.info["bracket_types"] = self.types
        if self.objective != "lm":
            self.kind = "classify"
            self.info["classes"] = list(CLASSES)
            self.n_classes = len(CLASSES) if self.head == "classify" else 0
        self._setup_split()
        self._check_classes()

    def _check_classes(self) -> None:
        """Both labels must occur in both splits, or one split's batches would be one class."""
        n, vf = self.input_len, self.val_fraction
        if self._enumerated is not None:
            inputs = self._enumerated  # row r is the string whose base-2k digits spell r
            balanced = is_balanced(inputs)
            good = inputs[balanced]
            # Unbalanced examples are near misses, so count only the strings the edits can reach.
            powers = (2 * self.types) ** torch.arange(n - 1, -1, -1)
            reached = torch.zeros(len(inputs), dtype=torch.bool)
            reached[(all_near_misses(good, self.types) * powers).sum(1)] = True
            bad = inputs[reached & ~balanced]
            good_val, bad_val = is_val(good, vf), is_val(bad, vf)
            counts = {
                ("train", True): int((~good_val).sum()),
                ("val", True): int(good_val.sum()),
                ("train", False): int((~bad_val).sum()),
                ("val", False): int(bad_val.sum()),
            }
        else:
            balanced = math.comb(n, n // 2) // (n // 2 + 1) * self.types ** (n // 2)
            counts = {
                ("train", True): balanced - share(balanced, vf),
                ("val", True): share(balanced, vf),
            }
        for (split, label), count in counts.items():
            if count == 0:
                kind = "balanced" if label else "unbalanced"
                raise ConfigError(
                    "data.seq_len",
                    f"brackets with seq_len={n} and {self.types} bracket type(s) leaves no "
                    f"{kind} string in the {split} split (val_fraction={vf}); raise data.seq_len",
                )

    def _space_size(self) -> int:
        return (2 * self.types) ** self.input_len

    def _all_inputs(self) -> torch.Tensor:
        return all_sequences(2 * self.types, self.input_len)

    def _draw(self, split, n, generator):
        # Decide the labels first and fill each class by its own rejection sampling, so labels
        # are exactly Bernoulli(1/2) in both splits whatever the split does to either class.
        want = rand(generator, (n,)) < 0.5
        n_good = int(want.sum())
        good = self._draw_by_hash(split, n_good, generator, self._balanced)
        bad = self._draw_by_hash(split, n - n_good, generator, self._unbalanced)
        out = torch.empty(n, self.input_len, dtype=torch.long)
        out[want], out[~want] = good, bad
        return out

    def _balanced(self, n, generator):
        inputs = random_balanced(n, self.input_len // 2, self.types, generator)
        return inputs, torch.ones(n, dtype=torch.bool)

    def _unbalanced(self, n, generator):
        good = random_balanced(n, self.input_len // 2, self.types, generator)
        inputs = near_miss(good, self.types, generator)
        return inputs, ~is_balanced(inputs)  # an edit can leave a string balanced: drop those

    def _targets(self, inputs):
        label = torch.where(is_balanced(inputs), self.positive_id, self.negative_id)
        return label[:, None]

    def _classes(self, inputs):
        return is_balanced(inputs).long()  # 0 unbalanced, 1 balanced: the order of CLASSES

    def new_metrics(self) -> Metrics:
        if self.objective == "lm":
            return LMMetrics()
        if self.head == "classify":
            return ClassifyMetrics(list(CLASSES))
        return ClassifyMetrics(list(CLASSES), [self.negative_id, self.positive_id])
