"""The tick timeline compiler: phases, LR, norm events and marks -> a pure function of the tick.

A tick is one optimizer step, numbered 0 .. train.steps - 1. The compiled timeline answers, for
any tick, the phase, the LR, each norm's strength / frozen flag / eps / backend, and the edges
(events that fire at exactly that tick). The editor's preview, the running engine and a resumed
run all read these same values.

Norm events (``timeline.layernorm``), per selected norm, in time order:

- ``set``: strength from this tick on. ``ramp``: from the strength in force just before it to
  ``to`` over ``over`` ticks, with ``u = (t - at + 1) / over`` (the LR convention: the first tick
  is one step in, the last reaches ``to``), linear or cosine.
- ``freeze`` / ``unfreeze``: stop / restart training the norm's gain and bias.
- ``eps``, ``backend``: switch the epsilon or the kernel (triton <-> torch).
- ``sigma``: sets σ̄ to the event's ``sigma``, which counts as a calibration (none follows
  automatically): what a run without calibration, or with σ̄ from elsewhere, computes.
- ``calibrate``: at that tick's forward pass the norm sets ``sigma_bar`` (σ̄) to the mean over the
  batch's tokens of σ(x) = sqrt(var(x) + eps) of its input (RMSNorm: sqrt(mean(x²) + eps)).
  σ̄ is what a norm with strength s < 1 divides by in place of the per-token σ:
  ``y = (x - s·μ) / (s·σ + (1-s)·σ̄) · w + b``. σ̄ starts at 1.0; each norm is calibrated
  automatically at the first tick its strength is below 1, unless a ``calibrate`` event for it
  came at or before that tick, so lowering the strength from 1 causes no jump.
- ``layers``: ``all`` (every block, then the final norms), ``final``, or block indices; each
  block's sites (attn, cross, mlp; enc<i> sites too in an encoder-decoder) move together,
  unless ``sites`` picks one of them (``mlp``: the norm before each MLP only, and no final
  norm: those are no block's, so only ``sites: all`` reaches them).
  ``stagger: K`` fires the event for the i-th listed layer at ``at + i·K``.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import re
from dataclasses import dataclass, field

import numpy as np

from engine.batch_schedule import batch_curve, batch_segments, lr_factor, with_batch
from engine.config import DataConfig, Mark, ModelConfig, NormEvent, PhaseSpec, RunSpec, show
from engine.errors import ConfigError
from engine.lr_schedule import lr_curve, resolve_segments
from engine.positions import Units, resolve_position, units_for

__all__ = [
    "CompiledTimeline",
    "Edge",
    "Phase",
    "Span",
    "TickState",
    "compile_timeline",
    "layer_groups",
    "matches",
    "norm_site_names",
]


def norm_site_names(model: ModelConfig) -> list[str]:
    """Names of the model's norms in execution order, without building it (see
    ``Transformer.norm_sites``): ``"<i>.attn"``, ``"<i>.cross"``, ``"<i>.mlp"``, ``"enc<i>.*"``,
    ``"enc_final"``, ``"final"`` (no final norms with post-LN). Empty for ``norm: none``."""
    if model.norm == "none":
        return []
    encdec = model.arch == "encoder_decoder"
    pre = model.norm_position == "pre"
    names = []
    if encdec:
        for i in range(model.n_layer):
            names += [f"enc{i}.attn", f"enc{i}.mlp"]
        names += ["enc_final"] if pre else []
    for i in range(model.n_layer):
        names += [f"{i}.attn"] + ([f"{i}.cross"] if encdec else []) + [f"{i}.mlp"]
    return names + (["final"] if pre else [])


def layer_groups(model: ModelConfig) -> list[tuple[int | str, list[str]]]:
    """The norm groups ``layers: all`` addresses, in its order (blocks, then ``final``), each
    with its sites; empty for ``norm: none``."""
    groups: dict[int | str, list[str]] = {}
    for site in norm_site_names(model):
        groups.setdefault(_layer_of(site), []).append(site)
    return list(groups.items())  # the sites' order: blocks 0, 1, ..., then final


def _layer_of(site: str) -> int | str:
    if site.endswith("final"):
        return "final"
    return int(site.split(".")[0].removeprefix("enc"))


_RANGE = re.compile(r"(.*?\b)(\d+)-(\d+)(\b.*)")
_LAYERS = re.compile(r"\b(\d+)-(\d+)\b")
LONGEST_PATTERN = 200  # characters in a freeze pattern


def matches(name: str, pattern: str) -> bool:
    """A parameter name matches a freeze pattern when it is the pattern, lies under it as a
    module prefix (``blocks.0`` matches ``blocks.0.attn.q.weight``), or matches it as a glob.
    A layer range ``blocks.0-2`` (inclusive) stands for ``blocks.0``, ``blocks.1``, ``blocks.2``.
    """
    ranged = _RANGE.fullmatch(pattern)
    if ranged:
        head, lo, hi, tail = ranged.groups()
        # Only a number written in the name can match (a glob may match part of one, so every
        # run of digits in it counts): try those, never iterate the range itself.
        written = {
            int(run[a:b])
            for run in re.findall(r"\d+", name)
            for a in range(len(run))
            for b in range(a + 1, len(run) + 1)
        }
        lo, hi = int(lo), int(hi)
        return any(matches(name, f"{head}{i}{tail}") for i in sorted(written) if lo <= i <= hi)
    return name == pattern or name.startswith(pattern + ".") or fnmatch.fnmatchcase(name, pattern)


def check_pattern(pattern: str, path: str, model: ModelConfig) -> None:
    """A freeze pattern's layer ranges (``blocks.0-2``) must lie inside the model."""
    if len(pattern) > LONGEST_PATTERN:
        raise ConfigError(path, f"has {len(pattern)} characters; at most {LONGEST_PATTERN}")
    shown = pattern if pattern.isprintable() else show(pattern)
    for m in _LAYERS.finditer(pattern):
        lo, hi = int(m[1]), int(m[2])
        if hi >= model.n_layer:
            raise ConfigError(
                path,
                f"{shown} is past model.n_layer={model.n_layer} "
                f"(blocks are numbered 0 to {model.n_layer - 1})",
            )
        if lo > hi:
            raise ConfigError(path, f"{shown} is an empty range ({lo} > {hi})")


