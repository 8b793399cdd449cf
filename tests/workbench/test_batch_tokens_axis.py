"""With a batch lane (``timeline.batch``) tokens per tick vary: the editor's tokens unit and the
Runs overlay's tokens axis read the compiled timeline's running sum, the one ``python -m engine
timeline --csv`` prints in its ``tokens`` column."""

from __future__ import annotations

import numpy as np

import engine
from engine.config import RunSpec, from_dict
from workbench.runs.compare import Shown
from workbench.timeline.units import AxisUnit

RAMP = [{"start": 0, "end": 8, "shape": "linear", "from": 2, "to": 10}]  # 3, 4, ..., 10, then 4


def ramp_timeline(steps=40):
    data = {
        "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
        "train": {"steps": steps, "batch_size": 4, "device": "cpu"},
        "timeline": {"batch": RAMP},
    }
    return engine.compile_timeline(from_dict(RunSpec, data), tokens_per_tick=64)


def test_the_editors_tokens_unit_writes_positions_that_resolve_to_the_tick():
    tl = ramp_timeline()
    axis = AxisUnit("tokens", tl.units)
    for tick in (0, 1, 5, 7, 8, 9, 39, 40):
        assert axis.value(tick) == tl.tokens_at(tick)
        assert axis.resolve(axis.position_at(tick)) == tick
    assert axis.value(3) == 16 * (3 + 4 + 5)
    assert 0 <= axis.resolve(axis.snap(20.3, axis.default_grid())) <= 40


def test_the_overlays_tokens_axis_is_the_tokens_column():
    tl = ramp_timeline()
    shown = Shown(None, "ramp", "#fff", None, 64.0, None, tl)
    ticks = np.arange(40)
    rows = [3, 4, 5, 6, 7, 8, 9, 10] + [4] * 32
    assert shown.x_of(ticks, "tokens").tolist() == np.cumsum(np.array(rows) * 16).tolist()
