"""Studies: one file, several runs, compared.

A study is a preset with a ``base`` run spec and ``variants``, each a name and the fields it
overrides (dotted paths, the timeline included)::

    study: pre-vs-post-ln
    description: ...
    parallel: 1                       # how many variants train at once
    base: {model: {...}, train: {...}, timeline: {...}}
    variants:
      - {name: pre,  set: {model.norm_position: pre}}
      - {name: post, set: {model.norm_position: post, timeline.lr: []}}

Running it trains every variant into one study folder (``<runs>/<study>-<time>/<variant>-...``)
and prints their comparison.

A variant can start from another variant's weights: ``train.init_from: variant:pretrain`` (or a
phase's ``init_from``) names an earlier variant, which then finishes before this one starts, and
is replaced by that run's folder (the spec stored with the run holds the real path).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.config import RunSpec, to_dict
from engine.errors import ConfigError
from engine.handle import RunHandle, Sink
from engine.runs import RunRecord, RunSummary, new_run_dir, open_run
from engine.safe_yaml import read_yaml
from engine.specs import parse_spec, replace
from engine.trainer import start_run

_KEYS = {"study", "description", "parallel", "base", "variants"}


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    parallel: int
    base: RunSpec
    variants: list[tuple[str, RunSpec]]


def is_study(data: Any) -> bool:
    return isinstance(data, dict) and "variants" in data


def parse_study(data: dict) -> Study:
    """Plain YAML data -> Study; every variant is validated as a full run spec."""
    for key in data:
        if key not in _KEYS:
            raise ConfigError(
                str(key), "unknown key (a study has study, description, parallel, base, variants)"
            )
    name = data.get("study")
    if not isinstance(name, str) or not name:
        raise ConfigError("study", "a study needs a name")
    parallel = data.get("parallel", 1)
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ConfigError("parallel", f"must be an integer >= 1, got {parallel!r}")
    try:
        base = parse_spec(data.get("base") or {})
    except ConfigError as exc:
        raise ConfigError(f"base.{exc.path}", exc.reason) from None
    variants = data.get("variants")
    if not isinstance(variants, list) or not variants:
        raise ConfigError("variants", "expected a non-empty list of {name, set}")
    out, seen = [], set()
    for i, v in enumerate(variants):
        path = f"variants[{i}]"
        if (
            not isinstance(v, dict)
            or set(v) - {"name", "set"}
            or not isinstance(v.get("name"), str)
        ):
            raise ConfigError(path, "expected {name: ..., set: {dotted.field: value, ...}}")
        if v["name"] in seen:
            raise ConfigError(f"{path}.name", f"{v['name']!r} is used twice")
        seen.add(v["name"])
        overrides = v.get("set") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{path}.set", "expected a mapping of dotted fields to values")
        overrides = {**overrides, "name": f"{name}-{v['name']}"}
        try:
            spec = replace(base, overrides)
        except (KeyError, TypeError):
            raise ConfigError(f"{path}.set", "a dotted field does not exist") from None
        except ConfigError as exc:
            raise ConfigError(f"{path}.set.{exc.path}", exc.reason) from None
        for ref in variant_refs(spec):
            if ref not in seen - {v["name"]}:
                raise ConfigError(
                    f"{path}.set",
                    f"init_from {REF}{ref} names no earlier variant (a variant can start from "
                    "the weights of one listed before it)",
                )
        out.append((v["name"], spec))
    return Study(name, str(data.get("description", "")), parallel, base, out)


REF = "variant:"  # init_from: variant:NAME -> the folder of this study's run of variant NAME


def variant_refs(spec: RunSpec) -> set[str]:
    """Names of the variants whose weights ``spec`` starts from (``init_from: variant:NAME``)."""
    sources = [spec.train.init_from] + [p.init_from for p in spec.timeline.phases]
    return {v.removeprefix(REF) for v in sources if v and v.startswith(REF)}


def resolve_refs(spec: RunSpec, folders: dict[str, Path]) -> RunSpec:
    """``spec`` with every ``variant:NAME`` replaced by the folder of that variant's run."""

    def real(source: str | None) -> str | None:
        if source and source.startswith(REF):
            return str(folders[source.removeprefix(REF)])
        return source

    phases = [dataclasses.replace(p, init_from=real(p.init_from)) for p in spec.timeline.phases]
    return dataclasses.replace(
        spec,
        train=dataclasses.replace(spec.train, init_from=real(spec.train.init_from)),
        timeline=dataclasses.replace(spec.timeline, phases=phases),
    )


def load_preset(path: str | Path) -> RunSpec | Study:
    """A preset file: a run spec, or a study (a file with ``variants``). ConfigError if bad."""
    data = read_yaml(path)
    return parse_study(data) if is_study(data) else parse_spec(data)


def dump_study(study: Study) -> str:
    """The study as YAML, with every variant's full resolved spec (what ran)."""
    data = {
        "study": study.name,
        "description": study.description,
        "parallel": study.parallel,
        "variants": {name: to_dict(spec) for name, spec in study.variants},
    }
    return yaml.safe_dump(data, sort_keys=False, width=100)


NOT_STARTED = "not started"
POLL_SECONDS = 0.2  # how often a study looks at its runs
JOIN_SECONDS = 60.0


