"""Random timelines: save -> load -> compile is the identity, and bad ones only raise
ConfigError."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ConfigError, dump_spec, parse_spec, spec_from_yaml
from engine.timeline import compile_timeline

STEPS = 60
positions = st.one_of(st.integers(0, STEPS - 1), st.integers(0, 99).map(lambda p: f"{p}%"))
values = st.floats(1e-5, 1e-2)


@st.composite
def lr_segments(draw):
    cuts = sorted(draw(st.sets(st.integers(0, STEPS), min_size=2, max_size=6)))
    segs = []
    for start, end in zip(cuts, cuts[1:]):
        shape = draw(st.sampled_from(["constant", "linear", "cosine", "exp", "step", "points"]))
        seg = {"start": start, "end": end, "shape": shape}
        if shape == "points":
            seg["points"] = [
                [0.0, draw(values)],
                [draw(st.floats(0, 1)), draw(values)],
                [1.0, draw(values)],
            ]
            seg["points"][1:] = sorted(seg["points"][1:], key=lambda p: p[0])
            seg["log"] = draw(st.booleans())
        else:
            seg["from"] = draw(values)
            seg["to"] = draw(values)
        if shape == "step":
            seg["milestones"] = sorted(draw(st.lists(st.integers(start, end - 1), max_size=3)))
            seg["gamma"] = draw(st.floats(0.1, 0.9))
        segs.append(seg)
    return segs


norm_events = st.fixed_dictionaries(
    {
        "at": positions,
        "action": st.sampled_from(["set", "ramp", "freeze", "unfreeze", "eps", "calibrate"]),
        "layers": st.one_of(
            st.just("all"), st.just("final"), st.lists(st.integers(0, 1), min_size=1, max_size=2)
        ),
        "stagger": st.integers(0, 3),
        "strength": st.floats(0, 1),
        "to": st.floats(0, 1),
        "over": st.integers(1, 20),
        "shape": st.sampled_from(["linear", "cosine"]),
        "eps": st.floats(1e-6, 1e-3),
    },
)


def spec_data(segments, events, phase_starts):
    starts = sorted(set(phase_starts) | {0})
    return {
        "model": {"n_layer": 2, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
        "train": {"steps": STEPS},
        "timeline": {
            "lr": segments,
            "layernorm": events,
            "phases": [
                {"name": f"p{i}", "start": s, "lr_scale": 0.5 + i} for i, s in enumerate(starts)
            ],
        },
    }


def curves(spec):
    tl = compile_timeline(spec)
    return (
        tl.lr_curve(),
        [tl.strength_curve(s) for s in tl.sites],
        [tl.norm_state(t) for t in range(STEPS)],
        [(e.tick, e.label) for e in tl.edges()],
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lr_segments(),
    st.lists(norm_events, max_size=4),
    st.lists(st.integers(1, STEPS - 1), max_size=3),
)
def test_valid_timelines_survive_save_and_load(segments, events, phase_starts):
    try:
        spec = parse_spec(spec_data(segments, events, phase_starts))
    except ConfigError:
        return  # e.g. a stagger pushed past the end: refused cleanly is fine
    again = spec_from_yaml(dump_spec(spec))
    assert again == spec
    a, b = curves(spec), curves(again)
    assert np.array_equal(a[0], b[0]) and all(np.array_equal(x, y) for x, y in zip(a[1], b[1]))
    assert a[2] == b[2] and a[3] == b[3]


junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 200),
        st.floats(allow_nan=True),
        st.text(max_size=6),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "start",
                    "end",
                    "at",
                    "shape",
                    "from",
                    "to",
                    "action",
                    "layers",
                    "over",
                    "points",
                    "every",
                    "text",
                    "name",
                    "freeze",
                    "data",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["lr", "layernorm", "phases", "marks"]),
        st.lists(junk, max_size=3),
        max_size=3,
    )
)
def test_invalid_timelines_raise_only_config_error(timeline):
    data = spec_data([], [], [])
    data["timeline"] = timeline
    try:
        compile_timeline(parse_spec(data))
    except ConfigError:
        pass
