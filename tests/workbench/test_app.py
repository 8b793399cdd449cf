"""The application around the window: scripted mode, no-display message, persisted settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

import engine
from tests.workbench.conftest import write_tiny
from workbench.__main__ import display_problem
from workbench.settings import recent_files

ROOT = Path(__file__).resolve().parents[2]


def _workbench(*args: str, env: dict[str, str], timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def test_without_a_display_it_says_so_in_one_line_and_points_to_the_cli():
    result = _workbench("--preset", "presets/baby-gpt.yaml", env=_env(), timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no display" in lines[0] and "python -m engine run presets/baby-gpt.yaml" in lines[0]


def test_display_check_reads_the_environment():
    assert display_problem({}, "linux") is not None
    assert display_problem({"DISPLAY": ":0"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "darwin") is None
    assert display_problem({}, "win32") is None


def _scripted_run(tmp_path: Path, spec: Path, *extra: str):
    """``python -m workbench`` offscreen: run ``spec`` to its end on tmp settings and runs."""
    runs, settings = str(tmp_path / "runs"), str(tmp_path / "settings.ini")
    args = ("--preset", str(spec), "--runs-dir", runs, "--settings", settings)
    return _workbench(
        *args, "--run", "--quit-after-run", *extra, env=_env(QT_QPA_PLATFORM="offscreen")
    )


def test_scripted_run_saves_a_screenshot_and_exits_0(tmp_path):
    shot = tmp_path / "shots" / "done.png"
    extra = ("--steps", "20", "--screenshot", str(shot), "--size", "1280x800")
    result = _scripted_run(tmp_path, write_tiny(tmp_path), *extra)
    assert result.returncode == 0, result.stderr
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1280, 800)
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = engine.open_run(run_dir)
    assert record.status == "finished"
    assert record.spec.train.steps == 20  # --steps reached the run


def test_scripted_run_that_fails_exits_nonzero(tmp_path):
    spec = tmp_path / "diverges.yaml"
    text = write_tiny(tmp_path).read_text().replace("device: cpu", "device: cpu, lr: 1.0e+30")
    spec.write_text(text.replace("batch_size: 4,", "batch_size: 4, optimizer: sgd, grad_clip: 0,"))
    result = _scripted_run(tmp_path, spec)
    assert result.returncode == 1, result.stderr
    assert "run diverged" in result.stderr


def test_scripted_study_trains_every_variant_and_exits_0(tmp_path):
    """``--preset STUDY --run``: the window trains the whole study (a variant starting from
    another's weights included), then exits with the study's verdict."""
    study = tmp_path / "study.yaml"
    study.write_text(
        (ROOT / "presets" / "brackets-finetune.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    result = _scripted_run(tmp_path, study, "--steps", "4")
    assert result.returncode == 0, result.stderr
    assert "pretrain finished, finetune finished, scratch finished" in result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    runs = {engine.open_run(p).meta["name"]: p for p in folder.iterdir() if p.is_dir()}
    assert len(runs) == 3
    lineage = engine.open_run(runs["brackets-finetune-finetune"]).meta["lineage"]
    assert lineage[0]["run"] == str(runs["brackets-finetune-pretrain"])


def test_layout_geometry_recent_files_and_theme_persist(
    qtbot, make_main_window, tiny_spec_file, tmp_path
):
    settings_file = tmp_path / "persist.ini"
    first = make_main_window(settings_file)
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, first.config_dock)
    first.resize(760, 560)  # within the offscreen screen (800x600): restoring clamps to it
    first.commands.themes["light"].trigger()
    first.files.open_file(str(tiny_spec_file))
    first.shutdown()  # closing saves the settings

    second = make_main_window(settings_file)
    assert second.dockWidgetArea(second.config_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert (second.width(), second.height()) == (760, 560)
    assert second.commands.themes["light"].isChecked()
    assert recent_files(second.settings) == [str(tiny_spec_file.resolve())]
    assert second.settings.fileName() == str(settings_file)  # never the user's settings

    second.reset_layout()
    assert second.dockWidgetArea(second.config_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    second.commands.themes["dark"].trigger()
