"""The run store: one folder per run, metrics in SQLite (WAL), checkpoints beside them.

Layout of a run folder::

    spec.yaml          the resolved spec, exactly what ran
    metrics.sqlite     scalars per tick, events applied, run metadata and status (WAL mode),
                       activation histograms per capture tick, norm site and kind
    checkpoints/       tick_0000500.pt ... (model, optimizer, RNG states, tick)
    samples/           text sampled from checkpoints

Crash safety: the writer commits at most every ``COMMIT_SECONDS``; SQLite's WAL keeps every
committed row through a ``kill -9``. A run whose status is still ``running`` but whose process is
gone reads as ``interrupted``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from engine.activation_history import ActivationHistory
from engine.config import RunSpec
from engine.errors import ConfigError
from engine.messages import Stats
from engine.revisions import SCHEMA as REVISIONS_SCHEMA
from engine.revisions import Revision, add_revision, read_revisions, settle
from engine.specs import load_spec

COMMIT_SECONDS = 0.5
READ_RETRY_SECONDS = 2.0  # how long a reader retries a store whose writer is opening it
_TRANSIENT = ("disk I/O error", "unable to open", "database is locked")
STATUSES = ("running", "paused", "finished", "stopped", "diverged", "failed", "interrupted")

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scalars (
    metric TEXT NOT NULL, tick INTEGER NOT NULL, value REAL NOT NULL, wall REAL NOT NULL,
    PRIMARY KEY (metric, tick)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, tick INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
    wall REAL NOT NULL);
CREATE TABLE IF NOT EXISTS histograms (
    site TEXT NOT NULL, kind TEXT NOT NULL, tick INTEGER NOT NULL, pos INTEGER NOT NULL,
    tokens INTEGER NOT NULL, lo REAL, hi REAL, counts BLOB NOT NULL, percentiles BLOB NOT NULL,
    abs_mu_mean REAL, abs_mu_std REAL, sigma_mean REAL, sigma_std REAL, strength REAL,
    sigma_bar REAL,
    PRIMARY KEY (site, kind, tick)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS histograms_by_tick ON histograms (tick);
"""
# histograms: REAL columns are nullable because SQLite stores NaN as NULL (read back as NaN);
# counts are little-endian int64 and percentiles float64 (at PERCENTILES), as raw bytes.
_HIST_COLUMNS = (
    "site, kind, tick, pos, tokens, lo, hi, counts, percentiles, abs_mu_mean, abs_mu_std, "
    "sigma_mean, sigma_std, strength, sigma_bar"
)


