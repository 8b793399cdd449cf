"""The Config panel: generated from the spec dataclasses, validated by the engine as you type."""

from __future__ import annotations

import dataclasses
import typing

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox, QToolButton

import engine
from engine.config import RunSpec
from engine.data import build_task
from engine.estimate import count_trainable
from tests.workbench.helpers import button, click, dialog, type_into


def _leaf_fields(cls: type, prefix: str = "") -> dict[str, tuple[dataclasses.Field, object]]:
    """(field, resolved type) of every non-section field under ``cls`` by dotted path."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(_leaf_fields(hints[f.name], path))
        else:
            out[path] = (f, hints[f.name])
    return out


def test_every_spec_field_has_a_fitting_widget_with_help_and_range(make_main_window):
    panel = make_main_window().config
    fields = {p: f for p, f in _leaf_fields(RunSpec).items() if not p.startswith("timeline.")}
    assert {"model.n_head", "data.path", "train.lr", "train.betas", "seed"} <= set(fields)
    kept = set(panel.kept)
    assert "timeline" in kept  # edited by the timeline editor, kept as loaded meanwhile
    for path, (f, _) in fields.items():
        if path in kept:  # a type the form does not edit yet: listed under the form, not lost
            continue
        editor = panel.editor(path)
        assert f.metadata["help"] in editor.widget.toolTip(), path
        if isinstance(editor.widget, QSpinBox):
            meta = f.metadata
            low = meta["min"] if "min" in meta else meta["gt"] + 1 if "gt" in meta else None
            if low is not None:
                assert editor.widget.minimum() == low, path
            if "max" in meta:
                assert editor.widget.maximum() == meta["max"], path
    for path, (_, tp) in fields.items():  # every scalar field is edited, none merely kept
        if tp in (int, float, str, bool) or typing.get_origin(tp) is typing.Literal:
            assert path not in kept, path
    assert isinstance(panel.editor("model.n_layer").widget, QSpinBox)
    assert isinstance(panel.editor("model.activation").widget, QComboBox)
    assert isinstance(panel.editor("model.bias").widget, QCheckBox)
    assert isinstance(panel.editor("train.lr").widget, QLineEdit)
    assert panel.editor("model.n_layer").widget.maximum() == 48
    assert panel.editor("train.steps").widget.minimum() == 1  # gt=0
    combo = panel.editor("model.activation").widget
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "gelu",
        "gelu_tanh",
        "relu",
        "tanh",
        "sigmoid",
        "swiglu",
    ]


def test_invalid_value_shows_the_engine_message_and_disables_run(
    qtbot, make_main_window, tiny_spec_file
):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    run = button(window, "runButton")
    qtbot.waitUntil(run.isEnabled)

    n_head = window.config.editor("model.n_head").widget
    type_into(qtbot, n_head, "3")
    label = window.config.error_label("model.d_model")
    qtbot.waitUntil(label.isVisible)
    assert label.text() == "model.d_model: 32 is not divisible by n_head=3"
    assert not run.isEnabled()
    assert window.config.spec is None

    type_into(qtbot, n_head, "4")
    qtbot.waitUntil(lambda: not label.isVisible())
    assert run.isEnabled()
    assert window.config.spec.model.n_head == 4


def test_typed_numbers_are_parsed_and_checked_by_the_engine(
    qtbot, make_main_window, tiny_spec_file
):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    lr = window.config.editor("train.lr").widget
    type_into(qtbot, lr, "fast")
    label = window.config.error_label("train.lr")
    qtbot.waitUntil(label.isVisible)
    assert label.text() == "train.lr: expected a number, got 'fast'"
    assert not button(window, "runButton").isEnabled()

    type_into(qtbot, lr, "3e-4")
    qtbot.waitUntil(lambda: window.config.spec is not None)
    assert window.config.spec.train.lr == 3e-4
    assert not label.isVisible()

    dropout = window.config.editor("model.dropout").widget
    type_into(qtbot, dropout, "1.5")
    assert window.config.error_label("model.dropout").text() == (
        "model.dropout: must be < 1.0, got 1.5"
    )


def test_parameter_count_and_memory_follow_the_form(qtbot, make_main_window, tiny_spec_file):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    qtbot.waitUntil(lambda: not window.config.estimate_pending, timeout=10_000)
    before = window.config.params_label.text()

    with qtbot.waitSignal(window.config.estimated, timeout=10_000):
        type_into(qtbot, window.config.editor("model.d_model").widget, "64")
    spec = window.config.spec
    vocab = build_task(spec.data, spec.model).vocab_size
    params = engine.count_params(spec.model, vocab)
    assert f"({params:,})" in window.config.params_label.text()
    assert window.config.params_label.text() != before
    assert "to train" in window.config.memory_label.text()


def test_lora_rank_shows_the_trainable_count(qtbot, make_main_window, tiny_spec_file):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    qtbot.waitUntil(lambda: not window.config.estimate_pending, timeout=10_000)
    assert "trainable" not in window.config.params_label.text()  # all of them: nothing to say
    with qtbot.waitSignal(window.config.estimated, timeout=10_000):
        type_into(qtbot, window.config.editor("train.lora.rank").widget, "4")
    spec = window.config.spec
    vocab = build_task(spec.data, spec.model).vocab_size
    trainable = count_trainable(spec.model, vocab, spec.train.lora)
    assert 0 < trainable < engine.count_params(spec.model, vocab)
    assert f"{trainable:,} trainable (LoRA)" in window.config.params_label.text()


def test_a_missing_text_file_is_reported_under_data_path(
    qtbot, make_main_window, tiny_spec_file, tmp_path
):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    path_edit = window.config.editor("data.path").line
    type_into(qtbot, path_edit, str(tmp_path / "missing.txt"))
    label = window.config.error_label("data.path")
    qtbot.waitUntil(label.isVisible, timeout=10_000)
    assert label.text().startswith("data.path: ")
    assert not button(window, "runButton").isEnabled()


def test_file_picker_fills_the_text_data_path(qtbot, make_main_window, tiny_spec_file, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello tickbench, a tiny corpus\n" * 500, encoding="utf-8")
    window = make_main_window()
    window.files.load(tiny_spec_file)
    qtbot.waitUntil(lambda: not window.config.estimate_pending, timeout=10_000)

    click(qtbot, window.findChild(QToolButton, "browse:data.path"))
    picker = dialog(qtbot, window, "dataFileDialog")
    with qtbot.waitSignal(window.config.estimated, timeout=10_000):
        picker.selectFile(str(corpus))
        picker.accept()
    spec = window.config.spec
    assert spec.data.path == str(corpus)
    vocab = build_task(spec.data, spec.model).vocab_size
    assert vocab < 30  # the characters of the file, not of the built-in corpus
    assert f"vocab {vocab}" in window.config.params_label.text()
