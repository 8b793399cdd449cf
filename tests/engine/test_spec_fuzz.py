"""Random specs, timelines and mutated presets: loading and compiling one only ever raises
ConfigError, each case takes well under a second (no hang on any input), and what is accepted
is usable (seeds, devices and freeze patterns work, the spec survives save and load)."""

import copy
import dataclasses
import time
import typing
from pathlib import Path

import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ConfigError, RunSpec, dump_spec, parse_spec, spec_from_yaml
from engine.safe_yaml import load_yaml
from engine.timeline import compile_timeline, matches

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1.0  # seconds a case may take
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
parse_spec({})  # warm up (imports) before anything is timed
NAMES = ["embed.weight", "blocks.0.attn.q.weight", "blocks.1.mlp.fc.bias", "ln_final.weight"]


def _keys(cls) -> set[str]:
    """Every YAML key of ``cls`` and of the dataclasses inside it."""
    out = set()
    for f in dataclasses.fields(cls):
        out.add(f.name.rstrip("_"))
        tp = typing.get_type_hints(cls)[f.name]
        out.update(*(_keys(t) for t in (tp, *typing.get_args(tp)) if dataclasses.is_dataclass(t)))
    return out


KEYS = sorted(_keys(RunSpec))

big = st.one_of(
    st.integers(-(2**80), 2**80),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**400, -(2**63) - 1]),
)
numbers = st.one_of(st.integers(-5, 3000), big, st.floats(allow_nan=True, allow_infinity=True))
position_text = st.builds(
    "{}{}".format,
    st.one_of(
        numbers,
        st.builds("1e{}".format, st.integers(-20, 20) | st.sampled_from([10**9, -(10**8)])),
        st.sampled_from(["1e999999999", "1e-99999999", "0.5e99999999"]),
        st.sampled_from(["nan", "inf", "0.5", "33.3", ".5", "-1", "1" * 60]),
        st.text(alphabet="0123456789.eE+-", max_size=12),
    ),
    st.sampled_from(["%", "ep", "tok", "Ktok", "Mtok", "Gtok", "", " %", "x"]),
)
positions = st.one_of(position_text, position_text, st.integers(-5, 3000), big)
patterns = st.one_of(
    st.builds(
        "{}{}-{}{}".format,
        st.sampled_from(["blocks.", "enc_blocks.", "*.", ""]),
        st.integers(0, 3) | big.map(abs),
        st.integers(0, 3) | big.map(abs),
        st.sampled_from(["", ".attn", "*", ".mlp.fc"]),
    ),
    st.sampled_from(["embed", "blocks.0", "*.ln_*", "blocks.0-1"]),
    st.text(max_size=8),
)
texts = st.one_of(
    st.text(max_size=12), st.text(min_size=190, max_size=230), st.sampled_from(["", "a\nb", "\x07"])
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    positions,
    texts,
    patterns,
    st.sampled_from(["all", "final", "linear", "cosine", "step", "points", "set", "ramp"]),
    st.sampled_from(["cuda:abc", "cuda:-1", "gpu", "auto", "cpu", "cuda:0", "cuda"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.none())
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=8,
)
tokens = st.one_of(st.none(), st.integers(1, 10**12))
HUGE = [2**63, 2**70, 10**400, 10**5000, -(2**63) - 1, float("nan"), float("inf")]


def _kind(nasty: list, broad):
    """Half the time a value known to have broken the loader, else ``broad``."""
    return st.one_of(st.sampled_from(nasty), broad)


# What a field is likely to be given by mistake, by the field's name.
GARBAGE = {
    **dict.fromkeys(
        ["start", "end", "at", "milestones", "every", "over", "stagger"],
        _kind(
            ["1e999999999%", "1e-99999999%", "1e999999999ep", "0.5e99999999Mtok"]
            + ["1" * 20_000 + "x", "9" * 5000 + "%", "nan%", "inf", "-5%", 1.0e300]
            + HUGE,
            positions,
        ),
    ),
    **dict.fromkeys(
        ["freeze", "unfreeze"],
        _kind(["blocks.0-100000000", "blocks.0-99999999999.attn", "blocks.3-1"], patterns),
    ),
    "name": _kind(["a\nb", "", " ", "x" * 300, "rtl\u202e", "\x00"], texts),
    "device": _kind(["cuda:abc", "gpu", "cuda:-1", "cuda: 1", "meta", 5], scalars),
    **dict.fromkeys(
        ["seed", "steps", "batch_size", "rank", "n_layer", "d_model"], _kind(HUGE, numbers)
    ),
}


def accepted(spec: RunSpec, tokens_in_split, tokens_per_tick) -> None:
    """What the trainer does with an accepted spec works."""
    compile_timeline(spec, tokens_in_split, tokens_per_tick)
    torch.Generator().manual_seed(spec.seed + 2)
    if spec.train.device != "auto":
        torch.device(spec.train.device)
    for phase in spec.timeline.phases:
        for pattern in phase.freeze + phase.unfreeze:
            [matches(name, pattern) for name in NAMES]
    assert spec_from_yaml(dump_spec(spec)) == spec


def refused_or_accepted(data, via_yaml: bool, tokens_in_split, tokens_per_tick) -> None:
    """Load ``data`` (as a dict or as YAML text): a one-line ConfigError or a usable spec,
    in under LIMIT seconds."""
    try:
        text = yaml.safe_dump(data, allow_unicode=True) if via_yaml else None
    except ValueError:  # an int of more than 4300 digits cannot be written (str() refuses)
        text, via_yaml = None, False
    begin = time.process_time()  # CPU time: what the case costs, however busy the machine is
    try:
        accepted(
            spec_from_yaml(text) if via_yaml else parse_spec(data), tokens_in_split, tokens_per_tick
        )
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 500
    took = time.process_time() - begin
    assert took < LIMIT, f"took {took:.2f} s of CPU"


@settings(FUZZ, max_examples=100)
@given(
    st.dictionaries(
        st.sampled_from(["name", "seed", "model", "data", "train", "description"]),
        st.one_of(scalars, st.dictionaries(st.sampled_from(KEYS), junk, max_size=5)),
        max_size=4,
    ),
    st.dictionaries(
        st.sampled_from(["lr", "layernorm", "phases", "marks"]),
        st.lists(st.dictionaries(st.sampled_from(KEYS), junk, max_size=5), max_size=3),
        max_size=3,
    ),
    st.booleans(),
    tokens,
    tokens,
)
def test_random_specs_raise_only_config_error(data, timeline, via_yaml, in_split, per_tick):
    refused_or_accepted({**data, "timeline": timeline}, via_yaml, in_split, per_tick)


# A preset with every part of the timeline, to mutate.
BASE = load_yaml((ROOT / "presets/baby-gpt.yaml").read_text())
BASE["timeline"].update(
    phases=[
        {"name": "pretrain", "start": 0},
        {"name": "tune", "start": "75%", "freeze": ["embed", "blocks.0-1"], "lr_scale": 0.3},
    ],
    layernorm=[
        {"at": 200, "action": "ramp", "to": 0.0, "over": 300, "layers": "all", "stagger": 10},
        {"at": "50%", "action": "freeze", "layers": [0, 1]},
        {"at": "0.5ep", "action": "eps", "eps": 1.0e-3, "layers": "final"},
    ],
    marks=[{"at": "50%", "action": "checkpoint"}, {"every": 300, "action": "eval"}],
)
BASE["timeline"]["lr"][1] = {
    "start": "100Ktok",
    "end": "0.5ep",
    "shape": "step",
    "from": 1.0e-3,
    "milestones": ["200Ktok", 400],
}
BASE["train"]["lora"] = {"rank": 4, "targets": ["attn.q"]}


def _places(node, field: str, out: list) -> list:
    """(container, key, field name) of every value inside ``node``."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        name = key if isinstance(key, str) else field
        out.append((node, key, name))
        if isinstance(value, (dict, list)):
            _places(value, name, out)
    return out


@FUZZ
@given(st.data(), st.integers(1, 2), st.integers(0, 1), st.booleans(), tokens, tokens)
def test_mutated_presets_raise_only_config_error(data, typed, n, via_yaml, in_split, per_tick):
    spec = copy.deepcopy(BASE)
    for _ in range(typed):  # a field gets garbage of the kind it is likely to be given ...
        places = [p for p in _places(spec, "", []) if p[2] in GARBAGE]
        field = data.draw(st.sampled_from(sorted({p[2] for p in places})))
        node, key, _ = data.draw(st.sampled_from([p for p in places if p[2] == field]))
        node[key] = data.draw(GARBAGE[field])
    for _ in range(n):  # ... and maybe anything goes anywhere
        node, key, _ = data.draw(st.sampled_from(_places(spec, "", [])))
        how = data.draw(st.sampled_from(["replace", "add", "delete"]))
        if how == "add" and isinstance(node, dict):
            node[data.draw(keys)] = data.draw(junk)
        elif how == "delete" and isinstance(node, dict):
            del node[key]
        else:
            node[key] = data.draw(junk)
    refused_or_accepted(spec, via_yaml, in_split, per_tick)


def test_the_base_preset_is_valid():
    accepted(parse_spec(copy.deepcopy(BASE)), 1_800_000, None)
