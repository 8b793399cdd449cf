"""The window's actions, and the menus and toolbar that show them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QSizePolicy, QToolBar, QWidget

from workbench.theme import THEMES


@dataclass
class Actions:
    run: QAction
    pause: QAction
    stop: QAction
    step: QAction
    run_study: QAction
    open_spec: QAction
    save_spec: QAction
    save_preset: QAction
    themes: dict[str, QAction]
    presets_menu: QMenu
    recent_menu: QMenu
    view_menu: QMenu
    spec_label: QLabel


def _action(window: QMainWindow, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else tip)
    action.setStatusTip(tip)
    action.triggered.connect(slot)
    window.addAction(action)  # shortcuts work with the menus closed
    return action


def build_actions(w) -> Actions:
    """Menus, toolbar and shortcuts of main window ``w`` (a workbench MainWindow)."""
    key = QKeySequence.StandardKey
    run = _action(w, "Run", w.start_run, "Ctrl+R", "Train the spec in the Config panel")
    pause = _action(w, "Pause", w.toggle_pause, "Space", "Pause or resume the run")
    stop = _action(w, "Stop", w.stop_run, "Ctrl+.", "Stop after this tick (checkpoint kept)")
    step = _action(w, "Step", w.step_run, "S", "Train one tick while paused")
    run_study = _action(
        w, "Run study…", w.ask_run_study, None, "Train every variant of a study (YAML) and compare"
    )
    run_study.setObjectName("runStudyAction")
    open_spec = _action(w, "Open spec…", w.ask_open_spec, key.Open, "Load a run spec (YAML)")
    save_spec = _action(w, "Save spec as…", w.ask_save_spec, key.SaveAs, "Write the spec as YAML")
    save_preset = _action(w, "Save as preset…", w.ask_save_preset, None, "Add to the presets")
    quit_ = _action(w, "Quit", w.close, key.Quit)
    reset = _action(w, "Reset layout", w.reset_layout, None, "Docks back to where they started")

    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(open_spec)
    recent_menu = file_menu.addMenu("Open recent")
    recent_menu.setObjectName("recentMenu")
    recent_menu.aboutToShow.connect(w.fill_recent_menu)
    file_menu.addAction(save_spec)
    file_menu.addAction(save_preset)
    file_menu.addSeparator()
    file_menu.addAction(quit_)

    presets_menu = bar.addMenu("&Presets")
    presets_menu.setObjectName("presetsMenu")
    presets_menu.setToolTipsVisible(True)

    run_menu = bar.addMenu("&Run")
    for action in (run, pause, stop, step):
        run_menu.addAction(action)
    run_menu.addSeparator()
    run_menu.addAction(run_study)

    view_menu = bar.addMenu("&View")
    theme_menu = view_menu.addMenu("Theme")
    group = QActionGroup(w)
    themes = {}
    for name in THEMES:
        action = QAction(name.capitalize(), w, checkable=True)
        action.triggered.connect(partial(w.apply_theme, name))
        group.addAction(action)
        theme_menu.addAction(action)
        themes[name] = action
    view_menu.addAction(reset)
    view_menu.addSeparator()

    help_menu = bar.addMenu("&Help")
    help_menu.addAction("About Tickbench", w.show_about)

    toolbar = QToolBar("Run controls")
    toolbar.setObjectName("runToolbar")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    for action, name in (
        (run, "runButton"),
        (pause, "pauseButton"),
        (stop, "stopButton"),
        (step, "stepButton"),
    ):
        toolbar.addAction(action)
        toolbar.widgetForAction(action).setObjectName(name)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    toolbar.addWidget(spacer)
    spec_label = QLabel()
    spec_label.setObjectName("specLabel")
    spec_label.setContentsMargins(0, 0, 8, 0)
    toolbar.addWidget(spec_label)
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    view_menu.addAction(toolbar.toggleViewAction())

    return Actions(
        run=run,
        pause=pause,
        stop=stop,
        step=step,
        run_study=run_study,
        open_spec=open_spec,
        save_spec=save_spec,
        save_preset=save_preset,
        themes=themes,
        presets_menu=presets_menu,
        recent_menu=recent_menu,
        view_menu=view_menu,
        spec_label=spec_label,
    )


def add_runs_menu(w, view_menu: QMenu, actions: list[QAction]) -> QMenu:
    """The menu bar's Runs menu, before View: the Runs browser's actions on its selection
    (Branch…, Steer…, Export, ...), the same objects as its toolbar's, so they enable together."""
    menu = QMenu("R&uns", w)
    menu.setObjectName("runsMenu")
    menu.setToolTipsVisible(True)
    for action in actions:
        menu.addAction(action)
    w.menuBar().insertMenu(view_menu.menuAction(), menu)
    return menu
