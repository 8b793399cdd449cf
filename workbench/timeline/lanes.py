"""Lane basics, and the two simple lanes: phases (coloured spans) and marks.

A lane is one pyqtgraph PlotItem of the editor, x in ticks and linked to the others. Its items
are kept in a ``Pool`` by key and updated in place on every redraw (``sync``), so the handle the
user is dragging survives the redraws its own drag causes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QPointF

from workbench.plots.events import PHASE_COLORS
from workbench.timeline import edits, geometry
from workbench.timeline.items import SIZE, Handle, LaneViewBox, Span

if TYPE_CHECKING:
    from workbench.timeline.editor import TimelineEditor

AXIS_WIDTH = 70  # px: the same left axis on every lane keeps their ticks aligned
MARK_GLYPHS = {"checkpoint": "down", "eval": "circle", "note": "diamond"}
MARK_COLORS = {"checkpoint": "#8a8f98", "eval": "#2fb67c", "note": "#f5d90a"}


@dataclass(frozen=True)
class Selection:
    """The selected item: ``kind`` is a TimelineConfig list (phases, lr, layernorm, marks),
    ``index`` its position (None: the implicit phase of a timeline without phases); ``point``
    a control point of a points segment."""

    kind: str
    index: int | None
    point: int | None = None


class Pool:
    """Items of one lane by key: ``get`` reuses or makes one; ``end`` drops those not asked for
    since ``begin`` (except one being dragged). Handles go on the view box itself (pixels) and
    are re-placed from their view position whenever the view moves."""

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self.vb = plot.getViewBox()
        self.items: dict = {}
        self._seen: set = set()
        self.vb.sigTransformChanged.connect(self.place_all)

    def begin(self) -> None:
        self._seen = set()

    def get(self, key, make):
        item = self.items.get(key)
        if item is None:
            item = self.items[key] = make()
            if isinstance(item, Handle):
                item.setParentItem(self.vb)
            else:
                self.plot.addItem(item, ignoreBounds=True)
        self._seen.add(key)
        return item

    def place(self, handle: Handle, view_pos: QPointF) -> None:
        handle.view_pos = QPointF(view_pos)
        handle.setPos(self.vb.mapFromView(view_pos))

    def place_all(self, *_) -> None:
        for item in self.items.values():
            if isinstance(item, Handle):
                item.setPos(self.vb.mapFromView(item.view_pos))

    def end(self) -> None:
        for key in [k for k in self.items if k not in self._seen]:
            item = self.items[key]
            if getattr(item, "dragging", False):
                continue
            del self.items[key]
            if isinstance(item, Handle):
                item.scene().removeItem(item)
            else:
                self.plot.removeItem(item)


class Lane:
    """One lane: a PlotItem on a ``LaneViewBox``, its item pool, and drag plumbing."""

    title = ""
    kind = ""  # the TimelineConfig list this lane edits
    px = 22  # height in pixels (short lanes are fixed; the editor must fit a 1280x800 window)

    def __init__(self, editor: TimelineEditor, axis_items: dict | None = None):
        self.editor = editor
        self.vb = LaneViewBox()
        self.plot = pg.PlotItem(viewBox=self.vb, axisItems=axis_items or {})
        left = self.plot.getAxis("left")
        left.setWidth(AXIS_WIDTH)
        # short lanes: the title as one horizontal tick label (a rotated axis label won't fit)
        left.setTicks([[(0.5, self.title)], []])
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.pool = Pool(self.plot)
        self.vb.on_click = self.background_click
        self.vb.on_menu = self.background_menu
        self._drag_base = None

    @property
    def doc(self):
        return self.editor.doc

    def heights(self) -> tuple[int, int, int]:
        """(least, most, share of spare room) of the lane's height, in pixels."""
        return self.px, self.px, 0

    def sync(self) -> None:
        self.pool.begin()
        if self.doc.spec is not None:
            self.draw()
        self.pool.end()

    def draw(self) -> None:
        raise NotImplementedError

    # --- shared behaviour ---
    def look(self, key) -> tuple[bool, bool]:
        """(selected, marked as failing) for the item ``key`` = (kind, index, ...)."""
        sel = self.editor.selection
        selected = sel is not None and (sel.kind, sel.index) == tuple(key[:2])
        if selected and sel.point is not None and len(key) > 3 and key[2] == "pt":
            selected = key[3] == sel.point
        return selected, self.editor.failing == tuple(key[:2])

    def handle(self, key, shape, color, pos: QPointF, axes="x", tip="", size=SIZE) -> Handle:
        h = self.pool.get(key, lambda: self._new_handle(key, shape, color, axes, size))
        selected, failing = self.look(key)
        h.set_look(color, selected, failing)
        self.pool.place(h, pos)
        h.setToolTip(tip)
        return h

    def _new_handle(self, key, shape, color, axes, size) -> Handle:
        h = Handle(key, shape, color, axes, size=size)
        h.on_drag = self._drag
        h.on_click = lambda item, double: self.editor.item_clicked(self.selection_of(key), double)
        h.on_menu = lambda item, screen: self.item_menu(key, item.view_pos, screen)
        return h

    def span(self, key, color: str, x0, x1, y0, y1, text: str = "", tip: str = "", alpha=90):
        s = self.pool.get(key, lambda: self._new_span(key, color, alpha))
        selected, failing = self.look(key)
        s.set_geometry(x0, x1, y0, y1, text)
        s.set_look(color, selected, failing, self.editor.colors.text)
        s.setToolTip(tip)
        return s

    def _new_span(self, key, color, alpha) -> Span:
        s = Span(key, color, alpha)
        s.on_click = lambda item, double, pos: self.editor.item_clicked(
            self.selection_of(key), double
        )
        s.on_menu = lambda item, screen, pos: self.item_menu(key, pos, screen)
        return s

    def selection_of(self, key) -> Selection:
        return Selection(key[0], key[1], key[3] if len(key) > 3 and key[2] == "pt" else None)

    def _drag(self, handle: Handle, pos: QPointF, stage: str) -> None:
        if not self.editor.editable:
            return
        if stage == "start" or self._drag_base is None:
            self._drag_base = copy.deepcopy(self.doc.timeline)
        timeline, text = self.dragged(handle.key, pos, self._drag_base)
        if stage == "finish":
            self._drag_base = None
            self.editor.commit(timeline, text)
        else:
            self.editor.preview(timeline)

    def dragged(self, key, pos: QPointF, base):
        """(new timeline, undo text) for handle ``key`` dragged to ``pos``; ``base`` is the
        timeline as it was when the drag started."""
        raise NotImplementedError

    def background_click(self, pos: QPointF, double: bool) -> None:
        self.editor.select(None)

    def background_menu(self, pos: QPointF, screen) -> None:
        self.item_menu(None, pos, screen)

    def item_menu(self, key, pos: QPointF, screen) -> None:
        """Right click on item ``key`` (None: empty space) at view position ``pos``."""


