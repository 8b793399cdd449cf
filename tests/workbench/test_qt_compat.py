"""The guard against PySide6 6.12.0 losing references to None and True (see qt_compat)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QWidget

from workbench.qt_compat import _Probe, guard_refcounts, leaked_singletons


def test_an_hour_of_calls_cannot_exhaust_none_or_true(qtbot):
    # Importing workbench applied the guard. A training run makes ~500 void calls and ~300
    # emits a second. Without the guard, on an affected PySide6, None's and True's counts
    # (~1e5 and ~2e4 in the app) reach zero during these loops and the interpreter aborts.
    probe, widget = _Probe(), QWidget()
    for _ in range(300 * 600):
        probe.ping.emit()
        widget.update()
    assert sys.getrefcount(True) > 1000 and sys.getrefcount(None) > 1000


def test_guard_applies_only_where_references_leak():
    if sys.version_info >= (3, 12):
        assert guard_refcounts() == []
        return
    leaked = leaked_singletons()
    before = {id(s): sys.getrefcount(s) for s in leaked}
    assert guard_refcounts() == leaked
    for singleton in leaked:
        assert sys.getrefcount(singleton) > before[id(singleton)]
