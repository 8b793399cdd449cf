"""Edits of a timeline as pure functions: each returns a new ``TimelineConfig``.

The editor turns gestures into these calls and proposes the result to the document, which asks
the engine whether it is valid. Nothing here resolves positions or computes LR values: callers
pass ticks already resolved and values read from the compiled curve.
"""

from __future__ import annotations

import copy
import dataclasses

from engine import (
    LRSegment,
    Mark,
    NormEvent,
    PhaseSpec,
    Position,
    PruneSpec,
    QuantizeSpec,
    TimelineConfig,
)

SHAPES = ("constant", "linear", "cosine", "exp", "step", "points")
NORM_ACTIONS = ("set", "ramp", "freeze", "unfreeze", "eps", "backend", "calibrate", "sigma")
MARK_ACTIONS = ("checkpoint", "eval", "note")
DECAY = 10.0  # a new decaying segment ends at a tenth of where it starts
EXP_FLOOR = 1e-6  # exp takes logs: a zero end becomes this


def nice(value: float) -> float:
    """A dragged value to three significant digits: what a person would write in the YAML."""
    return float(f"{value:.3g}")


def _copy(tl: TimelineConfig) -> TimelineConfig:
    return copy.deepcopy(tl)


def replace_item(tl: TimelineConfig, kind: str, index: int, **changes) -> TimelineConfig:
    """Item ``index`` of list ``kind`` with ``changes`` (YAML-free field names: ``from_``)."""
    out = _copy(tl)
    items = getattr(out, kind)
    items[index] = dataclasses.replace(items[index], **changes)
    return out


def set_item(tl: TimelineConfig, kind: str, index: int, item) -> TimelineConfig:
    out = _copy(tl)
    getattr(out, kind)[index] = copy.deepcopy(item)
    return out


def insert_item(tl: TimelineConfig, kind: str, index: int, item) -> TimelineConfig:
    out = _copy(tl)
    getattr(out, kind).insert(index, item)
    return out


def delete_item(tl: TimelineConfig, kind: str, index: int) -> TimelineConfig:
    """Remove an item. Deleting the first of several phases hands tick 0 to the next one."""
    out = _copy(tl)
    items = getattr(out, kind)
    del items[index]
    if kind == "phases" and index == 0 and items:
        items[0] = dataclasses.replace(items[0], start=0)
    return out


# --- phases ---
def _with_phases(tl: TimelineConfig) -> TimelineConfig:
    """An explicit phase list: a timeline without phases runs one phase called main."""
    out = _copy(tl)
    if not out.phases:
        out.phases = [PhaseSpec(name="main", start=0)]
    return out


def split_phase(tl: TimelineConfig, index: int | None, at: Position) -> TimelineConfig:
    """Split phase ``index`` at ``at``: the second part keeps its LR scale and weight decay
    (so the curves do not change) and changes nothing else."""
    out = _with_phases(tl)
    index = index or 0
    old = out.phases[index]
    new = PhaseSpec(
        name=f"{old.name}-2", start=at, lr_scale=old.lr_scale, weight_decay=old.weight_decay
    )
    out.phases.insert(index + 1, new)
    return out


def add_phase(tl: TimelineConfig, index: int | None, at: Position) -> TimelineConfig:
    """A new phase with default settings from ``at``, after phase ``index``."""
    out = _with_phases(tl)
    index = index or 0
    out.phases.insert(index + 1, PhaseSpec(name=f"phase {len(out.phases) + 1}", start=at))
    return out


def set_phase(tl: TimelineConfig, index: int | None, phase: PhaseSpec) -> TimelineConfig:
    """Replace phase ``index`` (None: the implicit single phase becomes an explicit one)."""
    return set_item(_with_phases(tl), "phases", index or 0, phase)


# --- LR segments ---
def new_segment(shape: str, start: Position, end: Position, v0: float, v1: float) -> LRSegment:
    """A segment of ``shape`` from value ``v0`` to ``v1``."""
    return set_shape(LRSegment(start=start, end=end, shape="linear", from_=v0, to=v1), shape, start)


def set_shape(seg: LRSegment, shape: str, mid: Position) -> LRSegment:
    """``seg`` with another shape, keeping its start and end values where the shape has them.
    ``mid`` is where a step segment's first milestone goes."""
    v0 = seg.from_ if seg.from_ is not None else (seg.points[0][1] if seg.points else 0.0)
    v1 = seg.to if seg.to is not None else (seg.points[-1][1] if seg.points else v0)
    base = dataclasses.replace(seg, shape=shape, from_=v0, to=None, points=[], log=False)
    base = dataclasses.replace(base, milestones=[], gamma=LRSegment().gamma)
    if shape == "constant":
        return base
    if shape in ("linear", "cosine"):
        return dataclasses.replace(base, to=v1)
    if shape == "exp":
        v1 = v1 if v1 > 0 else max(v0 / DECAY, EXP_FLOOR)
        v0 = v0 if v0 > 0 else max(v1, EXP_FLOOR)
        return dataclasses.replace(base, from_=v0, to=v1)
    if shape == "step":
        return dataclasses.replace(base, milestones=[mid])
    return dataclasses.replace(base, from_=None, points=[[0.0, v0], [1.0, v1]])


