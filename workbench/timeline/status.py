"""The editor's status line: what is wrong (or how to edit) on the left, the exact values under
the pointer on the right, both cut to fit with the whole text in their tooltips."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

import engine
from workbench.timeline import geometry
from workbench.timeline.units import AxisUnit


def describe_tick(spec: engine.RunSpec, compiled, unit: AxisUnit, tick: int) -> str:
    """Exact values at ``tick``, read from the compiled timeline: phase, LR, the batch (with a
    batch lane), each norm group's strength, each pruning group's scheduled sparsity, the edges
    that fire there."""
    state = compiled.at(tick)
    where = f"tick {tick}" + (f" ({unit.label(tick)})" if unit.name != "ticks" else "")
    parts = [where, f"phase {state.phase}", f"lr {state.lr:.6g}"]
    if spec.timeline.batch:
        parts.append(f"batch {compiled.batch_at(tick)}")
    for g in geometry.prune_groups(spec, compiled):
        parts.append(f"sparsity {g.name} {100 * g.curve(tick + 1)[tick]:.3g}%")
    groups = geometry.layer_groups(spec)
    if groups:
        s = " ".join(f"{layer}:{state.strength[sites[0]]:.3f}" for layer, sites in groups)
        parts.append(f"LN strength {s}")
    parts += [e.label for e in state.edges]
    return " · ".join(parts)


def _fit(label: QLabel, text: str) -> None:
    room = max(label.width() - 4, 40)
    label.setText(label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, room))
    label.setToolTip(text)


class StatusLine(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.message = QLabel(objectName="timelineMessage")
        self.hover = QLabel(objectName="timelineHover")
        self.hover.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.message_text = ""
        self.hover_text = ""
        self.refusal = False  # the message is a refused edit: it stays until the next edit
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label in (self.message, self.hover):
            label.setMinimumWidth(10)
            layout.addWidget(label, 1)

    def say(self, text: str, color: str, refusal: bool = False) -> None:
        self.message_text, self.refusal = text, refusal
        _fit(self.message, text)
        self.message.setStyleSheet(f"color: {color}")

    def show_hover(self, text: str) -> None:
        self.hover_text = text
        _fit(self.hover, text)
