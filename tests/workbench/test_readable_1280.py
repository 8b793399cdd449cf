"""Readable at 1280x800 (issue #15 §4): the real window at a laptop's size, shown what made it
unreadable there. A 12-layer model's LayerNorm lane, an edit with a long name, the Timeline's
properties panel, a Runs table of typical runs and a confusion matrix of four classes: every
label is whole, inside its space and clear of its neighbours, and nothing scrolls sideways."""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF
from PySide6.QtGui import QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QScrollArea, QStyleOptionViewItem, QToolButton

import engine
from engine.runs import RunWriter
from tests.engine.helpers import tiny_spec
from tests.workbench.classify_helpers import eval_values, write_classify_run
from workbench.runs.model import COLUMNS
from workbench.runs.panel import CAPPED_CHARS
from workbench.spec.presets import DEFAULT_PRESETS_DIR
from workbench.timeline import edits
from workbench.timeline.lanes import Selection

SIZE = (1280, 800)
LONG_EDIT = "change how long every LayerNorm of the model takes to ramp down to nothing"
CLASSES = ["comment", "definition", "import", "statement"]


@pytest.fixture
def laptop(make_main_window, qtbot):
    """A main window at 1280x800, laid out."""

    def make():
        window = make_main_window()
        window.resize(*SIZE)
        qtbot.waitUntil(lambda: window.size().toTuple() == SIZE, timeout=5000)
        return window

    return make


def deep_spec(n_layer: int = 12) -> engine.RunSpec:
    """A model with ``n_layer`` blocks whose LayerNorm is removed block by block from 50%."""
    ramp = {"at": "50%", "action": "ramp", "to": 0.0, "over": 60, "layers": "all", "stagger": 40}
    return tiny_spec(
        name="deep",
        model={"n_layer": n_layer},
        train={"steps": 1200},
        timeline={"layernorm": [ramp]},
    )


def show_timeline(qtbot, window, spec: engine.RunSpec):
    window.files.show_spec(spec, None)
    window.timeline_dock.raise_()
    editor = window.timeline_editor
    qtbot.waitUntil(lambda: len(editor.norm_lane.rows) == spec.model.n_layer + 1, timeout=5000)
    qtbot.waitUntil(lambda: editor.norm_lane.vb.height() > 0, timeout=5000)
    return editor


def settle(qtbot, window) -> None:
    """Wait for the window's background work (the parameter estimate after a spec change,
    which redraws the editor) and a relayout."""
    qtbot.waitUntil(
        lambda: not window.tasks.busy and not window.config.estimate_pending, timeout=20_000
    )
    qtbot.wait(100)


def axis_labels(axis) -> list[tuple[str, QRectF]]:
    """(text, rect) of every label the axis draws, as pyqtgraph lays them out to paint."""
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        if axis.style["tickFont"] is not None:
            painter.setFont(axis.style["tickFont"])
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(text, rect) for rect, _, text in texts if text.strip()]


def ink(axis, text: str, rect: QRectF) -> QRectF:
    """Where a label's letters are: pyqtgraph writes it in a box a line high per line (its
    rects are 80% of that), centred on the tick (left axis) or from the rect's top after the
    empty lines it starts with (bottom axis)."""
    fm = QFontMetrics(axis.style["tickFont"] or axis.font())
    line = text.lstrip("\n")
    if axis.orientation == "bottom":
        top = rect.top() + (len(text) - len(line)) * fm.height()
    else:
        top = rect.center().y() - fm.height() / 2
    letters = QRectF(fm.tightBoundingRect(line))  # around the baseline
    letters.moveCenter(QPointF(rect.center().x(), letters.center().y() + top + fm.ascent()))
    return letters


def assert_apart(axis, labels: list[tuple[str, QRectF]]) -> None:
    lines = [(text, ink(axis, text, rect)) for text, rect in labels]
    for (a, ra), (b, rb) in combinations(lines, 2):
        overlap = ra.intersected(rb)
        assert overlap.width() < 0.5 or overlap.height() < 0.5, (a, ra, b, rb)


