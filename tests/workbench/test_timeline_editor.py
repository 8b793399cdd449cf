"""The Timeline editor, driven with simulated mouse and keys on the real window.

Each edit is checked where it matters: the spec the Config panel holds (what Run starts and
Save writes) and the LR the engine compiles from it at chosen ticks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from PySide6.QtCore import QPointF, Qt

import engine
from tests.workbench.helpers import type_into
from tests.workbench.timeline_helpers import (
    choose,
    click,
    drag,
    handle,
    move,
    open_menu,
    set_property,
    viewport_point,
    wait_under_pointer,
    write_spec,
)
from workbench.timeline.lanes import Selection


@pytest.fixture
def window(make_main_window, tmp_path):
    w = make_main_window()
    assert w.files.load(write_spec(tmp_path))
    return w


def spec_of(window) -> engine.RunSpec:
    spec = window.config.spec
    assert spec is not None, window.config.error
    return spec


def lr(window, tick: int) -> float:
    return engine.compile_timeline(spec_of(window)).lr_at(tick)


def drawn_lr(editor) -> np.ndarray:
    return editor.lr_lane.curve.getData()[1]


def test_preset_is_drawn_and_saves_back_unchanged(make_main_window, tmp_path):
    window = make_main_window()
    preset = "presets/ln-removal-finetune.yaml"
    assert window.files.load(preset)
    editor = window.timeline_editor
    compiled = engine.compile_timeline(engine.load_spec(preset))
    assert np.array_equal(drawn_lr(editor), compiled.lr_curve())
    spans = [s.rect for k, s in editor.phase_lane.pool.items.items() if len(k) == 2]
    assert [(r.left(), r.right()) for r in spans] == [(0, 600), (600, 1200)]
    # the staircase: layer i's ramp starts 60·i ticks after the first, final norm last
    markers = sorted(
        h.view_pos.x()
        for k, h in editor.norm_lane.pool.items.items()
        if k[:3] == ("layernorm", 0, "at")
    )
    assert markers == [600, 660, 720, 780, 840]
    saved = tmp_path / "saved.yaml"
    assert window.files.save(str(saved))
    # no edits: the same values (a saved timeline omits keys left at their defaults)
    assert engine.load_spec(saved) == engine.load_spec(preset)
    assert saved.read_text() == engine.dump_spec(engine.load_spec(preset))
    written = yaml.safe_load(saved.read_text())["timeline"]
    assert written["layernorm"] == [
        {"at": "50%", "action": "ramp", "stagger": 60, "to": 0.0, "over": 60}
    ]
    assert editor.doc.undo_stack.count() == 0


def test_drag_a_phase_boundary(window, qtbot, tmp_path):
    editor = window.timeline_editor
    lane = editor.phase_lane
    boundary = handle(lane, ("phases", 1, "start"))
    assert boundary.view_pos.x() == 150
    editor.snap_box.setCurrentIndex(editor.snap_box.findData(10))
    drag(qtbot, editor, lane, (150, 0.5), (103.4, 0.5))  # lands on the 10-tick grid
    assert spec_of(window).timeline.phases[1].start == 100
    assert boundary.view_pos.x() == 100
    # the finetune phase's lr_scale 0.5 now applies from tick 100: the cosine of [20, 120)
    cosine = [1e-4 + 9e-4 * (1 + math.cos(math.pi * (t - 19) / 100)) / 2 for t in (99, 100)]
    assert lr(window, 99) == pytest.approx(cosine[0], rel=1e-12)
    assert lr(window, 100) == pytest.approx(0.5 * cosine[1], rel=1e-12)
    assert np.array_equal(drawn_lr(editor), engine.compile_timeline(spec_of(window)).lr_curve())
    saved = tmp_path / "edited.yaml"  # Save writes the edited timeline
    assert window.files.save(str(saved))
    assert engine.load_spec(saved).timeline.phases[1].start == 100


@pytest.mark.parametrize("steps", [1000, 1200, 997])
@pytest.mark.parametrize("unit", ["ticks", "%", "tokens"])
def test_written_positions_resolve_to_the_tick(unit, steps):
    """Whatever unit the axis shows, a position the editor writes is the tick the engine runs."""
    from engine.positions import Units
    from workbench.timeline.units import AxisUnit

    axis = AxisUnit(unit, Units(steps, 768))
    for tick in (0, 1, 7, 333, steps // 2, steps - 1, steps):
        assert axis.resolve(axis.position_at(tick)) == tick
    snapped = axis.snap(steps * 0.337, axis.default_grid())
    assert isinstance(snapped, int) == (unit == "ticks")
    assert 0 <= axis.resolve(snapped) <= steps


def test_add_a_cosine_segment_from_the_menu(window, qtbot):
    editor = window.timeline_editor
    before = lr(window, 59)
    menu = open_menu(qtbot, editor, editor.lr_lane, 60, 5e-4, "lrMenu")
    choose(qtbot, menu, "Add cosine segment here")
    segs = spec_of(window).timeline.lr
    assert [s.shape for s in segs] == ["linear", "cosine", "cosine", "points"]
    first, new = segs[1], segs[2]
    assert (first.end, new.start, new.end) == (60, 60, 120)
    assert new.from_ == pytest.approx(before) and new.to == 1e-4
    assert first.to == pytest.approx(before)  # the split part still ends where it was
    # the engine's convention: u = (t - 60 + 1) / 60; cosine from `before` to 1e-4
    for t in (60, 89, 119):
        u = (t - 60 + 1) / 60
        want = 1e-4 + (before - 1e-4) * (1 + math.cos(math.pi * u)) / 2
        assert lr(window, t) == pytest.approx(want, rel=1e-12)
    assert np.array_equal(drawn_lr(editor), engine.compile_timeline(spec_of(window)).lr_curve())


def test_drag_a_points_handle(window, qtbot):
    editor = window.timeline_editor
    lane = editor.lr_lane
    # point 1 of segment 2 ([120, 200)) sits at u = 0.5: tick 120 - 1 + 0.5·80 = 159
    point = handle(lane, ("lr", 2, "pt", 1))
    assert (point.view_pos.x(), point.view_pos.y()) == (159, 2e-4)
    drag(qtbot, editor, lane, (159, 2e-4), (139, 6e-4))
    seg = spec_of(window).timeline.lr[2]
    u, value = seg.points[1]
    there = landed(editor, lane, (159, 2e-4), (139, 6e-4))
    assert u == pytest.approx((there.x() - 119) / 80, abs=1e-4)  # tick 139: u = 0.25
    assert value == pytest.approx(there.y(), rel=5e-3)  # kept to three significant digits
    assert u == pytest.approx(0.25, abs=0.02) and value == pytest.approx(6e-4, rel=0.2)
    assert editor.selection.point == 1
    # piecewise linear through the points, before the finetune phase (tick < 150)
    for t in (120, 135, 145):
        want = np.interp((t - 120 + 1) / 80, [p[0] for p in seg.points], [p[1] for p in seg.points])
        assert lr(window, t) == pytest.approx(want, rel=1e-12)
    # a click on the curve adds a point there; Delete removes the selected one
    click(qtbot, editor, lane, 179, 1e-4)
    assert len(spec_of(window).timeline.lr[2].points) == 4
    editor.view.setFocus()
    qtbot.keyClick(editor.view, Qt.Key.Key_Delete)
    assert len(spec_of(window).timeline.lr[2].points) == 3


def test_points_on_a_log_axis(window, qtbot):
    editor = window.timeline_editor
    set_property_on(qtbot, editor, ("lr", 2), "points", "[[0, 2.0e-4], [0.5, 1.0e-5], [1, 1.0e-6]]")
    set_property_on(qtbot, editor, ("lr", 2), "log", None)
    assert spec_of(window).timeline.lr[2].log
    assert editor.log_box.isChecked()  # a log segment puts the LR lane on a log axis
    lane = editor.lr_lane
    assert handle(lane, ("lr", 2, "pt", 1)).view_pos.y() == pytest.approx(-5)  # log10(1e-5)
    wait_under_pointer(qtbot, editor, lane, ("lr", 2, "pt", 1))  # redrawn in decades
    drag(qtbot, editor, lane, (159, -5), (159, -4))  # one decade up
    value = spec_of(window).timeline.lr[2].points[1][1]
    assert value == pytest.approx(10 ** landed(editor, lane, (159, -5), (159, -4)).y(), rel=5e-3)
    assert value == pytest.approx(1e-4, rel=0.3)  # a decade up, to the pixel
    # ticks 159 and 179 are in the finetune phase: lr_scale 0.5
    assert lr(window, 159) == pytest.approx(0.5 * value, rel=1e-12)
    # log interpolation between the points: the geometric mean halfway from u=0.5 to u=1
    t = 119 + 60  # u = 0.75
    assert lr(window, t) == pytest.approx(0.5 * math.sqrt(value * 1e-6), rel=1e-9)


def landed(editor, lane, start: tuple[float, float], end: tuple[float, float]):
    """Where a handle at ``start`` dragged to ``end`` lands, in view coordinates: the mouse
    presses and releases on whole pixels, and the handle keeps its offset from the pressed one."""

    def pixel(x, y):
        return lane.vb.mapSceneToView(editor.view.mapToScene(viewport_point(editor, lane, x, y)))

    press = pixel(*start)
    release = pixel(*end)
    return QPointF(release.x() + start[0] - press.x(), release.y() + start[1] - press.y())


def set_property_on(qtbot, editor, item, key, text):
    """Select ``item`` (kind, index) and set one property (None: toggle a check box)."""
    editor.select(Selection(*item))
    if text is None:
        box = editor.properties.form.widget(key)
        box.setFocus()
        qtbot.keyClick(box, Qt.Key.Key_Space)
    else:
        set_property(qtbot, editor, key, text)


def test_add_a_staggered_ln_ramp(window, qtbot):
    editor = window.timeline_editor
    lane = editor.norm_lane
    menu = open_menu(qtbot, editor, lane, 60, 0.5, "normMenu")
    choose(qtbot, menu, "Add for all layers, staggered", "ramp")
    ev = spec_of(window).timeline.layernorm[1]
    assert (ev.at, ev.action, ev.layers, ev.to, ev.over, ev.stagger) == (
        60,
        "ramp",
        "all",
        0.0,
        10,
        10,
    )
    editor.select(editor.selection or _sel("layernorm", 1))
    set_property(qtbot, editor, "stagger", "30")
    set_property(qtbot, editor, "over", "20")
    compiled = engine.compile_timeline(spec_of(window))
    # a staircase: block 0 ramps over ticks 60..79, block 1 over 90..109, final 120..139
    for site, start in (("0.attn", 60), ("1.mlp", 90), ("final", 120)):
        s = compiled.strength_curve(site)
        assert s[start - 1] > 0 and s[start + 19] == 0.0
        assert s[start + 9] == pytest.approx(s[start - 1] * 0.5)
    markers = sorted(
        h.view_pos.x() for k, h in lane.pool.items.items() if k[:3] == ("layernorm", 1, "at")
    )
    assert markers == [60, 90, 120]


def _sel(kind, index):
    return Selection(kind, index)


def test_undo_redo_and_delete_with_keys(window, qtbot):
    editor = window.timeline_editor
    lane = editor.mark_lane
    drag(qtbot, editor, lane, (100, 0.45), (140, 0.45))
    assert spec_of(window).timeline.marks[0].at == 140
    editor.view.setFocus()
    qtbot.keyClick(editor.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert spec_of(window).timeline.marks[0].at == 100
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(editor.view, Qt.Key.Key_Z, redo)
    assert spec_of(window).timeline.marks[0].at == 140
    click(qtbot, editor, lane, 140, 0.45)
    assert editor.selection == _sel("marks", 0)
    qtbot.keyClick(editor.view, Qt.Key.Key_Delete)
    assert spec_of(window).timeline.marks == []
    qtbot.keyClick(editor.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert spec_of(window).timeline.marks[0].text == "halfway"


def test_an_invalid_edit_is_refused_with_the_engine_message(window, qtbot):
    editor = window.timeline_editor
    before = spec_of(window)
    # segment 1 ends at 120 where the points segment starts: drag its start back over it
    drag(qtbot, editor, editor.segment_lane, (0, 0.5), (0, 0.5))  # nothing moved: no edit
    drag(qtbot, editor, editor.phase_lane, (150, 0.5), (0, 0.5))
    assert spec_of(window) == before
    assert "timeline.phases[1].start" in editor.message_text
    assert "not applied" in editor.message_text
    assert editor.doc.undo_stack.count() == 0
    # a value the spec cannot hold, typed into the properties panel
    click(qtbot, editor, editor.segment_lane, 70, 0.5)
    set_property(qtbot, editor, "to", "-1")
    assert "must be >= 0.0" in editor.properties.error.text()
    assert spec_of(window) == before
    assert window.commands.run.isEnabled()


def test_a_form_change_that_breaks_the_timeline_marks_the_item(window, qtbot):
    editor = window.timeline_editor
    steps = window.config.editor("train.steps").widget
    type_into(qtbot, steps, "90")
    qtbot.keyClick(steps, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: editor.failing is not None)
    assert editor.failing == ("phases", 1)  # finetune starts at 150 > 89
    assert not window.commands.run.isEnabled()
    assert "Run stays disabled" in editor.message_text
    # fix the items one by one in the editor: the run length stays as typed
    for kind, index, key, value in (
        ("phases", 1, "start", "60"),
        ("lr", 1, "end", "80"),
        ("lr", 2, "start", "80"),
        ("lr", 2, "end", "90"),
        ("marks", 0, "at", "85"),
    ):
        editor.select(_sel(kind, index))
        set_property(qtbot, editor, key, value)
    qtbot.waitUntil(lambda: window.commands.run.isEnabled())
    spec = spec_of(window)
    assert spec.train.steps == 90 and spec.timeline.lr[2].end == 90
    assert editor.failing is None


def test_a_form_error_elsewhere_stops_edits_until_fixed(window, qtbot):
    editor = window.timeline_editor
    heads = window.config.editor("model.n_head").widget
    type_into(qtbot, heads, "3")  # 32 is not divisible by 3
    qtbot.keyClick(heads, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: not editor.editable)
    assert editor.message_text.startswith("Fix the Config form first: model.d_model")
    drag(qtbot, editor, editor.mark_lane, (100, 0.45), (140, 0.45))
    type_into(qtbot, heads, "2")
    qtbot.keyClick(heads, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: editor.editable)
    assert spec_of(window).timeline.marks[0].at == 100  # the drag while broken changed nothing
    assert spec_of(window).model.n_head == 2


def test_axis_in_percent_writes_percent_positions(window, qtbot):
    editor = window.timeline_editor
    editor.units_box.setCurrentIndex(editor.units_box.findData("%"))
    assert editor.axis.tickStrings([100.0], 1, 20)[0] == "50%"
    drag(qtbot, editor, editor.phase_lane, (150, 0.5), (121, 0.5))  # snap 1% = 2 ticks
    assert spec_of(window).timeline.phases[1].start == "60%"
    assert engine.compile_timeline(spec_of(window)).phases[1].start == 120


def test_hover_shows_exact_values(window, qtbot):
    editor = window.timeline_editor
    move(qtbot, editor, viewport_point(editor, editor.lr_lane, 30, 5e-4))
    qtbot.waitUntil(lambda: editor.hover_text.startswith("tick 30"))
    assert f"lr {lr(window, 30):.6g}" in editor.hover_text
    assert "phase pretrain" in editor.hover_text


def test_double_click_edits_a_phase(window, qtbot):
    from tests.workbench.helpers import dialog

    editor = window.timeline_editor
    click(qtbot, editor, editor.phase_lane, 170, 0.5, double=True)
    box = dialog(qtbot, editor, "itemDialog")
    type_into(qtbot, box.form.widget("freeze"), "[embed, blocks.0]")
    type_into(qtbot, box.form.widget("lr_scale"), "0.25")
    qtbot.keyClick(box.form.widget("lr_scale"), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not box.isVisible())
    phase = spec_of(window).timeline.phases[1]
    assert phase.freeze == ["embed", "blocks.0"] and phase.lr_scale == 0.25
    assert editor.doc.undo_stack.count() == 1


def test_editor_curve_equals_the_lr_the_engine_logged(tmp_path, qtbot):
    """Every tick of a short run: the LR the engine trained with is the LR the editor drew."""
    from workbench.timeline import TimelineEditor

    spec = engine.load_spec(write_spec(tmp_path))
    handle_ = engine.start_run(engine.replace(spec, {"train.threads": 1}), tmp_path / "runs")
    editor = TimelineEditor()
    qtbot.addWidget(editor)
    editor.doc.load(spec)
    handle_.join(120)
    assert handle_.status == "finished"
    ticks, logged = engine.RunRecord(handle_.run_dir).scalars("lr")
    drawn = drawn_lr(editor)
    assert list(ticks) == list(range(spec.train.steps))
    assert np.array_equal(drawn[ticks], logged)


def test_cursor_follows_a_run_and_the_past_is_shaded(make_main_window, tmp_path, qtbot):
    from tests.workbench.helpers import RUN_TIMEOUT_MS, button
    from tests.workbench.helpers import click as click_button

    window = make_main_window()
    window.files.load(write_spec(tmp_path))
    editor = window.timeline_editor
    cursor, past = editor.cursors[0], editor.pasts[0]
    with qtbot.waitSignal(window.session.ended, timeout=RUN_TIMEOUT_MS):
        click_button(qtbot, button(window, "runButton"))
        qtbot.waitUntil(lambda: cursor.isVisible() and cursor.value() > 0, timeout=RUN_TIMEOUT_MS)
        assert editor.live and editor.editable  # edits steer the run (tests/workbench/test_steer)
        assert past.isVisible() and past.getRegion()[1] == cursor.value() + 0.5
    assert not cursor.isVisible() and not past.isVisible() and not editor.live


def to_timeline(spec):
    import dataclasses

    return dataclasses.replace(spec.timeline, marks=[])


def test_a_constant_lr_is_drawn_from_zero_up_to_it(window, qtbot):
    """With no segments the LR is train.lr throughout: the axis runs from 0 past it (it was
    centred in ±0.5, a 3e-4 line drawn on the zero line)."""
    flat = {"timeline.lr": [], "timeline.phases": [], "train.lr": 3e-4}
    window.files.show_spec(engine.replace(spec_of(window), flat), None)
    editor = window.timeline_editor
    qtbot.waitUntil(lambda: np.allclose(drawn_lr(editor), 3e-4))
    low, high = editor.lr_lane.vb.viewRange()[1]
    assert -1e-4 < low <= 0.0 and 3e-4 < high < 5e-4


def test_an_ln_event_on_one_kind_of_norm_says_which():
    from workbench.timeline.norm_lane import describe

    ev = engine.NormEvent(at=30, action="set", strength=0.0, sites="mlp", stagger=15)
    assert describe(ev) == "set strength 0.0 · layers all (mlp norms), stagger 15"
    assert "norms" not in describe(engine.NormEvent(at=3, action="set", strength=0.0))
    sigma = engine.NormEvent(at=0, action="sigma", sigma=1.0)
    assert describe(sigma).startswith("sigma σ̄ = 1.0")
