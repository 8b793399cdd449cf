"""The Fork dialog: pick one of a run's checkpoints, edit the spec the fork will train, fork.

The spec is edited as YAML, prefilled with the run's own spec under a new name. A spec the
engine refuses (a ConfigError from parsing, or from ``fork_run`` because the timeline disagrees
with the checkpoint) is shown in the dialog, which stays open to be fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

import engine

ForkCallback = Callable[[Path, engine.RunSpec], None]  # (checkpoint file, edited spec)


def checkpoint_tick(path: Path) -> int:
    """The tick of a checkpoint file named ``tick_0000500.pt``."""
    return int(path.stem.split("_")[1])


class ForkDialog(QDialog):
    def __init__(self, parent: QWidget, record: engine.RunRecord, on_fork: ForkCallback):
        super().__init__(parent)
        self.setObjectName("forkDialog")
        self.setWindowTitle(f"Fork {record.path.name}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._on_fork = on_fork
        self.checkpoint = QComboBox(objectName="forkCheckpoint")
        for ckpt in reversed(record.checkpoints()):  # latest first: the usual choice
            self.checkpoint.addItem(f"tick {checkpoint_tick(ckpt)}", str(ckpt))
        spec = record.spec
        spec = dataclasses.replace(spec, name=f"{spec.name}-fork")
        self.editor = QPlainTextEdit(engine.dump_spec(spec), objectName="forkSpec")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.error = QLabel(objectName="forkError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5484d")
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.fork_button = buttons.addButton("Fork", QDialogButtonBox.ButtonRole.AcceptRole)
        self.fork_button.setObjectName("forkButton")
        form = QFormLayout()
        form.addRow("Continue from", self.checkpoint)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Spec of the fork (everything from the checkpoint's tick on):"))
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        buttons.accepted.connect(self.try_fork)
        buttons.rejected.connect(self.reject)
        self.resize(620, 560)

    def try_fork(self) -> None:
        try:
            spec = engine.spec_from_yaml(self.editor.toPlainText())
            self._on_fork(Path(self.checkpoint.currentData()), spec)
        except (engine.ConfigError, OSError, RuntimeError) as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.accept()
