"""The Runs dock: every run in the runs directory, kept up to date, and the selection compared.

- The table (``runsTable``) lists each run folder (``runs_model``), each branch or fork under
  the run it left with the tick it left at (``tree_proxy``, ``runs_view``), sortable by any
  column and filtered by the text box (``runsFilter``). A timer polls the folder every
  ``POLL_MS``: only runs whose store changed are read again (``follow``), so runs written by
  other processes (the headless CLI, a torchrun job) appear and update as they train.
- The Run tree (``tree_view``, ``runTree``; the ``runsTreeButton`` shows it) draws that lineage
  on the tick axis; clicking a bar selects and focuses its run as clicking its row does.
- Selected runs are overlaid on the window's plots (``runs_compare``), their specs diffed in the
  Diff dock (``diff_view``) and their activation histograms compared (``runs_distributions``).
  A big store is read on a reader thread and drawn when it arrives.
- The actions on the selection (resume, fork, finetune from, rename, tag, delete, reveal, open
  the spec, export) live in ``runs_actions``.
- In a window, one run is in focus (``workbench.training.focus``): the run training there, or
  the one last clicked here (``runClicked``). The plots draw it as their own curves, so the
  overlay leaves it out (``set_focus``); the other selected runs are overlays.
"""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStyleOptionViewItem,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

import engine
from workbench.metric_kinds import is_sparsity, is_task_metric
from workbench.plots.loss import SLIDER_STEPS
from workbench.runs.actions import RunsActions
from workbench.runs.compare import X_MODES, ColorBook, RunOverlay, Shown
from workbench.runs.diff_view import SpecDiffView
from workbench.runs.distributions import DistributionCompare
from workbench.runs.follow import INLINE_BYTES, LIVE, FollowedRun, RunsDirWatcher, store_bytes
from workbench.runs.model import COLUMNS, PATH_ROLE, PresetNames, RunsTableModel, read_row
from workbench.runs.runs_view import RunsTreeView
from workbench.runs.tree_proxy import RunsProxy
from workbench.runs.tree_view import RunTreeView
from workbench.spec.presets import DEFAULT_PRESETS_DIR
from workbench.workers import TaskRunner

POLL_MS = 500
_UNREADABLE = (FileNotFoundError, sqlite3.Error, engine.ConfigError)
ARRIVALS_MS = 150  # runs read on the reader thread within this are drawn together
NAMING_BUDGET_S = 0.1  # per poll, for naming the presets of runs that do not record theirs
LIVE_RECHECK = 6  # polls between re-reading live runs' status: a writer that died leaves no trace
STARTED_COLUMN = 7
# the most a column of names gets, in average characters: a longer name is elided in its middle
# (where two variants of a study differ least); every other column is as wide as its text
CAPPED_CHARS = {"name": 34, "preset": 34, "tags": 24}


class RunColors(ColorBook):
    """Runs shown together never share a colour: a run keeps the colour it first got unless a
    run shown beside it has it by then (A alone, then B alone, then both: B moves)."""

    def color(self, path: Path, shown: set[Path] = frozenset()) -> str:
        others = [self._of[p] for p in shown if p != path and p in self._of]
        if self._of.get(path) is None or self._of[path] in others:
            self._of[path] = min(range(len(self.palette)), key=lambda i: (others.count(i), i))
        return self.palette[self._of[path]]


def _read_run(path: Path, name: str, color: str) -> tuple[FollowedRun, Shown]:
    """A selected run's scalars and what the overlay needs to draw it (any thread)."""
    run = FollowedRun(path)
    run.update()
    return run, Shown.of(run, name, color)


