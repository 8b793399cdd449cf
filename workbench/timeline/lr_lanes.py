"""The LR lanes: a strip of segments (spans with draggable ends) and the compiled LR curve with
handles on the segments' values and on the control points of ``points`` segments.

The curve is the document's compiled timeline (``engine.plan_timeline``): exactly what the engine
will use. Handles sit at the segment's own values, i.e. on the curve before phase ``lr_scale``
(``lr_curve(scaled=False)``, drawn dashed when a scale differs). A value at ``u`` of a segment
[start, end) sits at ``engine.tick_of_u``: the engine's convention puts ``u = 1`` on the last
tick.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, Qt

import engine
from workbench.timeline import edits, geometry
from workbench.timeline.lanes import Lane, Selection

SHAPE_COLORS = {
    "constant": "#8a8f98",
    "linear": "#4c8dff",
    "cosine": "#2fb67c",
    "exp": "#ff8c1a",
    "step": "#b36bff",
    "points": "#d6409f",
}
CURVE_COLOR = "#2fb67c"
RAW_COLOR = "#8a8f98"


def _spans(doc, kind: str = "lr") -> list[tuple[int, int] | None]:
    return geometry.segment_spans(doc.compiled, len(getattr(doc.timeline, kind)), kind)


def tick_of_u(span: tuple[int, int], u: float) -> float:
    return engine.tick_of_u(*span, u)  # the engine's segment convention, not a copy of it


def u_of_tick(span: tuple[int, int], x: float) -> float:
    return engine.u_of_tick(*span, x)


class LRMenus:
    """What both LR lanes do on a right click, and adding segments."""

    def item_menu(self, key, pos: QPointF, screen) -> None:
        ed, tl = self.editor, self.doc.timeline
        index = key[1] if key is not None else self.segment_at(ed.tick_at(pos.x()))
        menu = ed.menu("lrMenu")
        for shape in edits.SHAPES:
            menu.addAction(
                f"Add {shape} segment here", lambda s=shape: self.add_segment(s, pos.x())
            )
        if index is not None:
            sel = Selection("lr", index)
            menu.addSeparator()
            shapes = menu.addMenu("Shape")
            for shape in edits.SHAPES:
                act = shapes.addAction(shape, lambda s=shape: ed.set_shape(s, index))
                act.setCheckable(True)
                act.setChecked(tl.lr[index].shape == shape)
            menu.addAction("Edit segment…", lambda: ed.open_item(sel))
            menu.addAction("Delete segment", lambda: ed.delete(sel))
            if key is not None and len(key) > 3 and key[2] == "pt":
                menu.addAction("Delete point", lambda: ed.delete(Selection("lr", index, key[3])))
        ed.add_lever_actions(menu, pos.x())
        ed.popup(menu, screen)

    def segment_at(self, tick: int) -> int | None:
        for i, span in enumerate(_spans(self.doc, self.kind)):
            if span is not None and span[0] <= tick < span[1]:
                return i
        return None

    def add_segment(self, shape: str, x: float) -> bool:
        """A ``shape`` segment from the tick at ``x``: inside a segment it splits it, in a gap
        it runs to the next segment (or the end of the run)."""
        ed, spec = self.editor, self.doc.spec
        tl, raw = spec.timeline, self.doc.raw_lr()
        position, tick = ed.snap(x)
        if raw is None or tick is None or tick >= spec.train.steps:
            return False
        v_before = float(raw[max(tick - 1, 0)])
        spans = _spans(self.doc)
        for i, span in enumerate(spans):
            if span is not None and span[0] < tick < span[1]:
                timeline = edits.split_segment(tl, i, position, shape, v_before)
                return ed.commit(timeline, f"add {shape} segment")
        later = [i for i, s in enumerate(spans) if s is not None and s[0] > tick]
        index = later[0] if later else len(tl.lr)
        end = tl.lr[index].start if later else ed.unit.position_at(spec.train.steps)
        v0 = v_before or spec.train.lr
        return ed.commit(edits.add_segment(tl, index, shape, position, end, v0), f"add {shape}")


class SegmentLane(LRMenus, Lane):
    """Segments as spans named by shape; drag an end (or the joint of two segments). The
    list is the lane's ``kind``: LR here, batch size in ``BatchLane``."""

    title = "segments"
    kind = "lr"
    noun = "segment"  # in tooltips
    alpha = 90  # the spans' fill
    px = 18

    def __init__(self, editor):
        super().__init__(editor)
        self.vb.setYRange(0, 1, padding=0)

    def draw(self) -> None:
        spec = self.doc.spec
        segs = getattr(spec.timeline, self.kind)
        spans = _spans(self.doc, self.kind)
        if not segs:
            self.draw_empty()
            return
        unit = self.editor.unit
        for i, (seg, span) in enumerate(zip(segs, spans)):
            if span is None:
                continue
            start, end = span
            color = SHAPE_COLORS[seg.shape]
            tip = f"{self.noun} {i}: {seg.shape}, ticks {start}..{end - 1}"
            self.span(
                (self.kind, i),
                color,
                start,
                end,
                0.15,
                0.85,
                self.describe(seg),
                tip + "\n(double-click to edit)",
                alpha=self.alpha,
            )
            joined_before = i > 0 and spans[i - 1] is not None and spans[i - 1][1] == start
            if not joined_before:
                self.handle(
                    (self.kind, i, "start"),
                    "bar",
                    color,
                    QPointF(start, 0.5),
                    tip=f"{self.noun} {i} starts at {start} ({unit.label(start)})",
                )
            joined = i + 1 < len(segs) and spans[i + 1] is not None and spans[i + 1][0] == end
            self.handle(
                (self.kind, i, "joint" if joined else "end"),
                "bar",
                color,
                QPointF(end, 0.5),
                tip=f"{self.noun} {i} ends at {end} ({unit.label(end)}), exclusive",
            )

    @staticmethod
    def describe(seg) -> str:
        return seg.shape + (" (log)" if seg.log else "")

    def draw_empty(self) -> None:
        spec = self.doc.spec
        self.span(
            ("lr", None),
            "#8a8f98",
            0,
            spec.train.steps,
            0.15,
            0.85,
            f"no segments: train.lr = {spec.train.lr:g} throughout (right-click to add)",
            alpha=40,
        )

    def dragged(self, key, pos, base):
        position, _ = self.editor.snap(pos.x())
        kind, i, end = key[0], key[1], key[2]
        if end == "start":
            return edits.replace_item(base, kind, i, start=position), f"move {kind} segment start"
        timeline = edits.replace_item(base, kind, i, end=position)
        if end == "joint":
            timeline = edits.replace_item(timeline, kind, i + 1, start=position)
        return timeline, f"move {kind} segment end"

    def background_click(self, pos, double) -> None:
        index = self.segment_at(self.editor.tick_at(pos.x()))
        if double and index is None and self.editor.editable:  # a gap: fill it
            self.add_segment(self.editor.shape, pos.x())
        else:
            self.editor.select(Selection("lr", index) if index is not None else None)


