"""The lanes of the other training levers (#19): the batch-size schedule and compression.

``BatchLane`` is the LR segment strip on ``timeline.batch`` (the same spans and end handles,
``SegmentLane`` parameterised by its list) with the compiled batch curve drawn over it, the
engine's ``CompiledTimeline.batch_curve()``. ``CompressionLane`` holds each ``timeline.prune``
group as a span with its scheduled sparsity (``engine.PruneGroup.curve``, the engine's own
staircase) and each ``timeline.quantize`` event as a marker from which QAT stays on. Both take
no height while the spec has none of their items, so a timeline without them looks as before;
the LR lanes' right-click menu adds the first one.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QTransform

from workbench.timeline import edits, geometry
from workbench.timeline.lanes import Lane, Selection
from workbench.timeline.lr_lanes import CURVE_COLOR, SegmentLane, _spans

PRUNE_COLOR = "#ff8c1a"
QUANTIZE_COLOR = "#d6409f"  # the plots' quantize edge (workbench/plots/events.py)


class Optional:
    """A lane shown only while the spec has items in one of its lists (``lists``)."""

    lists: tuple[str, ...] = ()

    def shown(self) -> bool:
        tl = self.doc.timeline
        return any(getattr(tl, name) for name in self.lists)

    def heights(self) -> tuple[int, int, int]:
        return super().heights() if self.shown() else (0, 0, 0)

    def sync(self) -> None:
        shown = self.shown()
        self.plot.setVisible(shown)
        # a PlotItem's 1 px margins would keep 2 px of a hidden lane in the editor's grid
        margin = 1 if shown else 0
        self.plot.layout.setContentsMargins(margin, margin, margin, margin)
        super().sync()


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.3g}"


class BatchLane(Optional, SegmentLane):
    """Batch-size segments (drag their ends) under the compiled batch curve (sequences per
    tick). The curve keeps its values as data and is scaled onto the lane's [0, 1] height, so
    spans and handles sit where they do in the LR segment strip."""

    title = "batch"
    kind = "batch"
    noun = "batch segment"
    lists = ("batch",)
    alpha = 45  # under the curve
    px = 34

    def __init__(self, editor):
        super().__init__(editor)
        self.plot.setLabel("left", "batch")
        self.curve = self.plot.plot(pen={"color": CURVE_COLOR, "width": 2})
        self.curve.setZValue(10)  # over the spans

    @staticmethod
    def describe(seg) -> str:
        ends = f"{seg.from_:g}" if seg.from_ is not None else ""
        if seg.to is not None and seg.shape != "constant":
            ends += f"→{seg.to:g}"
        return f"{seg.shape} {ends}".strip()

    def draw(self) -> None:
        super().draw()
        compiled = self.doc.compiled
        if compiled is None or not self.shown():
            self.curve.setData([], [])
            return
        batch = compiled.batch_curve()
        top = float(batch.max()) * 1.15 or 1.0
        self.curve.setData(np.arange(len(batch), dtype=float), batch.astype(float))
        self.curve.setTransform(QTransform.fromScale(1.0, 1.0 / top))
        levels = sorted({int(batch.min()), int(batch.max())})
        self.plot.getAxis("left").setTicks([[(v / top, str(v)) for v in levels], []])

    def draw_empty(self) -> None:
        """Hidden: nothing to draw."""

    def background_click(self, pos, double) -> None:
        index = self.segment_at(self.editor.tick_at(pos.x()))
        self.editor.select(Selection("batch", index) if index is not None else None)

    def item_menu(self, key, pos, screen) -> None:
        ed = self.editor
        index = key[1] if key is not None else self.segment_at(ed.tick_at(pos.x()))
        menu = ed.menu("batchMenu")
        add = menu.addAction("Add constant batch segment here", lambda: self.add(pos.x()))
        add.setEnabled(index is None)  # inside a segment: edit that one
        if index is not None:
            sel = Selection("batch", index)
            menu.addSeparator()
            menu.addAction("Edit batch segment…", lambda: ed.open_item(sel))
            menu.addAction("Delete batch segment", lambda: ed.delete(sel))
        ed.popup(menu, screen)

    def add(self, x: float) -> bool:
        """A constant segment from the tick at ``x`` to the next batch segment (or the end of
        the run), at the batch the run has there: the curve does not change until edited."""
        ed, doc = self.editor, self.doc
        spec, tl = doc.spec, doc.timeline
        position, tick = ed.snap(x)
        if tick is None or tick >= spec.train.steps or self.segment_at(tick) is not None:
            return False
        spans = _spans(doc, "batch")
        later = [i for i, s in enumerate(spans) if s is not None and s[0] > tick]
        index = later[0] if later else len(tl.batch)
        end = tl.batch[index].start if later else ed.unit.position_at(spec.train.steps)
        value = doc.compiled.batch_at(tick) if doc.compiled else spec.train.batch_size
        seg = edits.new_segment("constant", position, end, value, value)
        if ed.commit(edits.insert_item(tl, "batch", index, seg), "add batch segment"):
            ed.select(Selection("batch", index))
            return True
        return False


class CompressionLane(Optional, Lane):
    """Pruning groups as spans (drag their ends) with their scheduled sparsity, and quantize
    events as markers (drag them) with a span to the end of the run, where QAT stays on."""

    title = "compress"
    kind = "prune"
    lists = ("prune", "quantize")
    px = 36

    def __init__(self, editor):
        super().__init__(editor)
        self.vb.setYRange(0, 1, padding=0)

    def bands(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(pruning, quantize) heights in the lane: one shares it with the other."""
        tl = self.doc.timeline
        if tl.prune and tl.quantize:
            return (0.44, 0.96), (0.04, 0.4)
        return (0.1, 0.9), (0.1, 0.9)

    def draw(self) -> None:
        band, qband = self.bands()
        groups = geometry.prune_groups(self.doc.spec, self.doc.compiled)
        rows = max(len(groups), 1)
        height = (band[1] - band[0]) / rows
        for row, g in enumerate(groups):
            y0 = band[0] + row * height
            self._prune(g, y0, y0 + height)
        steps = self.doc.spec.train.steps
        for i in range(len(self.doc.timeline.quantize)):
            tick = geometry.quantize_tick(self.doc.compiled, i)
            if tick is None:
                continue
            tip = f"QAT int8 from tick {tick} ({self.editor.unit.label(tick)}) to the end"
            self.span(("quantize", i), QUANTIZE_COLOR, tick, steps, *qband, "   QAT int8", tip)
            self.handle(
                ("quantize", i, "at"),
                "diamond",
                QUANTIZE_COLOR,
                QPointF(tick, sum(qband) / 2),
                tip=tip + ": drag to move",
            )

    def _prune(self, g, y0: float, y1: float) -> None:
        i, unit = g.index, self.editor.unit
        label = f"prune {g.name} {_percent(g.from_)}→{_percent(g.to)}%"
        tip = (
            f"{label}: ticks {g.start}..{g.end - 1}, every {g.every} ticks, "
            f"{', '.join(g.patterns)}\n(double-click to edit)"
        )
        self.span(("prune", i), PRUNE_COLOR, g.start, g.end, y0, y1, label, tip, alpha=60)
        # the engine's staircase of scheduled sparsity, 0 at the span's foot, 100% at its top
        x = np.arange(g.start, g.end, dtype=float)
        y = y0 + (y1 - y0) * g.curve(g.end)[g.start :]
        stairs = self.pool.get(("prune", i, "curve"), lambda: pg.PlotDataItem(pen=PRUNE_COLOR))
        stairs.setData(x, y)
        stairs.setZValue(6)
        for end, tick in (("start", g.start), ("end", g.end)):
            self.handle(
                ("prune", i, end),
                "bar",
                PRUNE_COLOR,
                QPointF(tick, (y0 + y1) / 2),
                tip=f"pruning {g.name} {end}s at {tick} ({unit.label(tick)})"
                + (", exclusive" if end == "end" else ""),
            )

    def dragged(self, key, pos, base):
        position, _ = self.editor.snap(pos.x())
        kind, i, field = key[0], key[1], key[2]
        return edits.replace_item(base, kind, i, **{field: position}), f"move {kind} {field}"

    def item_menu(self, key, pos, screen) -> None:
        ed = self.editor
        menu = ed.menu("compressionMenu")
        ed.add_lever_actions(menu, pos.x(), batch=False)
        if key is not None:
            sel = Selection(key[0], key[1])
            noun = {"prune": "pruning", "quantize": "quantize event"}[key[0]]
            menu.addSeparator()
            menu.addAction(f"Edit {noun}…", lambda: ed.open_item(sel))
            menu.addAction(f"Delete {noun}", lambda: ed.delete(sel))
        ed.popup(menu, screen)


def add_prune(editor, x: float) -> bool:
    """A pruning group from the tick at ``x`` to the end of the run."""
    position, tick = editor.snap(x)
    steps = editor.doc.steps
    if tick is None or tick >= steps:
        return False
    tl = editor.doc.timeline
    item = edits.new_prune(tl, position, editor.unit.position_at(steps))
    index = len(tl.prune)
    if editor.commit(edits.insert_item(tl, "prune", index, item), "add pruning"):
        editor.select(Selection("prune", index))
        return True
    return False


def add_quantize(editor, x: float) -> bool:
    position, tick = editor.snap(x)
    if tick is None or tick >= editor.doc.steps:
        return False
    tl = editor.doc.timeline
    item = edits.new_quantize(position)
    if editor.commit(edits.insert_item(tl, "quantize", len(tl.quantize), item), "add QAT"):
        editor.select(Selection("quantize", len(tl.quantize)))
        return True
    return False