class PhaseLane(Lane):
    title = "phases"
    kind = "phases"

    def __init__(self, editor):
        super().__init__(editor)
        self.vb.setYRange(0, 1, padding=0)

    def draw(self) -> None:
        spec = self.doc.spec
        for n, (index, name, start, end) in enumerate(
            geometry.phase_spans(spec, self.doc.compiled)
        ):
            color = PHASE_COLORS[n % len(PHASE_COLORS)]
            phase = spec.timeline.phases[index] if index is not None else None
            text, tip = self._describe(name, phase, start, end)
            self.span(("phases", index), color, start, end, 0.12, 0.88, text, tip)
            if index:  # every phase but the first has a movable start
                unit = self.editor.unit
                self.handle(
                    ("phases", index, "start"),
                    "bar",
                    color,
                    QPointF(start, 0.5),
                    tip=f"{name} starts at tick {start} ({unit.label(start)}): drag to move",
                )

    @staticmethod
    def _describe(name: str, phase, start: int, end: int) -> tuple[str, str]:
        parts = [name]
        if phase is not None:
            if phase.data is not None:
                data = phase.data
                parts.append(
                    data.path.removeprefix("builtin:") if data.source == "text" else data.source
                )
            if phase.freeze:
                parts.append(f"freeze {len(phase.freeze)}")
            if phase.lr_scale != 1.0:
                parts.append(f"lr×{phase.lr_scale:g}")
            if phase.init_from:
                parts.append("init")
        tip = f"phase {name}: ticks {start}..{end - 1}"
        if phase is not None:
            tip += "".join(
                f"\n{k}: {v}"
                for k, v in (
                    ("data", phase.data),
                    ("freeze", phase.freeze),
                    ("unfreeze", phase.unfreeze),
                    ("lr_scale", phase.lr_scale),
                    ("weight_decay", phase.weight_decay),
                    ("init_from", phase.init_from),
                )
                if v not in (None, []) and not (k == "lr_scale" and v == 1.0)  # 1.0: its default
            )
        return " · ".join(parts), tip + "\n(double-click to edit, right-click for more)"

    def dragged(self, key, pos, base):
        position, _ = self.editor.snap(pos.x())
        name = base.phases[key[1]].name
        return edits.replace_item(base, "phases", key[1], start=position), f"move {name}"

    def item_menu(self, key, pos, screen) -> None:
        tick = self.editor.tick_at(pos.x())
        spans = geometry.phase_spans(self.doc.spec, self.doc.compiled)
        under = [s for s in spans if s[2] <= tick < s[3]] or spans[-1:]
        index = under[0][0] if under else None
        position, _ = self.editor.snap(pos.x())
        tl = self.doc.timeline
        menu = self.editor.menu("phaseMenu")
        menu.addAction(
            "Split phase here",
            lambda: self.editor.commit(edits.split_phase(tl, index, position), "split phase"),
        )
        menu.addAction(
            "Add phase here",
            lambda: self.editor.commit(edits.add_phase(tl, index, position), "add phase"),
        )
        menu.addAction("Edit phase…", lambda: self.editor.open_item(Selection("phases", index)))
        delete = menu.addAction(
            "Delete phase", lambda: self.editor.delete(Selection("phases", index))
        )
        delete.setEnabled(index is not None and len(tl.phases) > 1)
        self.editor.popup(menu, screen)


