"""The start page: the preset library with descriptions, and a way to open any spec."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from workbench.spec.presets import Preset

PATH_ROLE = Qt.ItemDataRole.UserRole
DESCRIPTION_ROLE = Qt.ItemDataRole.UserRole + 1
PAD = 8


class PresetDelegate(QStyledItemDelegate):
    """Paints a preset as its name in bold over its wrapped description."""

    def _text_rect(self, option: QStyleOptionViewItem) -> QRect:
        return option.rect.adjusted(PAD, PAD // 2, -PAD, -PAD // 2)

    def _width(self, option: QStyleOptionViewItem) -> int:
        view = option.widget
        return (view.viewport().width() if view is not None else 400) - 2 * PAD

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        bold = QFont(option.font)
        bold.setBold(True)
        width = self._width(option)
        name_h = QFontMetrics(bold).height()
        text = index.data(DESCRIPTION_ROLE) or ""
        flags = Qt.TextFlag.TextWordWrap
        desc_h = option.fontMetrics.boundingRect(QRect(0, 0, width, 10_000), flags, text).height()
        return QSize(width, name_h + desc_h + PAD + 2)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        text_color = palette.highlightedText() if selected else palette.text()
        muted = palette.highlightedText() if selected else palette.placeholderText()
        rect = self._text_rect(option)
        painter.save()
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(text_color.color())
        name_h = painter.fontMetrics().height()
        painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, index.data())
        painter.setFont(option.font)
        painter.setPen(muted.color())
        painter.drawText(
            rect.adjusted(0, name_h + 2, 0, 0),
            Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
            index.data(DESCRIPTION_ROLE) or "",
        )
        painter.restore()


class StartPage(QWidget):
    presetChosen = Signal(object)  # Path of the preset to load
    openRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("startPage")
        title = QLabel("Tickbench")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        subtitle = QLabel(
            "Train small Transformers and watch them learn. Pick a preset to load it into the "
            "Config panel, adjust it there, then press Run (Ctrl+R)."
        )
        subtitle.setWordWrap(True)

        self.presets = QListWidget()
        self.presets.setObjectName("presetList")
        self.presets.setItemDelegate(PresetDelegate(self.presets))
        self.presets.setResizeMode(QListView.ResizeMode.Adjust)
        self.presets.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.presets.setSpacing(2)
        self.presets.itemActivated.connect(self._activated)

        load = QPushButton("Load preset")
        load.setObjectName("loadPresetButton")
        load.clicked.connect(self._load_current)
        open_spec = QPushButton("Open spec…")
        open_spec.setObjectName("openSpecButton")
        open_spec.clicked.connect(self.openRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(load)
        buttons.addWidget(open_spec)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.addWidget(title)
        layout.addWidget(subtitle)
        layout.addSpacing(8)
        presets_title = QLabel("<b>Presets</b> (presets/*.yaml; double-click to load)")
        layout.addWidget(presets_title)
        layout.addWidget(self.presets, 1)
        layout.addLayout(buttons)

    def set_presets(self, presets: list[Preset]) -> None:
        self.presets.clear()
        for preset in presets:
            item = QListWidgetItem(preset.name)
            item.setData(PATH_ROLE, str(preset.path))
            item.setData(DESCRIPTION_ROLE, preset.summary)
            item.setToolTip(str(preset.path))
            self.presets.addItem(item)
        if presets:
            self.presets.setCurrentRow(0)

    def _activated(self, item: QListWidgetItem) -> None:
        self.presetChosen.emit(Path(item.data(PATH_ROLE)))

    def _load_current(self) -> None:
        item = self.presets.currentItem()
        if item is not None:
            self._activated(item)
