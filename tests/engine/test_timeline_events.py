"""Phases, norm events and marks: the compiled values at boundary ticks, and every error."""

import math

import numpy as np
import pytest

from engine import ConfigError, parse_spec
from engine.timeline import compile_timeline, matches, norm_site_names

MODEL = {"n_layer": 2, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16}


def compiled(steps=100, model=None, **timeline):
    spec = parse_spec(
        {
            "model": {**MODEL, **(model or {})},
            "train": {"steps": steps, "lr": 1.0},
            "timeline": timeline,
        }
    )
    return compile_timeline(spec)


def test_site_names_match_the_built_model():
    from engine.config import ModelConfig
    from engine.model import build_model

    for kw in (
        {},
        {"arch": "encoder_decoder"},
        {"norm_position": "post"},
        {"norm": "rmsnorm"},
        {"norm": "none"},
    ):
        cfg = ModelConfig(**{**MODEL, **kw})
        assert norm_site_names(cfg) == [n for n, _ in build_model(cfg, 11).norm_sites()]


def test_set_and_linear_ramp_follow_the_lr_convention():
    tl = compiled(
        layernorm=[
            {"at": 0, "action": "set", "strength": 0.0},
            {"at": 10, "action": "ramp", "to": 1.0, "over": 4},
        ]
    )
    s = tl.strength_curve("0.attn")
    assert s[:10].tolist() == [0.0] * 10
    assert s[10:15].tolist() == [0.25, 0.5, 0.75, 1.0, 1.0]  # first tick one step in
    assert np.all(tl.strength_curve("final") == s)


def test_cosine_ramp_and_ramp_from_the_value_in_force():
    tl = compiled(
        layernorm=[
            {"at": 0, "action": "set", "strength": 0.2},
            {"at": 5, "action": "ramp", "to": 1.0, "over": 10, "shape": "cosine"},
        ]
    )
    s = tl.strength_curve("1.mlp")
    for t in (5, 6, 14):
        u = (t - 5 + 1) / 10
        assert s[t] == pytest.approx(1.0 + (0.2 - 1.0) * (1 + math.cos(math.pi * u)) / 2)
    assert s[14] == pytest.approx(1.0) and s[99] == pytest.approx(1.0)


def test_stagger_fires_layer_by_layer_then_the_final_norm():
    tl = compiled(layernorm=[{"at": 20, "action": "set", "strength": 0.0, "stagger": 10}])
    first_zero = {site: int(np.argmax(tl.strength_curve(site) == 0.0)) for site in tl.sites}
    assert first_zero == {"0.attn": 20, "0.mlp": 20, "1.attn": 30, "1.mlp": 30, "final": 40}
    assert [e.tick for e in tl.edges() if e.label.startswith("LN set")] == [20, 30, 40]


def test_selected_layers_freeze_eps_backend():
    tl = compiled(
        layernorm=[
            {"at": 3, "action": "freeze", "layers": [1]},
            {"at": 6, "action": "unfreeze", "layers": [1]},
            {"at": 4, "action": "eps", "eps": 1e-3, "layers": "final"},
            {"at": 5, "action": "backend", "backend": "torch"},
        ]
    )
    assert [tl.norm_state(t)["1.attn"][1] for t in (2, 3, 5, 6)] == [False, True, True, False]
    assert tl.norm_state(3)["0.attn"][1] is False
    assert tl.norm_state(3)["final"][2] == 1e-5 and tl.norm_state(4)["final"][2] == 1e-3
    assert tl.norm_state(4)["0.mlp"][3] == "auto" and tl.norm_state(5)["0.mlp"][3] == "torch"


def test_calibration_is_automatic_where_strength_first_drops():
    tl = compiled(
        layernorm=[
            {"at": 40, "action": "ramp", "to": 0.0, "over": 10, "layers": [0]},
            {"at": 30, "action": "calibrate", "layers": [1]},
            {"at": 50, "action": "set", "strength": 0.5, "layers": [1]},
        ]
    )
    assert tl.calibrate_at(40) == ["0.attn", "0.mlp"]  # automatic
    assert tl.calibrate_at(30) == ["1.attn", "1.mlp"]  # explicit, and it counts for tick 50
    assert tl.calibrate_at(50) == []


