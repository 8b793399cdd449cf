"""The Runs browser's tree: the table's runs with each branch or fork under the run it left,
sorted and filtered.

``RunsProxy`` sits between the flat ``RunsTableModel`` (one row per run folder, in the order the
folders were read) and the tree view. A run whose metadata names a parent (``forked_from``) that
is listed too becomes that run's child; a parent missing from the list (deleted, in another
folder) or filtered out leaves the run at the top level, and chains of branches nest as deep as
they go. Siblings sort by the chosen column as the table did (numbers as numbers, blanks last
ascending, ties in folder order); the filter keeps the runs whose text contains it in any
column.

The model's rows are added one at a time as the Runs panel reads them: an added or removed run
is inserted into (or removed from) its place in the tree with Qt's row signals, and a run whose
change keeps its place only reports its new data, so a live run's update costs no re-layout.
What moves runs (a new sort, a new filter, a changed value of the sort column, a parent read
after its branches, a removed parent) is one layout change, through which the view's
selection, current row and expanded rows follow their runs.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from pathlib import Path

from PySide6.QtCore import (
    QAbstractProxyModel,
    QModelIndex,
    QObject,
    Qt,
)

from workbench.runs.model import RunsTableModel

ROOT = 0  # the node id of the invisible root: top-level rows' indexes carry it


class _Descending:
    """A sort value that orders backwards (ties are then broken forwards, by folder order)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value

    def __eq__(self, other) -> bool:
        return isinstance(other, _Descending) and self.value == other.value


