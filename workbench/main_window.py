"""The main window: Config dock, live plots in the centre, Log and Sample docks, run controls.

Layout (DESIGN section 8): Config on the left; the start page and the plots as tabs in the
centre; Log and Sample tabbed at the bottom. Docks can be moved; layout, geometry, recent files
and the theme persist in QSettings.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QTabWidget,
    QWidget,
)

import engine
from workbench import settings as keys
from workbench.actions import add_runs_menu, build_actions
from workbench.bridge import Throttle
from workbench.dialogs import ask_confirm, show_info
from workbench.log_panel import LogPanel
from workbench.plots.activations import ActivationsView
from workbench.plots.export import add_tick_action
from workbench.plots.live import LivePlots
from workbench.runs.panel import RunsPanel
from workbench.spec.files import SpecFiles
from workbench.spec.panel import ConfigPanel
from workbench.spec.presets import DEFAULT_PRESET, DEFAULT_PRESETS_DIR, list_presets
from workbench.start_page import StartPage
from workbench.studies.launch import Studies
from workbench.theme import DEFAULT_THEME, THEMES, apply_palette
from workbench.timeline import ConfigLink, TimelineEditor
from workbench.training.focus import Focus, run_name
from workbench.training.focus_view import FocusView
from workbench.training.launch import Launcher
from workbench.training.progress import RunProgress
from workbench.training.sample_panel import SamplePanel
from workbench.training.session import RunSession
from workbench.training.status_bar import RunStatusBar
from workbench.training.steer import Steerer
from workbench.workers import TaskRunner

DEFAULT_SIZE = (1280, 800)
CONFIG_WIDTH = 360
LOG_HEIGHT = 170
TIMELINE_HEIGHT = 330
# The live plots and the progress redraw at most this often while a run trains (the engine's
# messages still arrive at the bridge's 25 Hz): a redraw of the loss plot costs 5 to 15 ms of the
# GUI thread, and the GIL it holds slows training (docs/benchmarks.md, "Workbench
# responsiveness").
REDRAW_MS = 200
ABOUT = (
    "Tickbench: a workbench for training small Transformers steered by a tick timeline.\n\n"
    "Shortcuts: Run Ctrl+R, Pause/Resume Space, Step S (while paused), Stop Ctrl+.\n"
    "Runs are also scriptable: python -m workbench --help; headless: python -m engine --help."
)


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: QSettings,
        runs_dir: Path | None = None,
        presets_dir: Path = DEFAULT_PRESETS_DIR,
    ):
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings
        self.presets_dir = Path(presets_dir)
        self.tasks = TaskRunner(self)
        self.session = RunSession(runs_dir, self)
        self.focus = Focus(self)  # the one run the window is about: workbench.training.focus
        self.launcher = Launcher(self)
        self.last_run_dir: Path | None = None
        self._run_error: str | None = None  # what the engine said went wrong, for the status bar
        self._close_when_ended = False
        self._closing = False

        self.config = ConfigPanel(self.tasks)
        self.plots = LivePlots()
        self.start_page = StartPage()
        self.log = LogPanel()
        self.sample = SamplePanel(self.tasks)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("centralTabs")
        self.tabs.addTab(self.start_page, "Start")
        self.plots.add_tabs(self.tabs)
        self.setCentralWidget(self.tabs)
        self.status = RunStatusBar()
        self.setStatusBar(self.status)
        self.commands = build_actions(self)
        self.files = SpecFiles(
            self,
            self.config,
            settings,
            self.presets_dir,
            busy=lambda: self.busy,
            training=lambda: self.session.active,
        )
        self._build_docks()
        self.studies = Studies(self, lambda: self.runs.runs_dir, busy=lambda: self.busy)
        self.focus_view = FocusView(self)
        self._connect_files()
        self._connect_studies()
        self._connect()

        self.resize(*DEFAULT_SIZE)
        self._default_state = self.saveState()
        self._restore_settings()
        self.reload_presets()
        default = self.presets_dir / DEFAULT_PRESET
        if not (default.exists() and self.files.load(default)):
            self.files.show_spec(engine.parse_spec({}), None)
        self.sync_actions()

    # --- layout ---
    def _dock(self, widget: QWidget, title: str, name: str, area: Qt.DockWidgetArea):
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.commands.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_docks(self) -> None:
        left, bottom = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
        # Config keeps the full height on the left: the form is long; bottom docks span the rest.
        self.setCorner(Qt.Corner.BottomLeftCorner, left)
        self.config_dock = self._dock(self.config, "Config", "configDock", left)
        self.log_dock = self._dock(self.log, "Log", "logDock", bottom)
        self.sample_dock = self._dock(self.sample, "Sample", "sampleDock", bottom)
        self.tabifyDockWidget(self.log_dock, self.sample_dock)
        self.log_dock.raise_()
        # Docks of later issues go here, built the same way (DESIGN section 8):
        #   Timeline (bottom, above Log/Sample), Runs (bottom, tabbed with Log), and
        #   Activations as a centre tab next to the plots (self.tabs).
        self.runs = RunsPanel(self.session.runs_dir or engine.default_runs_dir(), self.tasks)
        self.runs_dock = self._dock(self.runs, "Runs", "runsDock", bottom)
        self.diff_dock = self._dock(self.runs.diff_view, "Diff", "diffDock", bottom)
        self.tabifyDockWidget(self.log_dock, self.runs_dock)
        self.tabifyDockWidget(self.runs_dock, self.diff_dock)
        self.runs.attach(self.plots)  # the selected runs overlaid on the plots
        add_runs_menu(self, self.commands.view_menu, self.runs.actions.toolbar)
        self.tabs.addTab(self.runs.distributions, "Compare")
        self.tabs.addTab(self.runs.run_tree, "Run tree")  # the runs' lineage on the tick axis
        self.runs.treeRequested.connect(lambda: self.tabs.setCurrentWidget(self.runs.run_tree))
        self.runs.set_presets_dir(self.presets_dir)
        # Timeline editor: edits the Config panel's spec; during the window's run, with a "now"
        # line, its edits steer the run's future (``Steerer``).
        # A tab of the bottom group, raised: a strip of its own would push the window's minimum
        # height past 600 px (the layout test's 560, a small screen)
        self.timeline_editor = TimelineEditor()
        self.timeline_dock = self._dock(self.timeline_editor, "Timeline", "timelineDock", bottom)
        self.tabifyDockWidget(self.log_dock, self.timeline_dock)
        self.timeline_dock.raise_()
        self.timeline_link = ConfigLink(self.timeline_editor, self.config)
        self.session.stateChanged.connect(
            lambda _: self.timeline_editor.set_live(
                self.session.active, self.session.handle.tick if self.session.active else 0
            )
        )
        self.steerer = Steerer(self.session, self.timeline_editor, self)
        self.steerer.said.connect(lambda _level, text: self.status.showMessage(text))
        self.steerer.applied.connect(lambda _: self.focus_view.show_plan())
        self.session.messages.connect(self.timeline_editor.follow_run)
        self.session.ended.connect(lambda _: self.timeline_editor.show_tick(None))
        # Activations: a centre tab following the session's run; the plots' event overlay
        # draws the run's phases and events on it too
        self.activations = ActivationsView()
        scroller = QScrollArea()  # its three plots must not raise the window's minimum height
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        scroller.setWidget(self.activations)
        self.tabs.addTab(scroller, "Activations")
        self.plots.overlay.attach(self.activations.heat)
        self.plots.overlay.attach(self.activations.sigma)
        self.resizeDocks([self.config_dock], [CONFIG_WIDTH], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [LOG_HEIGHT], Qt.Orientation.Vertical)
        self.resizeDocks([self.timeline_dock], [TIMELINE_HEIGHT], Qt.Orientation.Vertical)

    def _connect_files(self) -> None:
        files = self.files
        self.runs.openSpecRequested.connect(files.ask_load)
        self.runs.finetuneRequested.connect(files.ask_finetune)
        self.runs.message.connect(self.log.add)
        files.shown.connect(self.focus.show_spec)
        files.draftChanged.connect(self.focus_view.refresh_title)
        files.studyChosen.connect(self.studies.ask_run)
        files.presetsChanged.connect(self.reload_presets)
        files.finetuneShown.connect(self._finetune_shown)
        files.message.connect(self._files_said)

    def _connect_studies(self) -> None:
        studies = self.studies
        studies.started.connect(lambda: self.config.set_locked(True))
        studies.runStarted.connect(self._study_run_started)
        studies.runEnded.connect(self._study_run_ended)
        studies.finished.connect(self._study_finished)
        studies.changed.connect(self.sync_actions)
        studies.message.connect(self._files_said)
        studies.status.connect(self.status.showMessage)

    def _study_run_started(self, path: Path, spec: engine.RunSpec | None) -> None:
        """A study's run comes into focus, its siblings' curves overlaid as it trains."""
        if spec is not None:
            self.files.lend(spec)
        self.focus.show_run("study", path, run_name(path), spec, "running")
        self.runs.refresh_now(path)
        self.runs.select(self.studies.paths)

    def _study_run_ended(self, path: Path, status: str) -> None:
        if path == self.focus.run_dir:
            self.focus.set_state(status)
            self.focus_view.poll()  # its last rows, before the study moves on

    def _study_finished(self, ran: list[Path]) -> None:
        """The user's draft comes back; the study's runs are selected for comparison."""
        self.files.give_back()
        self.config.set_locked(False)
        for path in ran:
            self.runs.watcher.forget(path)
        self.runs.poll()
        self.runs.select(ran)
        self.runs_dock.raise_()
        self.tabs.setCurrentWidget(self.plots.loss)
        self.sync_actions()
        self.close_if_done()

    def _files_said(self, level: str, text: str) -> None:
        if level == "error":
            self.report_error(text)
        else:
            self.log.add(level, text)

    def _finetune_shown(self, text: str) -> None:
        self.status.showMessage(text)
        self.config_dock.raise_()

    def _connect(self) -> None:
        self.config.validityChanged.connect(lambda _: self.sync_actions())
        self.config.specChanged.connect(self._spec_edited)
        self.timeline_editor.doc.changed.connect(self._plan_changed)
        self._redraw = Throttle(REDRAW_MS, self._redraw_now, self)
        self.session.messages.connect(self._on_messages)
        self.session.stateChanged.connect(self._on_state)
        self.session.ended.connect(self._on_ended)
        self.start_page.presetChosen.connect(self.files.ask_load)
        self.start_page.openRequested.connect(self.ask_open_spec)
        # the classification view shows the run selected alone in the Runs browser
        self.runs.selectionChanged.connect(self._show_selected_run)
        self.runs.updated.connect(self._selected_run_updated)
        self.runs.runClicked.connect(self.launcher.clicked)
        self.runs.launcher = self.launcher.adopt  # runs resumed or forked there train here
        for plot in self.plots.plots:  # "Branch here…": a new run from the focus run's tick
            add_tick_action(
                plot, "Branch here…", "branchHere", self._branch_here, self._can_branch_here
            )

    def _can_branch_here(self) -> bool:
        return self.focus.is_run and not self.focus.training and self.runs.x_mode == "tick"

    def _branch_here(self, tick: int) -> None:
        if self._can_branch_here():
            self.runs.actions.ask_branch(tick, self.focus.run_dir)

    def reload_presets(self) -> None:
        presets = list_presets(self.presets_dir)
        self.start_page.set_presets(presets)
        menu = self.commands.presets_menu
        menu.clear()
        for preset in presets:
            action = menu.addAction(preset.name, lambda p=preset.path: self.files.ask_load(p))
            action.setToolTip(preset.summary)
            action.setStatusTip(preset.summary)
        menu.addSeparator()
        menu.addAction("Reload presets", self.reload_presets)

    def reset_layout(self) -> None:
        self.restoreState(self._default_state)

    # --- spec ---
    def _spec_edited(self, spec: engine.RunSpec) -> None:
        self.focus.edit_spec(spec)

    def _plan_changed(self) -> None:
        if not self.focus.is_run:  # a run in focus shows its own plan
            self.focus_view.show_plan()

    def ask_open_spec(self) -> None:
        self.files.ask_open()

    def ask_save_spec(self) -> None:
        self.files.ask_save()

    def ask_save_preset(self) -> None:
        self.files.ask_save_preset()

    def fill_recent_menu(self) -> None:
        self.files.fill_recent_menu(self.commands.recent_menu)

    def ask_run_study(self) -> None:
        self.studies.ask_open()

    # --- a past run in the classification view ---
    def _show_selected_run(self, paths: list[Path]) -> None:
        run = self.runs.followed.get(paths[0]) if len(paths) == 1 else None
        if run is None or run.path == self.focus.run_dir:  # the focus run's is shown live
            self.plots.unpin()
            return
        row = self.runs.model.get(run.path)
        try:
            meta = run.record.meta
        except (OSError, sqlite3.Error):
            meta = {}
        self.plots.show_run(run.tracks, meta, row.name if row else run.path.name)

    def _selected_run_updated(self, paths: list[Path]) -> None:
        selected = self.runs.selected_paths()
        if len(selected) == 1 and selected[0] in paths:
            self._show_selected_run(selected)

    # --- run control ---
    @property
    def busy(self) -> bool:
        """A run or a study is training."""
        return self.session.active or self.studies.active

    @property
    def progress(self) -> RunProgress | None:
        """The focus run's progress (the status bar's)."""
        return self.focus.progress

    @progress.setter
    def progress(self, progress: RunProgress | None) -> None:
        self.focus.set_progress(progress)

    def start_run(self) -> bool:
        return self.launcher.start()

    def toggle_pause(self) -> None:
        if self.session.state == "running":
            self.session.pause()
        else:
            self.session.resume()

    def step_run(self) -> None:
        self.session.step()

    def stop_run(self) -> None:
        """Stop the run, or the study's runs."""
        if self.session.active:
            self.session.stop()
        else:
            self.studies.stop()

    def _on_state(self, state: str) -> None:
        if self.focus.source == "session":
            self.focus.set_state(state)
        self.sync_actions()

    def _on_messages(self, batch: list[engine.Message]) -> None:
        run_dir = self.session.run_dir
        if run_dir is not None and self.activations.run_dir != run_dir:
            self.activations.begin_run(run_dir)
        # the window's own run: from its messages, not its store (which commits them later)
        self.activations.add_stats(m for m in batch if isinstance(m, engine.Stats))
        for msg in batch:
            if isinstance(msg, engine.Event):
                self.plots.add_event(msg.tick, msg.kind, msg.detail)
            if isinstance(msg, engine.Scalars):
                self.plots.add(msg.tick, msg.values)
                if "train/loss" in msg.values:
                    self.progress.update(msg.tick, msg.wall, msg.values.get("tokens_per_s"))
            elif isinstance(msg, engine.Event) and msg.kind == "checkpoint":
                self.sample.set_run(self.session.run_dir, msg.detail.get("tick", msg.tick))
            elif isinstance(msg, engine.Status) and msg.detail and msg.status != "running":
                self._run_error = msg.detail
                self.status.showMessage(f"{msg.status}: {msg.detail}")
            elif isinstance(msg, engine.Log) and msg.level == "error":
                self._run_error = msg.text.strip().splitlines()[-1]  # a traceback's last line
                self.status.showMessage(self._run_error)
        self.log.add_messages(batch)
        self._redraw.request()

    def _redraw_now(self) -> None:
        self.plots.redraw()
        self.status.show_progress(self.progress)

    def _on_ended(self, status: str) -> None:
        self._redraw.flush()  # the run's last points, at once
        self.launcher.ended()
        self.config.set_locked(False)
        self.sync_actions()
        if status in ("failed", "diverged"):
            self.status.showMessage(f"run {status}: {self._run_error} (details in the Log)")
        self.close_if_done()

    def close_if_done(self) -> None:
        """Close now if asked to once the run or the study had stopped, and nothing trains."""
        if self._close_when_ended and not self.busy:
            self.close()

    def sync_actions(self) -> None:
        a, state, active = self.commands, self.session.state, self.session.active
        idle = not self.busy
        study = self.studies.active
        a.run.setEnabled(idle and self.config.is_valid)
        a.run_study.setEnabled(idle)
        a.pause.setEnabled(state in ("running", "pausing", "paused"))
        a.pause.setText("Resume" if state in ("paused", "pausing") else "Pause")
        a.stop.setEnabled((active and state != "stopping") or (study and not self.studies.stopping))
        a.step.setEnabled(state == "paused")
        a.save_spec.setEnabled(self.config.is_valid)
        a.save_preset.setEnabled(self.config.is_valid)
        for widget in (a.open_spec, a.presets_menu, a.recent_menu, self.start_page):
            widget.setEnabled(idle)

    def report_error(self, text: str) -> None:
        self.log.add("error", text)
        self.status.showMessage(text)

    # --- look and persistence ---
    def apply_theme(self, name: str) -> None:
        theme = THEMES.get(name, THEMES[DEFAULT_THEME])
        apply_palette(QApplication.instance(), theme)
        self.plots.apply_theme(theme)
        self.config.apply_theme(theme)
        self.log.apply_theme(theme)
        self.commands.themes[theme.name].setChecked(True)
        self.settings.setValue(keys.THEME, theme.name)

    def _restore_settings(self) -> None:
        geometry = self.settings.value(keys.GEOMETRY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.value(keys.STATE)
        if state is not None:
            self.restoreState(state)
        self.apply_theme(str(self.settings.value(keys.THEME, DEFAULT_THEME)))

    def _save_settings(self) -> None:
        self.settings.setValue(keys.GEOMETRY, self.saveGeometry())
        self.settings.setValue(keys.STATE, self.saveState())
        self.settings.sync()

    def show_about(self) -> None:
        show_info(self, "About Tickbench", ABOUT, "aboutDialog")

    # --- closing ---
    def closeEvent(self, event) -> None:
        if self.busy and not self._closing:
            event.ignore()
            what = "A study is" if self.studies.active else "A run is"
            ask_confirm(
                self,
                "Stop the run?",
                f"{what} in progress. Stop it and close the window?\n\n"
                "A checkpoint is written first; the run folder stays readable and the run "
                "can be resumed.",
                "Stop and close",
                self._stop_then_close,
                "closeDialog",
            )
            return
        self._save_settings()
        self.session.shutdown()
        self.studies.shutdown()
        self.tasks.shutdown()
        super().closeEvent(event)

    def _stop_then_close(self) -> None:
        self._close_when_ended = True
        self.session.stop()
        self.studies.stop()

    def shutdown(self) -> None:
        """Stop any run or study, wait for them and for background jobs, and close without
        asking."""
        self._closing = True
        self.session.shutdown()
        self.studies.shutdown()
        self.tasks.shutdown()
        self.close()
