"""Editors generated from the run-spec dataclasses: one widget per field, chosen by its type.

``int`` -> spin box with the field's range, ``float`` -> text box (learning rates and epsilons
span too many decades for a spin box; the engine parses and checks what is typed), ``bool`` ->
check box, ``Literal[...]`` -> combo box, ``str`` -> text box (a file picker for text data),
``tuple[float, ...]`` -> one text box per item; ``list[str]`` -> comma-separated text;
``str | None`` and ``float | None`` -> text box, empty for None. Nested sections (``train.lora``)
show their fields under a heading. A field of any other type (the timeline's lists) has no
editor: the form keeps its value from the loaded spec and says so.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from workbench.dialogs import ask_open_path

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
# Free-text fields that name a file. Engine metadata has no "this is a path" marker yet.
PATH_FIELDS = {"data.path"}
TEXT_FILTER = "Text files (*.txt *.md *.py *.rst *.csv);;All files (*)"


@dataclass(frozen=True)
class FieldInfo:
    path: str  # dotted, as in ConfigError.path and engine.replace: "model.n_head"
    type: Any
    help: str
    limits: dict[str, float]

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def tooltip(self) -> str:
        words = {"min": "≥", "gt": ">", "max": "≤", "lt": "<"}
        bounds = [f"{words[k]} {v:g}" for k, v in self.limits.items()]
        suffix = f"\n\nallowed: {', '.join(bounds)}" if bounds else ""
        return f"{self.path}: {self.help}{suffix}"


def spec_fields(cls: type, prefix: str = "") -> list[FieldInfo]:
    """The fields of dataclass ``cls`` with their resolved types, help text and limits."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        limits = {k: f.metadata[k] for k in ("min", "gt", "max", "lt") if k in f.metadata}
        path = f"{prefix}.{f.name}" if prefix else f.name
        out.append(FieldInfo(path, hints[f.name], f.metadata.get("help", ""), limits))
    return out


class Editor:
    """One field's widget: ``value()`` gives what the user entered, in a form the engine's
    parser accepts (it reports anything it cannot take as a ConfigError)."""

    widget: QWidget

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def on_change(self, callback: Callable[[], None]) -> None:
        raise NotImplementedError


class IntEditor(Editor):
    def __init__(self, info: FieldInfo):
        lim = info.limits
        self.widget = QSpinBox()
        low = lim["min"] if "min" in lim else lim["gt"] + 1 if "gt" in lim else -INT_LIMIT
        high = lim["max"] if "max" in lim else lim["lt"] - 1 if "lt" in lim else INT_LIMIT
        self.widget.setRange(int(low), int(min(high, INT_LIMIT)))

    def value(self) -> int:
        return self.widget.value()

    def set_value(self, value: int) -> None:
        self.widget.setValue(value)

    def on_change(self, callback):
        self.widget.valueChanged.connect(lambda _: callback())


class TextEditor(Editor):
    """Text as typed; floats are passed as text too and parsed (and checked) by the engine.
    For an optional field (``str | None``) an empty box means None."""

    def __init__(self, info: FieldInfo):
        self.line = self.widget = QLineEdit()
        self._type, self._optional = optional_type(info.type)
        if self._optional:
            self.line.setPlaceholderText("none")

    def value(self) -> str | None:
        text = self.line.text()
        if self._type is float or self._optional:
            text = text.strip()
        return None if self._optional and not text else text

    def set_value(self, value: Any) -> None:
        if value is None:
            self.line.setText("")
        else:
            self.line.setText(repr(value) if self._type is float else str(value))
        self.line.setCursorPosition(0)  # long text (a description) shows its beginning

    def on_change(self, callback):
        self.line.textEdited.connect(lambda _: callback())


class ListEditor(TextEditor):
    """A list of names as one comma-separated line: ``attn.q, attn.kv``."""

    def value(self) -> list[str]:
        return [item.strip() for item in self.line.text().split(",") if item.strip()]

    def set_value(self, value: list[str]) -> None:
        super().set_value(", ".join(value))


class PathEditor(TextEditor):
    """A text box with a button that picks a file."""

    def __init__(self, info: FieldInfo):
        super().__init__(info)
        self.line.setPlaceholderText("builtin:python-stdlib or a text file")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Pick a text file")
        browse.setObjectName(f"browse:{info.path}")
        browse.clicked.connect(
            lambda: ask_open_path(
                self.widget.window(), "Text data", TEXT_FILTER, self._picked, "dataFileDialog"
            )
        )
        self.widget = QWidget()
        layout = QHBoxLayout(self.widget)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line, 1)
        layout.addWidget(browse)

    def _picked(self, path: str) -> None:
        self.line.setText(path)
        self.line.textEdited.emit(path)  # a pick is an edit: validate it like typing


class TupleEditor(Editor):
    def __init__(self, info: FieldInfo):
        self.widget = QWidget()
        layout = QHBoxLayout(self.widget)
        layout.setContentsMargins(0, 0, 0, 0)
        self.items = [TextEditor(FieldInfo(info.path, float, "", {})) for _ in get_args(info.type)]
        for item in self.items:
            layout.addWidget(item.widget)

    def value(self) -> list[str]:
        return [item.value() for item in self.items]

    def set_value(self, value) -> None:
        for item, v in zip(self.items, value):
            item.set_value(v)

    def on_change(self, callback):
        for item in self.items:
            item.on_change(callback)


class BoolEditor(Editor):
    def __init__(self, info: FieldInfo):
        self.widget = QCheckBox()

    def value(self) -> bool:
        return self.widget.isChecked()

    def set_value(self, value: bool) -> None:
        self.widget.setChecked(value)

    def on_change(self, callback):
        self.widget.toggled.connect(lambda _: callback())


class ChoiceEditor(Editor):
    def __init__(self, info: FieldInfo):
        self.widget = QComboBox()
        self.widget.addItems([str(a) for a in get_args(info.type)])

    def value(self) -> str:
        return self.widget.currentText()

    def set_value(self, value: str) -> None:
        self.widget.setCurrentText(value)

    def on_change(self, callback):
        self.widget.currentIndexChanged.connect(lambda _: callback())


def optional_type(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    args = get_args(tp)
    if get_origin(tp) in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def editor_class(info: FieldInfo) -> type[Editor] | None:
    """The editor type for a field, or None when the form does not edit its type."""
    tp, optional = optional_type(info.type)
    origin = get_origin(tp)
    if optional:
        return TextEditor if tp in (str, float) else None
    if origin is Literal:
        return ChoiceEditor
    if origin is tuple and all(a is float for a in get_args(tp)):
        return TupleEditor
    if origin is list and get_args(tp) == (str,):
        return ListEditor
    if tp is str and info.path in PATH_FIELDS:
        return PathEditor
    return {bool: BoolEditor, int: IntEditor, float: TextEditor, str: TextEditor}.get(tp)


def editable(info: FieldInfo) -> bool:
    """Whether the form edits this field (or, for a nested section, any field in it)."""
    if dataclasses.is_dataclass(info.type):
        return any(editable(sub) for sub in spec_fields(info.type, info.path))
    return editor_class(info) is not None


def make_editor(info: FieldInfo) -> Editor | None:
    cls = editor_class(info)
    if cls is None:
        return None
    editor = cls(info)
    editor.widget.setObjectName(f"field:{info.path}")
    editor.widget.setToolTip(info.tooltip())
    return editor
