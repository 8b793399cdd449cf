"""The timeline a spec will run, compiled against its data's real units, and written out.

Positions in tokens and epochs resolve against the data: tokens per tick is what the task's
batches really hold (a seq2seq or classification batch is not batch_size x context), and an
epoch is the train split's token count. ``plan_timeline`` builds the spec's first data once per
data section (the two numbers are cached, not the data) and compiles; the trainer compiles from
the task it builds with the same ``units_of``. So the editor, the plots, ``python -m engine
timeline`` and a running run all place an edge at the same tick.

``lenient=True`` compiles what it can of a timeline with bad items: each item the compiler
refuses is left out and its error kept in ``errors``, under its path in the written spec, so an
editor can draw every good item and mark the bad ones from the one compiled object.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from typing import TextIO

from engine.config import RunSpec, from_dict
from engine.data import Task, build_task
from engine.errors import ConfigError
from engine.positions import Units, units_for
from engine.safe_yaml import load_yaml
from engine.timeline import CompiledTimeline, compile_timeline

KINDS = ("phases", "lr", "batch", "layernorm", "marks", "quantize")  # compiled lists, as in paths
_ITEM = re.compile(r"^timeline\.(phases|lr|batch|layernorm|marks|quantize)\[(\d+)\]")
_CACHE_LIMIT = 64
STRENGTH_PREFIX = "ln_strength/"  # a run logs ln_strength/<site> at each tick it changes
_measured: dict[tuple, tuple[int, int]] = {}
_plans: dict[tuple, CompiledTimeline | ConfigError] = {}  # oldest first


def units_of(spec: RunSpec, task: Task, world_size: int = 1) -> Units:
    """The run's units once ``task`` (its first data) is built: the one rule for both."""
    per_tick = task.tokens_per_batch(spec.train.batch_size) * world_size
    return units_for(spec, task.tokens_in_split("train"), per_tick)


def data_units(spec: RunSpec, world_size: int = 1) -> Units:
    """``units_of`` without keeping the data: built once per data section and batch size.
    Raises the data's ConfigError (a missing file names ``data.path``)."""
    key = (repr(spec.data), repr(spec.model), spec.train.batch_size)
    if key not in _measured:
        task = build_task(spec.data, spec.model)
        units = units_of(spec, task)
        if len(_measured) >= _CACHE_LIMIT:
            _measured.clear()
        _measured[key] = (units.tokens_in_split, units.tokens_per_tick)
    in_split, per_batch = _measured[key]
    return units_for(spec, in_split, per_batch * world_size)


def plan_timeline(spec: RunSpec, world_size: int = 1, lenient: bool = False) -> CompiledTimeline:
    """The compiled timeline ``spec`` runs with on ``world_size`` ranks. Raises ConfigError;
    with ``lenient``, only for what no item explains (the data, ``train.steps``, ...).

    Compiled once per distinct spec: asking again for an equal spec (the Config form, the
    editor and the plots after one edit) returns the same object, or raises the same error.
    The object is shared: read it, never change it."""
    key = (repr(spec), world_size, lenient)
    found = _plans.get(key)
    if found is None:
        try:
            units = data_units(spec, world_size)
            if lenient:  # the strict compile's error, if known, is the first item to leave out
                strict = _plans.get((key[0], world_size, False))
                found = _compile_leniently(spec, units, strict)
            else:
                found = CompiledTimeline(spec, units)
        except ConfigError as exc:
            found = exc
        if len(_plans) >= _CACHE_LIMIT:
            _plans.pop(next(iter(_plans)))
        _plans[key] = found
    if isinstance(found, ConfigError):
        raise ConfigError(found.path, found.reason)
    return found


def plan_of_run(spec: RunSpec, meta: dict, revisions=()) -> CompiledTimeline | None:
    """The plan a recorded run followed: its spec compiled for the world it trained in
    (``meta``: the run store's metadata), spliced with each applied revision from its tick
    (``revisions``: ``RunRecord.revisions()``; one that no longer compiles ends the splicing).
    When its data is gone or no longer reads, compiled with the tokens per tick the run
    recorded; None when this engine cannot read its spec."""
    plan = _plan_of_spec(spec, meta)
    for rev in revisions:
        if plan is None or rev.state != "applied":
            continue
        try:  # validated when the run took it: read, not checked again
            revised = from_dict(RunSpec, load_yaml(rev.spec))
            plan = plan.spliced(_plan_of_spec(revised, meta), rev.tick)
        except (ConfigError, IndexError, AttributeError):
            break
    return plan


def _plan_of_spec(spec: RunSpec, meta: dict) -> CompiledTimeline | None:
    try:
        return plan_timeline(spec, int(meta.get("world_size", 1)))
    except ConfigError:
        try:
            return CompiledTimeline(spec, units_for(spec, None, meta.get("tokens_per_tick")))
        except ConfigError:
            return None


def check_plan(spec: RunSpec) -> None:
    """The timeline check of ``engine.specs.validate``: against the data when it can be built;
    when it cannot, against the spec alone (the data's own error comes when the run starts, so
    a spec whose file is missing can still be opened and fixed)."""
    try:
        data_units(spec)
    except ConfigError:
        compile_timeline(spec)
        return
    plan_timeline(spec)


def _compile_leniently(spec: RunSpec, units: Units, known=None) -> CompiledTimeline:
    """Leave out the item each error names until the rest compiles (``known``: the strict
    compile's outcome, so its error is not found a second time)."""
    timeline = spec.timeline
    kept = {k: list(range(len(getattr(timeline, k)))) for k in KINDS}
    errors: list[ConfigError] = []
    found = known if isinstance(known, ConfigError) else None
    while True:
        if found is None:
            lists = {k: [getattr(timeline, k)[i] for i in kept[k]] for k in KINDS}
            trimmed = dataclasses.replace(spec, timeline=dataclasses.replace(timeline, **lists))
            try:
                compiled = CompiledTimeline(trimmed, units, origins=kept)
            except ConfigError as exc:
                found = exc
            else:
                compiled.errors = errors
                return compiled
        m = _ITEM.match(found.path)
        if not m:
            raise found
        kind, index = m.group(1), int(m.group(2))
        written = f"timeline.{kind}[{kept[kind][index]}]"
        errors.append(ConfigError(written + found.path[m.end() :], found.reason))
        del kept[kind][index]
        found = None


def timeline_columns(compiled: CompiledTimeline) -> list[str]:
    """The CSV header: tick, phase, lr, lr_unscaled, batch_size (sequences the tick trains),
    tokens (the world's tokens seen once the tick has trained: the plots' tokens axis), then
    each norm's strength."""
    return ["tick", "phase", "lr", "lr_unscaled", "batch_size", "tokens"] + [
        f"ln.{site}.strength" for site in compiled.sites
    ]


def write_timeline_csv(compiled: CompiledTimeline, out: TextIO) -> None:
    """One row per tick (``python -m engine timeline SPEC --csv``, the workbench's
    ``--dump-timeline``); floats as Python's shortest round-trip repr."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(timeline_columns(compiled))
    lr, raw = compiled.lr_curve(), compiled.lr_curve(scaled=False)
    batch = compiled.batch_curve()
    strengths = [compiled.strength_curve(site) for site in compiled.sites]
    names = [p.name for p in compiled.phases]
    for t in range(compiled.steps):
        phase = names[compiled.phase_at(t).index]
        row = [t, phase, repr(float(lr[t])), repr(float(raw[t])), int(batch[t])]
        row.append(compiled.tokens_at(t + 1))
        writer.writerow(row + [repr(float(s[t])) for s in strengths])