def default_runs_dir() -> Path:
    """``$TICKBENCH_RUNS_DIR``, else ``~/.local/share/tickbench/runs``."""
    env = os.environ.get("TICKBENCH_RUNS_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "tickbench" / "runs"


def safe_name(name: str) -> str:
    """A run name -> a folder name with only ``[A-Za-z0-9._-]`` (never empty, never hidden)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60]
    return cleaned or "run"


STAGING = ".staging-"  # prefix of a run folder still being set up (hidden from listings)


class StoreError(RuntimeError):
    """The run store could not be written (disk full, read-only, gone); one line for the user."""


def make_runs_dir(runs_dir: Path) -> None:
    """Create ``runs_dir`` (and its parents); a ConfigError when that is impossible."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        probe = runs_dir / f".probe-{os.getpid()}"
        probe.mkdir()  # os.access says yes on a read-only mount as root: try it
        probe.rmdir()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError("runs_dir", f"cannot create run folders in {runs_dir}: {why}") from None


def new_run_dir(runs_dir: Path, name: str, prepare: Callable[[Path], None] | None = None) -> Path:
    """Create and return a fresh folder ``<safe name>-<UTC time>`` (suffixed when taken).

    With ``prepare``, the folder is filled under a hidden staging name first and takes its real
    name only once ``prepare`` has returned: a run folder exists only once it is complete and
    resumable. A process killed during set-up leaves a hidden staging folder, which a later
    call removes once its process is gone.
    """
    make_runs_dir(runs_dir)
    stem = f"{safe_name(name)}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    staged = None
    if prepare is not None:
        _remove_dead_staging(runs_dir)
        staged = runs_dir / f"{STAGING}{os.getpid()}-{stem}"
        staged.mkdir()
        try:
            prepare(staged)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    for n in range(1, 10_000):
        path = runs_dir / (stem if n == 1 else f"{stem}-{n}")
        try:
            if staged is None:
                path.mkdir()
            elif path.exists():
                continue
            else:
                os.rename(staged, path)  # fails on a non-empty folder taken meanwhile
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise StoreError(f"cannot create a run folder under {runs_dir}")


def _remove_dead_staging(runs_dir: Path) -> None:
    remove_dead_folders(runs_dir, STAGING)


def remove_dead_folders(runs_dir: Path, prefix: str) -> None:
    """Delete the folders ``<prefix><pid>-...`` under ``runs_dir`` whose process is gone on this
    machine (one killed while it made a run folder or replayed a branch)."""
    for folder in Path(runs_dir).glob(f"{prefix}*"):
        pid = folder.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (from SQLite, the OS or torch.save) means the disk or quota is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == 13:
        return True  # SQLITE_FULL
    text = str(exc)
    return "disk is full" in text or "No space left" in text


class RunLock:
    """An exclusive lock on ``<run>/lock``, held by the one process that trains the run.

    It is an ``flock``: the kernel drops it when its process dies, so a killed run never leaves
    a stale lock behind. The lock file holds the owner's pid, for the message.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "lock"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(
                f"{Path(run_dir).name} is being trained by another process (pid {owner}): "
                "stop that one first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        # Set up in the caller's thread, then used only by the training thread.
        con = sqlite3.connect(path, timeout=10, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(_SCHEMA + REVISIONS_SCHEMA)
    return con


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunWriter:
    """Writes one run's metrics. Used only by the training thread; buffers rows and commits
    them at most every ``COMMIT_SECONDS`` (and on ``flush``)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        self._con = _connect(self.run_dir / "metrics.sqlite")
        self._scalars: list[tuple] = []
        self._last_commit = time.monotonic()

    def set_meta(self, **values) -> None:
        """Store run metadata (JSON-encoded) and commit at once."""
        self._write(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in values.items()],
        )
        self.flush()

    def _write(self, sql: str, rows: list[tuple]) -> None:
        self._guarded(self._con.executemany, sql, rows)

    def _guarded(self, write, *args):
        """``write(*args)`` on the store: a failure rolls back and raises StoreError (``flush``)."""
        try:
            return write(*args)
        except sqlite3.Error:
            self.flush()  # raises StoreError, with the transaction rolled back
            raise

    def set_status(self, status: str, tick: int, detail: str = "") -> None:
        assert status in STATUSES, status
        self.set_meta(
            status=status,
            status_tick=tick,
            status_detail=detail,
            pid=os.getpid(),
            host=socket.gethostname(),
            updated=time.time(),
        )

    def scalars(self, tick: int, values: dict[str, float]) -> None:
        """Buffer one tick's values. Non-finite ones are not stored (SQLite would turn a NaN
        into NULL); the trainer marks such a run ``diverged`` with the metric's name."""
        now = time.time()
        self._scalars.extend(
            (m, tick, float(v), now) for m, v in values.items() if math.isfinite(v)
        )
        self.maybe_commit()

    def event(self, tick: int, kind: str, detail: dict) -> None:
        """Store an event and commit at once (events are rare): a write left open until the
        next commit would hold the store's write lock, and a steady run of them (a checkpoint
        every few ticks of a tiny model) would keep ``engine steer`` waiting for it."""
        self._write(
            "INSERT INTO events (tick, kind, detail, wall) VALUES (?, ?, ?, ?)",
            [(tick, kind, json.dumps(detail), time.time())],
        )
        self.flush()

    def activation_stats(self, stats: Stats) -> None:
        """Store one capture of activation statistics (every site and kind at one tick)."""
        pos = {}
        for s in stats.sites:
            pos.setdefault(s.site, len(pos))  # model order, for reading the sites back in it
        rows = [
            (s.site, s.kind, stats.tick, pos[s.site], s.tokens, s.lo, s.hi,
             s.counts.astype("<i8").tobytes(), s.percentiles.astype("<f8").tobytes(),
             s.abs_mu_mean, s.abs_mu_std, s.sigma_mean, s.sigma_std, s.strength, s.sigma_bar)
            for s in stats.sites
        ]  # fmt: skip
        self._write(
            f"INSERT OR REPLACE INTO histograms ({_HIST_COLUMNS}) VALUES ({', '.join('?' * 15)})",
            rows,
        )
        self.flush()  # as an event: no write lock held until the next commit

    def add_revision(self, spec_text: str, from_tick: int | None, source: str) -> int:
        """Queue a revision sent from this process (the window); committed at once."""
        rev_id = self._guarded(add_revision, self._con, spec_text, from_tick, source)
        self.flush()
        return rev_id

    def has_pending_revisions(self) -> bool:
        """Whether a revision waits (one indexed read: what each tick pays for steering)."""
        sql = "SELECT 1 FROM revisions WHERE state = 'pending' LIMIT 1"
        return self._con.execute(sql).fetchone() is not None

    def pending_revisions(self) -> list[Revision]:
        """Revisions waiting for the next tick boundary."""
        if not self.has_pending_revisions():
            return []
        return read_revisions(self._con, "pending")

    def settle_revision(self, rev_id: int, state: str, tick: int | None, detail: str) -> None:
        """Record a revision applied (from ``tick``) or refused (``detail``: why); committed at
        once, so the sender sees it."""
        self._guarded(settle, self._con, rev_id, state, tick, detail)
        self.flush()

    def revisions(self) -> list[Revision]:
        return read_revisions(self._con)

    def truncate_from(self, tick: int) -> None:
        """Forget every row at or after ``tick`` (a resume replays from a checkpoint there)."""
        for table in ("scalars", "histograms", "events"):
            self._write(f"DELETE FROM {table} WHERE tick >= ?", [(tick,)])
        self.flush()

    def maybe_commit(self) -> None:
        if time.monotonic() - self._last_commit >= COMMIT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Commit what is buffered. On failure the transaction is rolled back (every earlier
        commit stays readable), the buffered rows are dropped and ``StoreError`` says why, so
        no later write retries the same failing rows."""
        rows, self._scalars = self._scalars, []
        try:
            if rows:
                self._con.executemany("INSERT OR REPLACE INTO scalars VALUES (?, ?, ?, ?)", rows)
            self._con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('heartbeat', ?)", (json.dumps(time.time()),)
            )
            self._con.commit()
        except sqlite3.Error as exc:
            try:
                self._con.rollback()
            except sqlite3.Error:
                pass
            why = "disk full" if disk_full(exc) else f"cannot write the run store ({exc})"
            raise StoreError(f"{why}: {self.run_dir / 'metrics.sqlite'}") from exc
        finally:
            self._last_commit = time.monotonic()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._con.close()


class NullWriter:
    """What ranks other than 0 of a distributed run write: nothing (rank 0 owns the store)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def _nothing(self, *args, **kwargs) -> None:
        return None

    set_meta = set_status = scalars = event = truncate_from = maybe_commit = _nothing
    flush = close = _nothing
    activation_stats = settle_revision = _nothing

    def pending_revisions(self) -> list[Revision]:
        return []