@dataclass(frozen=True)
class Phase:
    """A phase with its span resolved: ticks ``[start, end)``; ``frozen`` holds the freeze
    patterns in force (inherited from earlier phases, plus ``freeze``, minus ``unfreeze``)."""

    index: int
    name: str
    start: int
    end: int
    data: DataConfig
    frozen: tuple[str, ...]
    lr_scale: float
    weight_decay: float
    init_from: str | None
    lr_batch_scaling: str = "none"  # none | linear | sqrt (engine.batch_schedule.lr_factor)


@dataclass(frozen=True)
class Edge:
    """Something that happens at exactly one tick (drawn on plots, recorded in the run store).

    ``kind`` is ``phase``, ``norm`` (``detail["action"]``, ``detail["sites"]``) or ``mark``.
    Phase and norm edges apply before the tick's step; marks after it. ``source`` is the spec
    item it came from (``timeline.layernorm[2]``; an automatic calibration names the event that
    first lowered the strength).
    """

    tick: int
    kind: str
    label: str
    detail: dict = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class Span:
    """A stretch of ticks ``[start, end)`` one spec item covers: a phase, an LR or batch segment
    (``detail``: shape, milestones) or a norm ramp (one per layer group it addresses)."""

    kind: str  # "phase" | "lr" | "batch" | "ramp"
    start: int
    end: int
    label: str
    source: str  # "timeline.lr[1]"; "" for the implicit single phase
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TickState:
    """Everything the timeline says about one tick."""

    tick: int
    phase: str
    phase_index: int
    lr: float
    strength: dict[str, float]
    frozen: dict[str, bool]
    eps: dict[str, float]
    backend: dict[str, str]
    edges: list[Edge]


