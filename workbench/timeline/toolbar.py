"""The editor's toolbar: axis unit, snap grid, LR shape palette, log LR axis, undo/redo/fit."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QToolButton, QWidget

from workbench.timeline.edits import SHAPES
from workbench.timeline.units import GRIDS, UNIT_NAMES, UNIT_TITLES, AxisUnit, si


class EditorToolbar(QWidget):
    """``shapeChosen`` fires when a palette shape is clicked; ``actions`` (undo, redo, fit)
    get buttons at the right end."""

    shapeChosen = Signal(str)

    def __init__(self, shape: str, actions: list[tuple[QAction, str]], parent=None):
        super().__init__(parent)
        self.units_box = QComboBox(objectName="timelineUnits")
        for name in UNIT_NAMES:
            self.units_box.addItem(UNIT_TITLES[name], name)
        self.units_box.setToolTip("Label the tick axis, and write dragged positions, in this unit")
        self.snap_box = QComboBox(objectName="timelineSnap")
        self.snap_box.setToolTip("Drags and new items land on this grid (of the axis unit)")
        self.log_box = QCheckBox("log LR", objectName="timelineLogLR")
        self.log_box.setToolTip("LR lane on a log axis (on by itself for a log points segment)")
        self.shape_group = QActionGroup(self)
        self.palette_buttons: dict[str, QToolButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("Axis"), self.units_box, QLabel("Snap"), self.snap_box):
            layout.addWidget(w)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Shape"))
        for name in SHAPES:
            layout.addWidget(self._palette_button(name, name == shape))
        layout.addSpacing(12)
        layout.addWidget(self.log_box)
        layout.addStretch(1)
        for action, name in actions:
            button = QToolButton(objectName=name)
            button.setDefaultAction(action)
            layout.addWidget(button)

    def _palette_button(self, shape: str, checked: bool) -> QToolButton:
        action = QAction(shape, self, checkable=True, checked=checked)
        action.setToolTip(
            f"{shape}: the shape of the selected LR segment; with none selected, the shape a "
            "double-click in a gap of the segments strip adds"
        )
        action.triggered.connect(lambda: self.shapeChosen.emit(shape))
        self.shape_group.addAction(action)
        button = QToolButton(objectName=f"shape:{shape}")
        button.setDefaultAction(action)
        self.palette_buttons[shape] = button
        return button

    def check_shape(self, shape: str) -> None:
        self.palette_buttons[shape].defaultAction().setChecked(True)

    def set_editable(self, on: bool) -> None:
        for button in self.palette_buttons.values():
            button.setEnabled(on)

    @property
    def unit_name(self) -> str:
        return self.units_box.currentData()

    @property
    def grid(self) -> float | None:
        return self.snap_box.currentData()

    def fill_snap(self, unit: AxisUnit) -> None:
        """Grids of ``unit``, the one giving about a hundred steps over the run chosen."""
        self.snap_box.clear()
        self.snap_box.addItem("off", None)
        for g in GRIDS[unit.name]:
            text = {"ticks": f"{g:g}", "%": f"{g:g}%", "tokens": f"{si(g)} tok"}[unit.name]
            self.snap_box.addItem(text, g)
        self.snap_box.setCurrentIndex(self.snap_box.findData(unit.default_grid()))
