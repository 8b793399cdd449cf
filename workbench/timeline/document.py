"""The edited timeline: the spec it compiles against, the engine's compile of it, undo/redo.

Every edit is a whole new ``TimelineConfig`` proposed to the document. The document asks the
engine (``build`` -> a RunSpec, validated by ``engine.specs.validate``, whose timeline check is
``engine.plan_timeline``: compiled once, against the data's real units) and either pushes the
edit on its undo stack or refuses it with the engine's message. ``compiled`` is that one object:
the lanes, the planned-LR plot and the Diff read it. An edit is refused when it would turn a
valid spec invalid; while the spec is already invalid (say ``train.steps`` was lowered under an
event) edits are taken, so the user can fix items one at a time: ``compiled`` is then the
lenient compile (every good item) and the failing item is marked with the message.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

import engine
from engine import RunSpec, TimelineConfig, validate

# TimelineConfig's lists, as in error paths
KINDS = ("phases", "lr", "batch", "layernorm", "marks", "prune", "quantize")
_ITEM_PATH = re.compile(rf"^timeline\.({'|'.join(KINDS)})\[(\d+)\]")


def item_of(error: engine.ConfigError | None) -> tuple[str, int] | None:
    """(kind, index) of the timeline item an error names, e.g. ``timeline.lr[1].start``."""
    m = _ITEM_PATH.match(error.path) if error is not None else None
    return (m.group(1), int(m.group(2))) if m else None


def is_timeline_error(error: engine.ConfigError | None) -> bool:
    return error is not None and error.path.startswith("timeline")


class SetTimeline(QUndoCommand):
    """One edit: the timeline before and after (timelines are small; copies keep it simple)."""

    def __init__(self, doc: TimelineDoc, before: TimelineConfig, after: TimelineConfig, text: str):
        super().__init__(text)
        self.doc, self.before, self.after = doc, before, after

    def redo(self) -> None:
        self.doc._set(copy.deepcopy(self.after))

    def undo(self) -> None:
        self.doc._set(copy.deepcopy(self.before))


Builder = Callable[[TimelineConfig], RunSpec]


class TimelineDoc(QObject):
    """The timeline being edited and everything the lanes draw from it.

    ``build(timeline)`` makes the full spec (the Config form's values plus the timeline) without
    cross-field validation; it raises ConfigError only for a form value of the wrong type.
    """

    changed = Signal()  # the timeline, the spec or the compile changed (or a preview moved)
    committed = Signal(object)  # a RunSpec (maybe invalid) after an edit, undo or redo
    refused = Signal(str)  # an edit was refused; the message says why

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.build: Builder | None = None
        self.spec: RunSpec | None = None
        self.compiled: engine.CompiledTimeline | None = None
        self.error: engine.ConfigError | None = None
        self.previewing = False
        self._committed: tuple | None = None  # (spec, compiled, error) while previewing

    # --- state ---
    @property
    def timeline(self) -> TimelineConfig:
        return self.spec.timeline if self.spec is not None else TimelineConfig()

    @property
    def steps(self) -> int:
        return self.spec.train.steps if self.spec is not None else 1

    def raw_lr(self):
        """LR per tick before any phase's lr_scale: where the segments' own values lie, for
        handles and new segments."""
        return None if self.compiled is None else self.compiled.lr_curve(scaled=False)

    def _check(self, spec: RunSpec) -> tuple[engine.CompiledTimeline | None, Exception | None]:
        try:
            validate(spec)  # the timeline's check is the plan: compiled here, once
            return engine.plan_timeline(spec), None
        except engine.ConfigError as exc:
            return self._lenient(spec, exc), exc

    @staticmethod
    def _lenient(spec: RunSpec, error) -> engine.CompiledTimeline | None:
        """Every good item of a timeline the engine refused (None if no item explains it)."""
        if not is_timeline_error(error):
            return None
        try:
            return engine.plan_timeline(spec, lenient=True)
        except engine.ConfigError:
            return None

    def _adopt(self, spec: RunSpec, compiled, error) -> None:
        self.spec, self.compiled, self.error = spec, compiled, error
        self.changed.emit()

    # --- from outside (the Config panel) ---
    def load(self, spec: RunSpec, error: engine.ConfigError | None = None) -> None:
        """Show ``spec``: a newly loaded spec (the undo history is dropped) or, when its timeline
        is the one being edited, the same timeline under new form values (history kept)."""
        if self.spec is None or spec.timeline != self.timeline:
            self.undo_stack.clear()
        self.previewing = False
        compiled, found = (
            self._check(spec) if error is None else (self._lenient(spec, error), error)
        )
        self._adopt(spec, compiled, found)

    # --- edits ---
    def check(self, timeline: TimelineConfig) -> tuple[RunSpec | None, object, Exception | None]:
        """The spec ``timeline`` makes, its compile, and the engine's objection (or None)."""
        try:
            spec = self.build(timeline) if self.build else None
        except engine.ConfigError as exc:
            return None, None, exc
        if spec is None:
            return None, None, engine.ConfigError("spec", "no spec is loaded")
        return spec, *self._check(spec)

    def propose(self, timeline: TimelineConfig, text: str) -> bool:
        """Make ``timeline`` the edited one (an undoable step), unless the engine objects."""
        self.end_preview()
        if timeline == self.timeline:
            return True
        spec, _, error = self.check(timeline)
        if spec is None:
            self.refused.emit(f"Fix the Config form first: {error}")
            return False
        if error is not None and self.error is None:
            self.refused.emit(f"{text}: not applied: {error}")
            return False
        self.undo_stack.push(SetTimeline(self, copy.deepcopy(self.timeline), timeline, text))
        return True

    def _set(self, timeline: TimelineConfig) -> None:
        """Apply ``timeline`` (redo/undo): compile it and tell the Config panel."""
        spec, compiled, error = self.check(timeline)
        if spec is None:  # the form broke since: draw against the spec we have
            spec = dataclasses.replace(self.spec, timeline=timeline)
            compiled, error = self._check(spec)
        self._adopt(spec, compiled, error)
        self.committed.emit(spec)

    # --- drags ---
    def preview(self, timeline: TimelineConfig) -> None:
        """Draw ``timeline`` while a drag is under way (nothing is committed)."""
        if not self.previewing:
            self._committed = (self.spec, self.compiled, self.error)
            self.previewing = True
        spec = dataclasses.replace(self.spec, timeline=timeline)
        compiled, error = self._check(spec)
        if error is not None:  # keep drawing the last good curves; the error says what is wrong
            compiled = self.compiled
        self._adopt(spec, compiled, error)

    def end_preview(self) -> None:
        if self.previewing:
            self.previewing = False
            self._adopt(*self._committed)
