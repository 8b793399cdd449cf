"""Timeline revisions: the future of a running run, edited while it trains.

A revision is a whole new spec and the tick it applies from. Whoever steers the run (the window,
``python -m engine steer``, a script) adds it to the ``revisions`` table of the run's store as
``pending``; the training process reads that table at a tick boundary at most every 0.1 s (one
indexed SELECT; the window's own revisions come through a queue, taken at the next tick) and marks
it ``applied`` (with the tick it applies from) or ``refused`` (with one line saying why). The table
is the control channel: it works between processes on one machine and on a shared filesystem, and it
is the record: a resumed run replays every applied revision, so it trains what the run left alone
would have. ``spec.yaml`` stays the spec the run started with.

An applied revision changes ticks from its tick on and nothing before: the run's plan becomes
``old.spliced(new, tick)``. What may change is what a timeline may say about the future: LR
segments and values, phases that have not started, norm events, marks, eval and checkpoint
cadence, weight decay, grad clip, the number of steps. What would change the past, the model's
shape or the data stream already read is refused.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import RunSpec, to_dict

SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY, spec TEXT NOT NULL, from_tick INTEGER, source TEXT NOT NULL,
    sent REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending', tick INTEGER,
    detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS revisions_by_state ON revisions (state);
"""
STATES = ("pending", "applied", "refused")
# train fields a revision may change: they say how the future trains, not what it trains on
MUTABLE_TRAIN = (
    "steps", "lr", "weight_decay", "grad_clip", "eval_every", "eval_batches",
    "checkpoint_every", "keep_checkpoints", "stats_every", "eval_train",
)  # fmt: skip
MUTABLE_TOP = ("name", "description", "timeline")
FIXED_TIMELINE = ("timeline.prune", "timeline.quantize")  # built once, at the run's start


class Refused(ValueError):
    """A revision the run cannot take; ``str()`` is the one line the sender sees."""


@dataclass(frozen=True)
class Revision:
    """One row of the ``revisions`` table. ``number`` counts applied revisions from 1 (the
    "rev 2" on the plots); ``tick`` is the tick an applied revision applies from."""

    id: int
    spec: str
    from_tick: int | None
    source: str
    sent: float
    state: str
    tick: int | None
    detail: str
    number: int = 0


_COLUMNS = "id, spec, from_tick, source, sent, state, tick, detail"


def rows_to_revisions(rows: list[tuple]) -> list[Revision]:
    """Rows of ``_COLUMNS`` (in id order) -> revisions, applied ones numbered."""
    out, n = [], 0
    for row in rows:
        n += row[5] == "applied"
        out.append(Revision(*row, number=n if row[5] == "applied" else 0))
    return out


def read_revisions(con: sqlite3.Connection, state: str | None = None) -> list[Revision]:
    """Every revision in id order (or those in ``state``); none for a store without the table
    (a run from before revisions existed)."""
    try:
        rows = con.execute(f"SELECT {_COLUMNS} FROM revisions ORDER BY id").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [r for r in rows_to_revisions(rows) if state is None or r.state == state]


def add_revision(con: sqlite3.Connection, spec_text: str, from_tick: int | None, source: str):
    """Insert a pending revision (the caller commits); its id."""
    cur = con.execute(
        "INSERT INTO revisions (spec, from_tick, source, sent) VALUES (?, ?, ?, ?)",
        (spec_text, from_tick, source, time.time()),
    )
    return cur.lastrowid


def settle(con: sqlite3.Connection, rev_id: int, state: str, tick: int | None, detail: str):
    """Mark a pending revision applied or refused (the caller commits)."""
    assert state in STATES[1:], state
    con.execute(
        "UPDATE revisions SET state = ?, tick = ?, detail = ? WHERE id = ? AND state = 'pending'",
        (state, tick, detail, rev_id),
    )


