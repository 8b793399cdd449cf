"""Spec diff: which fields differ between the specs of several runs, timeline events included.

Ordinary fields are compared by their dotted path (``train.lr``, ``model.norm_position``). The
timeline's lists (phases, lr, layernorm, marks, prune, quantize) are compared by event, not by
index, so that inserting one event does not make every later one look changed. Each event of
the first run (the reference) is matched in the others, in this order:

1. an identical event;
2. the same event at another position (``at``, ``start``/``end``, ``every``): *moved*;
3. an event of the same identity (a phase's name, a norm event's action and layers, a mark's
   action and text, an LR segment's shape): *changed*.

Events left unmatched are *added* (absent from the reference) or *removed* (absent from some
run). Given each run's compiled timeline (``engine.plan_timeline``: the one the run followed), an
event's value ends with where it really fell, ``-> tick 96``: "50Ktok" is a different tick in
runs whose batches hold different token counts. Pure Python: the Diff dock renders the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import engine
from engine import RunSpec, to_dict

ABSENT = "—"
# per timeline list: the fields that place an event, and those that name it
POSITION = {
    "phases": ("start",),
    "lr": ("start", "end"),
    "layernorm": ("at",),
    "marks": ("at", "every"),
    "prune": ("start", "end", "every"),
    "quantize": ("at",),
}
IDENTITY = {
    "phases": ("name",),
    "lr": ("shape",),
    "layernorm": ("action", "layers"),
    "marks": ("action", "text"),
    "prune": ("name", "params"),
    "quantize": ("mode",),
}
DEFAULTS = {  # what an omitted field means (events are stored compactly, without defaults)
    "phases": {"start": 0},
    "lr": {"start": 0, "end": "100%", "shape": "constant"},
    "layernorm": {"at": 0, "action": "set", "layers": "all"},
    "marks": {"action": "note", "text": ""},
    "prune": {"start": 0, "end": "100%", "every": 10, "name": ""},
    "quantize": {"at": 0, "mode": "qat"},
}


@dataclass(frozen=True)
class DiffRow:
    path: str  # "train.lr", "timeline.layernorm[ramp all]"
    values: tuple[str, ...]  # one per run; ABSENT where the run lacks the event
    kind: str  # "same", "changed", "added", "removed" or "moved"


def fmt(value: Any) -> str:
    """A value as the YAML flow style a user would write it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> {dotted path: leaf}; lists are leaves."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def _field_rows(datas: list[dict]) -> list[DiffRow]:
    flats = [flatten({k: v for k, v in d.items() if k != "timeline"}) for d in datas]
    paths = list(dict.fromkeys(p for flat in flats for p in flat))
    rows = []
    for path in paths:
        present = [path in flat for flat in flats]
        values = tuple(fmt(flat[path]) if path in flat else ABSENT for flat in flats)
        if all(present):
            kind = "same" if len(set(values)) == 1 else "changed"
        else:  # a nullable section (a phase's data) set in some runs only
            kind = "added" if not present[0] else "removed"
        rows.append(DiffRow(path, values, kind))
    return rows


def _without(item: dict, keys: tuple[str, ...]) -> dict:
    return {k: v for k, v in item.items() if k not in keys}


def _identity(section: str, item: dict) -> tuple:
    defaults = DEFAULTS.get(section, {})
    return tuple(fmt(item.get(k, defaults.get(k))) for k in IDENTITY[section])


def _align(section: str, lists: list[list[dict]]) -> list[list[dict | None]]:
    """Slots of matched events: slot[i] is run i's event (None: the run lacks it)."""
    slots: list[list[dict | None]] = [[item] + [None] * (len(lists) - 1) for item in lists[0]]
    pos = POSITION[section]
    tests = (
        lambda a, b: a == b,
        lambda a, b: _without(a, pos) == _without(b, pos),
        lambda a, b: _identity(section, a) == _identity(section, b),
    )
    for run, items in enumerate(lists[1:], start=1):
        left = list(items)
        for same in tests:
            for slot in slots:
                if slot[run] is not None:
                    continue
                anchor = next(it for it in slot if it is not None)
                match = next((it for it in left if same(anchor, it)), None)
                if match is not None:
                    slot[run] = match
                    left.remove(match)
        for item in left:  # not in the reference: a slot of its own
            slots.append([None] * run + [item] + [None] * (len(lists) - run - 1))
    return slots


