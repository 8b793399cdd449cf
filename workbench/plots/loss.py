"""The loss plot with its controls: EMA smoothing slider and log-y toggle."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from workbench.plots.scalar_plot import Curve, ScalarPlot
from workbench.plots.series import MetricStore
from workbench.plots.smoothing import MAX_WEIGHT
from workbench.theme import COLORS

DEFAULT_SMOOTHING = 0.6  # TensorBoard's default
SLIDER_STEPS = 1000


class LossPanel(QWidget):
    def __init__(self, store: MetricStore):
        super().__init__()
        self.plot = ScalarPlot(
            store,
            "Loss",
            "cross-entropy (nats)",
            (Curve("train/loss", COLORS["train"]), Curve("val/loss", COLORS["val"], "o")),
            smoothing=DEFAULT_SMOOTHING,
        )
        self.plot.setObjectName("lossPlot")

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("smoothingSlider")
        self.slider.setRange(0, round(MAX_WEIGHT * SLIDER_STEPS))
        self.slider.setValue(round(DEFAULT_SMOOTHING * SLIDER_STEPS))
        self.slider.setToolTip(
            "Exponential moving average as in TensorBoard (debiased); 0 = raw values"
        )
        self.smoothing_label = QLabel()
        self.smoothing_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("0.999") + 8)
        self.log_y = QCheckBox("Log y")
        self.log_y.setObjectName("logYCheck")
        self.events_check = QCheckBox("Events", checked=True)
        self.events_check.setObjectName("eventsCheck")
        self.events_check.setToolTip("Phases and timeline events on every plot (this run's)")

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing"))
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.smoothing_label)
        controls.addSpacing(16)
        controls.addWidget(self.log_y)
        controls.addWidget(self.events_check)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)

        self.slider.valueChanged.connect(self._on_slider)
        self.log_y.toggled.connect(self.plot.set_log_y)
        self._on_slider(self.slider.value())

    def _on_slider(self, value: int) -> None:
        weight = value / SLIDER_STEPS
        self.smoothing_label.setText(f"{weight:.3f}")
        self.plot.set_smoothing(weight)
