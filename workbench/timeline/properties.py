"""The numeric properties of one timeline item: a side panel for the selection, and the same
form in a dialog on double-click.

Fields are generated from the item's dataclass (help text as tooltips). A value is typed as it
would be written in the YAML (``1.0e-3``, ``"25%"``, ``[0, 1]``, ``{source: text, path: x}``)
and the item is rebuilt by the engine's own loader (``engine.from_dict``), so a field
accepts exactly what a spec file accepts and a mistake is reported with the engine's message.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, get_args, get_origin

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

import engine
from engine import from_dict, to_dict

IDLE_HINT = (
    "Click an item to see and edit its values here.<br><br>"
    "<b>Wheel</b> zoom · <b>drag</b> empty space: pan · <b>drag</b> a handle: move it (onto "
    "the snap grid) · <b>right-click</b>: add, split, delete · <b>double-click</b>: edit · "
    "<b>Delete</b> · <b>Ctrl+Z</b> / <b>Ctrl+Shift+Z</b>"
)
HINTS = {
    "phases": "Drag a boundary to move it; right-click to split, add or delete a phase.",
    "lr": "Drag the ends in the segments strip and the values on the curve; the palette "
    "changes the shape. Points: click on the curve to add one, Delete removes the selected.",
    "layernorm": "Drag a marker to move the event, a ramp's end to change over. stagger K "
    "fires the i-th layer K·i ticks later.",
    "marks": "Drag to move; every: K repeats after ticks K-1, 2K-1, ...",
    "batch": "Sequences per tick (whole numbers). Drag the ends in the batch lane; the palette "
    "changes the shape. Outside the segments train.batch_size holds.",
    "prune": "Sparsity rises from 'from' to 'to' along a cubic over [start, end), pruning every "
    "'every' ticks. Drag the ends in the compress lane.",
    "quantize": "QAT int8 from this tick to the end of the run. Drag the marker to move it.",
}


def _choices(tp) -> tuple[list, bool] | None:
    """(Literal choices, optional) for a Literal field, else None."""
    args = get_args(tp)
    optional = type(None) in args
    inner = [a for a in args if a is not type(None)] if optional else [tp]
    if len(inner) == 1 and get_origin(inner[0]) is Literal:
        return list(get_args(inner[0])), optional
    return None


def _is_text(tp) -> bool:
    """A free-text field (name, note text, init_from): taken as typed, never parsed as YAML."""
    return tp is str or (get_origin(tp) is not None and set(get_args(tp)) == {str, type(None)})


def show_value(value: Any) -> str:
    if value is None:
        return ""
    if dataclasses.is_dataclass(value):
        value = to_dict(value, compact=True)
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    # a bare scalar (an int, a bool) is dumped as a document with its end marker: "40\n...\n"
    return text.removesuffix("...\n").strip()


class PropertyForm(QWidget):
    """Editable fields of ``item``; ``item()`` returns the edited copy (ConfigError if a value
    is not one the spec accepts). ``committed`` fires when the user finishes one field."""

    committed = Signal()

    def __init__(self, original, path: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.original, self.path = original, path
        self._hints = typing.get_type_hints(type(original))
        self._widgets: dict[str, tuple[QWidget, Any]] = {}
        self._shown: dict[str, str] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for f in dataclasses.fields(original):
            key = f.name.rstrip("_")
            widget = self._make(f, getattr(original, f.name))
            widget.setObjectName(f"prop:{key}")
            widget.setToolTip(f"{key}: {f.metadata.get('help', '')}")
            label = QLabel(key)
            label.setToolTip(widget.toolTip())
            form.addRow(label, widget)
            self._widgets[key] = (widget, self._hints[f.name])

    def _make(self, f: dataclasses.Field, value) -> QWidget:
        tp = self._hints[f.name]
        choices = _choices(tp)
        if choices is not None:
            combo = QComboBox()
            options, optional = choices
            for option in ([None] if optional else []) + options:
                combo.addItem("" if option is None else str(option), option)
            combo.setCurrentIndex(max(combo.findData(value), 0))
            # as narrow as the panel: a combo sized to its longest choice would widen it
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(6)
            combo.activated.connect(lambda _: self.committed.emit())
            return combo
        if tp is bool:
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(lambda _: self.committed.emit())
            return box
        line = QLineEdit(show_value(value))
        line.setCursorPosition(0)  # a value wider than the field shows its start, not its end
        key = f.name.rstrip("_")
        self._shown[key] = line.text()
        line.editingFinished.connect(lambda: self._finished(key, line))
        return line

    def _finished(self, key: str, line: QLineEdit) -> None:
        if line.text() != self._shown.get(key):  # focus leaving an unchanged field: no edit
            self._shown[key] = line.text()
            self.committed.emit()

    def widget(self, key: str) -> QWidget:
        return self._widgets[key][0]

    def item(self):
        """The item with the values in the form, checked by the engine's loader."""
        data = to_dict(self.original)
        for key, (widget, tp) in self._widgets.items():
            if isinstance(widget, QComboBox):
                data[key] = widget.currentData()
            elif isinstance(widget, QCheckBox):
                data[key] = widget.isChecked()
            else:
                data[key] = self._parse(widget.text(), tp, f"{self.path}.{key}")
        return from_dict(type(self.original), data, self.path)

    @staticmethod
    def _parse(text: str, tp, path: str):
        optional = type(None) in get_args(tp)
        if not text.strip():
            return None if optional else ("" if _is_text(tp) else None)
        if _is_text(tp):
            return text
        try:
            return engine.load_yaml(text)
        except engine.ConfigError:
            raise engine.ConfigError(path, f"not a value the YAML reads: {text!r}") from None


