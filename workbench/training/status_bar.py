"""The status bar: the focus run's name, state, tick/total, progress, ETA, tokens/s, device and
norm backend."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from workbench.training.progress import RunProgress, format_duration, format_rate

PROGRESS_STEPS = 1000


class RunStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.run = self._label("statusRun", "")
        self.state = self._label("statusState", "idle")
        self.tick = self._label("statusTick", "tick –")
        self.progress = QProgressBar()
        self.progress.setObjectName("statusProgress")
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress.setFixedWidth(160)
        self.progress.setTextVisible(False)
        self.eta = self._label("statusEta", "ETA --:--")
        self.rate = self._label("statusRate", format_rate(None))
        self.device = self._label("statusDevice", "")
        self.backend = self._label("statusBackend", "")
        self.addPermanentWidget(self.run)
        self.addPermanentWidget(self.state)
        self.addPermanentWidget(self.tick)
        self.addPermanentWidget(self.progress)
        for label in (self.eta, self.rate, self.device, self.backend):
            self.addPermanentWidget(label)

    @staticmethod
    def _label(name: str, text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        label.setContentsMargins(6, 0, 6, 0)
        return label

    def set_target(self, device: str, backend: str) -> None:
        self.device.setText(device)
        self.backend.setText(f"LayerNorm: {backend}")

    def set_state(self, state: str) -> None:
        self.state.setText(state)

    def set_run(self, name: str) -> None:
        self.run.setText(name)

    def show_progress(self, progress: RunProgress | None, training: bool = True) -> None:
        """Ticks, rate and ETA of ``progress`` (None: no run). A run not training shows no ETA
        unless it is done."""
        if progress is None:
            self.tick.setText("tick –")
            self.progress.setValue(0)
            self.eta.setText(f"ETA {format_duration(None)}")
            self.rate.setText(format_rate(None))
            return
        self.tick.setText(f"tick {progress.done}/{progress.steps}")
        self.progress.setValue(round(progress.fraction * PROGRESS_STEPS))
        done = progress.done >= progress.steps
        eta = 0 if done else progress.eta_seconds if training else None
        self.eta.setText(f"ETA {format_duration(eta)}")
        self.rate.setText(format_rate(progress.tokens_per_s))