def test_phases_scale_lr_and_carry_frozen_patterns():
    tl = compiled(
        phases=[
            {"name": "a", "start": 0},
            {
                "name": "b",
                "start": "25%",
                "freeze": ["embed", "blocks.0"],
                "lr_scale": 0.5,
                "weight_decay": 0.0,
            },
            {"name": "c", "start": 60, "unfreeze": ["embed"]},
        ]
    )
    assert [(p.name, p.start, p.end) for p in tl.phases] == [
        ("a", 0, 25),
        ("b", 25, 60),
        ("c", 60, 100),
    ]
    assert tl.lr_at(24) == 1.0 and tl.lr_at(25) == 0.5 and tl.lr_at(60) == 1.0
    assert tl.phases[1].frozen == ("blocks.0", "embed") and tl.phases[2].frozen == ("blocks.0",)
    assert [p.weight_decay for p in tl.phases] == [0.1, 0.0, 0.0]  # inherited
    assert tl.at(25).phase == "b" and [e.kind for e in tl.at(25).edges] == ["phase"]


def test_marks_at_and_every():
    tl = compiled(
        marks=[{"at": 10, "action": "note", "text": "look"}, {"every": 30, "action": "checkpoint"}]
    )
    assert [m.label for m in tl.marks_at(10)] == ["look"]
    assert [t for t in range(100) if tl.marks_at(t) and t != 10] == [29, 59, 89]


@pytest.mark.parametrize(
    "timeline, message",
    [
        ({"layernorm": [{"action": "set"}]}, "timeline.layernorm[0].strength: the set event needs"),
        ({"layernorm": [{"action": "ramp", "to": 0.0}]}, "timeline.layernorm[0].over: the ramp"),
        ({"layernorm": [{"action": "eps"}]}, "timeline.layernorm[0].eps: the eps event needs eps"),
        (
            {"layernorm": [{"action": "set", "strength": 1.5}]},
            "timeline.layernorm[0].strength: must be <= 1.0, got 1.5",
        ),
        (
            {"layernorm": [{"action": "freeze", "layers": [0, 7]}]},
            "timeline.layernorm[0].layers[1]: layer 7 does not exist (model.n_layer=2)",
        ),
        (
            {"layernorm": [{"action": "freeze", "layers": "middle"}]},
            "timeline.layernorm[0].layers: must be one of all, final",
        ),
        (
            {"layernorm": [{"at": 90, "action": "freeze", "stagger": 5}]},
            "timeline.layernorm[0].stagger: layer final would fire at tick 100, past the end",
        ),
        (
            {"layernorm": [{"at": 100, "action": "freeze"}]},
            "timeline.layernorm[0].at: tick 100 is past the end of the run (train.steps=100)",
        ),
        ({"layernorm": [{"action": "explode"}]}, "timeline.layernorm[0].action: must be one of"),
        (
            {"phases": [{"name": "a", "start": 5}]},
            "timeline.phases[0].start: the first phase starts at 0, got 5",
        ),
        (
            {"phases": [{"start": 0}, {"start": 50}, {"start": 40}]},
            "timeline.phases[2].start: tick 40 is not after the previous phase (50)",
        ),
        (
            {"phases": [{"start": 0}, {"start": "150%"}]},
            "timeline.phases[1].start: tick 150 is past the end of the run",
        ),
        (
            {"phases": [{"start": 0, "lr_scale": -1}]},
            "timeline.phases[0].lr_scale: must be >= 0.0, got -1",
        ),
        (
            {"phases": [{"start": 0, "data": {"source": "nope"}}]},
            "timeline.phases[0].data.source: must be one of",
        ),
        ({"marks": [{"action": "note"}]}, "timeline.marks[0]: a mark needs exactly one of"),
        ({"marks": [{"action": "eval", "at": 5, "every": 5}]}, "timeline.marks[0]: a mark needs"),
        ({"marks": [{"action": "eval", "at": "2000%"}]}, "timeline.marks[0].at: tick 2000"),
    ],
)
def test_invalid_timelines_name_the_field(timeline, message):
    with pytest.raises(ConfigError) as info:
        compiled(**timeline)
    assert message in str(info.value)