class RunsPanel(QWidget):
    """The Runs dock's widget. ``attach`` overlays the selected runs on a window's plots; the
    window connects the signals."""

    selectionChanged = Signal(list)  # run folders selected, in table order
    updated = Signal(list)  # selected run folders whose store got new scalars (read into followed)
    openSpecRequested = Signal(Path)
    finetuneRequested = Signal(object, Path)  # a RunSpec starting from the run, its folder
    runClicked = Signal(Path)  # a selected run's row was clicked: the window may focus it
    treeRequested = Signal()  # the Run tree button: the window shows ``run_tree``
    message = Signal(str, str)  # (level, text) for the log

    def __init__(self, runs_dir: Path, tasks=None, parent: QWidget | None = None, poll_ms=POLL_MS):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.runs_dir = Path(runs_dir)
        self.tasks = tasks
        self.model = RunsTableModel(self)
        self.proxy = RunsProxy(self.model, self)
        self.watcher = RunsDirWatcher(self.runs_dir)
        self.followed: dict[Path, FollowedRun] = {}
        self.colors = RunColors()
        self.focus_path: Path | None = None  # drawn by the window's plots, not by the overlay
        # the window's way to train a run resumed or forked here (``RunsActions``): sink -> handle
        self.launcher = None
        self.overlay = RunOverlay(self)
        self.diff_view = SpecDiffView()
        self.distributions = DistributionCompare()
        self._presets: dict[Path, str] = {}
        self.presets_dir = DEFAULT_PRESETS_DIR
        self._library = PresetNames(self.presets_dir)  # read when the first old run needs it
        self._shown: dict[Path, Shown] = {}
        self._polls = 0
        self.inline_bytes = INLINE_BYTES  # bigger stores are read on the reader thread
        self.reader = TaskRunner(self, threads=1)  # reads big stores off the GUI thread
        self.loading: dict[Path, int] = {}  # run folders being read, by reader job
        self._arrivals: dict[Path, object] = {}
        self._arrival_timer = QTimer(self, singleShot=True, interval=ARRIVALS_MS)
        self._arrival_timer.timeout.connect(self._show_arrivals)

        self.filter = QLineEdit(objectName="runsFilter", placeholderText="Filter runs…")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMinimumWidth(120)
        self.x_box = QComboBox(objectName="runsXMode")
        for mode, label in X_MODES.items():
            self.x_box.addItem(label.split(" (")[0], mode)
        self.x_box.setToolTip("x axis of the overlaid curves")
        self.timeline_check = QCheckBox("Timelines", objectName="runsTimeline", checked=True)
        self.timeline_check.setToolTip("Show the selected runs' phases and events on the plots")
        self.table = RunsTreeView(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(STARTED_COLUMN, Qt.SortOrder.DescendingOrder)  # newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setWordWrap(False)  # one line a run: wrapped at a hyphen, a name lost its end
        self.run_tree = RunTreeView(self.proxy, self.model)
        self.run_tree.barClicked.connect(self._bar_clicked)
        self.tree_action = QAction("Run tree", self, objectName="runsTreeAction")
        self.tree_action.setToolTip("Show the runs' lineage on the tick axis")
        self.tree_action.triggered.connect(self.show_tree)
        self._user_sized: set[int] = set()  # columns the user resized: left as they are
        self._widths: dict[int, int] = {}  # column -> the widest text it has shown, px
        self._extra: dict[int, int] = {}  # column -> the most room beside its text (the tree's)
        self._fitting = False
        self.table.horizontalHeader().sectionResized.connect(self._section_resized)
        self.actions = RunsActions(self)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.table.addActions(self.actions.toolbar)  # the same actions on a right-click

        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(QLabel("x"))
        top.addWidget(self.x_box)
        top.addWidget(self.timeline_check)
        # a tool bar folds the buttons that do not fit into its » menu when the dock is narrow
        bar = QToolBar(objectName="runsToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for action in self.actions.toolbar:
            bar.addAction(action)
            button = bar.widgetForAction(action)
            button.setObjectName(action.objectName().replace("Action", "Button"))
            if action.menu():
                button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addSeparator()
        bar.addAction(self.tree_action)  # a view, not an action on the selection: last
        bar.widgetForAction(self.tree_action).setObjectName("runsTreeButton")
        top.addWidget(bar, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.x_box.currentIndexChanged.connect(lambda _: self.overlay.set_x_mode(self.x_mode))
        self.timeline_check.toggled.connect(self.overlay.set_timeline_visible)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._on_selection())
        self.table.clicked.connect(self._clicked)
        self.timer = QTimer(self, interval=poll_ms)
        self.timer.timeout.connect(self.poll)
        self._fit_columns([])  # the headers, before any run
        self.poll()
        self.timer.start()
        app = QApplication.instance()
        if app is not None:  # runs this panel resumed or forked stop cleanly with the app
            app.aboutToQuit.connect(self.shutdown)

    # --- the window ---
    def attach(self, plots) -> None:
        """Overlay the selected runs on the ``LivePlots`` ``plots``, smoothed as its loss
        plot is."""
        targets = (
            (plots.loss.plot, lambda m: m in ("train/loss", "val/loss"), True),
            (plots.lr, lambda m: m == "lr", False),
            (plots.grad_norm, lambda m: m == "grad_norm", False),
            (plots.tokens, lambda m: m == "tokens_per_s", False),
            (plots.task, is_task_metric, False),
            (plots.sparsity, is_sparsity, False),
        )
        for plot, wants, smoothed in targets:
            # the loss, metrics and sparsity plots show several metrics per run: named in the legend
            several = plot in (plots.loss.plot, plots.task, plots.sparsity)
            self.overlay.attach(plot, wants, smoothed, label_metrics=several)
        slider = plots.loss.slider
        slider.valueChanged.connect(lambda v: self.overlay.set_smoothing(v / SLIDER_STEPS))
        self.overlay.set_smoothing(slider.value() / SLIDER_STEPS)

    def set_presets_dir(self, folder: Path) -> None:
        """Name the preset of each run from the library in ``folder``."""
        if Path(folder) != self.presets_dir:
            self.presets_dir = Path(folder)
            self._library = PresetNames(self.presets_dir)
            self._presets.clear()
            for row in self.model.rows:
                self.watcher.forget(row.path)
            self.poll()

    # --- polling ---
    def poll(self) -> None:
        """Read the runs whose store changed since the last poll; top up the selected ones."""
        changed, gone = self.watcher.poll()
        self._polls += 1
        if self._polls % LIVE_RECHECK == 0:  # a live run whose writer died turns interrupted
            changed += [r.path for r in self.model.rows if r.summary.status in LIVE]
        put = []
        # Runs from before the engine recorded the preset are named from their spec, about 10
        # ms each: as many as fit in a budget now, the rest at the next polls.
        deadline = time.monotonic() + NAMING_BUDGET_S
        for path in dict.fromkeys(changed):
            name_now = time.monotonic() < deadline
            row = read_row(path, self._presets, self._library, name_now)
            if row is not None:
                self.model.put(row)
                put.append(self.model.row_of(path))
                if path not in self._presets and not name_now:
                    self.watcher.forget(path)  # put off: read (and named) at the next poll
        if put:
            self._fit_columns(put)
        if set(changed) & set(self._shown):  # a selected run stopped, finished, went live...
            self.actions.sync()
        for path in gone:
            self.model.remove(path)
            self._presets.pop(path, None)
        if gone and any(p in self._shown for p in gone):
            self._on_selection(force=True)
        updated = set()
        for path, run in self.followed.items():
            try:
                metrics = run.update()
            except (sqlite3.Error, OSError):  # deleted since the watcher looked: next poll
                continue
            if metrics:
                self.overlay.update(path, metrics)
                updated.add(path)
        if updated and self.distributions.isVisible():
            self.distributions.reload(updated)
        if updated:
            self.updated.emit(sorted(updated))

    def refresh_now(self, path: Path) -> None:
        """Re-read ``path`` at once (after this panel changed it)."""
        self.watcher.forget(path)
        self.poll()

    # --- columns ---
    def _fit_columns(self, rows: list[int]) -> None:
        """Each column as wide as its header and the widest text it has shown (``rows``: model
        rows just added or changed): a status, a tick count, a loss or a date is never cut.
        Columns of names stop at ``CAPPED_CHARS``; a column the user resized is left as it is;
        the last one stretches to the table's edge anyway."""
        header = self.table.header()
        option = QStyleOptionViewItem()
        self.table.initViewItemOption(option)
        plain = self.table.itemDelegate()
        char = self.table.fontMetrics().averageCharWidth()
        self._fitting = True
        try:
            for col, name in enumerate(COLUMNS[:-1]):
                delegate = self.table.itemDelegateForColumn(col) or plain
                widths = [self._widths.get(col, header.sectionSizeHint(col))]
                for r in rows:
                    if r < 0:
                        continue
                    index = self.model.index(r, col)
                    text = plain.sizeHint(option, index).width() + 1
                    # the first column also holds the tree's indentation and a branch's tick
                    extra = delegate.sizeHint(option, index).width() + 1 - text
                    extra += self._indent(index)
                    widths.append(text + extra)
                    self._extra[col] = max(self._extra.get(col, 0), extra)
                want = self._widths[col] = max(widths)
                if name in CAPPED_CHARS:
                    cap = CAPPED_CHARS[name] * char + self._extra.get(col, 0)
                    want = min(want, max(cap, header.sectionSizeHint(col)))
                if col not in self._user_sized and want != header.sectionSize(col):
                    header.resizeSection(col, want)
        finally:
            self._fitting = False

    def _indent(self, index: QModelIndex) -> int:
        """The room the tree takes left of a cell of the first column (none in the others)."""
        if index.column() != 0:
            return 0
        depth = self.proxy.depth(self.proxy.mapFromSource(index))
        return self.table.indentation() * (depth + 1)  # the top level has its arrows' room

    def _section_resized(self, col: int, old: int, new: int) -> None:
        if not self._fitting and col < len(COLUMNS) - 1:
            self._user_sized.add(col)

    # --- selection ---
    @property
    def x_mode(self) -> str:
        return self.x_box.currentData()

    def selected_paths(self) -> list[Path]:
        """Selected run folders, in the table's order (the first is the diff's reference)."""
        rows = sorted(self.table.selectionModel().selectedRows(), key=self.proxy.order_key)
        return [Path(index.data(PATH_ROLE)) for index in rows]

    def set_focus(self, path: Path | None) -> None:
        """The window's focus run: drawn by its plots, so not by the overlay."""
        self.run_tree.set_focus(path)
        if path != self.focus_path:
            before, self.focus_path = self.focus_path, path
            if before in self._shown or path in self._shown:
                self._on_selection(force=True)

    def _clicked(self, index: QModelIndex) -> None:
        path = Path(index.data(PATH_ROLE))
        if path in self.selected_paths():  # not a ctrl-click that took it out
            self.runClicked.emit(path)

    def _bar_clicked(self, path: Path, add: bool) -> None:
        """A bar of the Run tree clicked: as a click on the run's row (with Ctrl: ``add``)."""
        i = self.model.row_of(path)
        if i < 0:
            return
        index = self.proxy.mapFromSource(self.model.index(i, 0))
        if add:
            flags = QItemSelectionModel.SelectionFlag
            self.table.selectionModel().select(index, flags.Toggle | flags.Rows)
        else:
            self.select([path])
        self.table.scrollTo(index)
        self._clicked(index)

    def show_tree(self) -> None:
        """The Run tree: the window shows it (``treeRequested``); a panel on its own, in a
        window of its own."""
        self.treeRequested.emit()
        if self.run_tree.parent() is None:  # not placed in a window
            self.run_tree.resize(800, 400)
            self.run_tree.show()
            self.run_tree.raise_()

    def select(self, paths: list[Path]) -> None:
        """Select exactly these runs (those in the table)."""
        selection = QItemSelection()
        for path in paths:
            i = self.model.row_of(Path(path))
            if i >= 0:
                index = self.proxy.mapFromSource(self.model.index(i, 0))
                selection.select(index, index)
        flags = QItemSelectionModel.SelectionFlag
        # one change, so the overlay and the diff are built once, not once per run
        self.table.selectionModel().select(selection, flags.ClearAndSelect | flags.Rows)

    def _on_selection(self, force: bool = False) -> None:
        paths = self.selected_paths()
        # re-sorting after a row changed re-announces the same selection: nothing to redo
        if paths == list(self._shown) and not force:
            return
        for path in [p for p in self.followed if p not in paths]:
            del self.followed[path]
            self._shown.pop(path, None)
        for path in [p for p in self.loading if p not in paths]:
            del self.loading[path]  # its result is dropped when it arrives
        for path in paths:
            if path in self.followed or path in self.loading:
                continue
            row = self.model.get(path)
            name = row.name if row else path.name
            color = self.colors.color(path, set(self._shown) | set(self.loading))
            job = partial(_read_run, path, name, color)
            if store_bytes(path) > self.inline_bytes:  # drawn when it arrives (``_arrived``)
                arrived = partial(self._arrived, path)
                submitted = self.reader.submit(job, arrived, arrived)
                if submitted is not None:
                    self.loading[path] = submitted
                continue
            try:
                self.followed[path], self._shown[path] = job()
            except _UNREADABLE as exc:
                self.message.emit("error", f"cannot show {path.name}: {exc}")
        self._shown = {p: self._shown[p] for p in paths if p in self._shown}  # table order
        shown = list(self._shown.values())
        self.overlay.set_runs([s for s in shown if s.run.path != self.focus_path])
        colors = {s.run.path: s.color for s in shown if s.run.path != self.focus_path}
        if colors != self.model.colors:
            self.model.set_colors(colors)
            self._fit_columns([self.model.row_of(p) for p in colors])  # room for the swatches
        self.diff_view.set_runs(
            [s.name for s in shown],
            [s.color for s in shown],
            [s.spec for s in shown],
            [s.timeline for s in shown],
        )
        self.distributions.set_runs(shown)
        self.actions.sync()
        self.selectionChanged.emit([s.run.path for s in shown])

    def _arrived(self, path: Path, result: object) -> None:
        """A run read on the reader thread: shown if it is still selected, together with the
        others that arrive within ``ARRIVALS_MS`` (drawing one costs the GUI thread tens of ms,
        and while it does the reader waits for the interpreter lock)."""
        self._arrivals[path] = result
        if not self._arrival_timer.isActive():
            self._arrival_timer.start()

    def _show_arrivals(self) -> None:
        arrivals, self._arrivals = self._arrivals, {}
        for path, result in arrivals.items():
            if path not in self.loading:
                continue  # deselected meanwhile
            del self.loading[path]
            if isinstance(result, BaseException):
                if not isinstance(result, _UNREADABLE):
                    raise result
                self.message.emit("error", f"cannot show {path.name}: {result}")
                continue
            self.followed[path], self._shown[path] = result
        self._on_selection(force=True)

    def rename_shown(self, path: Path, name: str) -> None:
        """A run shown in the overlay was renamed: its legend and diff header follow."""
        if path in self._shown:
            self.overlay.set_runs([s for p, s in self._shown.items() if p != path])
            self._shown[path].name = name
            self._on_selection(force=True)

    def shutdown(self) -> None:
        """Stop the polling and every run this panel started, waiting for each to checkpoint."""
        self.timer.stop()
        self.reader.shutdown()
        self.actions.shutdown()
