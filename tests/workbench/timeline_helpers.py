"""Driving the Timeline editor like a user: mouse on the lanes, its menus, its property fields.

Positions are given in lane coordinates (tick, lane y) and mapped to the view's viewport with
the lane's own ViewBox (``mapViewToScene``), so the simulated mouse lands where the item is
drawn, at whatever zoom.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QLineEdit, QMenu

from tests.workbench.helpers import type_into

LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton

# A tiny two-block model with a timeline that uses every lane: 200 ticks, well under a second
# of training. Phase 2 halves the LR; the LR is a warmup, a cosine and a points segment.
TIMELINE_YAML = """\
name: tl-test
seed: 3
model: {n_layer: 2, n_head: 2, d_model: 32, d_ff: 64, context: 16}
data: {source: text, path: "builtin:python-stdlib", max_chars: 200000}
train: {steps: 200, batch_size: 4, lr: 1.0e-3, eval_every: 0, eval_batches: 2,
        checkpoint_every: 0, device: cpu, stats_every: 0}
timeline:
  phases:
    - {name: pretrain, start: 0}
    - {name: finetune, start: 150, lr_scale: 0.5}
  lr:
    - {start: 0, end: 20, shape: linear, from: 0.0, to: 1.0e-3}
    - {start: 20, end: 120, shape: cosine, from: 1.0e-3, to: 1.0e-4}
    - {start: 120, end: 200, shape: points, points: [[0, 2.0e-4], [0.5, 2.0e-4], [1, 0.0]]}
  layernorm:
    - {at: 40, action: set, strength: 0.5, layers: [0]}
  marks:
    - {at: 100, action: note, text: halfway}
"""


def write_spec(folder: Path, text: str = TIMELINE_YAML, name: str = "tl.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def viewport_point(editor, lane, x: float, y: float) -> QPoint:
    scene = lane.vb.mapViewToScene(QPointF(x, y))
    return editor.view.mapFromScene(scene)


def move(qtbot, editor, pos: QPoint) -> None:
    """A mouse move the scene takes in. pyqtgraph drops moves that come sooner than
    1/mouseRateLimit s after the last (no hand is that fast; a test is), so the move is sent
    again until the scene reports it."""
    vp, scene = editor.view.viewport(), editor.view.scene()
    seen: list = []
    scene.sigMouseMoved.connect(seen.append)

    def taken() -> bool:
        if not seen:
            qtbot.mouseMove(vp, pos=pos)
        return bool(seen)

    try:
        qtbot.waitUntil(taken, timeout=3000)
    finally:
        scene.sigMouseMoved.disconnect(seen.append)


def drag(qtbot, editor, lane, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start``, move in two steps, release at ``end`` (lane coordinates)."""
    vp = editor.view.viewport()
    a = viewport_point(editor, lane, *start)
    b = viewport_point(editor, lane, *end)
    qtbot.mousePress(vp, LEFT, pos=a)
    move(qtbot, editor, (a + b) / 2)
    move(qtbot, editor, b)
    qtbot.mouseRelease(vp, LEFT, pos=b)


def click(qtbot, editor, lane, x: float, y: float, button=LEFT, double: bool = False) -> None:
    vp = editor.view.viewport()
    pos = viewport_point(editor, lane, x, y)
    qtbot.mouseClick(vp, button, pos=pos)
    if double:  # what a real double-click sends: QTest's mouseDClick alone has no release,
        qtbot.mouseDClick(vp, button, pos=pos)  # and pyqtgraph reports clicks on release
        qtbot.mouseRelease(vp, button, pos=pos)


def open_menu(qtbot, editor, lane, x: float, y: float, name: str) -> QMenu:
    """Right-click the lane at (x, y) and wait for the editor's menu called ``name``."""
    click(qtbot, editor, lane, x, y, RIGHT)
    found: list[QMenu] = []

    def shown() -> bool:
        found[:] = [m for m in editor.findChildren(QMenu, name) if m.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=3000)
    return found[0]


def choose(qtbot, menu: QMenu, *path: str) -> None:
    """Click the menu entries ``path`` (submenus, then the action) with the mouse."""
    for i, text in enumerate(path):
        action = next(a for a in menu.actions() if a.text() == text)
        qtbot.waitUntil(menu.isVisible, timeout=3000)
        center = menu.actionGeometry(action).center()
        if i + 1 < len(path):  # a submenu opens on hover
            qtbot.mouseMove(menu, pos=center)
            qtbot.mouseClick(menu, LEFT, pos=center)
            sub = action.menu()
            qtbot.waitUntil(sub.isVisible, timeout=3000)
            menu = sub
        else:
            qtbot.mouseClick(menu, LEFT, pos=center)


def set_property(qtbot, editor, key: str, text: str) -> None:
    """Type ``text`` into the properties panel's field ``key`` and press Enter."""
    field = editor.properties.findChild(QLineEdit, f"prop:{key}")
    assert field is not None, key
    type_into(qtbot, field, text)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def handle(lane, key):
    return lane.pool.items[key]


def wait_under_pointer(qtbot, editor, lane, key) -> None:
    """Wait until the item ``key`` is what the mouse hits at its view position (pyqtgraph
    updates an auto-ranged view lazily, e.g. after switching to a log axis)."""
    item = handle(lane, key)

    def hit() -> bool:
        point = viewport_point(editor, lane, item.view_pos.x(), item.view_pos.y())
        return item in editor.view.items(point)

    qtbot.waitUntil(hit, timeout=3000)
