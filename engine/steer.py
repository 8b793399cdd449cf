"""Steering a run from outside its training process: ``python -m engine steer``.

``steer_run`` adds a pending revision to the run's store (``engine.revisions``) and waits for the
trainer to take it at a tick boundary (it looks at most every 0.1 s; a paused run twice a second).
Every wait has a deadline: a run that stops, or takes longer than ``timeout``, gets its revision
withdrawn, so nothing applies later behind the sender's back.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from engine.config import RunSpec
from engine.revisions import Revision, add_revision, open_control, read_revisions
from engine.runs import RunRecord
from engine.specs import dump_spec

LIVE = ("running", "paused")
LAST_TICK = 2**63  # what SQLite's INTEGER holds


class SteerError(RuntimeError):
    """The revision was not taken: the run is not running, or did not answer in time."""


def steer_run(
    run_dir: str | Path,
    spec: RunSpec | str,
    from_tick: int | None = None,
    *,
    source: str = "cli",
    timeout: float = 60.0,
) -> Revision:
    """Send ``spec`` (a RunSpec or its YAML) to the process training ``run_dir``, to apply from
    ``from_tick`` (None: the next tick boundary); the revision as the run settled it, applied
    or refused. SteerError when the run is not running or does not answer within ``timeout``
    seconds (the revision is then withdrawn)."""
    if from_tick is not None and not 0 <= from_tick < LAST_TICK:
        raise SteerError(f"--from {from_tick}: a tick is a whole number from 0 to {LAST_TICK - 1}")
    record = RunRecord(run_dir)  # FileNotFoundError for a folder that is not a run
    if record.status not in LIVE:
        raise SteerError(
            f"{record.path.name} is {record.status}: only a running run can be steered"
        )
    text = dump_spec(spec) if isinstance(spec, RunSpec) else spec
    try:
        return _send(record, text, from_tick, source, timeout)
    except sqlite3.Error as exc:  # locked past the deadline, a full disk, a read-only store
        raise SteerError(f"{record.path.name}: cannot send the revision: {exc}") from exc


def _send(record: RunRecord, text: str, from_tick: int | None, source: str, timeout: float):
    deadline = time.monotonic() + timeout
    con = open_control(record.path, timeout)
    try:
        with con:
            rev_id = add_revision(con, text, from_tick, source)
        while True:
            rev = _get(con, rev_id)
            if rev.state != "pending":
                return rev
            status = record.status
            late = time.monotonic() > deadline
            if status not in LIVE or late:
                taken = _withdraw(con, rev_id)
                if taken is not None:  # the run took it in the meantime
                    return taken
                if late:
                    raise SteerError(
                        f"{record.path.name} did not take the revision within {timeout:g} s "
                        "(a tick longer than that?): withdrawn"
                    )
                raise SteerError(f"{record.path.name} became {status} before taking the revision")
            time.sleep(0.05)
    finally:
        con.close()


def _get(con: sqlite3.Connection, rev_id: int) -> Revision:
    return next(r for r in read_revisions(con) if r.id == rev_id)


def _withdraw(con: sqlite3.Connection, rev_id: int) -> Revision | None:
    """Delete the revision while it is still pending; None when deleted, else as settled."""
    with con:
        gone = con.execute(
            "DELETE FROM revisions WHERE id = ? AND state = 'pending'", (rev_id,)
        ).rowcount
    return None if gone else _get(con, rev_id)
