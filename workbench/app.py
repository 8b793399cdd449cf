"""Start the application: QApplication, settings, the main window, and the scripted mode."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget

import engine
from engine import Study, load_preset, replace
from workbench.main_window import MainWindow
from workbench.script import Script
from workbench.settings import APPLICATION, ORGANIZATION, open_settings
from workbench.spec.presets import DEFAULT_PRESETS_DIR


def make_window(args: argparse.Namespace) -> MainWindow | str:
    """The window with the preset and overrides of ``args`` applied, or why it cannot be.

    A study preset is kept in ``args.study``: scripted mode (``--run``) trains it, the window
    otherwise asks whether to."""
    spec = None
    args.study = None
    try:
        variant = getattr(args, "variant", None)
        preset = load_preset(args.preset) if args.preset else None
        names = [name for name, _ in preset.variants] if isinstance(preset, Study) else []
        if variant is not None and not names:
            raise engine.ConfigError("--variant", "only a study preset has variants")
        if variant is not None and variant not in names:
            raise engine.ConfigError("--variant", f"no variant {variant!r}; the study has {names}")
        if getattr(args, "dump_timeline", None) is not None and names and variant is None:
            raise engine.ConfigError(
                "--dump-timeline", f"a study of {len(names)} runs ({', '.join(names)}): "
                "pick one with --variant"
            )  # fmt: skip
        if variant is not None:
            spec = dict(preset.variants)[variant]
        elif isinstance(preset, Study):
            args.study = preset
        else:
            spec = preset
        steps = {"train.steps": args.steps} if args.steps is not None else None
        if spec is not None and steps:
            spec = replace(spec, steps)
        if args.study is not None and steps:
            variants = [(name, replace(s, steps)) for name, s in args.study.variants]
            args.study = dataclasses.replace(args.study, variants=variants)
    except (engine.ConfigError, OSError) as exc:  # OSError: the file went away meanwhile
        return f"{args.preset}: {exc}" if args.preset else str(exc)
    window = MainWindow(
        open_settings(args.settings),
        runs_dir=args.runs_dir,
        presets_dir=args.presets_dir or DEFAULT_PRESETS_DIR,
    )
    if args.theme:
        window.apply_theme(args.theme)
    if args.size:
        window.resize(*args.size)
    if getattr(args, "show_dock", None):
        show_dock(window, args.show_dock)
    if spec is not None:
        window.files.show_spec(spec, args.preset)
    scripted = args.run or args.quit_after_run or args.screenshot
    if args.study is not None and not scripted:
        QTimer.singleShot(0, lambda: window.studies.ask_run(args.preset))
    return window


def show_dock(window: MainWindow, name: str) -> None:
    """Give the bottom dock area to dock ``<name>Dock`` alone (``none``: hide the area, so the
    plots get the height). For screenshots at 1280x800, where every dock at once is cramped."""
    bottom = Qt.DockWidgetArea.BottomDockWidgetArea
    docks = [d for d in window.findChildren(QDockWidget) if window.dockWidgetArea(d) == bottom]
    chosen = None
    for dock in docks:
        dock.setVisible(dock.objectName() == f"{name}Dock")
        chosen = dock if dock.objectName() == f"{name}Dock" else chosen
    if chosen is not None:  # once the window is up: before that the layout has no room yet
        share = int(window.height() * 0.55)  # most of what the centre can give up
        QTimer.singleShot(0, lambda: window.resizeDocks([chosen], [share], Qt.Orientation.Vertical))


def dump_timeline(window: MainWindow, out: Path) -> int:
    """Write the compiled timeline the editor draws: its own object, not a compile of ours."""
    doc = window.timeline_editor.doc
    if doc.error is not None or doc.compiled is None:
        print(f"tickbench: {doc.error or 'no spec is loaded'}", file=sys.stderr)
        return 2
    try:
        with open(out, "w", encoding="utf-8", newline="") as f:
            engine.write_timeline_csv(doc.compiled, f)
    except OSError as exc:
        print(f"tickbench: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    return 0


def run_app(args: argparse.Namespace) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Tickbench")
    window = make_window(args)
    scripted = args.run or args.quit_after_run or args.screenshot
    if isinstance(window, str):
        print(f"tickbench: {window}", file=sys.stderr)
        return 2
    if getattr(args, "dump_timeline", None) is not None:
        return dump_timeline(window, args.dump_timeline)
    window.show()
    script = Script(window, args) if scripted else None
    code = app.exec()
    return script.exit_code if script is not None else code
