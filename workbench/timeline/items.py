"""Graphics items of the timeline lanes: draggable handles, clickable spans, lane view boxes.

Spans live in (tick, lane) coordinates, inside the view box's scaled child group. Handles keep
their size in pixels while zooming: they are children of the view box itself (pixels, clipped
to the lane) and are placed at their view position by the lane whenever the view changes. (The
usual ``ItemIgnoresTransformations`` inside the child group breaks Qt's hit test once the lane's
scale is extreme, as an LR axis of 1e-3 is: the clip path is mapped through a scale it ignores.)
Neither knows what it stands for: each carries a ``key`` and calls back the lane, which turns
positions into timeline edits.
"""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen, QPolygonF

SIZE = 7.0  # handle half-size, px
ERROR_COLOR = "#ff4d4f"
SELECTED_COLOR = "#ffffff"


def _glyph(shape: str, r: float) -> QPainterPath:
    path = QPainterPath()
    if shape == "diamond":
        path.addPolygon(QPolygonF([QPointF(0, -r), QPointF(r, 0), QPointF(0, r), QPointF(-r, 0)]))
        path.closeSubpath()
    elif shape == "circle":
        path.addEllipse(QPointF(0, 0), r * 0.8, r * 0.8)
    elif shape == "square":
        path.addRect(QRectF(-r * 0.75, -r * 0.75, r * 1.5, r * 1.5))
    elif shape == "down":  # a flag pointing at the axis: checkpoints
        path.addPolygon(QPolygonF([QPointF(-r, -r), QPointF(r, -r), QPointF(0, r)]))
        path.closeSubpath()
    elif shape == "right":  # a ramp starts here
        path.addPolygon(QPolygonF([QPointF(-r, -r), QPointF(r, 0), QPointF(-r, r)]))
        path.closeSubpath()
    elif shape == "bar":  # a boundary: a tall thin grip
        path.addRect(QRectF(-2.5, -r * 1.4, 5, r * 2.8))
    else:
        path.addRect(QRectF(-r, -r, 2 * r, 2 * r))
    return path


class Handle(pg.GraphicsObject):
    """A marker the user can click, double-click, right-click and drag.

    ``axes`` limits the drag ("x", "y" or "xy"); the lane gets the pointer's position in view
    coordinates (``on_drag(handle, pos, stage)``, stage "start" | "move" | "finish") and places
    the handle itself when it redraws. ``letter`` draws a character instead of a glyph.
    """

    def __init__(
        self, key, shape: str, color: str, axes: str = "x", letter: str = "", size: float = SIZE
    ):
        super().__init__()
        self.size = size
        self.key, self.glyph, self.axes, self.letter = key, shape, axes, letter
        self.color = color
        self.selected = False
        self.error = False
        self.dragging = False
        self.hollow = False
        self.view_pos = QPointF()  # where it stands in (tick, lane) coordinates
        self.on_drag: Callable | None = None
        self.on_click: Callable | None = None
        self.on_menu: Callable | None = None
        self._offset = QPointF()
        self.setAcceptHoverEvents(True)
        self.setZValue(20)
        self._path = _glyph(shape, size)
        self._hover = False
        if axes:
            cursor = {"x": Qt.CursorShape.SizeHorCursor, "y": Qt.CursorShape.SizeVerCursor}
            self.setCursor(cursor.get(axes, Qt.CursorShape.SizeAllCursor))

    def set_look(self, color: str, selected: bool, error: bool, hollow: bool = False) -> None:
        if (color, selected, error, hollow) != (self.color, self.selected, self.error, self.hollow):
            self.color, self.selected, self.error, self.hollow = color, selected, error, hollow
            self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return self._path.boundingRect().adjusted(-4, -4, 4, 4)

    def shape(self) -> QPainterPath:  # Qt's hit test: the glyph plus a margin
        path = QPainterPath()
        path.addRect(self.boundingRect())
        return path

    def paint(self, p: QPainter, *args) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        color = QColor(ERROR_COLOR if self.error else self.color)
        outline = QColor(SELECTED_COLOR) if self.selected or self._hover else color.darker(160)
        p.setPen(QPen(outline, 2.0 if self.selected else 1.2))
        p.setBrush(Qt.BrushStyle.NoBrush if self.hollow else QBrush(color))
        if self.letter:
            r = self.size + 1.5
            p.drawEllipse(QPointF(0, 0), r, r)
            p.setPen(QPen(QColor("#101010" if not self.hollow else self.color)))
            p.drawText(QRectF(-r, -r, 2 * r, 2 * r), Qt.AlignmentFlag.AlignCenter, self.letter)
        else:
            p.drawPath(self._path)

    def hoverEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph's name)
        hover = not ev.isExit() and (
            ev.acceptDrags(Qt.MouseButton.LeftButton) or ev.acceptClicks(Qt.MouseButton.LeftButton)
        )
        if hover != self._hover:
            self._hover = hover
            self.update()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click:
            ev.accept()
            self.on_click(self, ev.double())
        elif ev.button() == Qt.MouseButton.RightButton and self.on_menu:
            ev.accept()
            self.on_menu(self, ev.screenPos())

    def mouseDragEvent(self, ev) -> None:  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton or not self.axes or self.on_drag is None:
            ev.ignore()
            return
        ev.accept()
        vb = self.parentItem()
        pointer = vb.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self.dragging = True
            self._offset = self.view_pos - vb.mapSceneToView(ev.buttonDownScenePos())
            if self.on_click:
                self.on_click(self, False)  # dragging an item selects it
        pos = pointer + self._offset
        if "x" not in self.axes:
            pos.setX(self.view_pos.x())
        if "y" not in self.axes:
            pos.setY(self.view_pos.y())
        stage = "finish" if ev.isFinish() else "start" if ev.isStart() else "move"
        if ev.isFinish():
            self.dragging = False
        self.on_drag(self, pos, stage)