def mark_interrupted(run_dir: Path, tick: int, detail: str) -> None:
    """Record ``interrupted`` from outside the training thread (a signal handler whose process
    is about to end), on a connection of its own."""
    writer = RunWriter(run_dir)
    try:
        writer.set_status("interrupted", tick, detail)
    finally:
        writer.close()


@dataclass(frozen=True)
class RunEvent:
    tick: int
    kind: str
    detail: dict
    wall: float


class RunRecord:
    """A run folder opened for reading; safe while another process is still writing it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        db = self.path / "metrics.sqlite"
        if not db.exists():
            raise FileNotFoundError(f"not a run folder (no metrics.sqlite): {self.path}")
        self._db = db

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on one read-only connection, retried while the store is being
        made: several queries pay for one open instead of one each. Queries made through
        ``rows_of`` read a store whose schema does not exist yet as empty."""
        deadline = time.monotonic() + READ_RETRY_SECONDS
        while True:
            con = None
            try:
                con = _connect(self._db, readonly=True)
                return work(con)
            except sqlite3.OperationalError as exc:
                # A reader that opens the store while its writer (re)opens it can find the WAL
                # files half made: a moment later they are whole.
                if time.monotonic() > deadline or not any(w in str(exc) for w in _TRANSIENT):
                    raise
            finally:
                if con is not None:
                    con.close()
            time.sleep(0.02)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self.read(lambda con: rows_of(con, sql, args))

    @property
    def spec(self) -> RunSpec:
        return load_spec(self.path / "spec.yaml")

    @property
    def meta(self) -> dict:
        """The run's metadata, its vocabulary aside (``vocab``): a BPE run keeps its whole
        tokenizer there, megabytes for GPT-2's, which listing and following runs never need."""
        return self.read(_meta)

    @property
    def vocab(self) -> dict | None:
        """The vocabulary the run trains in, as ``Vocab.to_dict`` wrote it (None before set-up
        wrote it)."""
        rows = self._query("SELECT value FROM meta WHERE key = 'vocab'")
        return json.loads(rows[0][0]) if rows else None

    @property
    def status(self) -> str:
        """Stored status, except that a ``running``/``paused`` run whose writer process is
        gone is ``interrupted``."""
        return _status(self.meta)

    def metric_names(self) -> list[str]:
        return self.read(metric_names_in)

    def scalars(self, metric: str, since_tick: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(ticks int64, values float64) of one metric, ordered by tick."""
        rows = self._query(
            "SELECT tick, value FROM scalars WHERE metric = ? AND tick >= ? ORDER BY tick",
            (metric, since_tick),
        )
        arr = np.array(rows, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0].astype(np.int64), arr[:, 1]

    def all_scalars(self) -> list[tuple[int, str, float]]:
        """Every (tick, metric, value), ordered by tick then metric."""
        return self._query("SELECT tick, metric, value FROM scalars ORDER BY tick, metric")

    def revisions(self) -> list[Revision]:
        """Timeline revisions sent to the run, in order (``engine.revisions``)."""
        return self.read(read_revisions)

    def events(self) -> list[RunEvent]:
        rows = self._query("SELECT tick, kind, detail, wall FROM events ORDER BY tick, id")
        return [RunEvent(t, k, json.loads(d), w) for t, k, d, w in rows]

    def activation_stats(self, since_tick: int = 0) -> dict[tuple[str, str], ActivationHistory]:
        """Activation statistics captured at or after ``since_tick``, by (site, kind), sites in
        model order (``in`` before ``out``); empty when there are none (yet)."""
        rows = self._query(
            f"SELECT {_HIST_COLUMNS} FROM histograms WHERE tick >= ? ORDER BY pos, kind, tick",
            (since_tick,),
        )
        groups: dict[tuple[str, str], list[tuple]] = {}
        for row in rows:
            groups.setdefault((row[0], row[1]), []).append(row)
        return {key: ActivationHistory.from_rows(key, group) for key, group in groups.items()}

    def checkpoints(self) -> list[Path]:
        """Checkpoint files, oldest tick first."""
        return sorted((self.path / "checkpoints").glob("tick_*.pt"))

    def summary(self) -> RunSummary:
        """What the Runs table shows, in one connection: index lookups on (metric, tick), so
        its cost does not grow with the run's length."""

        def work(con: sqlite3.Connection) -> tuple:
            def one(sql: str):
                return _first(rows_of(con, sql))

            return (
                _meta(con),
                one("SELECT MAX(tick) FROM scalars WHERE metric = 'train/loss'"),
                one("SELECT MIN(value) FROM scalars WHERE metric = 'val/loss'"),
                one(
                    "SELECT value FROM scalars WHERE metric = 'val/loss' ORDER BY tick DESC LIMIT 1"
                ),
                one(
                    "SELECT AVG(value) FROM (SELECT value FROM scalars "
                    "WHERE metric = 'tokens_per_s' ORDER BY tick DESC LIMIT 50)"
                ),
            )

        meta, done, best_val, last_val, tps = self.read(work)  # done: None before any tick
        return RunSummary(
            path=self.path,
            name=meta.get("name", self.path.name),
            status=_status(meta),
            ticks=0 if done is None else done + 1,
            steps=int(meta.get("steps", 0)),
            best_val_loss=best_val,
            last_val_loss=last_val,
            tokens_per_s=tps,
            started=meta.get("started"),
            updated=meta.get("heartbeat"),
            study=self.path.parent.name if (self.path.parent / "study.yaml").exists() else None,
            meta=meta,
        )


def _first(rows: list[tuple]):
    """The first column of the first row, or None (no row: the schema may not exist yet)."""
    return rows[0][0] if rows else None


def rows_of(con: sqlite3.Connection, sql: str, args: tuple = ()) -> list[tuple]:
    """The rows of ``sql``; none while the writer has made the file but not yet the schema."""
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def _meta(con: sqlite3.Connection) -> dict:
    rows = rows_of(con, "SELECT key, value FROM meta WHERE key != 'vocab'")
    return {k: json.loads(v) for k, v in rows}


def _status(meta: dict) -> str:
    status = meta.get("status", "interrupted")
    if status in ("running", "paused"):
        same_host = meta.get("host") == socket.gethostname()
        if same_host and not _pid_alive(int(meta.get("pid", 0))):
            return "interrupted"
    return status


def metric_names_in(con: sqlite3.Connection) -> list[str]:
    """The metrics a run logged, in order: one index seek per metric (a skip scan), where
    ``SELECT DISTINCT`` read every row."""
    names: list[str] = []
    while True:
        after = rows_of(
            con,
            "SELECT metric FROM scalars WHERE metric > ? ORDER BY metric LIMIT 1",
            (names[-1] if names else "",),
        )
        if not after:
            return names
        names.append(after[0][0])


@dataclass(frozen=True)
class RunSummary:
    path: Path
    name: str
    status: str
    ticks: int
    steps: int
    best_val_loss: float | None
    last_val_loss: float | None
    tokens_per_s: float | None
    started: float | None
    updated: float | None
    study: str | None = None  # the study folder this run belongs to
    meta: dict = field(default_factory=dict, compare=False, repr=False)  # read with the rest


def open_run(path: str | Path) -> RunRecord:
    """Open a past (or still running) run folder for reading."""
    return RunRecord(path)


def run_dirs(runs_dir: Path) -> list[Path]:
    """Run folders under ``runs_dir``, top-level and inside study folders, sorted; hidden ones
    (a run still being set up, see ``new_run_dir``) are not runs yet, and are never looked
    into: another process renames them into place at any moment."""
    found = []
    for folder in _visible_dirs(runs_dir):
        if (folder / "metrics.sqlite").is_file():  # a run: never looked into (no runs inside)
            found.append(folder)
        else:  # a study's folder, or anything else
            found += [f for f in _visible_dirs(folder) if (f / "metrics.sqlite").is_file()]
    return sorted(found)


def _visible_dirs(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` not starting with a dot; none when it vanished meanwhile
    (a run renamed into place, a study deleted) or cannot be read."""
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []


def list_runs(runs_dir: str | Path | None = None) -> list[RunSummary]:
    """Summaries of every run under ``runs_dir``, newest first. Unreadable folders are skipped."""
    out = []
    for path in run_dirs(Path(runs_dir) if runs_dir else default_runs_dir()):
        try:
            out.append(RunRecord(path).summary())
        except (sqlite3.Error, OSError, ValueError):
            continue
    return sorted(out, key=lambda s: s.started or 0, reverse=True)
