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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.config import RunSpec, parse_spec, replace, to_dict
from engine.errors import ConfigError
from engine.runs import RunSummary, new_run_dir, open_run
from engine.trainer import Sink, start_run

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
        out.append((v["name"], spec))
    return Study(name, str(data.get("description", "")), parallel, base, out)


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
    running, done = [], []
    while pending or running:
        while pending and len(running) < study.parallel:
            name, spec = pending.pop(0)
            sink: Sink | None = sink_for(name) if sink_for else None
            running.append(start_run(spec, folder, sink))
        for handle in list(running):
            if handle.join(timeout=0.2):
                running.remove(handle)
                done.append(handle.run_dir)
    return folder, [open_run(d).summary() for d in sorted(done)]
