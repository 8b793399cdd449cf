"""The LayerNorm lane: one row per norm group (each block, then the final norm).

Each row draws its group's strength from the compiled timeline (``strength_curve`` of the
group's first site: a block's norms move together), so a staggered ramp shows as the staircase
the engine will run. Events sit on the rows they fire on, at the tick they fire: markers for
set / freeze / unfreeze / eps / backend / calibrate, a bar ``over`` ticks long for a ramp (drag
its end to change ``over``), hollow circles for the calibrations the engine adds by itself.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect
from PySide6.QtGui import QColor, QFontMetrics

from workbench.timeline import edits, geometry
from workbench.timeline.items import Handle
from workbench.timeline.lanes import Lane, Selection

ROW_PX = 12  # height of one norm group's row, px ...
LANE_MAX_PX = 72  # ... until a deep model's rows share this much (the window must fit 800 px)


ROOMY_ROW_PX = 20  # ... and the most a row gets when the dock has room
TITLE_GAP = 2  # px at least between the letters of two row titles


def norm_height(rows: int, roomy: bool = False) -> int:
    """Pixel height of the lane for ``rows`` norm groups (``roomy``: the most it takes)."""
    if roomy:
        return max(rows, 1) * ROOMY_ROW_PX + 4
    return min(max(rows, 1) * ROW_PX, LANE_MAX_PX) + 4


STRENGTH_COLOR = "#b36bff"
EVENT_COLORS = {
    "set": "#f5d90a",
    "ramp": "#b36bff",
    "freeze": "#1eb8d4",
    "unfreeze": "#1eb8d4",
    "eps": "#ff8c1a",
    "backend": "#2fb67c",
    "calibrate": "#e6e6e6",
    "sigma": "#e6e6e6",
}
GLYPHS = {"set": "diamond", "ramp": "right", "freeze": "square", "unfreeze": "square"}
LETTERS = {"eps": "ε", "backend": "B", "calibrate": "σ", "sigma": "="}
TOP, BOTTOM = 0.15, 0.85  # strength 1 and 0 inside a row (rows run downwards)


def labelled_rows(rows: int, row_px: float, line_px: float) -> list[int]:
    """The rows whose title fits: every k-th from the top, k the fewest rows a line of text
    needs, and always the last (the final norm), dropping the one it would touch."""
    if rows <= 0:
        return []
    every = max(1, math.ceil(line_px / row_px)) if row_px > 0 else rows
    shown = [r for r in range(rows) if r % every == 0 and rows - 1 - r >= every]
    return [*shown, rows - 1]


def _layers_text(layers) -> str:
    return layers if isinstance(layers, str) else ", ".join(str(x) for x in layers)


def describe(ev) -> str:
    """One line for an event, as the YAML says it."""
    extra = {
        "set": f" strength {ev.strength}",
        "ramp": f" to {ev.to} over {ev.over} ({ev.shape})",
        "eps": f" {ev.eps}",
        "backend": f" {ev.backend}",
        "sigma": f" σ̄ = {ev.sigma}",
    }.get(ev.action, "")
    stagger = f", stagger {ev.stagger}" if ev.stagger else ""
    sites = f" ({ev.sites} norms)" if ev.sites != "all" else ""
    return f"{ev.action}{extra} · layers {_layers_text(ev.layers)}{sites}{stagger}"


class NormLane(Lane):
    title = "LayerNorm"
    kind = "layernorm"

    def heights(self) -> tuple[int, int, int]:
        # grows with room to spare: a few rows a little (LR more), a deep model's as much as LR
        rows = len(self.rows)
        return norm_height(rows), norm_height(rows, roomy=True), max(1, rows // 3)

    def __init__(self, editor):
        super().__init__(editor)
        self.vb.invertY(True)
        self.rows: list = []  # layer groups, top to bottom
        self._ticks: list = []
        self.vb.sigResized.connect(lambda *_: self.label_rows())

    def set_rows(self, groups) -> None:
        if [g[0] for g in groups] != [g[0] for g in self.rows]:
            self.rows = groups
            n = max(len(groups), 1)
            self.vb.setYRange(0, n, padding=0)
            self.label_rows()
        return len(groups)

    def label_rows(self) -> None:
        """Title the rows that have room: a deep model's rows are thinner than a line of text
        (13 rows of a 12-layer model share about 72 px), so every k-th row is titled, k the
        fewest rows that keep two titles' letters TITLE_GAP px apart, and the others get a
        bare tick (an event's tooltip names its layer)."""
        axis = self.plot.getAxis("left")
        n = len(self.rows)
        names = [f"LN {layer}" for layer, _ in self.rows]
        fm = QFontMetrics(axis.style["tickFont"] or axis.font())
        letters = QRect()  # of every title, around the baseline
        for name in names:
            letters = letters.united(fm.tightBoundingRect(name))
        height = self.vb.height() or norm_height(n) - 4  # before the first layout: its least
        shown = set(labelled_rows(n, height / max(n, 1), letters.height() + TITLE_GAP))
        titles = [(r + 0.5, name) for r, name in enumerate(names) if r in shown]
        bare = [(r + 0.5, "") for r in range(n) if r not in shown]
        if [titles, bare] != self._ticks:  # a resize that changes nothing redraws nothing
            self._ticks = [titles, bare]
            axis.setTicks(self._ticks)

    def row_of(self, layer) -> int | None:
        for r, (name, _) in enumerate(self.rows):
            if name == layer:
                return r
        return None

    def y(self, row: int, strength: float) -> float:
        return row + BOTTOM - (BOTTOM - TOP) * strength

    def draw(self) -> None:
        doc = self.doc
        spec, compiled = doc.spec, doc.compiled
        self.set_rows(geometry.layer_groups(spec))
        if compiled is not None:
            x = np.arange(compiled.steps, dtype=float)
            for r, (layer, sites) in enumerate(self.rows):
                curve = self.pool.get(("curve", layer), self._strength_item)
                curve.setData(x, self.y(r, compiled.strength_curve(sites[0])))
                curve.setFillLevel(self.y(r, 0.0))
            for edge in geometry.auto_calibrations(compiled):
                for site in edge.detail["sites"]:
                    r = next((r for r, (_, s) in enumerate(self.rows) if site == s[0]), None)
                    if r is not None:
                        self._auto(edge.tick, r)
        for i, ev in enumerate(spec.timeline.layernorm):
            for f in geometry.firings(compiled, i):
                r = self.row_of(f.layer)
                if r is not None:
                    self._event(i, ev, f, r)

    @staticmethod
    def _strength_item() -> pg.PlotDataItem:
        fill = QColor(STRENGTH_COLOR)
        fill.setAlpha(55)
        return pg.PlotDataItem(pen=pg.mkPen(STRENGTH_COLOR, width=1.4), brush=fill)

    def _auto(self, tick: int, row: int) -> None:
        h = self.pool.get(("auto", tick, row), lambda: self._marker(("auto", tick, row)))
        self.pool.place(h, QPointF(tick, row + 0.5))
        h.setToolTip(f"σ̄ calibrated automatically at tick {tick} (first tick below strength 1)")

    def _marker(self, key):
        h = Handle(key, "circle", EVENT_COLORS["calibrate"], axes="", size=4)
        h.set_look(EVENT_COLORS["calibrate"], False, False, hollow=True)
        h.setZValue(15)
        return h

    def _event(self, i: int, ev, f: geometry.Firing, row: int) -> None:
        color = EVENT_COLORS[ev.action]
        unit = self.editor.unit
        where = f"layer {f.layer} at tick {f.tick} ({unit.label(f.tick)})"
        tip = f"layernorm[{i}]: {describe(ev)}\n{where}"
        key = ("layernorm", i, "at", f.order)
        h = self.pool.get(key, lambda: self._event_handle(key, ev.action, color))
        selected, failing = self.look(key)
        h.set_look(color, selected, failing, hollow=ev.action == "unfreeze")
        self.pool.place(h, QPointF(f.tick, row + 0.5))
        h.setToolTip(tip + "\n(drag to move; double-click to edit)")
        if ev.action == "ramp":
            end = f.tick + ev.over
            # the bar runs through the marker, behind it: the ramp lasts this long
            self.span(
                ("layernorm", i, "bar", f.order),
                color,
                f.tick,
                end,
                row + 0.4,
                row + 0.6,
                tip=tip,
                alpha=150,
            )
            self.handle(
                ("layernorm", i, "over", f.order),
                "bar",
                color,
                QPointF(end, row + 0.5),
                size=4,
                tip=f"ramp ends at tick {end}: over = {ev.over} ticks (drag to change)",
            )

    def _event_handle(self, key, action: str, color: str):
        h = Handle(key, GLYPHS.get(action, "circle"), color, "x", LETTERS.get(action, ""), size=5)
        h.on_drag = self._drag
        h.on_click = lambda item, double: self.editor.item_clicked(
            Selection("layernorm", key[1]), double
        )
        h.on_menu = lambda item, screen: self.item_menu(key, item.view_pos, screen)
        return h

    def dragged(self, key, pos, base):
        i, what, order = key[1], key[2], key[3]
        ev = base.layernorm[i]
        _, tick = self.editor.snap(pos.x())
        if what == "over":
            first = geometry.firings(self.doc.compiled, i)
            fired = next(f.tick for f in first if f.order == order)
            over = max(int(tick) - fired, 1)
            return edits.replace_item(base, "layernorm", i, over=over), "change ramp length"
        at_tick = max(int(tick) - order * ev.stagger, 0)
        at = self.editor.unit.position_at(at_tick) if order else self.editor.snap(pos.x())[0]
        return edits.replace_item(base, "layernorm", i, at=at), f"move LN {ev.action}"

    def item_menu(self, key, pos, screen) -> None:
        ed, doc = self.editor, self.doc
        tl = doc.timeline
        row = min(max(int(pos.y()), 0), len(self.rows) - 1) if self.rows else None
        menu = ed.menu("normMenu")
        if row is None:
            menu.addAction("model.norm is none: no norms to act on").setEnabled(False)
            ed.popup(menu, screen)
            return
        layer, sites = self.rows[row]
        position, tick = ed.snap(pos.x())
        tick = min(tick, doc.steps - 1)
        compiled = doc.compiled
        strength = compiled.strength_curve(sites[0])[tick] if compiled is not None else 1.0
        over = max(doc.steps // 20, 1)
        here = [layer] if isinstance(layer, int) else "final"
        scopes = (
            (f"layer {layer}", here, 0),
            ("all layers", "all", 0),
            ("all layers, staggered", "all", over),
        )
        for title, layers, stagger in scopes:
            sub = menu.addMenu(f"Add for {title}")
            sub.setObjectName(f"normAdd:{layers if stagger == 0 else 'stagger'}")
            actions = ("set", "ramp") if stagger else edits.NORM_ACTIONS
            for action in actions:
                ev = edits.new_norm_event(
                    action,
                    position,
                    layers,
                    float(strength),
                    over=over,
                    stagger=stagger,
                    eps=doc.spec.model.norm_eps * 10,
                    backend_now=doc.spec.model.norm_backend,
                )
                sub.addAction(
                    action,
                    lambda e=ev: ed.commit(
                        edits.insert_item(tl, "layernorm", len(tl.layernorm), e),
                        f"add LN {e.action}",
                    ),
                )
        if key is not None and key[0] == "layernorm":
            sel = Selection("layernorm", key[1])
            menu.addSeparator()
            menu.addAction("Edit event…", lambda: ed.open_item(sel))
            menu.addAction("Delete event", lambda: ed.delete(sel))
        ed.popup(menu, screen)