class LRLane(LRMenus, Lane):
    """The compiled LR curve, with value handles and points' control points."""

    title = "LR"
    kind = "lr"
    px = 40  # at least: the LR lane takes most of any spare room

    def heights(self) -> tuple[int, int, int]:
        return self.px, 100_000, 3

    def __init__(self, editor):
        super().__init__(editor)
        left = self.plot.getAxis("left")
        left.setTicks(None)  # values, not the title: the title is the axis label
        left.enableAutoSIPrefix(False)
        self.plot.setLabel("left", "LR")
        self.raw = self.plot.plot(
            pen={"color": RAW_COLOR, "width": 1, "style": Qt.PenStyle.DashLine}
        )
        self.curve = self.plot.plot(pen={"color": CURVE_COLOR, "width": 2})
        self.vb.enableAutoRange(y=True)
        self.log = False

    def set_log(self, on: bool) -> None:
        self.log = on
        self.plot.setLogMode(y=on)
        self.sync()

    def y_view(self, value: float) -> float:
        if not self.log:
            return value
        return math.log10(value) if value > 0 else self.vb.viewRange()[1][0]

    def value_at(self, y: float) -> float:
        return max(10**y if self.log else y, 0.0)

    def draw(self) -> None:
        doc = self.doc
        steps = doc.spec.train.steps
        x = np.arange(steps, dtype=float)
        if doc.compiled is not None:
            lr = doc.compiled.lr_curve()
            self.curve.setData(x, lr)
            self._fit_flat(lr)
        scaled = any(p.lr_scale != 1.0 for p in doc.timeline.phases)
        raw = doc.raw_lr() if scaled else None
        self.raw.setData(x if raw is not None else [], raw if raw is not None else [])
        for i, (seg, span) in enumerate(zip(doc.timeline.lr, _spans(doc))):
            if span is not None:
                self._segment_handles(i, seg, span)

    def _fit_flat(self, lr: np.ndarray) -> None:
        """A constant LR from 0 up to it: auto-range would centre the line in ±0.5 (a
        3e-4 LR drawn as 0 on an axis from -0.4 to 0.4)."""
        flat = len(lr) and not self.log and float(lr.max()) == float(lr.min())
        if flat:
            self.vb.disableAutoRange(axis="y")
            self.vb.setYRange(0.0, float(lr.max()) * 1.25 or 1.0, padding=0.05)
        else:
            self.vb.enableAutoRange(y=True)

    def _segment_handles(self, i, seg, span) -> None:
        color = SHAPE_COLORS[seg.shape]
        if seg.shape == "points":
            for k, (u, v) in enumerate(seg.points):
                self.handle(
                    ("lr", i, "pt", k),
                    "circle",
                    color,
                    QPointF(tick_of_u(span, u), self.y_view(v)),
                    axes="xy",
                    tip=f"point {k} of segment {i}: u = {u:g}, lr = {v:.6g}",
                )
            return
        self.handle(
            ("lr", i, "from"),
            "square",
            color,
            QPointF(tick_of_u(span, 0), self.y_view(seg.from_)),
            axes="y",
            tip=f"segment {i} ({seg.shape}) from = {seg.from_:.6g}",
        )
        if seg.to is not None and seg.shape in ("linear", "cosine", "exp"):
            self.handle(
                ("lr", i, "to"),
                "square",
                color,
                QPointF(tick_of_u(span, 1), self.y_view(seg.to)),
                axes="y",
                tip=f"segment {i} ({seg.shape}) to = {seg.to:.6g} at tick {span[1] - 1}",
            )

    def dragged(self, key, pos, base):
        i, what = key[1], key[2]
        value = edits.nice(self.value_at(pos.y()))
        seg = base.lr[i]
        if what in ("from", "to"):
            field = "from_" if what == "from" else "to"
            return edits.replace_item(base, "lr", i, **{field: value}), f"set LR {what}"
        k = key[3]
        span = geometry.segment_span(self.doc.compiled, i)
        lo = seg.points[k - 1][0] if k > 0 else 0.0
        hi = seg.points[k + 1][0] if k + 1 < len(seg.points) else 1.0
        u = min(max(u_of_tick(span, pos.x()), lo), hi)
        return edits.set_item(base, "lr", i, edits.move_point(seg, k, u, value)), "move LR point"

    def background_click(self, pos, double) -> None:
        ed = self.editor
        index = self.segment_at(ed.tick_at(pos.x()))
        seg = self.doc.timeline.lr[index] if index is not None else None
        if seg is not None and seg.shape == "points" and ed.editable and not double:
            span = geometry.segment_span(self.doc.compiled, index)
            u = min(max(u_of_tick(span, pos.x()), 0.0), 1.0)
            new, k = edits.add_point(seg, u, self.value_at(pos.y()))
            if ed.commit(edits.set_item(self.doc.timeline, "lr", index, new), "add LR point"):
                ed.select(Selection("lr", index, k))
            return
        ed.select(Selection("lr", index) if index is not None else None)
