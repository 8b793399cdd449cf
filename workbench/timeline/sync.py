"""Keeps the Timeline editor and the Config panel on one spec.

The Config panel holds the spec Run starts and Save writes; the editor edits its timeline.

- A spec loaded or edited in the form (``specChanged``) is drawn; a new timeline (another preset)
  resets the undo history, the same timeline under new form values (train.steps) keeps it.
- Every edit, undo and redo hands the Config panel the form's values with the new timeline
  (``set_spec``); the panel validates it with the engine, so an invalid timeline disables Run
  and shows the error like any other field's.
- While the form is invalid because of the timeline (steps lowered under an event), the editor
  draws against the form's values and marks the failing item; while it is invalid elsewhere
  (a bad n_head) the editor takes no edits.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, QRegularExpression, QTimer
from PySide6.QtWidgets import QWidget

import engine
from engine import RunSpec, TimelineConfig, from_dict, to_dict
from workbench.timeline.document import is_timeline_error


class ConfigLink(QObject):
    def __init__(self, editor, config):
        super().__init__(editor)
        self.editor, self.config = editor, config
        self.doc = editor.doc
        self.last: RunSpec | None = None  # the latest valid spec: what the form cannot edit
        self._pushing = False
        self.doc.build = self.build
        config.specChanged.connect(self._spec_changed)
        config.validityChanged.connect(self._validity_changed)
        self.doc.committed.connect(self._push)
        for path in self._paths():  # the form's error can move without validity changing
            config.editor(path).on_change(self._form_edited)
        if config.spec is not None:
            self._spec_changed(config.spec)

    def _paths(self) -> list[str]:
        pattern = QRegularExpression("^field:")
        return [w.objectName()[len("field:") :] for w in self.config.findChildren(QWidget, pattern)]

    def build(self, timeline: TimelineConfig) -> RunSpec:
        """The spec of the form's current values with ``timeline``, not cross-validated
        (ConfigError only for a form value the spec cannot hold)."""
        if self.last is None:
            raise engine.ConfigError("spec", "no spec is loaded")
        data = to_dict(dataclasses.replace(self.last, timeline=timeline))
        for path in self._paths():
            *parents, leaf = path.split(".")
            node = data
            for part in parents:
                node = node[part]
            node[leaf] = self.config.editor(path).value()
        return from_dict(RunSpec, data)

    def _spec_changed(self, spec: RunSpec) -> None:
        self.last = spec
        self.editor.set_form_error(None)
        if not self._pushing:
            self.doc.load(spec)

    def _validity_changed(self, valid: bool) -> None:
        if not valid:
            self._form_edited()

    def _form_edited(self) -> None:
        # after the panel has validated the edit (its handler runs first or in this same turn)
        QTimer.singleShot(0, self._check_form)

    def _check_form(self) -> None:
        if self._pushing or self.config.is_valid or self.last is None:
            return
        error = self.config.error
        if not is_timeline_error(error):
            self.editor.set_form_error(error)
            return
        try:
            spec = self.build(self.doc.timeline)
        except engine.ConfigError as exc:
            self.editor.set_form_error(exc)
            return
        self.editor.set_form_error(None)
        self.doc.load(spec, error)

    def _push(self, spec: RunSpec) -> None:
        self._pushing = True
        try:
            self.config.set_spec(spec)
        finally:
            self._pushing = False
