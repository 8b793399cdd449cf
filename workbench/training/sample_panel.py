"""The Sample dock: text (or task answers) from the focus run's latest checkpoint.

Samples belong to their run: when another run comes into focus the output is cleared, and a
sample of the previous run that arrives late is dropped.

Sampling builds the model from the checkpoint and generates on a worker thread, so the window
and a run still training stay responsive.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import engine
from workbench.workers import TaskRunner


class SamplePanel(QWidget):
    sampled = Signal(str)  # the text shown, or the error

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("samplePanel")
        self._tasks = tasks
        self._run_dir: Path | None = None

        self.prompt = QLineEdit()
        self.prompt.setObjectName("samplePrompt")
        self.prompt.setPlaceholderText("prompt (text runs; empty = start of a line)")
        self.tokens = QSpinBox()
        self.tokens.setRange(1, 5000)
        self.tokens.setValue(200)
        self.temperature = QDoubleSpinBox()
        self.temperature.setObjectName("sampleTemperature")
        self.temperature.setRange(0.05, 5.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.8)
        self.top_k = QSpinBox()
        self.top_k.setObjectName("sampleTopK")
        self.top_k.setRange(0, 1000)
        self.top_k.setSpecialValueText("off")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.button = QPushButton("Generate")
        self.button.setObjectName("sampleButton")
        self.button.clicked.connect(self.generate)
        self.source = QLabel()
        self.source.setWordWrap(True)
        self.output = QPlainTextEdit()
        self.output.setObjectName("sampleOutput")
        self.output.setReadOnly(True)
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        knobs = QFormLayout()
        knobs.addRow("Prompt", self.prompt)
        row = QHBoxLayout()
        for label, widget in (
            ("tokens", self.tokens),
            ("temperature", self.temperature),
            ("top-k", self.top_k),
            ("seed", self.seed),
        ):
            row.addWidget(QLabel(label))
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.button)
        knobs.addRow(row)
        controls = QWidget()
        controls.setLayout(knobs)
        controls.setMaximumWidth(720)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(controls)
        layout.addWidget(self.source)
        layout.addWidget(self.output, 1)
        self.set_run(None)

    def set_run(self, run_dir: Path | None, checkpoint_tick: int | None = None) -> None:
        """Sample from ``run_dir`` once it has a checkpoint (``checkpoint_tick``)."""
        if run_dir != self._run_dir:
            self.output.clear()
        self._run_dir = run_dir
        if run_dir is None:
            self.source.setText("Run a spec; samples come from its latest checkpoint.")
        elif checkpoint_tick is None:
            self.source.setText(f"{run_dir.name}: no checkpoint yet")
        else:
            self.source.setText(f"{run_dir.name}: latest checkpoint is at tick {checkpoint_tick}")
        self.button.setEnabled(run_dir is not None and checkpoint_tick is not None)

    def generate(self) -> None:
        run_dir = self._run_dir
        if run_dir is None:
            return
        kwargs = dict(
            prompt=self.prompt.text() or "\n",
            tokens=self.tokens.value(),
            temperature=self.temperature.value(),
            top_k=self.top_k.value() or None,
            seed=self.seed.value(),
        )
        self.button.setEnabled(False)
        self.output.setPlainText("sampling…")
        self._tasks.submit(
            lambda: engine.sample_run(run_dir, **kwargs),
            lambda text: self._show(run_dir, text),
            lambda exc: self._show(run_dir, f"cannot sample: {type(exc).__name__}: {exc}"),
        )

    def _show(self, run_dir: Path, text: str) -> None:
        if run_dir != self._run_dir:  # another run came into focus meanwhile
            return
        self.button.setEnabled(True)
        self.output.setPlainText(text)
        self.sampled.emit(text)