def _resolve(pos, path: str, units: Units, steps: int) -> int | None:
    tick = resolve_position(pos, path, units)
    if tick is not None and tick > steps - 1:
        raise ConfigError(path, f"tick {tick} is past the end of the run (train.steps={steps})")
    return tick


def _resolve_phases(spec: RunSpec, units: Units) -> list[Phase]:
    specs = spec.timeline.phases or [PhaseSpec(name="main")]
    steps = units.steps
    starts = []
    for i, p in enumerate(specs):
        for key in ("freeze", "unfreeze"):
            for j, pattern in enumerate(getattr(p, key)):
                check_pattern(pattern, f"timeline.phases[{i}].{key}[{j}]", spec.model)
        path = f"timeline.phases[{i}].start"
        start = _resolve(p.start, path, units, steps)
        if i == 0 and start not in (0, None):
            raise ConfigError(path, f"the first phase starts at 0, got {start}")
        if start is not None and starts and starts[-1] is not None and start <= starts[-1]:
            raise ConfigError(path, f"tick {start} is not after the previous phase ({starts[-1]})")
        starts.append(start)
    phases = []
    frozen: set[str] = set()
    data, decay = spec.data, spec.train.weight_decay
    for i, p in enumerate(specs):
        frozen = (frozen | set(p.freeze)) - set(p.unfreeze)
        data = p.data or data
        decay = p.weight_decay if p.weight_decay is not None else decay
        start = starts[i] if starts[i] is not None else 0
        end = starts[i + 1] if i + 1 < len(specs) and starts[i + 1] is not None else steps
        init_from = p.init_from or (spec.train.init_from if i == 0 else None)
        phases.append(
            Phase(
                i,
                p.name,
                start,
                end,
                data,
                tuple(sorted(frozen)),
                p.lr_scale,
                decay,
                init_from,
                p.lr_batch_scaling,
            )
        )
    return phases


def _check_event(ev: NormEvent, path: str, model: ModelConfig) -> list[int | str]:
    """The layer groups an event addresses, in stagger order; ConfigError if it cannot apply."""
    required = {
        "set": "strength",
        "ramp": "to",
        "eps": "eps",
        "backend": "backend",
        "sigma": "sigma",
    }
    need = required.get(ev.action)
    if need and getattr(ev, need) is None:
        raise ConfigError(f"{path}.{need}", f"the {ev.action} event needs {need}")
    if ev.action == "ramp" and ev.over is None:
        raise ConfigError(f"{path}.over", "the ramp event needs over (ticks)")
    if model.norm == "none":
        raise ConfigError(path, "model.norm is none: there are no norms to act on")
    has_final = model.norm_position == "pre"
    if ev.layers == "all":
        return list(range(model.n_layer)) + (["final"] if has_final else [])
    if ev.layers == "final":
        if not has_final:
            raise ConfigError(f"{path}.layers", "post-LN models have no final norm")
        return ["final"]
    for k, layer in enumerate(ev.layers):
        if not 0 <= layer < model.n_layer:
            raise ConfigError(
                f"{path}.layers[{k}]",
                f"layer {layer} does not exist (model.n_layer={model.n_layer})",
            )
    return list(ev.layers)


def _picks(ev: NormEvent, site: str) -> bool:
    """``ev.sites`` selects ``site`` ("3.mlp", "enc0.attn", "final", ...)."""
    return ev.sites == "all" or site.endswith("." + ev.sites)


