"""The Config dock: a form generated from the run-spec dataclasses, validated as you type.

Every edit rebuilds the spec through the engine (``engine.replace``), so the form accepts
exactly what the YAML loader accepts and shows the engine's own ConfigError text under the field
it names. A valid spec gets a parameter count and memory estimate, computed off the GUI thread.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

import engine
from engine import RunSpec, build_task, count_trainable, replace
from workbench.spec.form import Editor, FieldInfo, editable, make_editor, spec_fields
from workbench.theme import Theme
from workbench.training.progress import format_bytes, format_count
from workbench.workers import TaskRunner

ESTIMATE_DELAY_MS = 150  # wait for a pause in typing before building the data and the model


@dataclass(frozen=True)
class Estimate:
    vocab_size: int
    params: int
    memory: dict[str, int]
    trainable: int  # differs from params with LoRA: the adapters and a task head


def estimate(spec: RunSpec) -> Estimate:
    """Parameter count and training memory for ``spec`` (no model is allocated).

    Raises ConfigError when the data cannot be built (a missing file, a task too long for the
    context)."""
    task = build_task(spec.data, spec.model)
    vocab = task.vocab_size
    params = engine.count_params(spec.model, vocab, task.n_classes)
    memory = engine.estimate_memory(spec.model, vocab, spec.train.batch_size, spec.train.optimizer)
    trainable = count_trainable(spec.model, vocab, spec.train.lora, task.n_classes)
    return Estimate(vocab, params, memory, trainable)


def _field_of(path: str) -> str:
    """``train.betas[1]`` -> ``train.betas``: the form field an error path points into."""
    return re.sub(r"(\[\d+\])+$", "", path)


class ConfigPanel(QWidget):
    specChanged = Signal(object)  # a valid RunSpec, after a load or an edit
    validityChanged = Signal(bool)
    estimated = Signal()  # the parameter count and memory estimate are up to date

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("configPanel")
        self._tasks = tasks
        self._base: RunSpec | None = None
        self._spec: RunSpec | None = None
        self._error: engine.ConfigError | None = None
        self._loading = False
        self._generation = 0
        self._estimate_pending = False
        self._editors: dict[str, Editor] = {}
        self._error_labels: dict[str, QLabel] = {}
        self._kept: list[str] = []  # fields and sections the form cannot edit: kept as loaded
        self._tips: dict[str, str] = {}  # the help of the fields a checkpoint can fix

        self._form = QWidget()
        form_layout = QVBoxLayout(self._form)
        form_layout.setContentsMargins(0, 0, 0, 0)
        run_box = self._group("Run", [f for f in spec_fields(RunSpec) if not self._is_section(f)])
        form_layout.addWidget(run_box)
        for f in spec_fields(RunSpec):
            if self._is_section(f):
                if editable(f):
                    form_layout.addWidget(
                        self._group(f.path.capitalize(), spec_fields(f.type, f.path))
                    )
                else:  # nothing here the form can edit (the timeline): kept as loaded
                    self._kept.append(f.path)
        form_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._form)

        self.params_label = QLabel()
        self.params_label.setObjectName("paramCount")
        self.memory_label = QLabel()
        self.memory_label.setObjectName("memoryEstimate")
        self.memory_label.setWordWrap(True)
        self.kept_label = QLabel()
        self.kept_label.setObjectName("keptSections")
        self.kept_label.setWordWrap(True)
        self.kept_label.setProperty("role", "muted")
        self.spec_error = self._error_label("specError")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(scroll, 1)
        for label in (self.spec_error, self.params_label, self.memory_label, self.kept_label):
            layout.addWidget(label)

        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(ESTIMATE_DELAY_MS)
        self._estimate_timer.timeout.connect(self._start_estimate)

    # --- building ---
    @staticmethod
    def _is_section(info: FieldInfo) -> bool:
        return dataclasses.is_dataclass(info.type)

    @staticmethod
    def _error_label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setProperty("role", "error")
        label.hide()
        return label

    def _group(self, title: str, fields: list[FieldInfo]) -> QGroupBox:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._add_rows(form, fields)
        return box

    def _add_rows(self, form: QFormLayout, fields: list[FieldInfo]) -> None:
        for info in fields:
            if self._is_section(info):  # a nested section (train.lora): its fields, indented
                heading = QLabel(f"<b>{info.name}</b>")
                heading.setToolTip(info.tooltip())
                form.addRow(heading)
                self._add_rows(form, spec_fields(info.type, info.path))
                continue
            editor = make_editor(info)
            if editor is None:
                self._kept.append(info.path)
                continue
            label = QLabel(info.name)
            label.setToolTip(info.tooltip())
            if info.path.count(".") > 1:
                label.setIndent(12)
            form.addRow(label, editor.widget)
            error = self._error_label(f"error:{info.path}")
            form.addRow(error)
            editor.on_change(self._edited)
            self._editors[info.path] = editor
            self._error_labels[info.path] = error

    # --- public ---
    @property
    def spec(self) -> RunSpec | None:
        """The spec as edited, or None while it is invalid."""
        return self._spec if self._error is None else None

    @property
    def is_valid(self) -> bool:
        return self.spec is not None

    @property
    def error(self) -> engine.ConfigError | None:
        return self._error

    @property
    def kept(self) -> list[str]:
        """Paths of the fields and sections the form does not edit (kept as loaded)."""
        return list(self._kept)

    @property
    def estimate_pending(self) -> bool:
        return self._estimate_pending

    def editor(self, path: str) -> Editor:
        return self._editors[path]

    def error_label(self, path: str) -> QLabel:
        return self._error_labels.get(_field_of(path), self.spec_error)

    def set_spec(self, spec: RunSpec) -> None:
        """Show ``spec`` (already validated by the engine) in the form."""
        self._loading = True
        try:
            for path, editor in self._editors.items():
                editor.set_value(self._value(spec, path))
        finally:
            self._loading = False
        self._base = spec
        self._kept_summary(spec)
        self._validate()

    def report(self, error: engine.ConfigError) -> None:
        """Show an error found later (by the engine when a run starts) under its field."""
        self._set_state(self._spec, error)

    def set_locked(self, locked: bool) -> None:
        """A run is using the spec: no edits until it ends."""
        self._form.setEnabled(not locked)

    def apply_theme(self, theme: Theme) -> None:
        self.setStyleSheet(
            f"QLabel[role='error'] {{ color: {theme.error}; }}"
            f"QLabel[role='muted'] {{ color: {theme.muted}; }}"
        )

    # --- validation ---
    @staticmethod
    def _value(spec: RunSpec, path: str):
        node = spec
        for part in path.split("."):
            node = getattr(node, part)
        return node

    def _kept_summary(self, spec: RunSpec) -> None:
        parts = []
        for path in self._kept:
            value = self._value(spec, path)
            if dataclasses.is_dataclass(value):
                lists = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
                counts = [f"{name} ×{len(v)}" for name, v in lists if isinstance(v, list) and v]
                parts.append(f"{path} ({', '.join(counts) or 'empty'})")
            else:
                parts.append(path)
        self.kept_label.setText(
            f"Kept as loaded (edited elsewhere): {'; '.join(parts)}" if parts else ""
        )
        self.kept_label.setVisible(bool(parts))

    def _edited(self) -> None:
        if not self._loading:
            self._validate()

    def _validate(self) -> None:
        if self._base is None:
            return
        self._generation += 1
        overrides = {path: editor.value() for path, editor in self._editors.items()}
        try:
            spec = replace(self._base, overrides)
        except engine.ConfigError as exc:
            self._set_state(None, exc)
            return
        self._set_state(spec, None)
        self._estimate_pending = True
        self._estimate_timer.start()

    def _set_state(self, spec: RunSpec | None, error: engine.ConfigError | None) -> None:
        was_valid = self.is_valid
        self._spec, self._error = spec, error
        for label in (*self._error_labels.values(), self.spec_error):
            label.hide()
        if error is not None:
            label = self.error_label(error.path)
            label.setText(str(error))
            label.show()
            self._estimate_pending = False
            self.params_label.setText("")
            self.memory_label.setText("")
        elif spec is not None:
            self._follow_checkpoint(spec)
            self.specChanged.emit(spec)
        if was_valid != self.is_valid:
            self.validityChanged.emit(self.is_valid)

    def _follow_checkpoint(self, spec: RunSpec) -> None:
        """With ``model.from_pretrained`` the checkpoint fixes the architecture: its fields
        show the checkpoint's values and cannot be edited (they come back when it is cleared)."""
        pretrained = bool(spec.model.from_pretrained)
        self._loading = True  # showing the checkpoint's values is not an edit
        try:
            for name in engine.PRETRAINED_FIELDS:
                editor = self._editors.get(f"model.{name}")
                if editor is None:
                    continue
                value = getattr(spec.model, name)
                if pretrained and editor.value() != value:
                    editor.set_value(value)
                editor.widget.setEnabled(not pretrained)
                tip = self._tips.setdefault(name, editor.widget.toolTip())
                source = f"\n\nFixed by {spec.model.from_pretrained}" if pretrained else ""
                editor.widget.setToolTip(tip + source)
        finally:
            self._loading = False

    def _start_estimate(self) -> None:
        spec, generation = self._spec, self._generation
        if spec is None:
            return
        self.params_label.setText("counting parameters…")
        self._tasks.submit(
            lambda: estimate(spec),
            lambda result: self._show_estimate(generation, result),
            lambda exc: self._estimate_failed(generation, exc),
        )

    def _show_estimate(self, generation: int, est: Estimate) -> None:
        if generation != self._generation:
            return  # the form changed meanwhile; a newer estimate is on its way
        self._estimate_pending = False
        mem = est.memory
        count = f"<b>{format_count(est.params)}</b> parameters ({est.params:,})"
        if est.trainable != est.params:
            count += f" · {est.trainable:,} trainable (LoRA)"
        source = self._spec.model.from_pretrained if self._spec is not None else ""
        start = f" · from: {Path(source).name or source}" if source else ""
        self.params_label.setText(f"{count} · vocab {est.vocab_size}{start}")
        parts = " · ".join(f"{k} {format_bytes(v)}" for k, v in mem.items() if k != "total")
        self.memory_label.setText(f"≈ <b>{format_bytes(mem['total'])}</b> to train: {parts}")
        self.memory_label.setToolTip("Rough fp32 training memory, within about a factor of two")
        self.estimated.emit()

    def _estimate_failed(self, generation: int, exc: Exception) -> None:
        if generation != self._generation:
            return
        if not isinstance(exc, engine.ConfigError):
            exc = engine.ConfigError("", f"cannot estimate: {type(exc).__name__}: {exc}")
        self.report(exc)
        self.estimated.emit()
