"""The Timeline editor dock: lanes for phases, LR segments and curve, LayerNorm, marks.

The lanes share one tick axis (zoom with the wheel, pan by dragging empty space, in any lane);
the toolbar picks the axis unit, the snap grid, the LR shape palette and a log LR axis. Every
edit goes through the ``TimelineDoc`` (undo/redo, the engine's validation); the Config panel
and the editor are kept on the same spec by ``ConfigLink`` (``workbench/timeline/sync.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QMenu,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import engine
from workbench.bridge import Throttle
from workbench.timeline import edits, geometry
from workbench.timeline.document import TimelineDoc, item_of
from workbench.timeline.lanes import MarkLane, PhaseLane, Selection
from workbench.timeline.lever_lanes import BatchLane, CompressionLane, add_prune, add_quantize
from workbench.timeline.lr_lanes import LRLane, SegmentLane
from workbench.timeline.norm_lane import NormLane
from workbench.timeline.properties import ItemDialog, PropertiesPanel
from workbench.timeline.status import StatusLine, describe_tick
from workbench.timeline.toolbar import EditorToolbar
from workbench.timeline.units import AxisUnit, UnitAxis

CURSOR_COLOR = "#ff4d4f"
PAST_COLOR = (128, 128, 128, 110)  # the ticks a live run has trained, hatched: locked
PROPERTIES_WIDTH = 250
SEGMENT_KINDS = ("lr", "batch")  # lists of segments: the shape palette changes their shape
KIND_TITLES = {
    "phases": "Phase",
    "lr": "LR segment",
    "layernorm": "LayerNorm event",
    "marks": "Mark",
    "batch": "Batch segment",
    "prune": "Pruning",
    "quantize": "Quantize event",
}


@dataclass
class Colors:
    background: str = "#1e1f22"
    text: str = "#e6e6e6"
    muted: str = "#a0a4ab"
    error: str = "#ff7b72"


# A live run moves the cursor at most this often: each move repaints every lane (about 10 ms of
# the GUI thread, more while training holds the GIL); see docs/benchmarks.md, "Workbench
# responsiveness".
FOLLOW_MS = 1000


class TimelineEditor(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("timelineEditor")
        self.doc = TimelineDoc(self)
        self.selection: Selection | None = None
        self.colors = Colors()
        self.shape = "cosine"
        self._locked = False
        self._live = False  # a run trains this spec: edits steer its future (see set_live)
        self._form_error: engine.ConfigError | None = None
        self._steps = None
        self._cursor_tick: int | None = None
        self._follow_tick: int | None = None  # the live run's latest tick
        self._follow = Throttle(FOLLOW_MS, lambda: self.show_tick(self._follow_tick), self)
        self._has_log = False

        self.undo_action, self.redo_action = self._undo_actions()
        self._sync_undo()
        fit = QAction("Fit", self, triggered=self.fit, toolTip="Show the whole run")
        self.toolbar = EditorToolbar(
            self.shape,
            [
                (self.undo_action, "timelineUndo"),
                (self.redo_action, "timelineRedo"),
                (fit, "timelineFit"),
            ],
        )
        self.toolbar.shapeChosen.connect(self.set_shape)
        # the toolbar's controls, as the tests and the rest of the editor know them
        self.units_box = self.toolbar.units_box
        self.snap_box = self.toolbar.snap_box
        self.log_box = self.toolbar.log_box
        self.palette_buttons = self.toolbar.palette_buttons

        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("timelineView")
        self.view.ci.layout.setSpacing(0)
        self.axis = UnitAxis()
        self.phase_lane = PhaseLane(self)
        self.segment_lane = SegmentLane(self)
        self.lr_lane = LRLane(self)
        self.batch_lane = BatchLane(self)
        self.norm_lane = NormLane(self)
        self.compression_lane = CompressionLane(self)
        self.mark_lane = MarkLane(self, {"bottom": self.axis})
        self.lanes = [
            self.phase_lane,
            self.segment_lane,
            self.lr_lane,
            self.batch_lane,
            self.norm_lane,
            self.compression_lane,
            self.mark_lane,
        ]
        self.cursors = []
        self.pasts = []  # one shaded region per lane over the ticks a live run has trained
        for row, lane in enumerate(self.lanes):
            self.view.addItem(lane.plot, row=row, col=0)
            if lane is not self.mark_lane:
                lane.plot.hideAxis("bottom")
            if lane is not self.lr_lane:
                lane.plot.setXLink(self.lr_lane.plot)
            cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(CURSOR_COLOR, width=1.5))
            cursor.setZValue(30)
            cursor.hide()
            lane.plot.addItem(cursor, ignoreBounds=True)
            self.cursors.append(cursor)
            hatch = QBrush(QColor(*PAST_COLOR), Qt.BrushStyle.BDiagPattern)
            past = pg.LinearRegionItem((0, 0), movable=False, brush=hatch, pen=pg.mkPen(None))
            past.setZValue(25)  # over the items, dimming the past; clicks go through to them
            past.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            past.hide()
            lane.plot.addItem(past, ignoreBounds=True)
            self.pasts.append(past)
        self.view.scene().sigMouseMoved.connect(self._hover)
        self.delete_action = QAction("Delete", self, triggered=lambda: self.delete(self.selection))
        self.delete_action.setShortcuts(
            [QKeySequence.StandardKey.Delete, QKeySequence("Backspace")]
        )
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.view.addAction(self.delete_action)

        self.properties = PropertiesPanel(self)
        self.properties.setMinimumWidth(200)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(self.properties)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([900, PROPERTIES_WIDTH])
        self.status = StatusLine()
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        # the lanes need ~800 x 280 px; in a smaller dock they scroll rather than make the
        # window's minimum size larger than a laptop screen
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self.units_box.currentIndexChanged.connect(self._unit_changed)
        self.log_box.toggled.connect(self.lr_lane.set_log)
        self.doc.changed.connect(self.redraw)
        self.doc.refused.connect(self.show_refusal)
        self._restyle()

    # --- building ---
    def _undo_actions(self) -> tuple[QAction, QAction]:
        """Undo and Redo with fixed labels: QUndoStack's own actions put the edit's name in
        the button's text, which widens the toolbar past a 1280 px window. The name goes in
        the tooltip instead."""
        stack = self.doc.undo_stack
        undo = QAction("Undo", self, triggered=stack.undo)
        undo.setShortcut(QKeySequence("Ctrl+Z"))
        redo = QAction("Redo", self, triggered=stack.redo)
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action in (undo, redo):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        # (can, the edit's name) as the stack last announced them: the stack announces its
        # last change while it is being deleted, when it can no longer be asked
        self._undo_state = {"Undo": [False, ""], "Redo": [False, ""]}
        stack.canUndoChanged.connect(lambda on: self._undo_changed("Undo", 0, on))
        stack.undoTextChanged.connect(lambda text: self._undo_changed("Undo", 1, text))
        stack.canRedoChanged.connect(lambda on: self._undo_changed("Redo", 0, on))
        stack.redoTextChanged.connect(lambda text: self._undo_changed("Redo", 1, text))
        return undo, redo

    def _undo_changed(self, name: str, field: int, value) -> None:
        self._undo_state[name][field] = value
        self._sync_undo()

    def _sync_undo(self) -> None:
        """Undo/Redo enabled when there is an edit to take back (and edits are allowed); the
        edit's name in their tooltips."""
        for action, keys in ((self.undo_action, "Ctrl+Z"), (self.redo_action, "Ctrl+Shift+Z")):
            name = action.text()
            can, text = self._undo_state[name]
            action.setEnabled(self.editable and can)
            action.setToolTip(f"{name}: {text} ({keys})" if can else f"Nothing to {name.lower()}")

    # --- state ---
    @property
    def editable(self) -> bool:
        return not self._locked and self._form_error is None

    @property
    def unit(self) -> AxisUnit:
        doc = self.doc
        if doc.compiled is not None:  # the data's real tokens per tick
            units = doc.compiled.units
        else:  # nothing compiles yet: the spec's own estimate
            units = engine.units_for(doc.spec) if doc.spec else engine.Units(1, 1)
        return AxisUnit(self.toolbar.unit_name, units)

    @property
    def grid(self) -> float | None:
        return self.toolbar.grid

    @property
    def failing(self) -> tuple[str, int] | None:
        return item_of(self.doc.error)

    def set_locked(self, locked: bool) -> None:
        """A run is using the spec: show, follow the run, but take no edits."""
        self._locked = locked
        self._sync_enabled()

    def set_live(self, live: bool, trained: int = 0) -> None:
        """A run trains this spec (True) or no longer does. While it trains, edits stay
        possible: they steer its future (the window sends them as revisions, from the run's next
        tick on), and the ticks it has trained are hatched up to the "now" line (``trained``:
        those a resumed, forked or branched run has already, before its first new tick)."""
        self._live = live
        self._locked = False
        self._sync_enabled()
        if not live:
            for past in self.pasts:
                past.hide()
        elif trained > 0 and self._cursor_tick is None:
            self.show_tick(trained - 1)
        self._show_state()

    @property
    def live(self) -> bool:
        return self._live

    def set_form_error(self, error: engine.ConfigError | None) -> None:
        """The Config form has an error outside the timeline: no edits until it is fixed."""
        self._form_error = error
        self._sync_enabled()
        self.redraw()

    def _sync_enabled(self) -> None:
        self.toolbar.set_editable(self.editable)
        self._sync_undo()
        if self.properties.form is not None:
            self.properties.form.setEnabled(self.editable)
        self.delete_action.setEnabled(self.editable)

    # --- coordinates ---
    def tick_at(self, x: float) -> int:
        return int(min(max(round(x), 0), max(self.doc.steps - 1, 0)))

    def snap(self, x: float):
        """(written position, tick) a drag or click at ``x`` lands on."""
        position = self.unit.snap(x, self.grid)
        return position, self.unit.resolve(position)

    def _unit_changed(self) -> None:
        self._fill_snap()
        self.redraw()

    def _fill_snap(self) -> None:
        self.toolbar.fill_snap(self.unit)
        self.axis.set_unit(self.unit)

    def fit(self) -> None:
        self.lr_lane.vb.setXRange(0, self.doc.steps, padding=0.01)

    # --- drawing ---
    def redraw(self) -> None:
        spec = self.doc.spec
        if spec is None:
            return
        if spec.train.steps != self._steps:  # a new run length: new grid, limits and view
            self._steps = spec.train.steps
            self._fill_snap()
            pad = spec.train.steps * 0.03
            for lane in self.lanes:
                lane.vb.setLimits(xMin=-pad, xMax=spec.train.steps + pad, minXRange=5)
            self.fit()
        has_log = any(seg.shape == "points" and seg.log for seg in spec.timeline.lr)
        if has_log != self._has_log:  # a log segment appeared (or the last one went): follow it
            self._has_log = has_log
            self.log_box.setChecked(has_log)
        for lane in self.lanes:
            lane.sync()
        self._layout_rows()  # after the sync: the LayerNorm lane's rows are known
        self._show_state()
        if not self.doc.previewing:
            self._show_selection()

    def _layout_rows(self) -> None:
        """Each lane's height range and share of spare room; the view never gets smaller than
        all the lanes at their least."""
        grid = self.view.ci.layout
        for row, lane in enumerate(self.lanes):
            low, high, stretch = lane.heights()
            grid.setRowMinimumHeight(row, low)
            grid.setRowMaximumHeight(row, high)
            grid.setRowStretchFactor(row, stretch)
        self.view.setMinimumHeight(sum(lane.heights()[0] for lane in self.lanes) + 4)

    def _show_state(self) -> None:
        error = self.doc.error
        if self._form_error is not None:
            self._say(f"Fix the Config form first: {self._form_error}", error=True)
        elif error is not None:
            self._say(f"{error}  (Run stays disabled until this is fixed)", error=True)
        elif self._live and not self.status.refusal:
            done = "" if self._cursor_tick is None else f" (ticks 0-{self._cursor_tick} trained)"
            self._say(f"Steering the run: an edit applies from its next tick{done}", error=False)
        elif not self.status.refusal:
            lr = self.doc.timeline.lr
            self._say(f"{len(lr)} LR segments · undo Ctrl+Z, redo Ctrl+Shift+Z", error=False)

    def _say(self, text: str, error: bool, refusal: bool = False) -> None:
        self.status.say(text, self.colors.error if error else self.colors.muted, refusal)

    def show_refusal(self, text: str) -> None:
        self._say(text, error=True, refusal=True)

    @property
    def message_text(self) -> str:
        return self.status.message_text

    @property
    def hover_text(self) -> str:
        return self.status.hover_text

    # --- selection and edits (called by the lanes) ---
    def item(self, sel: Selection | None):
        if sel is None or self.doc.spec is None:
            return None
        items = getattr(self.doc.timeline, sel.kind)
        if sel.index is None:
            return engine.PhaseSpec(name="main") if sel.kind == "phases" else None
        return items[sel.index] if sel.index < len(items) else None

    def select(self, sel: Selection | None) -> None:
        self.selection = sel if self.item(sel) is not None else None
        for lane in self.lanes:
            lane.sync()
        self._show_selection()

    def _show_selection(self) -> None:
        sel = self.selection
        item = self.item(sel)
        if item is None:
            self.selection = None
            self.properties.show_item(None, None, "")
            return
        title = f"{KIND_TITLES[sel.kind]} {sel.index if sel.index is not None else ''}".strip()
        if sel.point is not None:
            title += f" · point {sel.point}"
        self.properties.show_item(sel, item, title)
        if sel.kind in SEGMENT_KINDS and item.shape in self.palette_buttons:
            self.toolbar.check_shape(item.shape)

    def item_clicked(self, sel: Selection, double: bool) -> None:
        if sel.kind == "lr" and sel.index is None:
            return
        self.select(sel)
        if double:
            self.open_item(sel)

    def open_item(self, sel: Selection) -> None:
        item = self.item(sel)
        if item is None or not self.editable:
            return
        self.select(sel)
        dialog = ItemDialog(self, sel, item, f"{KIND_TITLES[sel.kind]} properties")
        dialog.open()

    def preview(self, timeline) -> None:
        self.doc.preview(timeline)

    def commit(self, timeline, text: str) -> bool:
        if not self.editable:
            self.doc.end_preview()
            self.show_refusal("A run is using the spec: the timeline cannot change now")
            return False
        self.status.refusal = False
        ok = self.doc.propose(timeline, text)
        if ok:
            self._show_state()
        return ok

    def replace(self, sel: Selection, item) -> bool:
        """Put ``item`` in place of the selected one (the properties panel and dialog)."""
        tl = self.doc.timeline
        if sel.kind == "phases":
            return self.commit(edits.set_phase(tl, sel.index, item), "edit phase")
        return self.commit(edits.set_item(tl, sel.kind, sel.index, item), f"edit {sel.kind}")

    def delete(self, sel: Selection | None) -> bool:
        if sel is None or sel.index is None or self.item(sel) is None:
            return False
        tl = self.doc.timeline
        if sel.point is not None:
            seg = tl.lr[sel.index]
            new = edits.set_item(tl, "lr", sel.index, edits.delete_point(seg, sel.point))
            done = self.commit(new, "delete LR point")
            if done:
                self.select(Selection("lr", sel.index))
            return done
        done = self.commit(edits.delete_item(tl, sel.kind, sel.index), f"delete {sel.kind} item")
        if done:
            self.select(None)
        return done

    def set_shape(self, shape: str, index: int | None = None) -> None:
        """Palette: the selected segment (LR or batch) takes ``shape``; the palette remembers it
        for adding. ``index``: that LR segment instead."""
        self.shape = shape
        self.toolbar.check_shape(shape)
        sel, kind = self.selection, "lr"
        if index is None and sel is not None and sel.kind in SEGMENT_KINDS:
            index, kind = sel.index, sel.kind
        if index is None:
            return
        seg = getattr(self.doc.timeline, kind)[index]
        if seg.shape == shape:
            return
        span = geometry.segment_span(self.doc.compiled, index, kind)
        mid = self.unit.position_at((span[0] + span[1]) // 2) if span else seg.start
        new = edits.set_item(self.doc.timeline, kind, index, edits.set_shape(seg, shape, mid))
        if self.commit(new, f"{kind} segment {index} -> {shape}"):
            self.select(Selection(kind, index))

    def menu(self, name: str) -> QMenu:
        menu = QMenu(self)
        menu.setObjectName(name)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if not self.editable:
            menu.setEnabled(False)
        return menu

    def add_lever_actions(self, menu: QMenu, x: float, batch: bool = True) -> None:
        """The entries that add the other levers' items at ``x``: their lanes show once the
        spec has one (a batch segment only where no batch segment is)."""
        menu.addSeparator()
        if batch:
            add = menu.addAction("Add constant batch segment here", lambda: self.batch_lane.add(x))
            add.setEnabled(self.batch_lane.segment_at(self.tick_at(x)) is None)
        menu.addAction("Add pruning here", lambda: add_prune(self, x))
        qat = menu.addAction("Add QAT here", lambda: add_quantize(self, x))
        qat.setEnabled(not self.doc.timeline.quantize)  # QAT stays on: one event per run

    def popup(self, menu: QMenu, screen) -> None:
        menu.popup(QPoint(int(screen.x()), int(screen.y())))

    # --- the run ---
    def show_tick(self, tick: int | None) -> None:
        """The cursor line at the run's current tick (None hides it, and stops following)."""
        if tick is None:
            self._follow.cancel()
        self._cursor_tick = tick
        for cursor, past in zip(self.cursors, self.pasts):
            cursor.setVisible(tick is not None)
            past.setVisible(tick is not None and self._live)
            if tick is not None:
                cursor.setPos(tick)
                past.setRegion((-0.5, tick + 0.5))
        if self._live and tick is not None and not self.status.refusal:
            self._show_state()

    def follow_run(self, batch: list) -> None:
        """Move the cursor to the latest tick in a frame of engine messages: at once, then at
        most every ``FOLLOW_MS`` (the latest tick always shows within that time)."""
        ticks = [m.tick for m in batch if isinstance(m, engine.Scalars)]
        if ticks:
            self._follow_tick = max(ticks)
            self._follow.request()

    # --- hover ---
    def _hover(self, pos) -> None:
        compiled = self.doc.compiled
        for lane in self.lanes:
            if compiled is not None and lane.vb.sceneBoundingRect().contains(pos):
                tick = self.tick_at(lane.vb.mapSceneToView(pos).x())
                text = describe_tick(self.doc.spec, compiled, self.unit, tick)
                self.status.show_hover(text)
                self.view.setToolTip(text)
                return

    # --- look ---
    def changeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._restyle()
        super().changeEvent(event)

    def _restyle(self) -> None:
        """Follow the app's theme (the window sets the palette; the editor reads it)."""
        pal = self.palette()
        base, text = pal.base().color(), pal.text().color()
        dark = base.lightness() < 128
        self.colors = dataclasses.replace(
            self.colors,
            background=base.name(),
            text=text.name(),
            muted=pal.placeholderText().color().name(),
            error="#ff7b72" if dark else "#c4281c",
        )
        self.view.setBackground(base)
        for lane in self.lanes:
            for name in ("left", "bottom"):
                axis = lane.plot.getAxis(name)
                axis.setPen(pg.mkPen(QColor(text.name()), width=1))
                axis.setTextPen(QColor(text.name()))
        self.redraw()
