"""A guard against a reference leak in PySide6 6.12.0 that aborts the app within minutes.

On Python 3.11, PySide6 6.12.0 returns ``None`` from every void C++ call (``update()``,
``setPos()``, Python overrides of virtuals such as ``paint``) and ``True`` from
``Signal.emit`` without taking a reference, as if they were immortal objects (they are, from
Python 3.12 on). Every such call drops one reference: while a run trains and the plots redraw,
about 500 a second for ``None`` and 300 for ``True`` (measured), and when a count reaches zero the
interpreter aborts ("none_dealloc: deallocating None" / "bool_dealloc"), mid-run or at exit.
PySide6 6.11.3 does not do this (measured).

The proper fix is a PySide6 without the bug; until then ``guard_refcounts`` probes for the leak
and, only where it finds it, gives the leaked singletons a reference count no session can use
up: what Python 3.12 does for them anyway.
"""

from __future__ import annotations

import ctypes
import sys
from functools import partial

from PySide6.QtCore import QObject, Signal

SPARE_REFERENCES = 1 << 48  # ~3e14: at 1000 leaked references a second, 9000 years
PROBE_CALLS = 16


class _Probe(QObject):
    ping = Signal()


def leaked_singletons() -> list[object]:
    """The singletons (``None``, ``True``) that calls into PySide6 lose references to here."""
    probe = _Probe()
    leaked = []
    for singleton, call in ((None, partial(probe.setObjectName, "probe")), (True, probe.ping.emit)):
        before = sys.getrefcount(singleton)
        for _ in range(PROBE_CALLS):
            call()
        if sys.getrefcount(singleton) < before:
            leaked.append(singleton)
    return leaked


def guard_refcounts() -> list[object]:
    """Make the leaked singletons effectively immortal; returns the ones that needed it."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return []
    leaked = leaked_singletons()
    for singleton in leaked:
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt opens every object
        refcount.value += SPARE_REFERENCES
    return leaked