class PropertiesPanel(QWidget):
    """The selected item's fields; each finished field is one edit."""

    def __init__(self, editor, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("timelineProperties")
        self.editor = editor
        self.title = QLabel("Nothing selected")
        self.title.setObjectName("propertiesTitle")
        self.title.setWordWrap(True)
        self.hint = QLabel(IDLE_HINT)
        self.hint.setWordWrap(True)
        self.hint.setProperty("role", "muted")
        self.error = QLabel()
        self.error.setObjectName("propertiesError")
        self.error.setWordWrap(True)
        self.error.setProperty("role", "error")
        self.error.hide()
        self.form: PropertyForm | None = None
        self._holder = QVBoxLayout()
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(4, 4, 4, 4)
        for w in (self.title, self.error):
            layout.addWidget(w)
        layout.addLayout(self._holder)
        layout.addWidget(self.hint)
        layout.addStretch(1)
        # the fields take the panel's width and never scroll sideways (a horizontal bar hid
        # the values at 1280x800); long text wraps, long values show their start
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        self.scroll = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._sel = None

    def show_item(self, sel, item, title: str) -> None:
        """Show ``item`` (selection ``sel``), or nothing when ``item`` is None."""
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
            self.form = None
        self._sel = sel
        self.error.hide()
        if item is None:
            self.title.setText("Nothing selected")
            self.hint.setText(IDLE_HINT)
            return
        self.title.setText(f"<b>{title}</b>")
        self.hint.setText(HINTS.get(sel.kind, ""))
        self.form = PropertyForm(item, f"timeline.{sel.kind}[{sel.index or 0}]")
        self.form.setEnabled(self.editor.editable)
        self.form.committed.connect(self._commit)
        self._holder.addWidget(self.form)

    def _commit(self) -> None:
        try:
            item = self.form.item()
        except engine.ConfigError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.error.hide()
        self.editor.replace(self._sel, item)


class ItemDialog(QDialog):
    """The properties of one item in a dialog (double-click); OK applies them as one edit."""

    def __init__(self, editor, sel, item, title: str):
        super().__init__(editor)
        self.setObjectName("itemDialog")
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.editor, self.sel = editor, sel
        self.form = PropertyForm(item, f"timeline.{sel.kind}[{sel.index or 0}]")
        self.error = QLabel()
        self.error.setObjectName("itemDialogError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff4d4f")
        self.error.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def _ok(self) -> None:
        try:
            item = self.form.item()
        except engine.ConfigError as exc:
            self._fail(str(exc))
            return
        if self.editor.replace(self.sel, item):
            self.accept()
        else:
            self._fail(self.editor.message_text)

    def _fail(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