class RunsProxy(QAbstractProxyModel):
    """The runs as a tree (see the module's docstring). An index's internal id is its parent's
    node id; a node id stands for one run folder for as long as the model lists it."""

    def __init__(self, model: RunsTableModel, parent: QObject | None = None):
        super().__init__(parent)
        self._column = -1  # sort column; -1 keeps the model's order
        self._order = Qt.SortOrder.AscendingOrder
        self._filter = ""
        self._next_id = ROOT + 1
        self._at: list[int] = []  # model row -> node
        self._row: dict[int, int] = {}  # node -> model row
        self._real: dict[int, Path] = {}  # node -> its folder, resolved (what children name)
        self._by_real: dict[Path, int] = {}
        self._shown: set[int] = set()  # nodes passing the filter
        self._up: dict[int, int] = {}  # shown node -> its parent node (ROOT at the top)
        self._kids: dict[int, list[int]] = {ROOT: []}  # node -> shown children, in order
        self._pos: dict[int, int] = {}  # shown node -> its row under its parent
        self._stale: set[int] = set()  # nodes whose children's ``_pos`` need recounting
        self._waiting: dict[Path, list[int]] = {}  # a missing parent -> its shown orphans
        self._paths: dict[int, Path] = {}  # node -> its folder as the model names it
        self._saved: list[tuple[QModelIndex, int, int]] | None = None
        self.setSourceModel(model)

    # --- Qt model ---
    def setSourceModel(self, model: RunsTableModel) -> None:  # noqa: N802 (Qt's name)
        super().setSourceModel(model)
        model.rowsAboutToBeInserted.connect(self._before_insert)
        model.rowsInserted.connect(self._inserted)
        model.rowsAboutToBeRemoved.connect(self._before_remove)
        model.rowsRemoved.connect(self._removed)
        model.dataChanged.connect(self._data_changed)
        for before in (model.modelAboutToBeReset, model.layoutAboutToBeChanged):
            before.connect(self._begin_layout)
        for after in (model.modelReset, model.layoutChanged):
            after.connect(lambda *_: self._end_layout(reread=True))
        self._begin_layout()
        self._end_layout(reread=True)

    def index(self, row: int, column: int, parent=QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self._node(parent)
        if parent.isValid() and parent.column() != 0:
            return QModelIndex()
        kids = self._kids.get(node, ())
        if 0 <= row < len(kids) and 0 <= column < self.columnCount():
            return self.createIndex(row, column, node)
        return QModelIndex()

    def parent(self, index=None):  # QObject.parent() too, when called without an index
        if index is None:
            return QObject.parent(self)
        if not index.isValid() or index.internalId() == ROOT:
            return QModelIndex()
        up = index.internalId()
        return self.createIndex(self._position(up), 0, self._up[up])

    def sibling(self, row: int, column: int, index) -> QModelIndex:
        if not index.isValid():
            return QModelIndex()
        kids = self._kids.get(index.internalId(), ())
        if 0 <= row < len(kids) and 0 <= column < self.columnCount():
            return self.createIndex(row, column, index.internalId())
        return QModelIndex()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._kids.get(self._node(parent), ()))

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return self.sourceModel().columnCount()

    def hasChildren(self, parent=QModelIndex()) -> bool:  # noqa: B008
        return self.rowCount(parent) > 0

    def flags(self, index) -> Qt.ItemFlag:
        # a table's cells never have children (QAbstractTableModel says so): a run may
        return super().flags(index) & ~Qt.ItemFlag.ItemNeverHasChildren

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        return self.sourceModel().headerData(section, orientation, role)

    def mapToSource(self, index) -> QModelIndex:
        if not index.isValid():
            return QModelIndex()
        return self.sourceModel().index(self._row[self._node(index)], index.column())

    def mapFromSource(self, index) -> QModelIndex:
        if not index.isValid() or index.row() >= len(self._at):
            return QModelIndex()
        return self._index_of(self._at[index.row()], index.column())

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if (column, order) != (self._column, self._order):
            self._begin_layout()
            self._column, self._order = column, order
            self._end_layout()

    # --- filtering ---
    def setFilterFixedString(self, text: str) -> None:  # noqa: N802 (QSortFilterProxyModel's)
        """Keep the runs whose text in any column contains ``text`` (any case)."""
        text = text.casefold()
        if text != self._filter:
            self._begin_layout()
            self._filter = text
            self._end_layout()

    def filter_text(self) -> str:
        return self._filter

    # --- the tree, for callers ---
    def depth(self, index) -> int:
        """How many runs ``index``'s run descends from in the tree (0 at the top level)."""
        n, node = 0, index.internalId() if index.isValid() else ROOT
        while node != ROOT:
            n, node = n + 1, self._up[node]
        return n

    def order_key(self, index) -> tuple[int, ...]:
        """Sorts indexes in the order the tree lists them, top to bottom, all expanded."""
        rows = []
        while index.isValid():
            rows.append(index.row())
            index = self.parent(index)
        return tuple(reversed(rows))

    def walk(self, parent=QModelIndex()):  # noqa: B008
        """Every index of column 0 below ``parent``, depth first, parents before children."""
        for row in range(self.rowCount(parent)):
            index = self.index(row, 0, parent)
            yield index
            yield from self.walk(index)

    # --- nodes ---
    def _node(self, index) -> int:
        """The node ``index`` stands for (ROOT for an invalid one)."""
        if not index.isValid():
            return ROOT
        return self._kids[index.internalId()][index.row()]

    def _index_of(self, node: int, column: int = 0) -> QModelIndex:
        if node not in self._shown:
            return QModelIndex()
        return self.createIndex(self._position(node), column, self._up[node])

    def _position(self, node: int) -> int:
        up = self._up[node]
        if up in self._stale:
            self._stale.discard(up)
            self._pos.update((kid, i) for i, kid in enumerate(self._kids[up]))
        return self._pos[node]

    def _add(self, row: int) -> int:
        """A node for the model's ``row`` (its folder resolved once: children name it so)."""
        node, self._next_id = self._next_id, self._next_id + 1
        path = self.sourceModel().row_at(row).path
        real = Path(os.path.realpath(path))
        self._paths[node] = path
        self._real[node] = real
        self._by_real.setdefault(real, node)
        return node

    def _forget(self, node: int) -> None:
        del self._paths[node]
        real = self._real.pop(node)
        if self._by_real.get(real) == node:
            del self._by_real[real]

    def _matches(self, node: int) -> bool:
        if not self._filter:
            return True
        texts = self.sourceModel().texts(self._row[node])
        return any(self._filter in text.casefold() for text in texts)

    def _link(self, node: int) -> int:
        """The shown parent ``node`` hangs under (ROOT when its parent is missing or hidden,
        or when following parents would lead back to ``node``)."""
        want = self.sourceModel().row_at(self._row[node]).parent
        up = self._by_real.get(want) if want is not None else None
        if up is None or up not in self._shown:
            return ROOT
        step, seen = up, {node}
        while step != ROOT:  # metadata edited by hand could make a loop
            if step in seen:
                return ROOT
            seen.add(step)
            step = self._up.get(step, ROOT)
        return up

    def _key(self, node: int):
        row = self._row[node]
        if self._column < 0:
            return row
        value = self.sourceModel().sort_key(row, self._column)
        if self._order == Qt.SortOrder.DescendingOrder:
            return (_Descending(value), row)
        return (value, row)

    def _wait(self, node: int) -> None:
        """Remember a shown top-level run whose parent is not listed: it moves under the parent
        when that is read."""
        want = self.sourceModel().row_at(self._row[node]).parent
        if want is not None and want not in self._by_real:
            self._waiting.setdefault(want, []).append(node)

    # --- the whole tree at once ---
    def _rebuild(self) -> None:
        model = self.sourceModel()
        self._row = {node: i for i, node in enumerate(self._at)}
        self._shown = {n for n in self._at if self._matches(n)}
        shown = [n for n in self._at if n in self._shown]
        self._up = {}
        for node in shown:  # links first, loops broken after: a parent may come later
            want = model.row_at(self._row[node]).parent
            up = self._by_real.get(want) if want is not None else None
            self._up[node] = up if up in self._shown and up != node else ROOT
        for node in shown:
            self._up[node] = ROOT if self._loops(node) else self._up[node]
        self._kids = {ROOT: []}
        for node in shown:
            self._kids.setdefault(self._up[node], []).append(node)
        for kids in self._kids.values():
            kids.sort(key=self._key)
        self._pos = {kid: i for kids in self._kids.values() for i, kid in enumerate(kids)}
        self._stale.clear()
        self._waiting = {}
        for node in self._kids[ROOT]:
            self._wait(node)

    def _loops(self, node: int) -> bool:
        step, seen = self._up[node], {node}
        while step != ROOT:
            if step in seen:
                return True
            seen.add(step)
            step = self._up[step]
        return False

    def _begin_layout(self) -> None:
        """Announce a re-layout and remember which run (and column) each persistent index is
        on, to put it back there after (``_end_layout``)."""
        if self._saved is not None:
            return
        self.layoutAboutToBeChanged.emit()
        self._saved = [(i, self._node(i), i.column()) for i in self.persistentIndexList()]

    def _end_layout(self, reread: bool = False) -> None:
        """Lay the tree out afresh; ``reread``: the model's rows may all have changed places
        (a reset): each run keeps its node, found by its folder."""
        model = self.sourceModel()
        if reread:
            had = {path: node for node, path in self._paths.items()}
            at = []
            for row in range(model.rowCount()):
                node = had.pop(model.row_at(row).path, None)
                at.append(self._add(row) if node is None else node)
            for node in had.values():
                self._forget(node)
            self._at = at
        self._rebuild()
        saved, self._saved = self._saved or [], None
        new = [self._index_of(n, c) if n in self._row else QModelIndex() for _, n, c in saved]
        self.changePersistentIndexList([i for i, _, _ in saved], new)
        self.layoutChanged.emit()

    # --- the model's changes ---
    def _before_insert(self, parent, first: int, last: int) -> None:
        if first != len(self._at):  # not appended (the model appends): re-lay everything
            self._begin_layout()

    def _inserted(self, parent, first: int, last: int) -> None:
        if self._saved is not None:
            self._at[first:first] = [self._add(row) for row in range(first, last + 1)]
            self._end_layout()
            return
        for row in range(first, last + 1):
            node = self._add(row)
            self._at.append(node)
            self._row[node] = row
            adopts = self._waiting.get(self._real[node])
            if adopts and self._matches(node):  # its branches, read before it, move under it
                self._begin_layout()
                self._end_layout()
            elif self._matches(node):
                self._shown.add(node)
                self._insert(node)

    def _insert(self, node: int) -> None:
        up = self._link(node)
        kids = self._kids.setdefault(up, [])
        at = bisect_left(kids, self._key(node), key=self._key)
        self.beginInsertRows(self._index_of(up) if up != ROOT else QModelIndex(), at, at)
        kids.insert(at, node)
        self._up[node] = up
        self._pos[node] = at
        self._stale.add(up)
        self.endInsertRows()
        if up == ROOT:
            self._wait(node)

    def _before_remove(self, parent, first: int, last: int) -> None:
        going = self._at[first : last + 1]
        if any(self._kids.get(n) for n in going):  # its branches move up to the top level
            self._begin_layout()
            return
        for node in reversed(going):
            if node in self._shown:
                up, at = self._up[node], self._position(node)
                self.beginRemoveRows(self._index_of(up) if up != ROOT else QModelIndex(), at, at)
                self._kids[up].pop(at)
                self._stale.add(up)
                self._shown.discard(node)
                del self._up[node], self._pos[node]
                self.endRemoveRows()
            for orphans in self._waiting.values():
                if node in orphans:
                    orphans.remove(node)

    def _removed(self, parent, first: int, last: int) -> None:
        for node in self._at[first : last + 1]:
            self._forget(node)
            self._kids.pop(node, None)
        del self._at[first : last + 1]
        self._row = {node: i for i, node in enumerate(self._at)}
        if self._saved is not None:
            self._end_layout()

    def _data_changed(self, top_left, bottom_right, roles=()) -> None:
        moved = False
        for row in range(top_left.row(), bottom_right.row() + 1):
            node = self._at[row]
            if self._matches(node) != (node in self._shown):
                moved = True
            elif node in self._shown and not self._in_place(node):
                moved = True
        if moved:
            self._begin_layout()
            self._end_layout()
            return
        first, last = top_left.column(), bottom_right.column()
        for row in range(top_left.row(), bottom_right.row() + 1):
            node = self._at[row]
            if node in self._shown:
                self.dataChanged.emit(self._index_of(node, first), self._index_of(node, last))

    def _in_place(self, node: int) -> bool:
        """Whether ``node`` still sorts between its siblings under the same parent."""
        up = self._up[node]
        if self._link(node) != up:
            return False
        kids, at, key = self._kids[up], self._position(node), self._key(node)
        return (at == 0 or self._key(kids[at - 1]) < key) and (
            at == len(kids) - 1 or key < self._key(kids[at + 1])
        )