def _leaves(data: Any, path: str = "") -> dict[str, Any]:
    """Nested mappings and lists -> {``timeline.lr[2].to``: leaf}."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(data, list) and data and isinstance(data[0], (dict, list)):
        out = {}
        for i, value in enumerate(data):
            out.update(_leaves(value, f"{path}[{i}]"))
        return out
    return {path: data}


def changed_paths(old: RunSpec, new: RunSpec) -> list[str]:
    """Dotted paths whose values differ (an item added or removed counts as each of its
    fields), in the spec's order."""
    a, b = _leaves(to_dict(old)), _leaves(to_dict(new))
    return [p for p in dict.fromkeys([*a, *b]) if a.get(p, ...) != b.get(p, ...)]


def summary(old: RunSpec, new: RunSpec) -> str:
    """What a revision changes, in a few words: ``timeline.lr[2], train.weight_decay``."""
    items = []
    for path in changed_paths(old, new):
        item = path[: path.index("]") + 1] if "[" in path else path  # timeline.lr[2]
        if item not in items:
            items.append(item)
    # an empty list that gained items reads as its items, not as the list itself
    items = [i for i in items if not any(j.startswith(i + "[") for j in items)]
    if not items:
        return "no change"
    shown = ", ".join(items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def check_fields(old: RunSpec, new: RunSpec) -> None:
    """Refused when ``new`` changes what a running run cannot: the model, the data, the seed,
    the batch, the optimizer, the device."""
    for path in changed_paths(old, new):
        top, _, rest = path.partition(".")
        if path.startswith(FIXED_TIMELINE):
            raise Refused(f"{path} cannot change during a run yet: branch the run instead")
        if top in MUTABLE_TOP:
            continue
        if top == "train" and rest.split(".")[0] in MUTABLE_TRAIN:
            continue
        why = "the model's shape" if top == "model" else "what the run has trained on or with"
        raise Refused(f"{path} cannot change during a run ({why}): branch the run instead")


def check_started_phases(old, new, at: int) -> None:
    """Refused when a phase that starts before ``at`` differs in ``new`` (its start, data or
    weights; a new name is only a label): only phases that have not started may change.
    ``old``/``new``: compiled timelines."""
    for p in old.phases:
        if p.start >= at:
            continue
        q = new.phases[p.index] if p.index < len(new.phases) else None
        if q is None or (q.start, q.data, q.init_from) != (p.start, p.data, p.init_from):
            raise Refused(
                f"timeline.phases[{p.index}] ({p.name}) started at tick {p.start}: a revision "
                "may change only phases that have not started"
            )
    for q in new.phases:  # a phase moved or added before ``at``
        p = old.phases[q.index] if q.index < len(old.phases) else None
        if q.start < at and (p is None or p.start >= at):
            raise Refused(f"timeline.phases[{q.index}] would start at tick {q.start}, in the past")


def apply_tick(now: int, from_tick: int | None, old_steps: int, new_steps: int) -> int:
    """The tick a revision applies from, when the run is about to train tick ``now``: the one
    asked for, or ``now``. Refused when that is in the past or past either end."""
    at = now if from_tick is None else int(from_tick)
    if at < now:
        raise Refused(
            f"tick {at} is already trained (the run is at tick {now}): a revision changes only "
            f"the future; branch the run at {at} to change it"
        )
    if at > old_steps:
        raise Refused(f"tick {at} is past the run's end (train.steps={old_steps})")
    if at >= new_steps:
        raise Refused(f"the revision's train.steps={new_steps} ends the run before tick {at}")
    return at


def detail_json(rev: Revision, what: str) -> dict:
    """The ``revision`` event's detail (what plots label and the export carries)."""
    return {
        "rev": rev.number,
        "id": rev.id,
        "label": f"rev {rev.number}: {what}",
        "changed": what,
        "source": rev.source,
        "sent": rev.sent,
    }


def open_control(run_dir: str | Path, timeout: float) -> sqlite3.Connection:
    """A connection to the run's store for steering from another process: waits up to
    ``timeout`` seconds for the trainer's commit (it commits at least every half second)."""
    path = Path(run_dir) / "metrics.sqlite"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no metrics.sqlite)")
    con = sqlite3.connect(path, timeout=timeout)
    con.executescript(SCHEMA)
    return con
