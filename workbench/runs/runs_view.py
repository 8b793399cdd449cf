"""The Runs browser's view: a tree of runs with the table's columns (``runsTable``).

Branches and forks sit under the run they left (``tree_proxy``), their names followed by the
tick they left it at, dimmed. Every run is expanded when it gets branches; a run the user
folds stays folded.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QApplication,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
)

from workbench.runs.model import BRANCH_TICK_ROLE, PATH_ROLE
from workbench.runs.tree_proxy import RunsProxy

GAP = 8  # px between a branch's name and its tick
ROW_PAD = 6  # px a row is taller than its text


class RowDelegate(QStyledItemDelegate):
    """Rows a little taller than their text, as the table's were."""

    def sizeHint(self, option, index):  # noqa: N802 (Qt's name)
        size = super().sizeHint(option, index)
        size.setHeight(max(size.height(), option.fontMetrics.height() + ROW_PAD))
        return size


class NameDelegate(RowDelegate):
    """The name column: the run's name and, for a branch or fork, ``at tick T`` after it,
    dimmed (the name is elided first when the column is narrow)."""

    @staticmethod
    def suffix(index) -> str:
        tick = index.data(BRANCH_TICK_ROLE)
        return "" if tick is None else f"at tick {tick}"

    def sizeHint(self, option, index):  # noqa: N802 (Qt's name)
        size = super().sizeHint(option, index)
        suffix = self.suffix(index)
        if suffix:
            size.setWidth(size.width() + GAP + option.fontMetrics.horizontalAdvance(suffix))
        return size

    def paint(self, painter, option, index) -> None:
        suffix = self.suffix(index)
        if not suffix:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        room = opt.fontMetrics.horizontalAdvance(suffix) + GAP
        name = QStyleOptionViewItem(opt)
        name.rect = QRect(opt.rect.adjusted(0, 0, -room, 0))
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, name, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        roles = QPalette.ColorRole
        painter.save()
        dim = roles.HighlightedText if selected else roles.PlaceholderText
        painter.setPen(opt.palette.color(dim))
        tail = QRect(opt.rect.right() - room + GAP // 2, opt.rect.top(), room, opt.rect.height())
        left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(tail, int(left), suffix)
        painter.restore()


class RunsTreeView(QTreeView):
    """The runs as a tree with sortable columns and rows selected whole."""

    def __init__(self, proxy: RunsProxy, parent=None):
        super().__init__(parent)
        self.setObjectName("runsTable")  # the name it had as a table: scripts use it
        self.setModel(proxy)
        self.setItemDelegate(RowDelegate(self))
        self.setItemDelegateForColumn(0, NameDelegate(self))
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(True)
        self._folded: set[str] = set()  # runs the user folded, by folder
        self._expanding = False
        self._unfold_timer = QTimer(self, singleShot=True, interval=0)
        self._unfold_timer.timeout.connect(self._expand)
        self.collapsed.connect(lambda index: self._fold(index, True))
        self.expanded.connect(lambda index: self._fold(index, False))
        proxy.rowsInserted.connect(self._grown)
        proxy.layoutChanged.connect(self._unfold_timer.start)
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

    def horizontalHeader(self) -> QHeaderView:  # noqa: N802 (QTableView's name, kept for callers)
        return self.header()

    def _fold(self, index: QModelIndex, folded: bool) -> None:
        if self._expanding:
            return
        path = index.data(PATH_ROLE)
        (self._folded.add if folded else self._folded.discard)(path)

    def _grown(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():  # unfolded together once the runs read in this poll are in
            self._unfold_timer.start()

    def _expand(self, *_) -> None:
        """Unfold every run with branches but those the user folded (expandAll lays the
        tree out once; expanding runs one by one lays it out each time)."""
        self._expanding = True
        try:
            self.expandAll()
            if self._folded:
                model = self.model()
                for index in model.walk():
                    if index.data(PATH_ROLE) in self._folded:
                        self.collapse(index)
        finally:
            self._expanding = False