@dataclass
class StudyResult:
    """How a study ended: its folder and what became of each variant."""

    name: str
    folder: Path
    runs: dict[str, Path] = field(default_factory=dict)  # variant -> run folder, in start order
    statuses: dict[str, str] = field(default_factory=dict)  # variant -> final status
    errors: dict[str, str] = field(default_factory=dict)  # variant -> why it did not start
    stopped: bool = False


class StudyRun:
    """One training of a study: its folder (made here, with ``study.yaml``), then ``run``.

    ``run`` trains the variants in list order, ``study.parallel`` at a time, and returns when
    every one has ended. A variant that starts from another's weights (``variant:NAME``) waits
    for that run and gets its folder; if that run did not finish, or a variant cannot start (a
    data or model error), it is recorded in ``errors`` and the others still run. ``stop`` (from
    any thread) stops the runs training (each writes a checkpoint) and starts no more.

    ``prepare(spec) -> spec`` adjusts each spec before it starts (the GUI limits threads);
    ``sink_for(name)`` gives each run its listener; ``overrides`` (dotted) apply to every variant.
    """

    def __init__(
        self,
        study: Study,
        runs_dir: Path,
        *,
        sink_for: Callable[[str], Sink | None] | None = None,
        overrides: dict | None = None,
        prepare: Callable[[RunSpec], RunSpec] | None = None,
    ):
        self.study = study
        self.folder = new_run_dir(Path(runs_dir), study.name)
        (self.folder / "study.yaml").write_text(dump_study(study), encoding="utf-8")
        self.result = StudyResult(study.name, self.folder)
        self._sink_for, self._overrides, self._prepare = sink_for, overrides, prepare
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._handles: list[RunHandle] = []

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            handles = list(self._handles)
        for handle in handles:
            handle.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _launch(self, name: str, spec: RunSpec) -> RunHandle:
        spec = resolve_refs(spec, self.result.runs)
        if self._overrides:
            spec = replace(spec, self._overrides)
        if self._prepare:
            spec = self._prepare(spec)
        sink = self._sink_for(name) if self._sink_for else None
        handle = start_run(spec, self.folder, sink, preset=self.study.name)
        with self._lock:
            self._handles.append(handle)
            stop = self._stop.is_set()
        if stop:  # stopped while this run was being built
            handle.stop()
        return handle

    def run(
        self,
        on_start: Callable[[str, Path], None] | None = None,
        on_end: Callable[[str, Path, str], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
    ) -> StudyResult:
        """Train the study (blocking); the callbacks run on this thread."""
        result = self.result
        pending = list(self.study.variants)
        running: list[tuple[str, RunHandle]] = []
        try:
            while pending or running:
                while pending and len(running) < self.study.parallel and not self.stopping:
                    name, spec = pending[0]
                    refs = variant_refs(spec)
                    if refs - set(result.statuses) - set(result.errors):
                        break  # in list order: wait for the runs it starts from to end
                    pending.pop(0)
                    try:
                        for ref in sorted(refs):
                            status = result.statuses.get(ref, "did not start")
                            if status != "finished":
                                raise ConfigError(
                                    "train.init_from",
                                    f"variant {ref} {status}: its weights are not there to "
                                    "start from",
                                )
                        handle = self._launch(name, spec)
                    except Exception as exc:  # a data or model error: the others still run
                        result.errors[name] = str(exc)
                        if on_error:
                            on_error(name, str(exc))
                        continue
                    result.runs[name] = handle.run_dir
                    running.append((name, handle))
                    if on_start:
                        on_start(name, handle.run_dir)
                if self.stopping:
                    pending.clear()
                for name, handle in list(running):
                    if handle.join(timeout=POLL_SECONDS / max(len(running), 1)):
                        running.remove((name, handle))
                        result.statuses[name] = handle.status
                        if on_end:
                            on_end(name, handle.run_dir, handle.status)
        finally:
            for name, handle in running:  # only after an unexpected error: leave nothing behind
                handle.stop()
                handle.join(JOIN_SECONDS)
                result.statuses[name] = handle.status
            for name, _ in self.study.variants:
                if name not in result.statuses and name not in result.errors:
                    result.statuses[name] = NOT_STARTED
            result.stopped = self.stopping
        return result


def run_study(
    study: Study,
    runs_dir: Path,
    sink_for: Any = None,
    overrides: dict | None = None,
) -> tuple[Path, list[RunSummary]]:
    """Train every variant (``study.parallel`` at a time) into one study folder.

    ``sink_for(name) -> Sink | None`` gives each run its listener; ``overrides`` (dotted) apply
    to every variant (e.g. ``{"train.steps": 10}``). Returns the folder and the summaries of the
    runs that started; a variant that could not start is reported on stderr.
    """
    for _, spec in study.variants:  # a bad override fails here, before any folder or run
        if overrides:
            replace(spec, overrides)
    study_run = StudyRun(study, runs_dir, sink_for=sink_for, overrides=overrides)
    result = study_run.run(
        on_error=lambda name, why: print(f"variant {name} did not start: {why}", file=sys.stderr)
    )
    return result.folder, [open_run(d).summary() for d in sorted(result.runs.values())]


def variant_runs(study: Study, folder: Path) -> dict[str, RunRecord]:
    """The runs in a trained study ``folder``, by variant name."""
    runs = {}
    for path in folder.iterdir():
        if path.is_dir():
            run = open_run(path)
            runs[run.meta["name"].removeprefix(f"{study.name}-")] = run
    return runs