class MarkLane(Lane):
    title = "marks"
    kind = "marks"
    px = 20 + 22  # and the tick axis under it

    def __init__(self, editor, axis_items=None):
        super().__init__(editor, axis_items)
        self.vb.setYRange(0, 1, padding=0)

    def draw(self) -> None:
        spec = self.doc.spec
        for i, mark in enumerate(spec.timeline.marks):
            ticks = geometry.mark_ticks(self.doc.compiled, i)
            color = MARK_COLORS[mark.action]
            label = mark.text or {"checkpoint": "ckpt"}.get(mark.action, mark.action)
            if mark.every is not None:
                tip = f"{mark.action} every {mark.every} ticks ({len(ticks)} in the run)"
                self._every(i, ticks, color, tip)
            elif ticks:
                tick = ticks[0]
                h = self.handle(
                    ("marks", i),
                    MARK_GLYPHS[mark.action],
                    color,
                    QPointF(tick, 0.45),
                    tip=f"{mark.action} at tick {tick} ({self.editor.unit.label(tick)})"
                    + (f": {mark.text}" if mark.text else ""),
                )
                text = self.pool.get(("marks", i, "text"), lambda: pg.TextItem(anchor=(0, 0.5)))
                text.setText(f"   {label}")  # clear of the glyph
                text.setColor(self.editor.colors.text)
                text.setPos(h.view_pos.x(), 0.45)

    def _every(self, i: int, ticks: list[int], color: str, tip: str) -> None:
        def make():
            item = pg.ScatterPlotItem(symbol="t", size=8, pen=None, brush=pg.mkBrush(color))
            item.sigClicked.connect(
                lambda *_: self.editor.item_clicked(Selection("marks", i), False)
            )
            return item

        item = self.pool.get(("marks", i, "every"), make)
        selected, failing = self.look(("marks", i))
        brush = "#ff4d4f" if failing else ("#ffffff" if selected else color)
        item.setData([float(t) for t in ticks], [0.45] * len(ticks), brush=pg.mkBrush(brush))
        item.setToolTip(tip)

    def dragged(self, key, pos, base):
        position, _ = self.editor.snap(pos.x())
        return edits.replace_item(base, "marks", key[1], at=position), "move mark"

    def item_menu(self, key, pos, screen) -> None:
        position, _ = self.editor.snap(pos.x())
        tl = self.doc.timeline
        menu = self.editor.menu("markMenu")
        for action in edits.MARK_ACTIONS:
            mark = edits.new_mark(action, position)
            menu.addAction(
                f"Add {action} here",
                lambda m=mark: self.editor.commit(
                    edits.insert_item(tl, "marks", len(tl.marks), m), f"add {m.action}"
                ),
            )
        if key is not None:
            sel = Selection("marks", key[1])
            menu.addSeparator()
            menu.addAction("Edit mark…", lambda: self.editor.open_item(sel))
            menu.addAction("Delete mark", lambda: self.editor.delete(sel))
        self.editor.popup(menu, screen)
