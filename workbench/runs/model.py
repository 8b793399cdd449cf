"""The Runs table's data: one row per run folder, read from the run store, sortable by value.

Each cell has its text (DisplayRole) and the value it sorts by (numbers as numbers, missing values
last): ``tree_proxy.RunsProxy`` nests each branch under its parent, sorts by those values and
filters on the text of every column. Rows are updated one at a time as the watcher reports
changed folders.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

import engine
from engine import run_tags
from workbench.spec.presets import list_presets

PATH_ROLE = Qt.ItemDataRole.UserRole
BRANCH_TICK_ROLE = Qt.ItemDataRole.UserRole + 1  # of a branch or fork's name: the tick it left at
COLUMNS = (
    "name",
    "status",
    "preset",
    "ticks",
    "best val",
    "last val",
    "tok/s",
    "started",
    "duration",
    "tags",
    "lineage",
)
STATUS_COLORS = {  # read on both themes
    "running": "#2fb67c",
    "paused": "#e7ca60",
    "finished": None,
    "stopped": "#a0a4ab",
    "diverged": "#e5484d",
    "failed": "#e5484d",
    "interrupted": "#ff8c1a",
}


@dataclass(frozen=True)
class RunRow:
    """What the table shows of one run."""

    path: Path
    summary: engine.RunSummary
    preset: str  # what the run was made from (``PresetNames.preset_of``), whatever it is called
    tags: tuple[str, ...]
    forked_from: str | None  # the parent's folder name
    lineage: tuple[str, ...] = ()  # where its weights come from, one line each (lineage_lines)
    parent: Path | None = None  # a branch or fork's parent folder, resolved (``forked_from``)
    branch_tick: int | None = None  # the parent's tick it continues from (its first tick)

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def duration(self) -> float | None:
        s = self.summary
        if s.started is None:
            return None
        return max((s.updated or time.time()) - s.started, 0.0)


def _folder(path: str | None) -> str:
    return Path(path).name if path else "?"


def lineage_lines(meta: dict) -> list[str]:
    """Where the run's weights come from, oldest first: ``finetuned from X`` (a run started
    from another's checkpoint), ``weights of X at tick T (phase P)`` (a phase that loads them),
    ``forked from X at tick T``. X is the run's folder name (or the checkpoint file's)."""
    out = []
    for entry in meta.get("lineage") or []:
        if not isinstance(entry, dict):
            continue
        source = _folder(entry.get("run") or entry.get("checkpoint"))
        tick, phase = entry.get("tick"), entry.get("phase")
        if phase is None:  # a fork's entry (also in forked_from)
            out.append(f"forked from {source} at tick {tick}")
        elif not tick:
            out.append(f"finetuned from {source}")
        else:
            out.append(f"weights of {source} at tick {tick} ({phase})")
    fork = meta.get("forked_from") or {}
    line = f"forked from {_folder(fork.get('run'))} at tick {fork.get('tick')}"
    if fork and line not in out:
        out.append(line)
    return out


class PresetNames:
    """The preset library's run specs, to name the preset a run was made from. The engine
    records it (``meta["preset"]``: the spec file's stem, or the study's name); a run from
    before that is matched to a preset by its spec: the same name, else the same description
    (a preset's description states its claim, and editing a field leaves it as it was).

    The library is read the first time an old run needs it: parsing every preset took half of
    opening the Runs table, and runs made since the engine records the preset never need it."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self._read: tuple[frozenset[str], dict[str, str]] | None = None

    def _library(self) -> tuple[frozenset[str], dict[str, str]]:
        if self._read is None:
            specs = (
                [p for p in list_presets(self.folder) if not p.error and not p.variants]
                if self.folder
                else []
            )
            found: dict[str, list[str]] = {}
            for preset in specs:
                if preset.description:
                    found.setdefault(preset.description, []).append(preset.name)
            unique = {d: names[0] for d, names in found.items() if len(names) == 1}
            self._read = frozenset(p.name for p in specs), unique
        return self._read

    def preset_of(self, record: engine.RunRecord, meta: dict | None = None) -> str:
        """The preset ``record`` was made from: the one its metadata (``meta``, read when not
        given) names (runs since the engine records it), else, for older runs, its study's name
        (a study preset trains its variants into a folder with its ``study.yaml``), a library
        preset's name, or else its spec's own name. ConfigError while the spec is not written
        yet."""
        recorded = (record.meta if meta is None else meta).get("preset")
        if isinstance(recorded, str) and recorded:
            return recorded
        study = study_name(record.path)
        if study is not None:
            return study
        spec = record.spec
        names, by_description = self._library()
        if spec.name in names:
            return spec.name
        description = " ".join(spec.description.split())
        return by_description.get(description, spec.name)


def study_name(run_dir: Path) -> str | None:
    """The name of the study ``run_dir`` was trained in, or None when it is not in one."""
    if not (run_dir.parent / "study.yaml").is_file():
        return None
    try:
        data = engine.read_yaml(run_dir.parent / "study.yaml")
    except engine.ConfigError:
        return None
    name = data.get("study") if isinstance(data, dict) else None
    return str(name) if name else None


def read_row(
    path: Path,
    presets: dict[Path, str],
    library: PresetNames | None = None,
    name_old: bool = True,
) -> RunRow | None:
    """A row for the run folder ``path``, or None when it cannot be read (yet). ``presets``
    caches preset names by folder: a run's spec never changes once written; ``library`` is
    the preset library they are matched against. ``name_old=False`` leaves a run that does not
    record its preset unnamed (naming it parses its spec), to be named by a later call."""
    try:
        record = engine.open_run(path)
        summary = record.summary()
    except (sqlite3.Error, OSError, ValueError):
        return None
    meta = summary.meta
    if path not in presets and (name_old or meta.get("preset")):
        try:
            presets[path] = (library or PresetNames()).preset_of(record, meta)
        except engine.ConfigError:  # spec.yaml not written yet (or hand-edited): ask again later
            pass
    fork = meta.get("forked_from")
    fork = fork if isinstance(fork, dict) else {}
    parent, tick = fork.get("run"), fork.get("tick")
    return RunRow(
        path=path,
        summary=summary,
        preset=presets.get(path, ""),
        tags=tuple(run_tags(meta)),
        forked_from=Path(parent).name if parent else None,
        lineage=tuple(lineage_lines(meta)),
        parent=Path(os.path.realpath(parent)) if isinstance(parent, str) and parent else None,
        branch_tick=int(tick) if isinstance(tick, int | float) and parent else None,
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _loss(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def cells(row: RunRow) -> list[tuple[str, object]]:
    """(text, sort value) of every column."""
    s = row.summary
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.started)) if s.started else ""
    return [
        (row.name, row.name.lower()),
        (s.status, s.status),
        (row.preset, row.preset.lower()),
        (f"{s.ticks}/{s.steps}", s.ticks),
        (_loss(s.best_val_loss), s.best_val_loss),
        (_loss(s.last_val_loss), s.last_val_loss),
        (f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "", s.tokens_per_s),
        (started, s.started),
        (format_duration(row.duration), row.duration),
        (", ".join(row.tags), ", ".join(row.tags)),
        # the newest origin: a fork of a finetune is first of all a fork
        (row.lineage[-1] if row.lineage else "", row.lineage[-1] if row.lineage else ""),
    ]


class RunsTableModel(QAbstractTableModel):
    """Rows of runs; ``colors`` gives a swatch to runs shown in the overlay."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[RunRow] = []
        self._where: dict[Path, int] = {}  # folder -> its row (a poll looks up every run)
        self._cells: list[list[tuple[str, object]]] = []
        self.colors: dict[Path, str] = {}

    # --- Qt model ---
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, col = self._rows[index.row()], index.column()
        text, value = self._cells[index.row()][col]
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == PATH_ROLE:
            return str(row.path)
        if role == BRANCH_TICK_ROLE and col == 0:
            return row.branch_tick
        if role == Qt.ItemDataRole.DecorationRole and col == 0 and row.path in self.colors:
            return QColor(self.colors[row.path])
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            color = STATUS_COLORS.get(row.summary.status)
            return QColor(color) if color else None
        if role == Qt.ItemDataRole.ToolTipRole:
            where = f"{row.summary.study}/{row.path.name}" if row.summary.study else row.path.name
            return "\n".join([where, *row.lineage])
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= col <= 6:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def sort_key(self, row: int, column: int) -> tuple:
        """What a cell sorts by: missing values after every present one (ascending)."""
        value = self._cells[row][column][1]
        return (value is None, value if value is not None else 0)

    # --- rows ---
    @property
    def rows(self) -> list[RunRow]:
        return list(self._rows)

    def row_at(self, i: int) -> RunRow:
        return self._rows[i]

    def texts(self, i: int) -> list[str]:
        """The text of every column of row ``i`` (what the filter looks in)."""
        return [text for text, _ in self._cells[i]]

    def row_of(self, path: Path) -> int:
        return self._where.get(Path(path), -1)

    def get(self, path: Path) -> RunRow | None:
        i = self.row_of(path)
        return self._rows[i] if i >= 0 else None

    def put(self, row: RunRow) -> None:
        """Add ``row``, or replace the row of the same folder in place."""
        i = self.row_of(row.path)
        if i < 0:
            n = len(self._rows)
            self.beginInsertRows(QModelIndex(), n, n)
            self._rows.append(row)
            self._where[row.path] = n
            self._cells.append(cells(row))
            self.endInsertRows()
        else:
            self._rows[i] = row
            self._cells[i] = cells(row)
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def remove(self, path: Path) -> None:
        i = self.row_of(path)
        if i >= 0:
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            del self._where[Path(path)]
            for later in self._rows[i:]:
                self._where[later.path] -= 1
            del self._cells[i]
            self.endRemoveRows()

    def set_colors(self, colors: dict[Path, str]) -> None:
        self.colors = dict(colors)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 0))
