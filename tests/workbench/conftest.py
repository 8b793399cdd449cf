"""Fixtures for the GUI tests: windows that clean up after themselves, tmp settings and runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workbench.runs_helpers import copy_runs, make_base_runs
from workbench.main_window import MainWindow
from workbench.settings import open_settings
from workbench.spec.presets import DEFAULT_PRESETS_DIR

# The tiny spec of the brief: trains 30 ticks in well under a second on a 2-core CPU.
TINY_YAML = """\
name: tiny
description: one small block on a slice of the built-in corpus
seed: 7
model: {n_layer: 1, n_head: 2, d_model: 32, d_ff: 64, context: 16}
data: {source: text, path: "builtin:python-stdlib", max_chars: 200000}
train: {steps: STEPS, batch_size: 4, eval_every: 10, eval_batches: 2, checkpoint_every: 10,
        device: cpu}
"""


def write_tiny(folder: Path, steps: int = 30, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(TINY_YAML.replace("STEPS", str(steps)), encoding="utf-8")
    return path


@pytest.fixture
def tiny_spec_file(tmp_path) -> Path:
    return write_tiny(tmp_path)


@pytest.fixture
def long_spec_file(tmp_path) -> Path:
    """The tiny model with far more ticks than any test waits for: for pausing and stopping."""
    return write_tiny(tmp_path, steps=100_000, name="long.yaml")


@pytest.fixture
def make_main_window(qtbot, tmp_path):
    """Factory of shown main windows on tmp settings and a tmp runs folder. At teardown every
    window's run is stopped and joined, background jobs are waited for, and it is closed."""
    windows: list[MainWindow] = []

    def make(settings_file: Path | None = None, presets_dir: Path = DEFAULT_PRESETS_DIR):
        settings = open_settings(settings_file or tmp_path / "settings.ini")
        window = MainWindow(settings, runs_dir=tmp_path / "runs", presets_dir=presets_dir)
        window.show()
        qtbot.waitExposed(window)
        # the first parameter estimate builds the corpus and a meta model; let it land
        qtbot.waitUntil(lambda: not window.tasks.busy, timeout=20_000)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
        window.deleteLater()


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory):
    """``make_base_runs``, trained once per test module that uses it."""
    return make_base_runs(tmp_path_factory.mktemp("base-runs"))


@pytest.fixture
def runs_window(make_main_window, base_runs, tmp_path):
    """A window whose runs directory holds this test's copies of the base runs
    (``window.runs_dir_of_test``: their folders by name)."""
    runs = copy_runs(base_runs, tmp_path / "runs")  # the fixture's window reads tmp_path/runs
    w = make_main_window()
    w.runs_dir_of_test = runs
    yield w
    w.runs.shutdown()
