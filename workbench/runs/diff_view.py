"""The Diff dock: the spec fields that differ between the selected runs (``spec_diff``), one
column per run headed in the run's colour; every field on request."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import engine
from workbench.runs.spec_diff import DiffRow, spec_diff

KIND_TINTS = {  # a light wash of the row: readable on both themes
    "added": "#2fb67c",
    "removed": "#e5484d",
    "moved": "#4c8dff",
    "changed": None,
    "same": None,
}
TINT_ALPHA = 40
MIN_VALUE_WIDTH = 120  # px: a run's column never gets narrower than this
MAX_FIELD_SHARE = 0.3  # of the table's width: the field column wraps beyond it


class SpecDiffView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("specDiff")
        self._specs: list[engine.RunSpec] = []
        self._timelines: list | None = None
        self.rows: list[DiffRow] = []
        self.summary = QLabel("Select two or more runs to compare their specs.")
        self.summary.setObjectName("specDiffSummary")
        self.all_fields = QCheckBox("Show all fields")
        self.all_fields.setObjectName("specDiffAll")
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("specDiffTable")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)  # a long value wraps in its run's column: read in full
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(False)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.all_fields)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        self.all_fields.toggled.connect(lambda _: self._fill())
        self._names: list[str] = []
        self._colors: list[str] = []

    def set_runs(
        self,
        names: list[str],
        colors: list[str],
        specs: list[engine.RunSpec],
        timelines: list[engine.CompiledTimeline | None] | None = None,
    ) -> None:
        """Compare ``specs`` (the first is the reference for added/removed events);
        ``timelines``: the compiled timeline each run followed, for where its events fell."""
        self._names, self._colors, self._specs = list(names), list(colors), list(specs)
        self._timelines = list(timelines) if timelines else None
        self._fill()

    def _fill(self) -> None:
        specs = self._specs
        all_fields = self.all_fields.isChecked()
        self.rows = spec_diff(specs, all_fields, self._timelines) if len(specs) >= 2 else []
        self.table.clear()
        self.table.setColumnCount(2 + len(specs))
        self.table.setHorizontalHeaderLabels(["field", "", *self._names])
        for col, color in enumerate(self._colors, start=2):
            self.table.horizontalHeaderItem(col).setForeground(QBrush(QColor(color)))
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            tint = KIND_TINTS.get(row.kind)
            kind = "" if row.kind == "same" else row.kind
            for c, text in enumerate((row.path, kind, *row.values)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if tint:
                    wash = QColor(tint)
                    wash.setAlpha(TINT_ALPHA)
                    item.setBackground(wash)
                self.table.setItem(r, c, item)
        self._fit_columns()
        self._say()

    def _fit_columns(self) -> None:
        """The runs' columns share the width left, so every run stays in view; a value wider
        than its column wraps onto more lines (at 1280x800 a timeline event was cut to "tic…")."""
        self.table.resizeColumnsToContents()
        room = self.table.viewport().width()
        field = self.table.columnWidth(0)  # a note's field names its text: not the whole width
        self.table.setColumnWidth(0, min(field, int(room * MAX_FIELD_SHARE)))
        left = room - sum(self.table.columnWidth(c) for c in (0, 1))
        share = max(MIN_VALUE_WIDTH, left // max(len(self._specs), 1))
        for col in range(2, self.table.columnCount()):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), share))
        self.table.resizeRowsToContents()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _say(self) -> None:
        if len(self._specs) < 2:
            self.summary.setText("Select two or more runs to compare their specs.")
            return
        differing = sum(row.kind != "same" for row in self.rows)
        self.summary.setText(
            f"{differing} field{'s' if differing != 1 else ''} differ"
            f"{'s' if differing == 1 else ''} between {len(self._specs)} runs"
            + ("" if differing else ": the specs are the same")
        )
        self.summary.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