# --- the Timeline editor ---
def test_undo_stays_short_and_nothing_scrolls_sideways_after_a_long_edit(laptop, qtbot):
    window = laptop()
    editor = show_timeline(qtbot, window, deep_spec())
    editor.select(Selection("layernorm", 0))  # the properties panel fills with the event
    undo = window.findChild(QToolButton, "timelineUndo")
    width = undo.width()
    timeline = edits.replace_item(editor.doc.timeline, "layernorm", 0, over=50)
    assert editor.commit(timeline, LONG_EDIT)
    qtbot.waitUntil(lambda: editor.undo_action.isEnabled(), timeout=2000)
    settle(qtbot, window)  # the edit reaches the Config form, its estimate, the panel's relayout

    outer = next(a for a in editor.findChildren(QScrollArea) if a.widget().isAncestorOf(undo))
    props = editor.properties.scroll
    assert not outer.horizontalScrollBar().isVisible()
    assert not props.horizontalScrollBar().isVisible()
    # Undo, Redo and Fit whole in the dock; every field whole in the properties panel
    view = outer.viewport()
    for name in ("timelineUndo", "timelineRedo", "timelineFit"):
        button = window.findChild(QToolButton, name)
        right = button.mapTo(view, QPoint(button.width(), 0)).x()
        assert 0 < right <= view.width(), name
    assert undo.text() == "Undo" and undo.width() == width  # the edit's name is in the tooltip
    assert LONG_EDIT in editor.undo_action.toolTip()
    fields = editor.properties.form
    assert fields.widget("over").text() == "50" and fields.widget("stagger").text() == "40"
    for key in ("at", "layers", "stagger", "over", "shape"):
        field = fields.widget(key)
        right = field.mapTo(props.viewport(), QPoint(field.width(), 0)).x()
        assert right <= props.viewport().width(), key
        assert field.width() >= 8 * field.fontMetrics().averageCharWidth(), key


@pytest.mark.parametrize("n_layer", [4, 12])
def test_layernorm_row_titles_do_not_overlap(laptop, qtbot, n_layer):
    window = laptop()
    editor = show_timeline(qtbot, window, deep_spec(n_layer))
    lane = editor.norm_lane
    axis = lane.plot.getAxis("left")
    labels = axis_labels(axis)
    assert_apart(axis, labels)
    titles = [text for text, _ in labels]
    assert titles[0] == "LN 0" and titles[-1] == "LN final"
    if n_layer == 4:  # a few rows: every one titled
        assert titles == ["LN 0", "LN 1", "LN 2", "LN 3", "LN final"]
    else:  # every k-th (k as small as the room allows), and the final norm
        assert len(titles) >= 5
        k = int(titles[1].split()[1])
        assert titles[:-1] == [f"LN {r}" for r in range(0, n_layer, k)][: len(titles) - 1]


# --- the Runs table ---
def write_run(folder: Path, spec: engine.RunSpec, ticks: int, **meta) -> Path:
    """A finished run folder as the engine leaves one: spec, metadata, a loss per eval."""
    folder.mkdir(parents=True)
    engine.save_spec(spec, folder / "spec.yaml")
    writer = RunWriter(folder)
    writer.set_meta(name=spec.name, steps=ticks, started=time.time() - 3725, **meta)
    for tick in range(0, ticks, 100):
        writer.scalars(tick, {"train/loss": 2.0, "val/loss": 1.2345, "tokens_per_s": 123_456.0})
    writer.scalars(ticks - 1, {"train/loss": 1.5, "val/loss": 1.1234})
    writer.set_status("finished", ticks)
    writer.close()
    return folder


def test_runs_table_columns_fit_their_text_and_name_the_preset(laptop, qtbot, tmp_path):
    runs = tmp_path / "runs"  # the fixture's window reads this folder
    write_run(runs / "sort-seq2seq-1", tiny_spec(name="sort-seq2seq"), 1500)
    window = laptop()
    window.runs_dock.raise_()
    table, model = window.runs.table, window.runs.model
    # runs that appear while the window is open (trained meanwhile, by it or elsewhere)
    baby = engine.load_spec(DEFAULT_PRESETS_DIR / "baby-gpt.yaml")
    edited = engine.replace(baby, {"name": "wider-baby", "model.d_model": 256})
    write_run(runs / "wider-baby-1", edited, 2000)  # a preset edited in the window, renamed
    study = runs / "my-study-20261207-000000"
    study.mkdir(parents=True)
    (study / "study.yaml").write_text("study: my-study\nvariants: {}\n", encoding="utf-8")
    long = "layernorm-vs-rmsnorm-vs-none-layernorm-with-a-long-suffix"
    write_run(study / "variant", tiny_spec(name=long), 600)
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=5000)

    option = QStyleOptionViewItem()
    table.initViewItemOption(option)
    char = table.fontMetrics().averageCharWidth()
    for col, name in enumerate(COLUMNS[:-1]):  # the last one stretches to the edge
        width = table.columnWidth(col)
        assert width >= table.horizontalHeader().sectionSizeHint(col), name
        for row in range(model.rowCount()):
            index = model.index(row, col)
            needs = table.itemDelegate().sizeHint(option, index).width()
            if name in CAPPED_CHARS and needs > CAPPED_CHARS[name] * char:
                assert index.data() == long and width >= CAPPED_CHARS[name] * char
            else:
                assert width >= needs, (name, index.data(), width, needs)
    # the preset: a study's name, a library preset whose spec it was, else the spec's name
    preset = {row.name: row.preset for row in model.rows}
    assert preset == {"wider-baby": "baby-gpt", "sort-seq2seq": "sort-seq2seq", long: "my-study"}


