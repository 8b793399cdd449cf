"""The Timeline editor's batch and compression lanes (#19), driven with the mouse on the real
window: the batch curve is the engine's, handles move the items they stand for (through the
document: snapped, undoable), and a spec without these lists shows no new lanes."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

import engine
from tests.workbench.timeline_helpers import (
    TIMELINE_YAML,
    choose,
    click,
    drag,
    handle,
    move,
    open_menu,
    set_property,
    viewport_point,
    write_spec,
)
from workbench.timeline.document import item_of
from workbench.timeline.lanes import Selection
from workbench.timeline.status import describe_tick

LEVERS = """\
  batch:
    - {start: 0, end: 80, shape: linear, from: 2, to: 8}
  prune:
    - {start: 50, end: 150, every: 10, to: 0.5, params: [blocks], name: blocks}
  quantize:
    - {at: 120, mode: qat}
"""


@pytest.fixture
def window(make_main_window, tmp_path):
    w = make_main_window()
    assert w.files.load(write_spec(tmp_path, TIMELINE_YAML + LEVERS))
    return w


def spec_of(window) -> engine.RunSpec:
    spec = window.config.spec
    assert spec is not None, window.config.error
    return spec


def undo(qtbot, editor) -> None:
    editor.view.setFocus()
    qtbot.keyClick(editor.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def test_the_batch_lane_draws_the_engines_curve_and_moves_segment_ends(window, qtbot):
    editor = window.timeline_editor
    lane = editor.batch_lane
    assert lane.heights()[0] > 0 and lane.plot.isVisible()
    drawn = lane.curve.getData()[1]
    want = engine.compile_timeline(spec_of(window)).batch_curve()
    assert np.array_equal(drawn, want)
    assert (drawn[0], drawn[79], drawn[80]) == (2, 8, 4)  # train.batch_size after the ramp
    end = handle(lane, ("batch", 0, "end"))
    assert end.view_pos.x() == 80
    editor.snap_box.setCurrentIndex(editor.snap_box.findData(10))
    drag(qtbot, editor, lane, (80, 0.5), (118.6, 0.5))
    assert spec_of(window).timeline.batch[0].end == 120
    assert np.array_equal(
        lane.curve.getData()[1], engine.compile_timeline(spec_of(window)).batch_curve()
    )
    assert editor.selection == Selection("batch", 0)
    set_property(qtbot, editor, "to", "16")  # the properties panel edits the selected segment
    assert spec_of(window).timeline.batch[0].to == 16
    assert lane.curve.getData()[1][119] == 16
    qtbot.mouseClick(editor.palette_buttons["cosine"], Qt.MouseButton.LeftButton)  # the palette
    seg = spec_of(window).timeline.batch[0]
    assert (seg.shape, seg.from_, seg.to, seg.end) == ("cosine", 2, 16, 120)
    assert np.array_equal(
        lane.curve.getData()[1], engine.compile_timeline(spec_of(window)).batch_curve()
    )


def test_drag_a_pruning_end_snaps_and_undoes(window, qtbot):
    editor = window.timeline_editor
    lane = editor.compression_lane
    assert lane.heights()[0] > 0
    span = lane.pool.items[("prune", 0)]
    assert span.text == "prune blocks 0→50%"
    assert (span.rect.left(), span.rect.right()) == (50, 150)
    assert handle(lane, ("prune", 0, "end")).view_pos.x() == 150
    y = handle(lane, ("prune", 0, "end")).view_pos.y()
    editor.snap_box.setCurrentIndex(editor.snap_box.findData(10))
    drag(qtbot, editor, lane, (150, y), (178.2, y))
    assert spec_of(window).timeline.prune[0].end == 180
    assert span.rect.right() == 180
    assert editor.doc.undo_stack.count() == 1
    undo(qtbot, editor)
    assert spec_of(window).timeline.prune[0].end == 150
    assert handle(lane, ("prune", 0, "end")).view_pos.x() == 150


def test_drag_the_quantize_marker(window, qtbot):
    editor = window.timeline_editor
    lane = editor.compression_lane
    marker = handle(lane, ("quantize", 0, "at"))
    assert marker.view_pos.x() == 120
    y = marker.view_pos.y()
    editor.snap_box.setCurrentIndex(editor.snap_box.findData(10))
    drag(qtbot, editor, lane, (120, y), (161, y))
    assert spec_of(window).timeline.quantize[0].at == 160
    edges = engine.compile_timeline(spec_of(window)).from_source("timeline.quantize[0]")
    assert [e.tick for e in edges] == [160] and marker.view_pos.x() == 160
    assert editor.selection == Selection("quantize", 0)


def test_the_properties_panel_edits_a_pruning_group(window, qtbot):
    editor = window.timeline_editor
    lane = editor.compression_lane
    click(qtbot, editor, lane, 100, handle(lane, ("prune", 0, "end")).view_pos.y())
    assert editor.selection == Selection("prune", 0)
    set_property(qtbot, editor, "to", "0.8")
    assert lane.pool.items[("prune", 0)].text == "prune blocks 0→80%"
    set_property(qtbot, editor, "from", "0.9")  # refused: masks only grow
    assert "timeline.prune[0].to" in editor.message_text
    assert "not applied" in editor.message_text
    assert spec_of(window).timeline.prune[0].from_ == 0.0
    # an error in one of the new lists names its item, which the lane then marks
    for path, item in (
        ("timeline.prune[0].end", ("prune", 0)),
        ("timeline.quantize[0].at", ("quantize", 0)),
        ("timeline.batch[2].to", ("batch", 2)),
    ):
        assert item_of(engine.ConfigError(path, "bad")) == item


def test_a_spec_without_the_lists_shows_no_new_lanes(make_main_window, tmp_path, qtbot):
    window = make_main_window()
    assert window.files.load(write_spec(tmp_path))
    editor = window.timeline_editor
    for lane in (editor.batch_lane, editor.compression_lane):
        assert lane.heights() == (0, 0, 0)
        assert not lane.plot.isVisible()
        assert lane.plot.geometry().height() == 0
    # the LR menu adds the first pruning group; its lane appears
    menu = open_menu(qtbot, editor, editor.lr_lane, 60, 5e-4, "lrMenu")
    choose(qtbot, menu, "Add pruning here")
    prune = spec_of(window).timeline.prune
    assert [(p.start, p.end, p.to, p.params) for p in prune] == [(60, 200, 0.5, ["blocks"])]
    assert editor.compression_lane.heights()[0] > 0
    assert editor.compression_lane.plot.isVisible()
    assert editor.batch_lane.heights() == (0, 0, 0)


def test_the_new_lanes_menus_add_items(window, qtbot):
    editor = window.timeline_editor
    # a gap in the batch lane after the ramp: a constant segment at the batch the run has there
    menu = open_menu(qtbot, editor, editor.batch_lane, 150, 0.5, "batchMenu")
    choose(qtbot, menu, "Add constant batch segment here")
    batch = spec_of(window).timeline.batch
    assert [(s.start, s.end, s.shape, s.from_) for s in batch[1:]] == [(150, 200, "constant", 4)]
    assert editor.selection == Selection("batch", 1)
    # a second pruning group takes a name of its own; QAT is offered once per run
    menu = open_menu(qtbot, editor, editor.compression_lane, 20, 0.2, "compressionMenu")
    qat = next(a for a in menu.actions() if a.text() == "Add QAT here")
    assert not qat.isEnabled()
    choose(qtbot, menu, "Add pruning here")
    prune = spec_of(window).timeline.prune
    assert [(p.name, p.start, p.end) for p in prune] == [("blocks", 50, 150), ("group1", 20, 200)]
    assert ("prune", 1) in editor.compression_lane.pool.items


def test_hover_says_the_batch_and_the_scheduled_sparsity(window, qtbot):
    """(the pointer over the LR lane, which a small test window shows whole: the values are
    the tick's, whatever the lane)"""
    editor = window.timeline_editor
    move(qtbot, editor, viewport_point(editor, editor.lr_lane, 149, 5e-4))
    qtbot.waitUntil(lambda: editor.hover_text.startswith("tick 149"))
    assert "batch 4" in editor.hover_text  # train.batch_size after the ramp
    assert "sparsity blocks 50%" in editor.hover_text  # the last pruning step reaches `to`
    text = describe_tick(spec_of(window), editor.doc.compiled, editor.unit, 40)  # mid-ramp
    batch = engine.compile_timeline(spec_of(window)).batch_at(40)
    assert f"batch {batch} " in text and "sparsity blocks 0%" in text