class Span(pg.GraphicsObject):
    """A filled rectangle in view coordinates (a phase, a segment, a ramp) with a label that is
    cut to the width the span has on screen."""

    def __init__(self, key, color: str, alpha: int = 90):
        super().__init__()
        self.key = key
        self.rect = QRectF()
        self.text = ""
        self.color, self.alpha = color, alpha
        self.text_color = "#e6e6e6"
        self.selected = False
        self.error = False
        self.on_click: Callable | None = None
        self.on_menu: Callable | None = None
        self.setZValue(5)

    def set_geometry(self, x0: float, x1: float, y0: float, y1: float, text: str = "") -> None:
        rect = QRectF(QPointF(x0, y0), QPointF(x1, y1)).normalized()
        if rect != self.rect:
            self.prepareGeometryChange()
            self.rect = rect
        if text != self.text:
            self.text = text
            self.update()

    def set_look(self, color: str, selected: bool, error: bool, text_color: str) -> None:
        look = (color, selected, error, text_color)
        if look != (self.color, self.selected, self.error, self.text_color):
            self.color, self.selected, self.error, self.text_color = look
            self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self.rect

    def paint(self, p: QPainter, *args) -> None:
        fill = QColor(ERROR_COLOR if self.error else self.color)
        fill.setAlpha(self.alpha if not self.selected else min(self.alpha + 70, 255))
        pen = QPen(QColor(SELECTED_COLOR) if self.selected else QColor(fill).darker(130))
        pen.setCosmetic(True)
        pen.setWidthF(2.0 if self.selected or self.error else 1.0)
        p.setPen(pen)
        p.setBrush(QBrush(fill))
        p.drawRect(self.rect)
        if self.text:  # in screen pixels, so zooming never stretches or spills it
            screen = p.transform().mapRect(self.rect)
            p.resetTransform()
            room = int(screen.width()) - 8
            text = p.fontMetrics().elidedText(self.text, Qt.TextElideMode.ElideRight, room)
            p.setPen(QColor(ERROR_COLOR if self.error else self.text_color))
            align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
            p.drawText(screen.adjusted(4, 0, -4, 0), align, text)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click:
            ev.accept()
            self.on_click(self, ev.double(), ev.pos())
        elif ev.button() == Qt.MouseButton.RightButton and self.on_menu:
            ev.accept()
            self.on_menu(self, ev.screenPos(), ev.pos())


class LaneViewBox(pg.ViewBox):
    """A view box that zooms and pans along ticks only and hands clicks on empty space to its
    lane: left click (``on_click(pos, double)``) and right click (``on_menu(pos, screen)``),
    in place of pyqtgraph's own menu."""

    def __init__(self):
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=True, y=False)
        self.on_click: Callable | None = None
        self.on_menu: Callable | None = None

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        pos = self.mapSceneToView(ev.scenePos())
        if ev.button() == Qt.MouseButton.LeftButton and self.on_click:
            ev.accept()
            self.on_click(pos, ev.double())
        elif ev.button() == Qt.MouseButton.RightButton and self.on_menu:
            ev.accept()
            self.on_menu(pos, ev.screenPos())
        else:
            super().mouseClickEvent(ev)