def test_norm_events_need_norms_and_post_ln_has_no_final():
    with pytest.raises(ConfigError, match=r"timeline.layernorm\[0\]: model.norm is none"):
        compiled(model={"norm": "none"}, layernorm=[{"action": "freeze"}])
    with pytest.raises(ConfigError, match="post-LN models have no final norm"):
        compiled(
            model={"norm_position": "post"}, layernorm=[{"action": "freeze", "layers": "final"}]
        )


def test_freeze_patterns():
    assert matches("blocks.0.attn.q.weight", "blocks.0")
    assert not matches("blocks.10.attn.q.weight", "blocks.1")
    assert matches("embed.weight", "embed") and matches("blocks.3.ln_attn.bias", "*.ln_*")


def test_freeze_layer_ranges_are_inclusive():
    assert matches("blocks.0.attn.q.weight", "blocks.0-2")
    assert matches("blocks.2.mlp.fc.weight", "blocks.0-2")
    assert not matches("blocks.3.mlp.fc.weight", "blocks.0-2")
    assert not matches("blocks.12.mlp.fc.weight", "blocks.0-2")  # 12 is not 1 or 2
    assert matches("blocks.1.attn.q.weight", "blocks.1-3.attn")
    assert not matches("blocks.1.mlp.fc.weight", "blocks.1-3.attn")
    assert not matches("blocks.1.attn.q.weight", "blocks.3-1")  # an empty range matches nothing


def test_sites_picks_one_norm_of_each_block_as_the_papers_remove_them():
    """MLP norms first, one block every 10 ticks, then attention's, then the final norm: the
    order of the LayerNorm-removal papers, written with ``sites``."""
    ramp = {"action": "ramp", "to": 0.0, "over": 5, "stagger": 10}
    tl = compiled(
        layernorm=[
            {**ramp, "at": 10, "layers": "all", "sites": "mlp"},
            {**ramp, "at": 40, "layers": "all", "sites": "attn"},
            {**ramp, "at": 70, "layers": "final"},
        ]
    )
    done = {site: next(t for t in range(100) if tl.at(t).strength[site] == 0.0)
            for site in ("0.mlp", "1.mlp", "0.attn", "1.attn", "final")}  # fmt: skip
    assert done == {"0.mlp": 14, "1.mlp": 24, "0.attn": 44, "1.attn": 54, "final": 74}
    assert tl.at(30).strength["0.attn"] == 1.0 and tl.at(60).strength["final"] == 1.0
    bad = {"at": 10, "action": "set", "strength": 0.0, "layers": "final", "sites": "mlp"}
    with pytest.raises(ConfigError) as info:
        compiled(layernorm=[bad])
    assert info.value.path == "timeline.layernorm[0].sites"


def test_a_sigma_event_sets_sigma_bar_and_counts_as_calibrated(tmp_path):
    """``sigma`` fixes σ̄ (here 1.0, its starting value: a removal without calibration), and
    no automatic calibration follows when the strength drops; the trained model keeps it."""
    from engine import open_run, start_run
    from engine.sample import load_model_from_run
    from tests.engine.helpers import tiny_spec

    events = [
        {"at": 1, "action": "sigma", "sigma": 1.0, "layers": [0]},
        {"at": 2, "action": "set", "strength": 0.0, "layers": "all"},
    ]
    tl = compiled(layernorm=events)
    assert tl.sigma_at(1) == {"0.attn": 1.0, "0.mlp": 1.0}
    auto = [e for e in tl.edges() if e.detail.get("auto")]
    assert auto and "0.attn" not in auto[0].detail["sites"] and "1.attn" in auto[0].detail["sites"]
    with pytest.raises(ConfigError) as info:
        compiled(layernorm=[{"at": 1, "action": "sigma"}])
    assert info.value.path == "timeline.layernorm[0].sigma"

    spec = tiny_spec(train={"steps": 4, "checkpoint_every": 0, "eval_every": 0},
                     timeline={"layernorm": events})  # fmt: skip
    handle = start_run(spec, tmp_path)
    assert handle.join(60) and handle.status == "finished", handle.error
    model = load_model_from_run(handle.run_dir)[3]
    sigma = {name: float(norm.sigma_bar) for name, norm in model.norm_sites()}
    assert sigma["0.attn"] == 1.0 and sigma["final"] != 1.0  # calibrated at tick 2
    assert open_run(handle.run_dir).status == "finished"