def add_segment(
    tl: TimelineConfig, index: int, shape: str, start: Position, end: Position, v0: float
) -> TimelineConfig:
    """Insert a ``shape`` segment at list position ``index`` filling [start, end) from ``v0``
    (a decaying shape ends at v0/10)."""
    v1 = v0 / DECAY if shape in ("linear", "cosine", "exp") else v0
    return insert_item(tl, "lr", index, new_segment(shape, start, end, v0, v1))


def split_segment(
    tl: TimelineConfig, index: int, at: Position, shape: str, v_at: float
) -> TimelineConfig:
    """Split segment ``index`` at ``at``: the first part now ends at ``v_at`` (the curve's value
    there, so it stays continuous), the second is a ``shape`` segment from ``v_at`` to the old
    end value."""
    old = tl.lr[index]
    v_end = old.to if old.to is not None else (old.points[-1][1] if old.points else v_at)
    first = old
    if old.shape in ("linear", "cosine", "exp"):
        first = dataclasses.replace(old, end=at, to=v_at)
    elif old.shape == "points":
        first = set_shape(dataclasses.replace(old, end=at, to=v_at), "linear", at)
    else:
        first = dataclasses.replace(old, end=at)
    out = set_item(tl, "lr", index, first)
    return insert_item(out, "lr", index + 1, new_segment(shape, at, old.end, v_at, v_end))


def move_point(seg: LRSegment, k: int, u: float, value: float) -> LRSegment:
    points = [list(p) for p in seg.points]
    points[k] = [round(u, 4), nice(value)]
    return dataclasses.replace(seg, points=points)


def add_point(seg: LRSegment, u: float, value: float) -> tuple[LRSegment, int]:
    """``seg`` with a control point at (u, value), kept in u order; and the point's index."""
    points = [list(p) for p in seg.points]
    k = sum(1 for p in points if p[0] <= u)
    points.insert(k, [round(u, 4), nice(value)])
    return dataclasses.replace(seg, points=points), k


def delete_point(seg: LRSegment, k: int) -> LRSegment:
    points = [list(p) for i, p in enumerate(seg.points) if i != k]
    return dataclasses.replace(seg, points=points)


# --- norm events and marks ---
def new_norm_event(
    action: str,
    at: Position,
    layers,
    strength_now: float,
    *,
    over: int,
    stagger: int = 0,
    eps: float = 1e-3,
    backend_now: str = "auto",
) -> NormEvent:
    """A norm event with values that make sense at its tick: a set or ramp heads for the other
    end from the strength in force (``strength_now``)."""
    target = 0.0 if strength_now >= 0.5 else 1.0
    ev = NormEvent(at=at, action=action, layers=layers, stagger=stagger)
    if action == "set":
        return dataclasses.replace(ev, strength=target)
    if action == "ramp":
        return dataclasses.replace(ev, to=target, over=max(int(over), 1))
    if action == "eps":
        return dataclasses.replace(ev, eps=eps)
    if action == "backend":
        return dataclasses.replace(ev, backend="auto" if backend_now == "torch" else "torch")
    if action == "sigma":
        return dataclasses.replace(ev, sigma=1.0)  # σ̄'s starting value: no calibration
    return ev


def new_mark(action: str, at: Position) -> Mark:
    return Mark(action=action, at=at, text="note" if action == "note" else "")


# --- compression ---
PRUNE_PARAMS = ["blocks"]  # a new pruning group: every block's weight matrices
PRUNE_TO = 0.5


def new_prune(tl: TimelineConfig, start: Position, end: Position) -> PruneSpec:
    """A pruning group from ``start`` to ``end`` (0 -> 50% of the blocks' weights), named so
    that it does not take the name of a group already in ``tl``."""
    taken = {p.name or "+".join(p.params) for p in tl.prune}
    name = next(f"group{n}" for n in range(1, len(taken) + 2) if f"group{n}" not in taken)
    return PruneSpec(start=start, end=end, to=PRUNE_TO, params=list(PRUNE_PARAMS), name=name)


def new_quantize(at: Position) -> QuantizeSpec:
    return QuantizeSpec(at=at, mode="qat")