class _NormTracks:
    """Per-site arrays over ticks, filled by applying events in time order. An array is made
    only for a site an event touches (memory grows with the events, not with steps x sites)."""

    def __init__(self, sites: list[str], steps: int, model: ModelConfig):
        self.steps = steps
        self.defaults = {
            "strength": 1.0,
            "frozen": False,
            "eps": model.norm_eps,
            "backend": model.norm_backend,
        }
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        self.calibrate: dict[str, list[int]] = {s: [] for s in sites}
        self.sigma: dict[str, list[tuple[int, float]]] = {s: [] for s in sites}  # set σ̄
        self._last_tick = {s: -1 for s in sites}

    def array(self, kind: str, site: str) -> np.ndarray:
        """The array of ``kind`` for ``site``; a default one, not kept, when no event made it."""
        arr = self._arrays.get((kind, site))
        if arr is None:
            default = self.defaults[kind]
            dtype = {bool: bool, float: np.float64, str: object}[type(default)]
            arr = np.full(self.steps, default, dtype=dtype)
        return arr

    def track(self, kind: str, site: str) -> np.ndarray:
        """The writable array of ``kind`` for ``site`` (made from the default on first use)."""
        return self._arrays.setdefault((kind, site), self.array(kind, site))

    def value(self, kind: str, site: str, tick: int):
        arr = self._arrays.get((kind, site))
        if arr is None:
            return self.defaults[kind]
        value = arr[tick]
        return value.item() if isinstance(value, np.generic) else value

    def apply(self, site: str, tick: int, ev: NormEvent) -> None:
        s = self.track("strength", site)
        if ev.action == "set":
            s[tick:] = ev.strength
        elif ev.action == "ramp":
            # from the value in force just before the ramp (or set by an earlier same-tick event)
            before = s[tick] if self._last_tick[site] == tick else (s[tick - 1] if tick else 1.0)
            n = len(s) - tick
            u = np.minimum((np.arange(n) + 1) / ev.over, 1.0)
            if ev.shape == "linear":
                s[tick:] = before + (ev.to - before) * u
            else:
                s[tick:] = ev.to + (before - ev.to) * (1 + np.cos(np.pi * u)) / 2
        elif ev.action in ("freeze", "unfreeze"):
            self.track("frozen", site)[tick:] = ev.action == "freeze"
        elif ev.action == "eps":
            self.track("eps", site)[tick:] = ev.eps
        elif ev.action == "backend":
            self.track("backend", site)[tick:] = ev.backend
        elif ev.action == "calibrate":
            self.calibrate[site].append(tick)
        elif ev.action == "sigma":
            self.sigma[site].append((tick, ev.sigma))
        self._last_tick[site] = tick

    def auto_calibrate(self) -> list[tuple[int, str]]:
        """Calibrate each norm at the first tick its strength drops below 1 (unless done)."""
        added = []
        for (kind, site), s in self._arrays.items():
            if kind != "strength":
                continue
            below = np.flatnonzero(s < 1.0)
            done = self.calibrate[site] + [t for t, _ in self.sigma[site]]
            if len(below) and not any(t <= below[0] for t in done):
                self.calibrate[site].append(int(below[0]))
                added.append((int(below[0]), site))
        return added


