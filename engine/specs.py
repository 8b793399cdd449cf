"""Run specs as plain data and files: validated, read, written and edited.

``validate`` is the whole check: the fields and their cross-field rules (``engine.config``), then
the timeline, compiled against the data's real units (``engine.plan``: compiled once and kept,
so the window's editor and plots reuse the same object). Every failure is a ``ConfigError``
naming the field.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from engine.config import RunSpec, check_fields, from_dict, to_dict
from engine.errors import ConfigError
from engine.plan import check_plan
from engine.pruning import check_prune
from engine.safe_yaml import load_yaml, read_yaml


def validate(spec: RunSpec) -> RunSpec:
    """Every rule: the fields, then the timeline (its pruning lane too) against the run, the
    model and the data.
    Raises ConfigError; returns the spec, its model's architecture filled in from
    ``model.from_pretrained`` when that is set (``engine.pretrained.apply_pretrained``)."""
    check_fields(spec)
    spec = with_pretrained(spec)
    check_plan(spec)
    check_prune(spec)
    return spec


def with_pretrained(spec: RunSpec) -> RunSpec:
    """``spec`` with the architecture of its pretrained checkpoint (unchanged without one)."""
    if not spec.model.from_pretrained:
        return spec
    if spec.data.tokenizer != "bpe":
        raise ConfigError(
            "data.tokenizer",
            "a pretrained model reads the tokens of its own tokenizer: set data.tokenizer: bpe",
        )
    from engine.pretrained.arch import apply_pretrained  # reads the checkpoint's config

    model = apply_pretrained(spec.model)
    return spec if model == spec.model else dataclasses.replace(spec, model=model)


def parse_spec(data: Any) -> RunSpec:
    """Plain data (as from yaml.safe_load) -> validated RunSpec."""
    if data is None:
        raise ConfigError("spec", "the document is empty")
    return validate(from_dict(RunSpec, data))


def spec_from_yaml(text: str) -> RunSpec:
    return parse_spec(load_yaml(text))


def load_spec(path: str | Path) -> RunSpec:
    """Read and validate a run spec YAML file. Every failure is a ConfigError."""
    return parse_spec(read_yaml(path))


def dump_spec(spec: RunSpec) -> str:
    """RunSpec -> YAML text; load_spec of it gives back an equal RunSpec."""
    return yaml.safe_dump(to_dict(spec), sort_keys=False, default_flow_style=None, width=100)


def save_spec(spec: RunSpec, path: str | Path) -> None:
    Path(path).write_text(dump_spec(spec), encoding="utf-8")


def replace(spec: RunSpec, overrides: dict[str, Any]) -> RunSpec:
    """A copy of ``spec`` with dotted overrides applied (``{"train.steps": 10}``), re-validated."""
    data = to_dict(spec)
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = str(dotted).split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return parse_spec(data)
