"""Changes to a run folder after the fact: rename it, tag it, delete it.

The name and tags are run metadata (the store's ``meta`` table), so every reader sees them: the
workbench's Runs table and ``python -m engine list`` alike. They are written in a transaction of
their own that leaves the heartbeat alone (a finished run's duration must not change because it
was renamed), and SQLite serialises it with a writer that may still be training the run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.runs import RunRecord, _connect

LIVE = ("running", "paused")  # statuses of a run whose writer is still alive


def _set_meta(run_dir: str | Path, **values) -> None:
    record = RunRecord(run_dir)  # raises FileNotFoundError for a folder that is not a run
    con = _connect(record.path / "metrics.sqlite")
    try:
        with con:
            con.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )
    finally:
        con.close()


def rename_run(run_dir: str | Path, name: str) -> None:
    """Give the run a new display name (its folder keeps its name: paths to it stay valid)."""
    name = name.strip()
    if not name:
        raise ValueError("a run name cannot be empty")
    _set_meta(run_dir, name=name)


def clean_tags(tags: list[str]) -> list[str]:
    """Tags as stored: stripped, without empties or repeats, in the order given."""
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def set_tags(run_dir: str | Path, tags: list[str]) -> list[str]:
    """Replace the run's tags; returns them as stored."""
    cleaned = clean_tags(tags)
    _set_meta(run_dir, tags=cleaned)
    return cleaned


def run_tags(meta: dict) -> list[str]:
    """The tags in a run's metadata (``RunRecord.meta``)."""
    tags = meta.get("tags") or []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def delete_run(run_dir: str | Path) -> None:
    """Delete a run folder and everything in it. Refuses a run that is still being written
    (``running`` or ``paused`` with a live writer): stop it first."""
    record = RunRecord(run_dir)  # only ever a run folder: never an arbitrary directory
    status = record.status
    if status in LIVE:
        raise RuntimeError(f"{record.path.name} is {status}: stop it before deleting it")
    shutil.rmtree(record.path)
