"""Steering the window's run from the Timeline editor.

While the window trains a run, the editor stays editable. Each edit, undo and redo of its
timeline is sent to the run as a revision (``RunHandle.steer``) applying from the run's next
tick: the ticks already trained keep what they trained with. The run answers at its next tick
boundary with an ``Event``: ``revision`` (drawn on every plot, the planned LR redrawn from the
run's plan) or ``revision_refused``, whose one-line reason is said and whose edit is undone, so
the editor always shows what the run follows.

Only the timeline is sent, on top of the spec the run follows (its pinned threads included);
the Config form stays locked during a run. ``python -m engine steer`` changes the rest.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Signal

import engine
from engine import RunSpec


class Steerer(QObject):
    said = Signal(str, str)  # level, text
    applied = Signal(int)  # the tick a revision applies from

    def __init__(self, session, editor, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.editor = session, editor
        self.following: RunSpec | None = None  # the spec the run follows after its revisions
        self._sent: list[RunSpec] = []  # sent, not answered yet, oldest first
        self._undoing = False
        editor.doc.committed.connect(self._edited)
        session.messages.connect(self._messages)
        session.stateChanged.connect(self._state)

    def _state(self, _state: str) -> None:
        if self.session.active and self.following is None:
            self.following = self.session.spec
        elif not self.session.active:
            self.following, self._sent = None, []

    def _latest(self) -> RunSpec | None:
        return self._sent[-1] if self._sent else self.following

    def _edited(self, spec: RunSpec | None) -> None:
        base = self._latest()
        if self._undoing or base is None or spec is None or not self.session.active:
            return
        new = dataclasses.replace(base, timeline=spec.timeline)
        if new == base:
            return
        self.session.handle.steer(engine.dump_spec(new), None, "window")
        self._sent.append(new)

    def _messages(self, batch: list) -> None:
        for msg in batch:
            if not isinstance(msg, engine.Event):
                continue
            if msg.kind == "revision" and self._sent:
                self.following = self._sent.pop(0)
                self.said.emit("info", f"{msg.detail.get('label')} (applies from tick {msg.tick})")
                self.applied.emit(msg.tick)
            elif msg.kind == "revision_refused" and self._sent:
                self._sent.pop(0)
                self.said.emit("warning", f"revision refused: {msg.detail.get('reason')}")
                self.editor.show_refusal(f"Refused by the run: {msg.detail.get('reason')}")
                self._undo()

    def _undo(self) -> None:
        """Take the refused edit back (it was the last one sent, unless more followed)."""
        stack = self.editor.doc.undo_stack
        if stack.canUndo():
            self._undoing = True
            try:
                stack.undo()
            finally:
                self._undoing = False
