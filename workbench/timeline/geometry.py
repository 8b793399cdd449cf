"""Where each timeline item sits, in ticks, as the engine resolves it.

The lanes draw curves from the compiled timeline; this module answers the per-item questions the
compile does not index by item: the span of phase i and LR segment i, the ticks (per layer
group) at which norm event i fires, the ticks of mark i. Every answer comes from the engine
(``resolve_position``, or ``compile_timeline`` of a timeline holding just that item), so
stagger, layer groups and ``every`` repeats follow the engine's rules, and an item that is
invalid on its own gets None instead of a guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import engine
from engine.config import Mark, NormEvent, RunSpec, TimelineConfig
from engine.positions import resolve_position, units_for

CACHE_LIMIT = 512


@dataclass(frozen=True)
class Firing:
    """Norm event ``index`` applied to ``layer`` (a block index or "final") at ``tick``;
    ``order`` is the layer's place in the event's list (its stagger multiple)."""

    tick: int
    layer: int | str
    order: int


_cache: dict[tuple, object] = {}


def _alone(spec: RunSpec, **lists) -> list[engine.timeline.Edge]:
    """Edges of ``spec`` with a timeline holding only ``lists`` (memoised: drags ask often)."""
    key = (repr(lists), repr(spec.model), spec.train.steps, spec.train.batch_size)
    if key not in _cache:
        if len(_cache) > CACHE_LIMIT:
            _cache.clear()
        one = dataclasses.replace(spec, timeline=TimelineConfig(**lists))
        try:
            _cache[key] = engine.compile_timeline(one).edges()
        except engine.ConfigError as exc:
            _cache[key] = exc
    found = _cache[key]
    if isinstance(found, Exception):
        raise found
    return found


def resolve(spec: RunSpec, position, path: str = "position") -> int | None:
    """Tick of a written position; None for epochs (the data decides) or an invalid one."""
    try:
        return resolve_position(position, path, units_for(spec))
    except engine.ConfigError:
        return None


def phase_spans(spec: RunSpec, compiled: engine.CompiledTimeline | None) -> list[tuple]:
    """(index or None, name, start, end) per phase. Index None is the implicit single phase
    of a timeline without phases. Unresolvable starts leave their phase out."""
    steps = spec.train.steps
    if compiled is not None:
        spans = [(p.index, p.name, p.start, p.end) for p in compiled.phases]
        return spans if spec.timeline.phases else [(None, *spans[0][1:])]
    starts = [(i, p.name, resolve(spec, p.start)) for i, p in enumerate(spec.timeline.phases)]
    starts = [(i, n, s) for i, n, s in starts if s is not None]
    if not starts:
        return [(None, "main", 0, steps)]
    ends = [s for _, _, s in starts[1:]] + [steps]
    return [(i, n, s, max(e, s)) for (i, n, s), e in zip(starts, ends)]


def segment_span(spec: RunSpec, index: int) -> tuple[int, int] | None:
    seg = spec.timeline.lr[index]
    start, end = resolve(spec, seg.start), resolve(spec, seg.end)
    if start is None or end is None:
        return None
    return start, end


def layer_groups(spec: RunSpec) -> list[tuple[int | str, list[str]]]:
    """The model's norm groups, as ``layers: all`` addresses them (blocks, then final), with
    their norm sites; empty for ``norm: none``."""
    if spec.model.norm == "none":
        return []
    probe = NormEvent(at=0, action="set", strength=1.0, layers="all")
    return [(e.detail["layer"], e.detail["sites"]) for e in _alone(spec, layernorm=[probe])]


def firings(spec: RunSpec, index: int) -> list[Firing]:
    """Where norm event ``index`` fires, one per addressed layer group (empty when it cannot
    fire: an epoch position, or an error the lane marks)."""
    ev = spec.timeline.layernorm[index]
    try:
        edges = _alone(spec, layernorm=[ev])
    except engine.ConfigError:
        return []
    own = [e for e in edges if not e.detail.get("auto")]
    order = {layer: k for k, layer in enumerate(e.detail["layer"] for e in own)}
    return [Firing(e.tick, e.detail["layer"], order[e.detail["layer"]]) for e in own]


def auto_calibrations(compiled: engine.CompiledTimeline | None) -> list[engine.timeline.Edge]:
    """The calibrations the engine adds by itself (first tick a norm's strength is below 1)."""
    if compiled is None:
        return []
    return [e for e in compiled.edges() if e.kind == "norm" and e.detail.get("auto")]


def mark_ticks(spec: RunSpec, index: int) -> list[int]:
    mark: Mark = spec.timeline.marks[index]
    try:
        return [e.tick for e in _alone(spec, marks=[mark])]
    except engine.ConfigError:
        return []