def _shown(section: str, item: dict) -> str:
    """An event with its position and identity spelled out, defaults included, first."""
    defaults = DEFAULTS[section]
    head = {k: item.get(k, defaults.get(k)) for k in POSITION[section] + IDENTITY[section]}
    head = {k: v for k, v in head.items() if v is not None and v != ""}
    return fmt({**head, **_without(item, tuple(head))})


def _slot_kind(section: str, slot: list[dict | None]) -> str:
    if any(item is None for item in slot):
        return "added" if slot[0] is None else "removed"
    if all(item == slot[0] for item in slot):
        return "same"
    pos = POSITION[section]
    if all(_without(item, pos) == _without(slot[0], pos) for item in slot):
        return "moved"
    return "changed"


def where(section: str, index: int, compiled: engine.CompiledTimeline | None) -> str:
    """Where item ``index`` of ``timeline.<section>`` fell in ``compiled``: "tick 96",
    "ticks 100-1499", "ticks 600, 610, ..." ("" when not known)."""
    if compiled is None:
        return ""
    source = f"timeline.{section}[{index}]"
    spans = [s for s in compiled.spans() if s.source == source and s.kind != "ramp"]
    if spans:
        start, end = spans[0].start, spans[0].end
        return f"tick {start}" if section == "phases" else f"ticks {start}-{end - 1}"
    ticks = [e.tick for e in compiled.from_source(source)]
    if not ticks:
        return ""
    shown = ", ".join(str(t) for t in ticks[:3]) + (", ..." if len(ticks) > 3 else "")
    return f"tick{'s' if len(ticks) > 1 else ''} {shown}"


def _timeline_rows(datas: list[dict], timelines: list) -> list[DiffRow]:
    rows = []
    for section in POSITION:
        lists = [d.get("timeline", {}).get(section, []) for d in datas]
        for slot in _align(section, lists):
            first = next(item for item in slot if item is not None)
            label = " ".join(v for v in _identity(section, first) if v)
            values = []
            for run, item in enumerate(slot):
                if item is None:
                    values.append(ABSENT)
                    continue
                index = next(k for k, it in enumerate(lists[run]) if it is item)
                fell = where(section, index, timelines[run])
                values.append(_shown(section, item) + (f" -> {fell}" if fell else ""))
            kind = _slot_kind(section, slot)
            rows.append(DiffRow(f"timeline.{section}[{label}]", tuple(values), kind))
    return rows


def spec_diff(
    specs: list[RunSpec], all_fields: bool = False, timelines: list | None = None
) -> list[DiffRow]:
    """Rows comparing ``specs`` (the first is the reference for added/removed); only the
    differing ones unless ``all_fields``. ``timelines``: each spec's compiled timeline (or
    None), to show where each event fell."""
    datas = [to_dict(spec) for spec in specs]
    timelines = timelines or [None] * len(specs)
    rows = _field_rows(datas) + _timeline_rows(datas, timelines) + _revision_rows(timelines)
    return rows if all_fields else [r for r in rows if r.kind != "same"]


def _revision_rows(timelines: list) -> list[DiffRow]:
    """One row per revision number: the tick each steered run's revision applied from (its
    compiled plan holds them: ``CompiledTimeline.revision_ticks``)."""
    ticks = [tl.revision_ticks() if tl is not None else [] for tl in timelines]
    rows = []
    for n in range(max((len(t) for t in ticks), default=0)):
        values = tuple(f"from tick {t[n]}" if n < len(t) else ABSENT for t in ticks)
        same = len(set(values)) == 1
        kind = "same" if same else ("added" if values[0] == ABSENT else "changed")
        rows.append(DiffRow(f"revision {n + 1}", values, kind))
    return rows
