"""Gradual magnitude pruning on the timeline (``timeline.prune``), after Zhu & Gupta 2017.

Each ``timeline.prune`` item is a **group**: the weight matrices its ``params`` patterns name
(``engine.timeline.matches``: a name, a module prefix, a glob, a layer range ``blocks.0-1``;
biases and norm gains are never pruned), pruned along one cubic between two ticks.

Schedule, in the LR segment's convention (``engine.lr_schedule``): the item covers ticks
``[start, end)``; at tick ``t`` inside it ``u = (t - start + 1) / (end - start)`` and the target
sparsity is

    s(t) = to + (from - to) · (1 - u)³

which is Zhu & Gupta's ``s_f + (s_i - s_f)(1 - (t - t0)/(nΔt))³`` with ``t0 = start - 1``:
``from`` holds just before the span, the last tick ``end - 1`` reaches ``to`` exactly. Pruning
steps are the ticks where ``(t - start + 1)`` is a multiple of ``every`` (Δt), plus always the
last tick; ``{start: T, end: T + 1}`` prunes all at once at tick T.

A pruning step happens after the optimizer step of its tick: each tensor of the group keeps its
largest-magnitude entries and loses the ``round(s · numel)`` smallest (per tensor, as Zhu & Gupta
prune each layer to the same sparsity). Masks only grow: a weight once pruned stays pruned, also
through a later item on the same tensor. After every optimizer step, pruned or not, each masked
tensor is multiplied by its mask, so Adam's moments and weight decay never revive a pruned
weight. The run logs ``sparsity/<group>`` at each of the group's pruning steps: the fraction of
the group's entries that are exactly zero, counted from the weights themselves.

Why not ``torch.nn.utils.prune``'s reparametrisation: it replaces ``weight`` by a parameter
``weight_orig``, a buffer ``weight_mask`` and a forward pre-hook that recomputes ``weight`` on
every forward. That renames state-dict keys from the first pruning step on, so a checkpoint taken
before it no longer loads into the model after it (and the reverse), ``init_from`` and the
Hugging Face export, which read ``...weight``, break; it unties a tied embedding and head (the hook
writes a new tensor on one module only); and the pre-hooks sit in the graph ``torch.compile``
traces. Here the masks are a plain dict of bool tensors beside the model, saved in checkpoints
under ``pruning``; the weights keep their names and hold the zeros themselves, so every export
writes the pruned model, already permanent. The mask itself is computed by
``torch.nn.utils.prune.L1Unstructured.compute_mask`` (its rule, not a copy of it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils import prune as torch_prune

# the module, not its names: engine.timeline may import this one while it is being imported
import engine.timeline as timeline
from engine.config import RunSpec, check_name
from engine.errors import ConfigError
from engine.lr_schedule import u_of_tick
from engine.positions import Units, resolve_position, units_for

__all__ = [
    "SPARSITY_PREFIX",
    "PruneGroup",
    "Pruner",
    "check_prune",
    "compile_prune",
    "prune_edges",
    "prune_spans",
]

SPARSITY_PREFIX = "sparsity/"  # a run logs sparsity/<group> at each of the group's pruning steps
STATE_FORMAT = 1


@dataclass(frozen=True)
class PruneGroup:
    """One ``timeline.prune`` item with its positions resolved to ticks ``[start, end)``."""

    index: int  # its place in timeline.prune
    name: str
    start: int
    end: int
    every: int
    from_: float
    to: float
    patterns: tuple[str, ...]

    @property
    def source(self) -> str:
        return f"timeline.prune[{self.index}]"

    def ticks(self) -> list[int]:
        """The pruning steps: every ``every``-th tick of the span, and its last tick."""
        steps = list(range(self.start + self.every - 1, self.end, self.every))
        return steps if steps and steps[-1] == self.end - 1 else steps + [self.end - 1]

    def target(self, tick: int) -> float:
        """Target sparsity (a fraction) at ``tick`` on the cubic; ``from`` before the span and
        ``to`` after it."""
        u = min(max(u_of_tick(self.start, self.end, tick), 0.0), 1.0)
        return self.to + (self.from_ - self.to) * (1.0 - u) ** 3

    def curve(self, steps: int) -> np.ndarray:
        """The scheduled sparsity in force after each tick ``0 .. steps-1`` (float64): 0 before
        the first pruning step, then the target of the latest one, a staircase (for plots and
        the editor; a tensor's own count rounds it to whole entries)."""
        out = np.zeros(steps)
        for t in self.ticks():
            out[t:] = self.target(t)
        return out


def compile_prune(spec: RunSpec, units: Units, lenient: bool = False) -> list[PruneGroup]:
    """Check and resolve ``timeline.prune`` against the run's units; ConfigError naming the
    item's field. An item whose positions are epochs while the data is unknown is skipped (it
    is checked once the data is built, as LR segments are). ``lenient``: an item with an error
    is left out instead (the editor draws every good item of a timeline being edited)."""
    groups: list[PruneGroup] = []
    names: dict[str, int] = {}
    for i, item in enumerate(spec.timeline.prune):
        try:
            group = _group(spec, units, i, item, names)
        except ConfigError:
            if not lenient:
                raise
            continue
        if group is not None:
            groups.append(group)
    return groups


def _group(spec: RunSpec, units: Units, i: int, item, names: dict[str, int]) -> PruneGroup | None:
    """Item ``i`` of ``timeline.prune`` resolved (None: its positions wait for the data);
    ``names`` holds the group names taken by the items before it."""
    path = f"timeline.prune[{i}]"
    if not item.params:
        raise ConfigError(f"{path}.params", "names no weights: give at least one pattern")
    for j, pattern in enumerate(item.params):
        timeline.check_pattern(pattern, f"{path}.params[{j}]", spec.model)
    if item.to < item.from_:
        raise ConfigError(
            f"{path}.to",
            f"{item.to} is below from={item.from_}: pruning only adds zeros (masks only grow)",
        )
    if item.name:
        check_name(item.name, f"{path}.name")
    name = item.name or "+".join(item.params)
    if name in names:
        raise ConfigError(
            f"{path}.name", f"{name!r} is already the name of timeline.prune[{names[name]}]"
        )
    names[name] = i
    start = resolve_position(item.start, f"{path}.start", units)
    end = resolve_position(item.end, f"{path}.end", units)
    if start is None or end is None:
        return None
    if start > units.steps - 1:
        raise ConfigError(
            f"{path}.start",
            f"tick {start} is past the end of the run (train.steps={units.steps})",
        )
    if end <= start:
        raise ConfigError(f"{path}.end", f"must be after start ({start}), got {end}")
    if end > units.steps:
        raise ConfigError(
            f"{path}.end", f"tick {end} is past the end of the run (train.steps={units.steps})"
        )
    return PruneGroup(i, name, start, end, item.every, item.from_, item.to, tuple(item.params))


def check_prune(spec: RunSpec) -> None:
    """The pruning check of ``engine.specs.validate``: against the data's units when the data
    can be built, else against the spec alone (epoch positions unchecked)."""
    from engine.plan import data_units  # engine.plan imports the timeline; keep this one lazy

    try:
        units = data_units(spec)
    except ConfigError:  # the data's own error comes from the timeline check or at start
        units = units_for(spec)
    compile_prune(spec, units)


def prune_edges(groups: list[PruneGroup]) -> list[timeline.Edge]:
    """An edge (kind ``prune``) at each pruning step, in tick order. Like marks, pruning applies
    after its tick's step; ``detail["sparsity"]`` is the target reached there."""
    edges = [
        timeline.Edge(
            t, "prune", f"prune {g.name}", {"group": g.name, "sparsity": g.target(t)}, g.source
        )
        for g in groups
        for t in g.ticks()
    ]
    return sorted(edges, key=lambda e: e.tick)


def prune_spans(groups: list[PruneGroup]) -> list[timeline.Span]:
    """A span (kind ``prune``) per group, for the editor's lane and the plots' shading."""
    return [
        timeline.Span(
            "prune",
            g.start,
            g.end,
            f"prune {g.name}",
            g.source,
            {"group": g.name, "from": g.from_, "to": g.to, "every": g.every},
        )
        for g in groups
    ]


def _prunable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The weight matrices a pattern may select (dim >= 2: linear weights and embeddings)."""
    return {n: p for n, p in model.named_parameters() if p.dim() >= 2}


class Pruner:
    """Carries out the compiled pruning schedule on one model; holds the masks.

    Built by ``engine.setup``; the trainer calls ``after_step(t)`` right after each optimizer
    step, saves ``state_dict()`` in its checkpoints and loads it back on resume."""

    def __init__(self, spec: RunSpec, units: Units, model: torch.nn.Module):
        """Raises ConfigError (naming ``timeline.prune[i].params[j]``) when a pattern matches no
        weight matrix, or when two items overlap in time on the same tensor."""
        self.groups = compile_prune(spec, units)
        if self.groups and spec.train.lora.rank:
            raise ConfigError(
                "timeline.prune",
                "cannot prune with LoRA adapters (train.lora.rank > 0): the adapters' update "
                "W + BA stays dense",
            )
        weights = _prunable(model)
        self.params = weights
        self.members: dict[str, list[str]] = {}  # group name -> tensor names, in model order
        for g in self.groups:
            for j, pattern in enumerate(g.patterns):
                if not any(timeline.matches(n, pattern) for n in weights):
                    raise ConfigError(
                        f"{g.source}.params[{j}]",
                        f"{pattern!r} matches no weight matrix (names look like "
                        f"{next(iter(weights))}, blocks.0.mlp.fc.weight; biases and norm "
                        "gains are never pruned)",
                    )
            self.members[g.name] = [
                n for n in weights if any(timeline.matches(n, p) for p in g.patterns)
            ]
        self._check_overlaps()
        self.masks: dict[str, torch.Tensor] = {}  # tensor name -> bool mask (True: kept)
        self._at: dict[int, list[PruneGroup]] = {}
        for g in self.groups:
            for t in g.ticks():
                self._at.setdefault(t, []).append(g)

    def _check_overlaps(self) -> None:
        for a, g in enumerate(self.groups):
            for h in self.groups[:a]:
                shared = set(self.members[g.name]) & set(self.members[h.name])
                if shared and g.start < h.end and h.start < g.end:
                    raise ConfigError(
                        f"{g.source}.start",
                        f"ticks {g.start}-{g.end - 1} overlap {h.source} (ticks {h.start}-"
                        f"{h.end - 1}) on {sorted(shared)[0]}: one schedule per weight at a time",
                    )

    def edges(self) -> list[timeline.Edge]:
        return prune_edges(self.groups)

    def spans(self) -> list[timeline.Span]:
        return prune_spans(self.groups)

    @torch.no_grad()
    def after_step(self, tick: int) -> dict[str, float]:
        """Run right after the optimizer step of ``tick``: prune the groups whose step falls on
        it, then zero every masked weight again. Returns ``{"sparsity/<group>": fraction}`` for
        the groups pruned at this tick (empty on other ticks, which need no host sync)."""
        due = self._at.get(tick, [])
        for g in due:
            for name in self.members[g.name]:
                self._prune(name, g.target(tick))
        for name, mask in self.masks.items():
            self.params[name].mul_(mask)
        return self.sparsity([g.name for g in due]) if due else {}

    def _prune(self, name: str, sparsity: float) -> None:
        weight = self.params[name]
        count = round(sparsity * weight.numel())
        if count == 0:
            return
        before = self.masks.get(name)
        if before is None:
            before = torch.ones_like(weight, dtype=torch.bool)
        # masked entries are zero, so the smallest |w| include them: masks only grow
        rule = torch_prune.L1Unstructured(amount=count)
        self.masks[name] = rule.compute_mask(weight * before, before).to(torch.bool)

    @torch.no_grad()
    def sparsity(self, groups: list[str] | None = None) -> dict[str, float]:
        """``{"sparsity/<group>": fraction of the group's entries that are exactly zero}``,
        counted from the weights (one host sync for all the groups asked)."""
        groups = list(self.members) if groups is None else groups
        zeros = torch.stack(
            [sum((self.params[n] == 0).sum() for n in self.members[g]) for g in groups]
        ).tolist()
        sizes = [sum(self.params[n].numel() for n in self.members[g]) for g in groups]
        return {f"{SPARSITY_PREFIX}{g}": z / s for g, z, s in zip(groups, zeros, sizes)}

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the masks (bool tensors, by parameter name)."""
        return {"format": STATE_FORMAT, "masks": dict(self.masks)}

    def load_state_dict(self, state: dict | None, tick: int) -> None:
        """Restore the masks a checkpoint taken after ``tick`` ticks saved (``None``: one saved
        without pruning state). ConfigError when they are not the masks this timeline would
        have made by then: the schedule changed in the run's past."""
        masks = dict((state or {}).get("masks", {}))
        due = {
            n
            for g in self.groups
            for n in self.members[g.name]
            if any(t < tick and round(g.target(t) * self.params[n].numel()) for t in g.ticks())
        }
        if set(masks) != due:
            gone = sorted(due - set(masks)) + sorted(set(masks) - due)
            raise ConfigError(
                "timeline.prune",
                f"cannot resume at tick {tick}: the checkpoint's pruning masks do not match "
                f"the schedule (on {', '.join(gone[:3])}; fork the run to change its past)",
            )
        for name, mask in masks.items():
            param = self.params[name]
            if mask.shape != param.shape:
                raise ConfigError("timeline.prune", f"the saved mask of {name} has another shape")
            self.masks[name] = mask.to(device=param.device, dtype=torch.bool)
