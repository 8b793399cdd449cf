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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.config import RunSpec, parse_spec, replace, to_dict
from engine.errors import ConfigError
from engine.runs import RunSummary, new_run_dir, open_run
from engine.trainer import RunHandle, Sink, start_run

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


def _init_fields(spec: RunSpec) -> dict[str, str | None]:
    fields = {"train.init_from": spec.train.init_from}
    for i, phase in enumerate(spec.timeline.phases):
        fields[f"timeline.phases.{i}.init_from"] = phase.init_from
    return fields


def variant_refs(spec: RunSpec) -> set[str]:
    """Names of the variants whose weights ``spec`` starts from (``init_from: variant:NAME``)."""
    return {v.removeprefix(REF) for v in _init_fields(spec).values() if v and v.startswith(REF)}


def resolve_refs(spec: RunSpec, folders: dict[str, Path]) -> RunSpec:
    """``spec`` with every ``variant:NAME`` replaced by the folder of that variant's run."""
    out = spec
    for field, value in _init_fields(spec).items():
        if value and value.startswith(REF):
            if field == "train.init_from":
                out = replace(out, {field: str(folders[value.removeprefix(REF)])})
            else:  # a list item: edit the phase in a copy
                i = int(field.split(".")[2])
                phases = to_dict(out)["timeline"]["phases"]
                phases[i]["init_from"] = str(folders[value.removeprefix(REF)])
                out = replace(out, {"timeline.phases": phases})
    return out


def load_preset(path: str | Path) -> RunSpec | Study:
    """A preset file: a run spec, or a study (a file with ``variants``). ConfigError if bad."""
    from engine.config import load_spec, spec_from_yaml

    text = Path(path).read_text(encoding="utf-8") if Path(path).is_file() else None
    if text is None:
        return load_spec(path)  # raises the usual "file not found" ConfigError
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return spec_from_yaml(text)  # raises the usual "not valid YAML" ConfigError
    return parse_study(data) if is_study(data) else spec_from_yaml(text)


def dump_study(study: Study) -> str:
    """The study as YAML, with every variant's full resolved spec (what ran)."""
    data = {
        "study": study.name,
        "description": study.description,
        "parallel": study.parallel,
        "variants": {name: to_dict(spec) for name, spec in study.variants},
    }
    return yaml.safe_dump(data, sort_keys=False, width=100)


def run_study(
    study: Study,
    runs_dir: Path,
    sink_for: Any = None,
    overrides: dict | None = None,
) -> tuple[Path, list[RunSummary]]:
    """Train every variant (``study.parallel`` at a time) into one study folder.

    ``sink_for(name) -> Sink | None`` gives each run its listener; ``overrides`` (dotted) apply
    to every variant (e.g. ``{"train.steps": 10}``). Returns the folder and the summaries.
    """
    folder = new_run_dir(Path(runs_dir), study.name)
    (folder / "study.yaml").write_text(dump_study(study), encoding="utf-8")
    pending = [(n, replace(s, overrides) if overrides else s) for n, s in study.variants]
    running: dict[str, RunHandle] = {}
    finished: dict[str, Path] = {}
    while pending or running:
        # in list order; a variant waits for the variants whose weights it starts from
        while pending and len(running) < study.parallel:
            name, spec = pending[0]
            if not variant_refs(spec) <= set(finished):
                break
            pending.pop(0)
            sink: Sink | None = sink_for(name) if sink_for else None
            running[name] = start_run(resolve_refs(spec, finished), folder, sink)
        for name, handle in list(running.items()):
            if handle.join(timeout=0.2):
                del running[name]
                finished[name] = handle.run_dir
                if handle.status != "finished" and any(name in variant_refs(s) for _, s in pending):
                    raise RuntimeError(
                        f"variant {name} ended {handle.status} ({handle.error or 'no error'}); "
                        "the variants that start from its weights cannot run"
                    )
    return folder, [open_run(d).summary() for d in sorted(finished.values())]
