"""Where each timeline item sits, in ticks, read from the one compiled timeline.

The document holds ``engine.plan_timeline(spec)``: the timeline compiled against the data's real
units, leniently while some item is invalid. Every edge and span in it names the spec item it
came from, so the span of phase i and LR segment i, the ticks (per layer group) at which norm
event i fires and the ticks of mark i are looked up there, never worked out again here. An item
the compile left out (invalid) has no span and no ticks: its lane marks the error instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import engine


@dataclass(frozen=True)
class Firing:
    """Norm event ``index`` applied to ``layer`` (a block index or "final") at ``tick``;
    ``order`` is the layer's place in the event's list (its stagger multiple)."""

    tick: int
    layer: int | str
    order: int


def phase_spans(spec: engine.RunSpec, compiled: engine.CompiledTimeline | None) -> list[tuple]:
    """(index or None, name, start, end) per phase. Index None is the implicit single phase
    of a timeline without phases; a phase the compile left out is not drawn."""
    if compiled is None:
        return [(None, "main", 0, spec.train.steps)]
    return [(_index(s.source), s.label, s.start, s.end) for s in compiled.spans("phase")]


def segment_span(
    compiled: engine.CompiledTimeline | None, index: int, kind: str = "lr"
) -> tuple[int, int] | None:
    """[start, end) of segment ``index`` of list ``kind`` (``lr`` or ``batch``); None when it
    is not in the compile."""
    source = f"timeline.{kind}[{index}]"
    spans = [s for s in compiled.spans(kind) if s.source == source] if compiled else []
    return (spans[0].start, spans[0].end) if spans else None


def segment_spans(compiled: engine.CompiledTimeline | None, count: int, kind: str = "lr") -> list:
    return [segment_span(compiled, i, kind) for i in range(count)]


def prune_groups(
    spec: engine.RunSpec, compiled: engine.CompiledTimeline | None
) -> list[engine.PruneGroup]:
    """The ``timeline.prune`` items resolved in the compile's units (those with an error left
    out: the lane marks them instead); ``group.index`` is the item's place in the list."""
    if compiled is None:
        return []
    return engine.compile_prune(spec, compiled.units, lenient=True)


def quantize_tick(compiled: engine.CompiledTimeline | None, index: int) -> int | None:
    """The tick quantize event ``index`` fires at (None when it is not in the compile)."""
    edges = compiled.from_source(f"timeline.quantize[{index}]") if compiled else []
    return edges[0].tick if edges else None


def layer_groups(spec: engine.RunSpec) -> list[tuple[int | str, list[str]]]:
    """The model's norm groups, as ``layers: all`` addresses them (blocks, then final), with
    their norm sites; empty for ``norm: none``."""
    return engine.layer_groups(spec.model)


def firings(compiled: engine.CompiledTimeline | None, index: int) -> list[Firing]:
    """Where norm event ``index`` fires, one per addressed layer group (empty when it is not
    in the compile)."""
    if compiled is None:
        return []
    edges = compiled.from_source(f"timeline.layernorm[{index}]")
    return [Firing(e.tick, e.detail["layer"], order) for order, e in enumerate(edges)]


def auto_calibrations(compiled: engine.CompiledTimeline | None) -> list[engine.Edge]:
    """The calibrations the engine adds by itself (first tick a norm's strength is below 1)."""
    if compiled is None:
        return []
    return [e for e in compiled.edges() if e.kind == "norm" and e.detail.get("auto")]


def mark_ticks(compiled: engine.CompiledTimeline | None, index: int) -> list[int]:
    if compiled is None:
        return []
    return [e.tick for e in compiled.from_source(f"timeline.marks[{index}]")]


def _index(source: str) -> int | None:
    return int(source[source.index("[") + 1 : -1]) if source else None