def test_the_diff_wraps_long_values_instead_of_cutting_them(laptop, qtbot, tmp_path):
    """Two runs whose LayerNorm events differ (the values the Diff dock cut to "tic..."): every
    value is whole in its cell, wrapped onto as many lines as it needs."""
    runs = tmp_path / "runs"
    warm = {"at": 0, "action": "set", "layers": "all", "strength": 0.0}
    ramp = {"at": 100, "action": "ramp", "layers": "all", "to": 1.0, "over": 300}
    a = write_run(runs / "plain-1", tiny_spec(name="plain", train={"steps": 500}), 500)
    note = {"at": 250, "text": "halfway: the LayerNorm ramp is done and the loss should have "
            "recovered from the warm start; compare it with the plain run here"}  # fmt: skip
    timeline = {"layernorm": [warm, ramp], "marks": [note]}
    warmed = tiny_spec(name="warmed", train={"steps": 500}, timeline=timeline)
    b = write_run(runs / "warmed-1", warmed, 500)
    window = laptop()
    window.runs.select([a, b])
    window.diff_dock.raise_()
    table = window.runs.diff_view.table
    qtbot.waitUntil(lambda: table.rowCount() >= 3 and table.isVisible(), timeout=5000)
    metrics = table.fontMetrics()
    longest = 0
    for row in range(table.rowCount()):
        for col in range(table.columnCount()):
            index = table.model().index(row, col)
            room = table.visualRect(index)
            option = QStyleOptionViewItem()
            table.initViewItemOption(option)
            option.rect = room
            needs = table.itemDelegate().sizeHint(option, index)  # as the view lays it out
            assert needs.height() <= room.height(), (index.data(), room, needs)
            if col >= 2:
                longest = max(longest, metrics.horizontalAdvance(index.data()) - room.width())
    assert longest > table.columnWidth(2)  # a value more than twice its column's width
    assert table.horizontalScrollBar().maximum() == 0  # every run's column in view


# --- the confusion matrix ---
def test_four_class_names_fit_under_and_beside_the_confusion_matrix(laptop, qtbot, tmp_path):
    confusion = [[50, 0, 4, 13], [2, 64, 0, 6], [5, 0, 35, 0], [10, 12, 0, 55]]
    run = write_classify_run(
        tmp_path / "runs" / "lines", "python-lines", {29: eval_values(confusion)}, CLASSES
    )
    window = laptop()
    window.runs_dock.raise_()
    window.tabs.setCurrentWidget(window.plots.metrics_tab)
    window.runs.select([run])
    view = window.plots.classify
    qtbot.waitUntil(lambda: view.isVisible() and view.classes == CLASSES, timeout=5000)
    plot = view.matrix.getPlotItem()
    bottom, left = plot.getAxis("bottom"), plot.getAxis("left")

    def drawn() -> bool:  # the axes take the room their names need when they are painted
        view.matrix.grab()
        return all(len(axis_labels(axis)) == len(CLASSES) for axis in (bottom, left))

    qtbot.waitUntil(drawn, timeout=5000)
    for axis in (bottom, left):
        labels = axis_labels(axis)
        assert [text.lstrip("\n") for text, _ in labels] == CLASSES  # whole names, all drawn
        assert_apart(axis, labels)
    # inside the plot widget: not cut by its edge, nor drawn over the axis title
    scene = view.matrix.viewport().rect()
    title = bottom.label.mapRectToScene(bottom.label.boundingRect())
    for text, rect in axis_labels(bottom):
        line = bottom.mapRectToScene(ink(bottom, text, rect))
        assert scene.left() <= line.left() and line.right() <= scene.right(), text
        assert line.bottom() <= title.top() + 2, text