class CompiledTimeline:
    """The timeline resolved against a run. Pure: every answer depends only on the tick."""

    def __init__(self, spec: RunSpec, units: Units, origins: dict[str, list[int]] | None = None):
        """``origins``: for a timeline compiled with some items left out (``lenient``), the
        index in the written spec of each item kept, per list; sources name those."""
        self.units = units
        self.steps = steps = units.steps
        self._past: CompiledTimeline | None = None  # before ``_split``: see ``spliced``
        self._split = 0
        self.sites = norm_site_names(spec.model)
        self.errors: list[ConfigError] = []  # items left out by a lenient compile
        self._origins = origins or {}
        self._has_phases = bool(spec.timeline.phases)
        # the batch lane first: positions in tokens and epochs count the tokens it trains
        self._base_batch = spec.train.batch_size
        self._batch_segments = batch_segments(spec, units)
        self._batch = batch_curve(spec, units, self._batch_segments)
        self.units = units = with_batch(units, self._batch, self._base_batch)
        self.phases = _resolve_phases(spec, units)
        self._phase_of = np.zeros(steps, dtype=np.int64)
        for p in self.phases:
            self._phase_of[p.start : p.end] = p.index
        scale = np.array([p.lr_scale for p in self.phases])
        rules = np.array([p.lr_batch_scaling for p in self.phases])[self._phase_of]
        self._segments = resolve_segments(spec, units)
        self._lr_unscaled = lr_curve(spec, units, self._segments)
        factor = lr_factor(rules, self._batch, self._base_batch)
        self._lr = self._lr_unscaled * scale[self._phase_of] * factor
        # Every check before the building below (which can take a while for a long run with
        # many norms or frequent marks), so that a bad spec fails at once.
        fired = self._norm_events(spec)
        marks = self._mark_ticks(spec)
        self._edges: dict[int, list[Edge]] = {}
        for p in self.phases[1:]:
            detail = {"phase": p.name, "index": p.index}
            self._add(Edge(p.start, "phase", p.name, detail, self._source("phases", p.index)))
        self._norms = self._compile_norms(spec, fired)
        self._marks = self._compile_marks(marks)
        self._compile_quantize(spec)

    def _add(self, edge: Edge) -> None:
        self._edges.setdefault(edge.tick, []).append(edge)

    def _source(self, kind: str, index: int) -> str:
        """The written spec's path of item ``index`` of this compile's list ``kind``."""
        if kind == "phases" and not self._has_phases:
            return ""
        kept = self._origins.get(kind)
        return f"timeline.{kind}[{kept[index] if kept is not None else index}]"

    def _norm_events(self, spec: RunSpec) -> list[tuple]:
        """Check the norm events; ``(tick, index, event, layer, sites)`` for each firing."""
        fired = []
        for i, ev in enumerate(spec.timeline.layernorm):
            path = f"timeline.layernorm[{i}]"
            groups = _check_event(ev, path, spec.model)
            at = _resolve(ev.at, f"{path}.at", self.units, self.steps)
            if at is None:
                continue
            for j, layer in enumerate(groups):
                tick = at + j * ev.stagger
                if tick >= self.steps:
                    raise ConfigError(
                        f"{path}.stagger",
                        f"layer {layer} would fire at tick {tick}, past the end of the run "
                        f"(train.steps={self.steps})",
                    )
                sites = [s for s in self.sites if _layer_of(s) == layer and _picks(ev, s)]
                if sites:
                    fired.append((tick, i, ev, layer, sites))
            if ev.sites != "all" and not any(f[1] == i for f in fired):
                raise ConfigError(f"{path}.sites", f"the selected layers have no {ev.sites} norm")
        self._fired = fired
        return fired

    def _compile_norms(self, spec: RunSpec, fired: list[tuple]) -> _NormTracks:
        tracks = _NormTracks(self.sites, self.steps, spec.model)
        for tick, i, ev, layer, sites in sorted(fired, key=lambda f: (f[0], f[1])):
            for site in sites:
                tracks.apply(site, tick, ev)
            detail = {"action": ev.action, "layer": layer, "sites": sites}
            detail.update(
                {
                    k: getattr(ev, k)
                    for k in ("strength", "to", "over", "eps", "backend", "sigma")
                    if getattr(ev, k) is not None
                }
            )
            source = self._source("layernorm", i)
            self._add(Edge(tick, "norm", f"LN {ev.action} {layer}", detail, source))
        auto: dict[int, list[str]] = {}
        for tick, site in tracks.auto_calibrate():
            auto.setdefault(tick, []).append(site)
        for tick, sites in sorted(auto.items()):
            detail = {"action": "calibrate", "sites": sites, "auto": True}
            # the latest event at or before the tick that touched one of these norms
            by = [f for f in fired if f[0] <= tick and set(f[4]) & set(sites)]
            source = self._source("layernorm", max(by, key=lambda f: (f[0], f[1]))[1]) if by else ""
            self._add(Edge(tick, "norm", "LN calibrate", detail, source))
        return tracks

    def _mark_ticks(self, spec: RunSpec) -> list[tuple[Mark, range | list[int]]]:
        """Check the marks; each with the ticks it fires at."""
        out = []
        for i, m in enumerate(spec.timeline.marks):
            path = f"timeline.marks[{i}]"
            if (m.at is None) == (m.every is None):
                raise ConfigError(path, "a mark needs exactly one of at or every")
            if m.every is not None:
                ticks = range(m.every - 1, self.steps, m.every)
            else:
                tick = _resolve(m.at, f"{path}.at", self.units, self.steps)
                ticks = [] if tick is None else [tick]
            out.append((m, ticks))
        return out

    def _compile_marks(self, mark_ticks: list[tuple[Mark, range | list[int]]]):
        marks: dict[int, list[Edge]] = {}
        for i, (m, ticks) in enumerate(mark_ticks):
            source = self._source("marks", i)
            for tick in ticks:
                detail = {"action": m.action, "text": m.text}
                edge = Edge(tick, "mark", m.text or m.action, detail, source)
                marks.setdefault(tick, []).append(edge)
                self._add(edge)
        return marks

    def _compile_quantize(self, spec: RunSpec) -> None:
        """Check ``timeline.quantize``; an edge (kind ``quantize``) at its tick. QAT applies
        before that tick's step and stays on (``engine.qat``), so a run has at most one."""
        for i, q in enumerate(spec.timeline.quantize):
            path = f"timeline.quantize[{i}]"
            if i:
                raise ConfigError(
                    path,
                    "QAT is already on from timeline.quantize[0]: once on, it stays on to the "
                    "end, so a run has one quantize event",
                )
            if spec.train.lora.rank:
                raise ConfigError(
                    f"{path}.mode",
                    "QAT with LoRA adapters (train.lora.rank > 0) is not supported: the "
                    "adapters' update is not quantized",
                )
            if spec.train.compile:
                raise ConfigError(
                    f"{path}.mode",
                    "QAT with train.compile is not supported: the compiled graph would not see "
                    "the fake-quantized weights",
                )
            at = _resolve(q.at, f"{path}.at", self.units, self.steps)
            if at is not None:
                detail = {"mode": q.mode, "bits": 8}
                self._add(Edge(at, "quantize", "QAT int8", detail, self._source("quantize", i)))

    # --- questions about ticks ---
    def _check(self, tick: int) -> None:
        if not 0 <= tick < self.steps:
            raise IndexError(f"tick {tick} outside 0..{self.steps - 1}")

    def lr_at(self, tick: int) -> float:
        """Learning rate of the optimizer step numbered ``tick``, phase lr_scale applied."""
        self._check(tick)
        return float(self._lr[tick])

    def batch_at(self, tick: int) -> int:
        """Sequences the step numbered ``tick`` trains on (per rank: ``timeline.batch``'s value,
        or ``train.batch_size`` outside its segments)."""
        self._check(tick)
        return int(self._batch[tick])

    def batch_curve(self) -> np.ndarray:
        """Sequences per tick for every tick (int64, length ``steps``; a copy)."""
        return self._batch.copy()

    def tokens_at(self, ticks):
        """Tokens seen before ``ticks`` train (the whole world's; ``tokens_at(t + 1)``: once
        tick t has trained, the plots' tokens axis). An int for an int; for an array, float64,
        fractional ticks interpolated, ticks past the run at the last tick's rate."""
        if isinstance(ticks, (int, np.integer)):
            return self.units.tokens_before(int(ticks))
        return self.units.tokens_at(ticks)

    def tokens_of_tick(self, tick: int) -> int:
        """Tokens the step numbered ``tick`` trains on, the whole world's."""
        return self.units.tokens_before(tick + 1) - self.units.tokens_before(tick)

    def lr_curve(self, scaled: bool = True) -> np.ndarray:
        """LR for every tick (float64, length ``steps``; a copy, for plotting). ``scaled=False``:
        before any phase's lr_scale, where the segments' own values lie."""
        return (self._lr if scaled else self._lr_unscaled).copy()

    def spans(self, kind: str | None = None) -> list[Span]:
        """Phases, LR segments and norm ramps as tick spans, each with its spec item."""
        return [s for s in self._all_spans if kind is None or s.kind == kind]

    @functools.cached_property
    def _all_spans(self) -> list[Span]:  # built once: the compiled timeline never changes
        out = [
            Span("phase", p.start, p.end, p.name, self._source("phases", p.index))
            for p in self.phases
        ]
        for kind, segments in (("lr", self._segments), ("batch", self._batch_segments)):
            for seg in segments:
                detail = {"shape": seg.spec.shape, "milestones": list(seg.milestones)}
                source = self._source(kind, seg.index)
                out.append(Span(kind, seg.start, seg.end, seg.spec.shape, source, detail))
        for tick, i, ev, layer, sites in self._fired:
            if ev.action == "ramp":
                end = min(tick + ev.over, self.steps)
                detail = {"layer": layer, "sites": sites, "to": ev.to, "shape": ev.shape}
                label = f"LN ramp {layer}"
                out.append(Span("ramp", tick, end, label, self._source("layernorm", i), detail))
        return out

    def resolve(self, position, path: str = "position") -> int | None:
        """Tick of a written position (``"2ep"``, ``"50Ktok"``) in this run's units; None for one
        that does not parse or lies past the end."""
        try:
            tick = resolve_position(position, path, self.units)
        except ConfigError:
            return None
        return tick if tick is not None and tick < self.steps else None

    def from_source(self, source: str) -> list[Edge]:
        """The edges spec item ``source`` (``timeline.marks[0]``) fired, in tick order."""
        return list(self._by_source.get(source, ()))

    @functools.cached_property
    def _by_source(self) -> dict[str, list[Edge]]:  # the editor asks once per item per redraw
        index: dict[str, list[Edge]] = {}
        for edge in self.edges():
            if not edge.detail.get("auto"):
                index.setdefault(edge.source, []).append(edge)
        return index

    def strength_changes(self, tick: int) -> dict[str, float]:
        """Norm strengths that differ at ``tick`` from the tick before (1.0 before tick 0):
        what a run logs, so that its record holds every strength it trained with."""
        self._check(tick)
        out = {}
        for (kind, site), arr in self._norms._arrays.items():
            before = arr[tick - 1] if tick else 1.0
            if kind == "strength" and arr[tick] != before:
                out[site] = float(arr[tick])
        return out

    def phase_at(self, tick: int) -> Phase:
        self._check(tick)
        if tick < self._split:  # before a revision: the phase as it was (its weight decay)
            return self._past.phase_at(tick)
        return self.phases[int(self._phase_of[tick])]

    def revision_ticks(self) -> list[int]:
        """The ticks revisions apply from, oldest revision first (see ``spliced``)."""
        out, tl = [], self
        while tl._past is not None:
            out.append(tl._split)
            tl = tl._past
        return out[::-1]

    def revised_at(self, tick: int) -> bool:
        """Whether a revision applies from ``tick`` (checked at every tick: no list built)."""
        tl = self
        while tl._past is not None:
            if tl._split == tick:
                return True
            tl = tl._past
        return False

    def strength_curve(self, site: str) -> np.ndarray:
        """Strength of norm ``site`` at every tick (float64, a copy)."""
        arr = self._norms._arrays.get(("strength", site))
        return np.ones(self.steps) if arr is None else arr.copy()

    def edges_at(self, tick: int) -> list[Edge]:
        return list(self._edges.get(tick, []))

    def edges(self) -> list[Edge]:
        """Every edge of the run, in tick order."""
        return [e for t in sorted(self._edges) for e in self._edges[t]]

    def marks_at(self, tick: int) -> list[Edge]:
        """Marks to carry out after the step of ``tick`` (checkpoint, eval, note)."""
        return list(self._marks.get(tick, []))

    def calibrate_at(self, tick: int) -> list[str]:
        """Norm sites that set σ̄ from this tick's forward pass."""
        return [s for s, ticks in self._norms.calibrate.items() if tick in ticks]

    def sigma_at(self, tick: int) -> dict[str, float]:
        """``{site: σ̄}`` for the norms a ``sigma`` event sets before this tick's forward pass."""
        return {s: v for s, pairs in self._norms.sigma.items() for t, v in pairs if t == tick}

    def norm_state(self, tick: int) -> dict[str, tuple[float, bool, float, str]]:
        """``{site: (strength, frozen, eps, backend)}`` in force during ``tick``."""
        self._check(tick)
        v = self._norms.value
        return {
            s: (
                float(v("strength", s, tick)),
                bool(v("frozen", s, tick)),
                float(v("eps", s, tick)),
                str(v("backend", s, tick)),
            )
            for s in self.sites
        }

    def at(self, tick: int) -> TickState:
        """Everything in force during ``tick``, and the edges that fire at it."""
        phase = self.phase_at(tick)
        state = self.norm_state(tick)
        return TickState(
            tick=tick,
            phase=phase.name,
            phase_index=phase.index,
            lr=self.lr_at(tick),
            strength={s: v[0] for s, v in state.items()},
            frozen={s: v[1] for s, v in state.items()},
            eps={s: v[2] for s, v in state.items()},
            backend={s: v[3] for s, v in state.items()},
            edges=self.edges_at(tick),
        )

    def spliced(self, new: CompiledTimeline, at: int) -> CompiledTimeline:
        """This timeline before tick ``at`` and ``new`` from ``at`` on: a steered run's plan
        after a revision (``engine.revisions``). ``new`` has the same model and units; its
        items before ``at`` never apply. A norm whose strength first drops below 1 from ``at``
        on, uncalibrated so far, is calibrated there, as a compile would."""
        if not 0 <= at <= min(self.steps, new.steps - 1):
            raise IndexError(f"splice tick {at} outside 0..{min(self.steps, new.steps - 1)}")
        out = copy.copy(new)
        for cached in ("_all_spans", "_by_source"):
            out.__dict__.pop(cached, None)
        out._past, out._split = self, at
        out._phase_of = np.concatenate([self._phase_of[:at], new._phase_of[at:]])
        out._lr = np.concatenate([self._lr[:at], new._lr[at:]])
        out._lr_unscaled = np.concatenate([self._lr_unscaled[:at], new._lr_unscaled[at:]])
        out._batch = np.concatenate([self._batch[:at], new._batch[at:]])
        out.units = with_batch(new.units, out._batch, new._base_batch)
        out._edges = {t: e for t, e in self._edges.items() if t < at}
        out._edges.update({t: list(e) for t, e in new._edges.items() if t >= at})
        out._marks = {t: e for t, e in self._marks.items() if t < at}
        out._marks.update({t: e for t, e in new._marks.items() if t >= at})
        out._norms = tracks = copy.copy(new._norms)
        tracks._arrays = {}
        for key in {*self._norms._arrays, *new._norms._arrays}:
            past, future = self._norms.array(*key), new._norms.array(*key)
            tracks._arrays[key] = np.concatenate([past[:at], future[at:]])
        tracks.calibrate = {
            s: [t for t in self._norms.calibrate[s] if t < at]
            + [t for t in new._norms.calibrate[s] if t >= at]
            for s in self.sites
        }
        tracks.sigma = {
            s: [p for p in self._norms.sigma[s] if p[0] < at]
            + [p for p in new._norms.sigma[s] if p[0] >= at]
            for s in self.sites
        }
        auto: dict[int, list[str]] = {}
        for tick, site in tracks.auto_calibrate():
            auto.setdefault(tick, []).append(site)
        for tick, sites in sorted(auto.items()):
            detail = {"action": "calibrate", "sites": sites, "auto": True}
            out._add(Edge(tick, "norm", "LN calibrate", detail, ""))
        spans = [dataclasses.replace(s, end=min(s.end, at)) for s in self.spans() if s.start < at]
        spans += [dataclasses.replace(s, start=max(s.start, at)) for s in new.spans() if s.end > at]
        out.__dict__["_all_spans"] = spans
        return out


def compile_timeline(
    spec: RunSpec, tokens_in_split: int | None = None, tokens_per_tick: int | None = None
) -> CompiledTimeline:
    """Compile ``spec.timeline`` for ``spec.train.steps`` ticks. Raises ConfigError.

    ``tokens_in_split`` (train tokens per epoch of the run's data) and ``tokens_per_tick`` come
    from the data (``Task``) and resolve "ep" and "tok" positions; without them "tok" assumes
    batch_size x context tokens per tick and "ep" positions are left unchecked.
    """
    return CompiledTimeline(spec, units_for(spec, tokens_in_split, tokens_per_tick))
