"""Loading and saving run specs: File ▸ Open / Save spec as / Save as preset, and presets.

The spec in the Config panel is the user's draft. Edits not saved yet mark the window modified
(its title's ``[*]``), and loading another spec over them asks first (``ask_load``). While a run
that is not the draft trains (a resumed or forked run, a study's), the locked form shows that
run's spec (``lend``) and the draft comes back when it ends (``give_back``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QMenu, QWidget

import engine
from workbench.dialogs import (
    ask_confirm,
    ask_open_path,
    ask_save_path,
    ask_text,
    show_error,
)
from workbench.settings import add_recent, recent_files
from workbench.spec.presets import preset_file_name, read_study

YAML_FILTER = "Run specs (*.yaml *.yml);;All files (*)"


class SpecFiles(QObject):
    """File operations on the Config panel ``config``: dialogs open over ``parent``; recent
    files go in ``settings``; presets are saved in ``presets_dir``. ``busy()``: a run or a study
    is training (no loading then); ``training()``: a run of the window's session is (no finetune
    draft then). Every failure is shown in a dialog and leaves the form as it was; what the
    window does about a change it learns from the signals."""

    shown = Signal(object)  # a new draft (a RunSpec) is in the form, to be the focus
    draftChanged = Signal()  # the draft's file or its saved state changed (the title's [*])
    studyChosen = Signal(object)  # the file opened is a study: offer to run it (its path)
    presetsChanged = Signal()  # a preset was written into presets_dir
    finetuneShown = Signal(str)  # a finetune draft is in the form (a one-line summary)
    message = Signal(str, str)  # (level, text) for the log: "info" or "error"

    def __init__(
        self,
        parent: QWidget,
        config,
        settings: QSettings,
        presets_dir: Path,
        busy: Callable[[], bool],
        training: Callable[[], bool],
    ):
        super().__init__(parent)
        self.parent_widget, self.config, self.settings = parent, config, settings
        self.presets_dir = Path(presets_dir)
        self.busy, self.training = busy, training
        self.path: Path | None = None  # the file the form was loaded from
        self.clean: engine.RunSpec | None = None  # the draft as last loaded or saved
        self._draft: tuple[engine.RunSpec, Path | None] | None = None  # while a run's is lent

    # --- the draft ---
    @property
    def modified(self) -> bool:
        """The draft has edits that no file holds (an invalid form always has)."""
        draft = self._draft[0] if self._draft is not None else self.config.spec
        return draft is None or draft != self.clean

    def _mark_clean(self) -> None:
        self.clean = self.config.spec
        self.draftChanged.emit()

    def ask_load(self, path: str | Path, remember: bool = False) -> None:
        """Load ``path`` (a preset, a recent file, a run's spec), first asking whether to drop
        the draft's unsaved edits. ``remember``: add it to the recent files."""
        if self.busy():
            self.message.emit("error", f"cannot open {Path(path).name}: a run is in progress")
            return
        load = partial(self.open_file if remember else self.load, path)
        self._unless_edited(f"Load {Path(path).name}", load)

    def _unless_edited(self, what: str, then) -> None:
        if not self.modified:
            then()
            return
        name = self.config.spec.name if self.config.spec else "the spec"
        ask_confirm(
            self.parent_widget,
            "Discard unsaved edits?",
            f"The Config panel's spec ({name}) has edits that are not saved.\n\n"
            f"{what} and discard them?",
            "Discard edits",
            then,
            "discardEditsDialog",
        )

    def lend(self, spec: engine.RunSpec) -> None:
        """Show the spec of a run training here that is not the draft, keeping the draft to
        ``give_back``. An invalid draft stays in the (locked) form instead: nothing is lost."""
        config = self.config
        if self._draft is None:
            if config.spec is None:
                return
            self._draft = (config.spec, self.path)
        config.set_spec(spec)

    def give_back(self) -> None:
        """The draft back in the form, after the run whose spec was lent has ended."""
        if self._draft is None:
            return
        spec, path = self._draft
        self._draft = None
        self.config.set_spec(spec)
        self.path = path
        self.draftChanged.emit()

    def load(self, path: str | Path) -> bool:
        """Put the spec in ``path`` in the form; a study is offered to run instead (the form
        stays as it was). False when the form did not change."""
        try:
            spec = engine.load_spec(path)
        except (engine.ConfigError, OSError) as exc:
            if read_study(Path(path)) is not None:
                self.studyChosen.emit(path)
                return False
            show_error(
                self.parent_widget, "Cannot open spec", f"{path}\n\n{exc}", "specErrorDialog"
            )
            self.message.emit("error", f"cannot open {path}: {exc}")
            return False
        self.show_spec(spec, path)
        return True

    def show_spec(self, spec: engine.RunSpec, path: str | Path | None) -> None:
        """Put ``spec`` (read from ``path``; None: a default) in the form: the new draft, in
        focus."""
        self.config.set_spec(spec)
        self.path = Path(path) if path is not None else None
        self._mark_clean()
        if not self.busy():  # the run training stays in focus
            self.shown.emit(self.config.spec)
        if path is not None:
            self.message.emit("info", f"loaded {path}")

    def show_finetune(self, spec: engine.RunSpec, run_dir: Path) -> bool:
        """Put ``spec``, which starts from the weights of the run at ``run_dir``, in the form
        (not while a run trains: the form is locked then)."""
        if self.training():
            self.message.emit("error", f"cannot finetune from {run_dir.name}: a run is in progress")
            return False
        self.config.set_spec(spec)
        self.path = None  # a new spec: saving asks where
        self.clean = None  # not in any file yet
        self.shown.emit(self.config.spec)
        text = f"weights from {run_dir.name}: edit data/head, then Run"
        self.message.emit("info", f"{text} (train.init_from: {spec.train.init_from})")
        self.finetuneShown.emit(text)
        return True

    def ask_finetune(self, spec: engine.RunSpec, run_dir: Path) -> None:
        """``show_finetune``, first asking whether to drop the draft's unsaved edits."""
        self._unless_edited(
            f"Finetune from {run_dir.name}", partial(self.show_finetune, spec, run_dir)
        )

    def ask_open(self) -> None:
        open_file = partial(self.ask_load, remember=True)
        ask_open_path(self.parent_widget, "Open spec", YAML_FILTER, open_file, "openSpecDialog")

    def open_file(self, path: str) -> None:
        if self.load(path):
            add_recent(self.settings, path)

    def ask_save(self) -> None:
        ask_save_path(self.parent_widget, "Save spec as", YAML_FILTER, self.save, "saveSpecDialog")

    def save(self, path: str) -> bool:
        spec = self.config.spec
        if spec is None or not self._write(spec, Path(path)):
            return False
        self.path = Path(path)
        self._mark_clean()
        add_recent(self.settings, path)
        return True

    def _write(self, spec: engine.RunSpec, path: Path) -> bool:
        try:
            engine.save_spec(spec, path)
        except OSError as exc:
            show_error(self.parent_widget, "Cannot save", f"{path}\n\n{exc}", "saveErrorDialog")
            return False
        self.message.emit("info", f"saved {path}")
        return True

    def ask_save_preset(self) -> None:
        spec = self.config.spec
        if spec is not None:
            ask_text(
                self.parent_widget,
                "Save as preset",
                f"Preset name (saved in {self.presets_dir}):",
                spec.name,
                self._preset_named,
                "presetNameDialog",
            )

    def _preset_named(self, name: str) -> None:
        try:
            path = self.presets_dir / preset_file_name(name)
        except ValueError as exc:
            show_error(self.parent_widget, "Cannot save preset", str(exc), "saveErrorDialog")
            return
        write = partial(self._write_preset, path, name.strip())
        if path.exists():
            ask_confirm(
                self.parent_widget,
                "Replace preset?",
                f"{path.name} already exists. Replace it?",
                "Replace",
                write,
                "replacePresetDialog",
            )
        else:
            write()

    def _write_preset(self, path: Path, name: str) -> None:
        spec = self.config.spec
        if spec is None:
            return
        spec = dataclasses.replace(spec, name=name)
        if self._write(spec, path):
            self.config.set_spec(spec)
            self.path = path
            self._mark_clean()
            self.presetsChanged.emit()

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        files = recent_files(self.settings)
        for file in files:
            menu.addAction(file, partial(self.ask_load, file, remember=True))
        if not files:
            menu.addAction("(none yet)").setEnabled(False)
