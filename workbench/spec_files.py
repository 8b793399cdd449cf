"""Loading and saving run specs: File ▸ Open / Save spec as / Save as preset, and presets."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

from PySide6.QtWidgets import QMenu

import engine
from workbench.dialogs import (
    ask_confirm,
    ask_open_path,
    ask_save_path,
    ask_text,
    show_error,
)
from workbench.presets import preset_file_name, read_study
from workbench.settings import add_recent, recent_files

YAML_FILTER = "Run specs (*.yaml *.yml);;All files (*)"


class SpecFiles:
    """File operations of main window ``window``. Every failure is shown in a dialog and leaves
    the form as it was."""

    def __init__(self, window):
        self.window = window
        self.path: Path | None = None  # the file the form was loaded from

    def load(self, path: str | Path) -> bool:
        """Put the spec in ``path`` in the form; a study is offered to run instead (the form
        stays as it was). False when the form did not change."""
        try:
            spec = engine.load_spec(path)
        except (engine.ConfigError, OSError) as exc:
            if read_study(Path(path)) is not None:
                self.window.studies.ask_run(path)
                return False
            show_error(self.window, "Cannot open spec", f"{path}\n\n{exc}", "specErrorDialog")
            self.window.log.add("error", f"cannot open {path}: {exc}")
            return False
        self.show_spec(spec, path)
        return True

    def show_spec(self, spec: engine.RunSpec, path: str | Path) -> None:
        """Put ``spec`` (read from ``path``) in the form."""
        self.window.config.set_spec(spec)
        self.path = Path(path)
        self.window.log.add("info", f"loaded {path}")

    def show_finetune(self, spec: engine.RunSpec, run_dir: Path) -> bool:
        """Put ``spec``, which starts from the weights of the run at ``run_dir``, in the form
        (not while a run trains: the form is locked then)."""
        window = self.window
        if window.session.active:
            window.report_error(f"cannot finetune from {run_dir.name}: a run is in progress")
            return False
        window.config.set_spec(spec)
        self.path = None  # a new spec: saving asks where
        text = f"weights from {run_dir.name}: edit data/head, then Run"
        window.log.add("info", f"{text} (train.init_from: {spec.train.init_from})")
        window.status.showMessage(text)
        window.config_dock.raise_()
        return True

    def ask_open(self) -> None:
        ask_open_path(self.window, "Open spec", YAML_FILTER, self.open_file, "openSpecDialog")

    def open_file(self, path: str) -> None:
        if self.load(path):
            add_recent(self.window.settings, path)

    def ask_save(self) -> None:
        ask_save_path(self.window, "Save spec as", YAML_FILTER, self.save, "saveSpecDialog")

    def save(self, path: str) -> bool:
        spec = self.window.config.spec
        if spec is None or not self._write(spec, Path(path)):
            return False
        add_recent(self.window.settings, path)
        return True

    def _write(self, spec: engine.RunSpec, path: Path) -> bool:
        try:
            engine.save_spec(spec, path)
        except OSError as exc:
            show_error(self.window, "Cannot save", f"{path}\n\n{exc}", "saveErrorDialog")
            return False
        self.window.log.add("info", f"saved {path}")
        return True

    def ask_save_preset(self) -> None:
        spec = self.window.config.spec
        if spec is not None:
            ask_text(
                self.window,
                "Save as preset",
                f"Preset name (saved in {self.window.presets_dir}):",
                spec.name,
                self._preset_named,
                "presetNameDialog",
            )

    def _preset_named(self, name: str) -> None:
        try:
            path = self.window.presets_dir / preset_file_name(name)
        except ValueError as exc:
            show_error(self.window, "Cannot save preset", str(exc), "saveErrorDialog")
            return
        write = partial(self._write_preset, path, name.strip())
        if path.exists():
            ask_confirm(
                self.window,
                "Replace preset?",
                f"{path.name} already exists. Replace it?",
                "Replace",
                write,
                "replacePresetDialog",
            )
        else:
            write()

    def _write_preset(self, path: Path, name: str) -> None:
        spec = self.window.config.spec
        if spec is None:
            return
        spec = dataclasses.replace(spec, name=name)
        if self._write(spec, path):
            self.window.config.set_spec(spec)
            self.path = path
            self.window.reload_presets()

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        files = recent_files(self.window.settings)
        for file in files:
            menu.addAction(file, partial(self.open_file, file))
        if not files:
            menu.addAction("(none yet)").setEnabled(False)
