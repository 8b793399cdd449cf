"""What the Runs dock does to the selected runs: resume, fork, branch, finetune from, rename,
tag, delete, reveal the folder, open the spec in the editor, export.

Every action that asks something opens a non-blocking dialog (``workbench.dialogs``) and acts in
its callback; the methods that act (``resume``, ``fork``, ``rename``, ``set_tags``, ``delete``,
``export_*``) can also be called directly, as the tests and scripts do. In a window, runs resumed
or forked here become the window's run (its ``launcher``): in focus, with Pause, Step and Stop.
A panel on its own trains them on the engine's thread, follows them through their store like
any other run, and ``shutdown`` stops them cleanly.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMenu

import engine
from engine import delete_run, fork_run, rename_run, replace, set_tags, to_dict
from workbench.dialogs import ask_confirm, ask_save_path, ask_text
from workbench.plots.export import export_plot
from workbench.runs.export import write_scalars_csv
from workbench.runs.follow import LIVE
from workbench.runs.fork_dialog import BranchDialog, ForkDialog, SteerDialog
from workbench.training.focus import latest_checkpoint_tick
from workbench.training.session import limit_threads
from workbench.workers import TaskRunner

RESUMABLE = ("stopped", "interrupted")
JOIN_SECONDS = 60.0


def finetune_spec(run_dir: Path, name: str) -> engine.RunSpec:
    """The spec of the run at ``run_dir``, made to start from its weights (its latest
    checkpoint): ``train.init_from`` = the folder, named ``<name>-finetune``, and no phase
    loading other weights. Raises ConfigError when the run's spec no longer reads."""
    spec = engine.load_spec(Path(run_dir) / "spec.yaml")
    phases = [{**to_dict(p), "init_from": None} for p in spec.timeline.phases]
    return replace(
        spec,
        {
            "name": f"{name}-finetune",
            "train.init_from": str(Path(run_dir).resolve()),
            "timeline.phases": phases,
        },
    )


