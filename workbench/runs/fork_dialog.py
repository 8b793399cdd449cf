"""The Fork and Branch dialogs: where the new run starts (one of a run's checkpoints, or any
tick of it), the spec it trains (YAML, prefilled with the run's own under a new name), and the
button that starts it.

A spec the engine refuses (a ConfigError from parsing, or from ``fork_run`` because the
timeline disagrees with the checkpoint) is shown in the dialog, which stays open to be fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import engine

ForkCallback = Callable[[Path, engine.RunSpec], None]  # (checkpoint file, edited spec)
BranchCallback = Callable[[int, engine.RunSpec, bool], None]  # (tick, edited spec, paused)


def checkpoint_tick(path: Path) -> int:
    """The tick of a checkpoint file named ``tick_0000500.pt``."""
    return int(path.stem.split("_")[1])


class _NewRunDialog(QDialog):
    """A "from" row, the new run's spec, an error line and the button that starts it."""

    def __init__(
        self,
        parent: QWidget,
        record: engine.RunRecord,
        kind: str,
        suffix: str,
        spec: engine.RunSpec | None = None,
    ):
        super().__init__(parent)
        self.setObjectName(f"{kind}Dialog")
        self.setWindowTitle(f"{kind.title()} {record.path.name}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._suffix = suffix
        spec = self._named(spec or record.spec)
        self.editor = QPlainTextEdit(engine.dump_spec(spec), objectName=f"{kind}Spec")
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.error = QLabel(objectName=f"{kind}Error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e5484d")
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.go = buttons.addButton(kind.title(), QDialogButtonBox.ButtonRole.AcceptRole)
        self.go.setObjectName(f"{kind}Button")
        self.form = QFormLayout()
        self.spec_label = QLabel()
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.spec_label)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        buttons.accepted.connect(self._try)
        buttons.rejected.connect(self.reject)
        self.resize(620, 560)

    def _named(self, spec: engine.RunSpec) -> engine.RunSpec:
        if not self._suffix:  # the same run's spec, edited: its name stays
            return spec
        return dataclasses.replace(spec, name=f"{spec.name}-{self._suffix}")

    def _start(self, spec: engine.RunSpec) -> None:  # the subclass's callback
        raise NotImplementedError

    def _try(self) -> None:
        try:
            self._start(engine.spec_from_yaml(self.editor.toPlainText()))
        except (engine.ConfigError, OSError, RuntimeError) as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.accept()


class ForkDialog(_NewRunDialog):
    def __init__(self, parent: QWidget, record: engine.RunRecord, on_fork: ForkCallback):
        super().__init__(parent, record, "fork", "fork")
        self._on_fork = on_fork
        self.fork_button = self.go
        self.checkpoint = QComboBox(objectName="forkCheckpoint")
        for ckpt in reversed(record.checkpoints()):  # latest first: the usual choice
            self.checkpoint.addItem(f"tick {checkpoint_tick(ckpt)}", str(ckpt))
        self.form.addRow("Continue from", self.checkpoint)
        self.spec_label.setText("Spec of the fork (everything from the checkpoint's tick on):")

    def _start(self, spec: engine.RunSpec) -> None:
        self._on_fork(Path(self.checkpoint.currentData()), spec)

    def try_fork(self) -> None:
        self._try()


class BranchDialog(_NewRunDialog):
    """Branch after any tick of a run: the engine replays the run from its nearest checkpoint
    before the tick (``engine.prepare_branch``), which the dialog says."""

    def __init__(
        self,
        parent: QWidget,
        record: engine.RunRecord,
        on_branch: BranchCallback,
        tick: int | None = None,
    ):
        forked = record.meta.get("forked_from")
        first = int(forked.get("tick", 0)) if isinstance(forked, dict) else 0
        done = record.summary().ticks
        at = tick if tick is not None else max(done - 1, 1)
        self._path = record.path
        self._ticks = {checkpoint_tick(c) for c in record.checkpoints()}
        # a steered run: the spec it followed at the tick, its revisions applied
        super().__init__(parent, record, "branch", "branch", engine.spec_at(record.path, at))
        self._on_branch = on_branch
        self.tick = QSpinBox(objectName="branchTick")
        self.tick.setRange(max(first, 1), max(record.spec.train.steps - 1, 1))
        self.tick.setValue(at)
        self.replay = QLabel(objectName="branchReplay")
        self.tick.valueChanged.connect(self._tick_changed)
        self.paused = QCheckBox("Start paused, to edit its future in the Timeline editor first")
        self.paused.setObjectName("branchPaused")
        self.form.addRow("Branch after tick", self.tick)
        self.form.addRow("", self.replay)
        self.form.addRow("", self.paused)
        self.spec_label.setText("Spec of the branch (everything after that tick):")
        self._say_replay(self.tick.value())

    def _tick_changed(self, tick: int) -> None:
        self._say_replay(tick)
        if not self.editor.document().isModified():  # a steered run's spec there, unless edited
            spec = self._named(engine.spec_at(self._path, tick))
            self.editor.setPlainText(engine.dump_spec(spec))

    def _say_replay(self, tick: int) -> None:
        start = engine.replay_start(self._path, tick)
        if start == tick:
            self.replay.setText("a checkpoint: no replay")
        else:
            kind = "checkpoint" if start in self._ticks else "rewind point"
            where = f"its {kind} at tick {start}" if start else "its start"
            self.replay.setText(f"replayed from {where}: {tick - start} ticks")

    def _start(self, spec: engine.RunSpec) -> None:
        self._on_branch(self.tick.value(), spec, self.paused.isChecked())


SteerCallback = Callable[[int | None, engine.RunSpec], None]  # (from tick or None, edited spec)


class SteerDialog(_NewRunDialog):
    """Steer a run another process trains (``python -m engine run``, a study, torchrun): its
    spec as it follows it now, edited, sent as a revision (``engine.steer_run``) from a tick
    (default: its next). The answer comes back through ``answered``: the dialog closes on an
    applied revision and shows a refusal's one line, staying open to be fixed."""

    def __init__(self, parent: QWidget, record: engine.RunRecord, on_steer: SteerCallback):
        tick = record.summary().ticks
        super().__init__(parent, record, "steer", "", engine.spec_at(record.path, tick))
        self._on_steer = on_steer
        self.tick = QSpinBox(objectName="steerTick")
        self.tick.setRange(tick, max(record.spec.train.steps - 1, tick))
        self.tick.setSpecialValueText("its next tick")  # the minimum: no --from
        self.form.addRow("Apply from tick", self.tick)
        self.spec_label.setText("The run's spec as it follows it now; edit its future:")

    def _start(self, spec: engine.RunSpec) -> None:
        tick = self.tick.value()
        self._on_steer(None if tick == self.tick.minimum() else tick, spec)

    def _try(self) -> None:
        try:
            self._start(engine.spec_from_yaml(self.editor.toPlainText()))
        except engine.ConfigError as exc:
            self.answered(str(exc))
            return
        self.go.setEnabled(False)  # sent: the run answers within a tick

    def answered(self, refusal: str | None) -> None:
        """The run's answer: None (applied) closes the dialog; a refusal is shown."""
        self.go.setEnabled(True)
        if refusal is None:
            self.accept()
            return
        self.error.setText(refusal)
        self.error.show()
