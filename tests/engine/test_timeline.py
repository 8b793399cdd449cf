"""LR segments: the exact formulas of design section 3, checked at boundary ticks."""

import math

import numpy as np
import pytest

from engine import ConfigError, parse_spec
from engine.positions import Units, resolve_position
from engine.timeline import compile_timeline


def timeline(steps, *segments, lr=1e-3):
    return compile_timeline(
        parse_spec({"train": {"steps": steps, "lr": lr}, "timeline": {"lr": list(segments)}})
    )


def test_no_segments_holds_train_lr():
    tl = timeline(50, lr=3e-4)
    assert np.all(tl.lr_curve() == 3e-4)


def test_linear_first_tick_is_one_step_in_and_last_reaches_to():
    tl = timeline(200, {"start": 0, "end": 100, "shape": "linear", "from": 0.0, "to": 1e-3})
    assert tl.lr_at(0) == pytest.approx(1e-5)  # u = 1/100: no wasted zero-LR step
    assert tl.lr_at(49) == pytest.approx(5e-4)
    assert tl.lr_at(99) == 1e-3  # the last tick reaches `to` exactly
    assert tl.lr_at(100) == 1e-3 and tl.lr_at(199) == 1e-3  # after the segment the value holds


def test_cosine_formula_at_boundaries():
    tl = timeline(100, {"start": 20, "end": 60, "shape": "cosine", "from": 1e-3, "to": 1e-4})
    n = 40
    for t in (20, 21, 39, 59):
        u = (t - 20 + 1) / n
        assert tl.lr_at(t) == pytest.approx(1e-4 + (1e-3 - 1e-4) * (1 + math.cos(math.pi * u)) / 2)
    assert tl.lr_at(0) == 1e-3 and tl.lr_at(19) == 1e-3  # before the first segment: its `from`
    assert tl.lr_at(59) == pytest.approx(1e-4) and tl.lr_at(99) == pytest.approx(1e-4)


def test_gap_between_segments_holds_last_value():
    tl = timeline(
        100,
        {"start": 0, "end": 10, "shape": "linear", "from": 0.0, "to": 1e-3},
        {"start": 50, "end": 100, "shape": "exp", "from": 1e-3, "to": 1e-5},
    )
    assert np.all(tl.lr_curve()[10:50] == 1e-3)
    assert tl.lr_at(99) == pytest.approx(1e-5)
    assert tl.lr_at(50) == pytest.approx(1e-3 * (1e-2) ** (1 / 50))


def test_step_and_points_shapes():
    tl = timeline(
        100,
        {"start": 0, "end": 50, "shape": "step", "from": 1.0, "milestones": [10, 20], "gamma": 0.5},
        {"start": 50, "end": 100, "shape": "points", "points": [[0, 2.0], [0.5, 2.0], [1, 0.0]]},
    )
    assert tl.lr_at(9) == 1.0 and tl.lr_at(10) == 0.5 and tl.lr_at(20) == 0.25
    assert tl.lr_at(50) == 2.0  # u = 1/50 inside the flat part
    assert tl.lr_at(99) == 0.0
    assert tl.lr_at(87) == pytest.approx(2.0 * (1 - (38 / 50 - 0.5) / 0.5))


def test_percent_positions_and_the_run_end():
    tl = timeline(
        1000,
        {"start": 0, "end": "10%", "shape": "linear", "from": 0, "to": 1.0},
        {"start": "10%", "end": "100%", "shape": "constant", "from": 0.5},
    )
    assert tl.lr_at(99) == 1.0 and tl.lr_at(100) == 0.5 and tl.lr_at(999) == 0.5
    with pytest.raises(IndexError):
        tl.lr_at(1000)


@pytest.mark.parametrize(
    "pos, tick",
    [
        (0, 0),
        (7, 7),
        ("25%", 250),
        ("33.3%", 333),
        ("1ep", 200),
        ("0.5ep", 100),
        ("1600tok", 2),
        ("1.6Ktok", 2),
        ("0.0016Mtok", 2),
    ],
)
def test_position_units(pos, tick):
    assert resolve_position(pos, "x", Units(1000, 800, tokens_in_split=160_000)) == tick


@pytest.mark.parametrize("pos", ["25", "ten", "5 ticks", "-3%", True, -1])
def test_bad_positions_are_config_errors(pos):
    with pytest.raises(ConfigError, match="^x: "):
        resolve_position(pos, "x", Units(1000, 800))


def test_exp_needs_positive_values():
    with pytest.raises(ConfigError, match=r"timeline.lr\[0\]: exp takes a log"):
        timeline(10, {"start": 0, "end": 10, "shape": "exp", "from": 0.0, "to": 1.0})