class RunsActions:
    """The actions of one RunsPanel (``toolbar`` lists them for its buttons)."""

    def __init__(self, panel):
        self.panel = panel
        self.handles: list[engine.RunHandle] = []
        self.replays = TaskRunner(panel, threads=1)  # branches' replays, off the GUI thread
        self._cancel = threading.Event()  # set at shutdown: a replay stops within a tick

        def action(name: str, text: str, tip: str, slot) -> QAction:
            a = QAction(text, panel)
            a.setObjectName(name)
            a.setToolTip(tip)
            a.triggered.connect(slot)
            return a

        self.resume_action = action(
            "runsResumeAction", "Resume", "Continue a stopped or interrupted run", self.ask_resume
        )
        self.fork_action = action(
            "runsForkAction", "Fork…", "New run from a checkpoint, with an edited spec",
            self.ask_fork,
        )  # fmt: skip
        self.branch_action = action(
            "runsBranchAction", "Branch…",
            "New run from any tick of this one (replayed from its nearest checkpoint), with an "
            "edited spec from that tick on",
            self.ask_branch,
        )  # fmt: skip
        self.steer_action = action(
            "runsSteerAction", "Steer…",
            "Send an edited spec to a run another process is training: its future changes "
            "from a tick on (a revision)",
            self.ask_steer,
        )  # fmt: skip
        self.finetune_action = action(
            "runsFinetuneAction", "Finetune from…",
            "A new spec in the Config panel that starts from this run's latest checkpoint",
            self.ask_finetune,
        )  # fmt: skip
        self.rename_action = action("runsRenameAction", "Rename…", "Rename", self.ask_rename)
        self.tags_action = action("runsTagsAction", "Tags…", "Tag the runs", self.ask_tags)
        self.delete_action = action(
            "runsDeleteAction", "Delete…", "Delete the runs' folders", self.ask_delete
        )
        self.reveal_action = action(
            "runsRevealAction", "Reveal", "Open the run folder", self.reveal
        )
        self.open_spec_action = action(
            "runsOpenSpecAction", "Open spec", "Load the run's spec into the editor",
            self.open_spec,
        )  # fmt: skip
        self.export_menu = QMenu("Export", panel)
        self.export_menu.setObjectName("runsExportMenu")
        self.export_csv_action = self.export_menu.addAction("Scalars as CSV…", self.ask_csv)
        self.export_png_action = self.export_menu.addAction(
            "Plot as PNG…", lambda: self.ask_image("PNG image (*.png)")
        )
        self.export_svg_action = self.export_menu.addAction(
            "Plot as SVG…", lambda: self.ask_image("SVG image (*.svg)")
        )
        self.export_tb_action = self.export_menu.addAction(
            "TensorBoard event files…", self.ask_tensorboard
        )
        self.export_hf_action = self.export_menu.addAction(
            "Hugging Face model folder…", self.ask_hf
        )
        self.export_hf_action.setObjectName("runsExportHfAction")
        self.export_hf_action.setToolTip(
            "The run's latest checkpoint as a GPT-2 folder transformers loads (from_pretrained)"
        )
        if not engine.HAS_TENSORBOARD:
            self.export_tb_action.setEnabled(False)
            self.export_tb_action.setText("TensorBoard (pip install tensorboard)")
        self.export_action = self.export_menu.menuAction()
        self.export_action.setObjectName("runsExportAction")
        self.toolbar = [
            self.resume_action,
            self.fork_action,
            self.branch_action,
            self.finetune_action,
            self.rename_action,
            self.tags_action,
            self.delete_action,
            self.reveal_action,
            self.open_spec_action,
            self.export_action,
            self.steer_action,
        ]

    # --- state ---
    def _rows(self):
        rows = [self.panel.model.get(p) for p in self.panel.selected_paths()]
        return [r for r in rows if r is not None]

    def sync(self) -> None:
        rows = self._rows()
        one = rows[0] if len(rows) == 1 else None
        has_ckpt = bool(one and engine.open_run(one.path).checkpoints())
        self.resume_action.setEnabled(bool(one and one.summary.status in RESUMABLE and has_ckpt))
        self.fork_action.setEnabled(has_ckpt)
        self.branch_action.setEnabled(bool(one and one.summary.ticks > 1))
        # a run another process trains (this window steers its own from the Timeline editor)
        live = bool(one and one.summary.status in LIVE)
        theirs = live and engine.open_run(one.path).meta.get("pid") != os.getpid()
        self.steer_action.setEnabled(bool(theirs))
        self.finetune_action.setEnabled(has_ckpt)
        self.export_hf_action.setEnabled(has_ckpt)  # one run's model
        for a in (self.rename_action, self.reveal_action, self.open_spec_action):
            a.setEnabled(one is not None)
        self.tags_action.setEnabled(bool(rows))
        self.delete_action.setEnabled(
            bool(rows) and all(r.summary.status not in LIVE for r in rows)
        )
        self.export_action.setEnabled(bool(rows))

    def _say(self, text: str, level: str = "info") -> None:
        self.panel.message.emit(level, text)

    # --- resume and fork ---
    def _launch(self, start, history: int = 0) -> engine.RunHandle:
        """Start a run with ``start(sink)``: the window's run when the panel has a launcher (it
        raises RuntimeError while the window trains another), else one of the panel's own.
        ``history``: the ticks before it the run's store already holds (a resumed run's)."""
        if self.panel.launcher is not None:
            return self.panel.launcher(start, history)
        handle = start(None)
        self.handles.append(handle)
        self.panel.refresh_now(handle.run_dir)
        self.panel.select([handle.run_dir])
        return handle

    def ask_resume(self) -> None:
        rows = self._rows()
        if rows:
            self.resume(rows[0].path)

    def resume(self, path: Path) -> engine.RunHandle | None:
        """Continue the stopped or interrupted run at ``path`` from its last checkpoint."""
        tick = latest_checkpoint_tick(path) or 0  # where it resumes: the thread may be past it
        try:
            handle = self._launch(lambda sink: engine.resume_run(path, sink), tick)
        except (engine.ConfigError, RuntimeError, OSError) as exc:
            self._say(f"cannot resume {Path(path).name}: {exc}", "error")
            return None
        self._say(f"resumed {handle.run_dir} from tick {tick}")
        return handle

    def ask_fork(self) -> None:
        rows = self._rows()
        if len(rows) == 1:
            record = engine.open_run(rows[0].path)
            dialog = ForkDialog(
                self.panel, record, lambda ckpt, spec: self.fork(record.path, ckpt, spec)
            )
            dialog.open()

    def fork(self, path: Path, checkpoint: Path | int | None, spec: engine.RunSpec):
        """Fork the run at ``path`` from ``checkpoint`` into a new run training ``spec``.
        Raises ConfigError when the spec cannot continue from it, RuntimeError while the window
        trains another run (the dialog shows either)."""
        spec, runs_dir = limit_threads(spec), self.panel.runs_dir
        handle = self._launch(lambda sink: fork_run(path, spec, checkpoint, runs_dir, sink))
        self._say(f"forked {Path(path).name} at tick {handle.tick} into {handle.run_dir}")
        return handle

    def ask_branch(self, tick: int | None = None, path: Path | None = None) -> None:
        """The Branch dialog for ``path`` (default: the one run selected), after ``tick``."""
        rows = self._rows()
        if path is None and len(rows) == 1:
            path = rows[0].path
        if path is not None:
            record = engine.open_run(path)
            dialog = BranchDialog(
                self.panel,
                record,
                lambda at, spec, paused: self.branch(record.path, at, spec, paused),
                tick,
            )
            dialog.open()

    def branch(self, path: Path, tick: int, spec: engine.RunSpec, paused: bool = False) -> None:
        """Branch the run at ``path`` after ``tick`` into a new run training ``spec``: the
        replay to ``tick`` runs off the GUI thread, then the branch starts as a fork would (the
        window's run; ``paused``: waiting at its tick, its future editable in the Timeline
        editor, the past hatched). Says what happened in the log."""
        path, spec, runs_dir = Path(path), limit_threads(spec), self.panel.runs_dir
        engine.compile_timeline(spec)  # a spec that cannot train is refused at once
        self._say(f"branching {path.name} after tick {tick}: replaying…")

        def ready(branch: engine.Branch) -> None:
            try:
                handle = self._launch(
                    lambda sink: branch.start(spec, runs_dir, sink, paused=paused)
                )
            except (engine.ConfigError, RuntimeError, OSError) as exc:
                branch.discard()
                self._say(f"cannot branch {path.name} after tick {tick}: {exc}", "error")
                return
            self._say(f"branched {path.name} after tick {tick} into {handle.run_dir}")

        def failed(exc: Exception) -> None:
            self._say(f"cannot branch {path.name} after tick {tick}: {exc}", "error")

        self.replays.submit(
            lambda: engine.prepare_branch(path, tick, runs_dir, cancel=self._cancel), ready, failed
        )

    def ask_steer(self) -> None:
        """The Steer dialog for the one run selected, which another process trains."""
        rows = self._rows()
        if len(rows) != 1:
            return
        path = rows[0].path
        dialog = SteerDialog(
            self.panel, engine.open_run(path), lambda at, spec: self.steer(path, at, spec, dialog)
        )
        dialog.open()

    def steer(self, path: Path, at: int | None, spec: engine.RunSpec, dialog=None) -> None:
        """Send ``spec`` to the run at ``path`` as a revision from ``at`` (None: its next tick),
        off the GUI thread; the answer goes to the log and to ``dialog``."""

        def done(rev: engine.Revision) -> None:
            if rev.state == "applied":
                self._say(
                    f"{path.name}: rev {rev.number} applies from tick {rev.tick}: {rev.detail}"
                )
                self.panel.refresh_now(path)
            else:
                self._say(f"{path.name}: revision refused: {rev.detail}", "warning")
            if dialog is not None:
                dialog.answered(None if rev.state == "applied" else rev.detail)

        def failed(exc: Exception) -> None:
            self._say(f"cannot steer {path.name}: {exc}", "error")
            if dialog is not None:
                dialog.answered(str(exc))

        self.replays.submit(lambda: engine.steer_run(path, spec, at, source="window"), done, failed)

    def ask_finetune(self) -> None:
        rows = self._rows()
        if len(rows) == 1:
            self.finetune(rows[0].path, rows[0].name)

    def finetune(self, path: Path, name: str) -> engine.RunSpec | None:
        """Offer a spec that starts from the weights of the run at ``path`` (the window puts it
        in the Config panel, through ``finetuneRequested``), to edit (the data, the head) and
        run."""
        try:
            spec = finetune_spec(path, name)
        except engine.ConfigError as exc:
            self._say(f"cannot finetune from {Path(path).name}: {exc}", "error")
            return None
        self.panel.finetuneRequested.emit(spec, Path(path))
        return spec

    def shutdown(self) -> None:
        self._cancel.set()
        self.replays.shutdown()
        for handle in self.handles:
            handle.stop()
        for handle in self.handles:
            handle.join(JOIN_SECONDS, delivered=False)
        self.handles.clear()

    # --- labels ---
    def ask_rename(self) -> None:
        rows = self._rows()
        if len(rows) == 1:
            path = rows[0].path
            ask_text(
                self.panel, "Rename run", "Name:", rows[0].name,
                lambda name: self.rename(path, name), "renameDialog",
            )  # fmt: skip

    def rename(self, path: Path, name: str) -> None:
        try:
            rename_run(path, name)
        except (ValueError, OSError) as exc:
            self._say(f"cannot rename {path.name}: {exc}", "error")
            return
        self.panel.refresh_now(path)
        self.panel.rename_shown(path, name.strip())

    def ask_tags(self) -> None:
        rows = self._rows()
        if rows:
            paths = [r.path for r in rows]
            ask_text(
                self.panel, "Tags", "Tags (comma-separated):", ", ".join(rows[0].tags),
                lambda text: self.set_tags(paths, text.split(",")), "tagsDialog",
            )  # fmt: skip

    def set_tags(self, paths: list[Path], tags: list[str]) -> None:
        for path in paths:
            set_tags(path, tags)
            self.panel.watcher.forget(path)
        self.panel.poll()

    def ask_delete(self) -> None:
        rows = self._rows()
        if rows:
            names = "\n".join(f"  {r.name}  ({r.path.name})" for r in rows[:10])
            more = f"\n  … and {len(rows) - 10} more" if len(rows) > 10 else ""
            paths = [r.path for r in rows]
            ask_confirm(
                self.panel, "Delete runs?",
                f"Delete {len(rows)} run folder(s) with their checkpoints and metrics?\n\n"
                f"{names}{more}\n\nThis cannot be undone.",
                "Delete", lambda: self.delete(paths), "deleteDialog",
            )  # fmt: skip

    def delete(self, paths: list[Path]) -> None:
        self.panel.select([p for p in self.panel.selected_paths() if p not in paths])
        for path in paths:
            try:
                delete_run(path)
            except (RuntimeError, OSError) as exc:
                self._say(f"not deleted: {exc}", "error")
            else:
                self._say(f"deleted {path}")
        self.panel.poll()

    # --- places ---
    def reveal(self) -> None:
        rows = self._rows()
        if rows:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(rows[0].path)))

    def open_spec(self) -> None:
        rows = self._rows()
        if rows:
            self.panel.openSpecRequested.emit(rows[0].path / "spec.yaml")

    # --- exports ---
    def _named(self) -> list[tuple[str, Path]]:
        return [(r.name, r.path) for r in self._rows()]

    def ask_csv(self) -> None:
        runs = self._named()
        ask_save_path(
            self.panel, "Export scalars", "CSV data (*.csv)",
            lambda path: self.export_csv(runs, Path(path)), "exportDialog",
        )  # fmt: skip

    def export_csv(self, runs: list[tuple[str, Path]], path: Path) -> None:
        n = write_scalars_csv(runs, path)
        self._say(f"wrote {n} values of {len(runs)} run(s) to {path}")

    def ask_image(self, name_filter: str) -> None:
        ask_save_path(
            self.panel, "Export plot", name_filter,
            lambda path: self.export_image(Path(path)), "exportDialog",
        )  # fmt: skip

    def shown_plot(self):
        """The overlay plot on screen (the loss plot when none is)."""
        targets = self.panel.overlay.targets
        visible = [t.plot for t in targets if t.plot.isVisible()]
        return (visible or [t.plot for t in targets])[0]

    def export_image(self, path: Path) -> None:
        export_plot(self.shown_plot().getPlotItem(), path)
        self._say(f"wrote {path}")

    def ask_hf(self) -> None:
        rows = self._rows()
        if len(rows) != 1:
            return
        dialog = QFileDialog(self.panel, f"Export {rows[0].name} as a Hugging Face model folder")
        dialog.setObjectName("hfExportDialog")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.fileSelected.connect(lambda out: self.export_hf(rows[0].path, Path(out)))
        dialog.open()

    def export_hf(self, run_dir: Path, out: Path) -> None:
        """Write the run's model as a GPT-2 folder off the GUI thread; what cannot be written
        (a classifier, LayerNorm half removed, ...) is one line in the log."""

        def done(folder: Path) -> None:
            self._say(f"exported {run_dir.name} to {folder}: GPT2LMHeadModel.from_pretrained")

        def failed(exc: Exception) -> None:
            self._say(f"cannot export {run_dir.name}: {exc}", "error")

        job = lambda: engine.export_run_hf(run_dir, out)  # noqa: E731
        if self.panel.tasks is None:
            try:
                done(job())
            except (engine.ConfigError, OSError, ValueError) as exc:
                failed(exc)
        else:
            self.panel.tasks.submit(job, done, failed)

    def ask_tensorboard(self) -> None:
        dialog = QFileDialog(self.panel, "Export TensorBoard event files to a folder")
        dialog.setObjectName("tensorboardDialog")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        paths = [r.path for r in self._rows()]
        dialog.fileSelected.connect(lambda logdir: self.export_tensorboard(paths, Path(logdir)))
        dialog.open()

    def export_tensorboard(self, paths: list[Path], logdir: Path) -> None:
        """Write the runs' event files under ``logdir`` off the GUI thread (tensorboard's import
        alone takes seconds)."""

        def done(out: list[Path]) -> None:
            self._say(f"TensorBoard: {len(out)} run(s) in {logdir}: tensorboard --logdir {logdir}")

        def failed(exc: Exception) -> None:
            self._say(f"TensorBoard export failed: {exc}", "error")

        job = lambda: engine.write_tensorboard(paths, logdir)  # noqa: E731
        if self.panel.tasks is None:
            done(job())
        else:
            self.panel.tasks.submit(job, done, failed)
