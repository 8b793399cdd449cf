"""Following runs that another process writes: ``python -m engine run`` in a subprocess shows
up in the Runs table and its curve grows in the overlay while it trains."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest

import engine
from engine.run_rows import ScalarRows
from engine.runs import RunWriter
from tests.workbench.conftest import write_tiny
from workbench.plots.envelope import series_of
from workbench.runs.follow import FollowedRun, RunsDirWatcher, Track
from workbench.runs.panel import RunsPanel

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 60_000  # the child imports torch and builds the corpus first


def test_watcher_reports_new_changed_and_gone_folders(tmp_path):
    watcher = RunsDirWatcher(tmp_path)
    assert watcher.poll() == ([], [])
    writer = RunWriter(tmp_path / "a")
    writer.set_meta(name="a", steps=3)
    assert watcher.poll() == ([tmp_path / "a"], [])
    assert watcher.poll() == ([], [])  # nothing committed since: nothing to read
    writer.scalars(0, {"train/loss": 1.0})
    writer.flush()
    assert watcher.poll() == ([tmp_path / "a"], [])
    writer.close()
    study = tmp_path / "study-1"
    RunWriter(study / "b").close()
    (study / "study.yaml").write_text("study: s\n")
    changed, _ = watcher.poll()
    assert study / "b" in changed  # runs inside study folders too
    for p in (tmp_path / "a").iterdir():
        if p.is_file():
            p.unlink()
    assert watcher.poll()[1] == [tmp_path / "a"]


def test_followed_run_reads_only_new_rows_and_rereads_after_a_resume(tmp_path):
    writer = RunWriter(tmp_path / "r")
    writer.set_status("finished", 0)
    for t in range(5):
        writer.scalars(t, {"train/loss": 5.0 - t, "lr": 0.1})
    writer.flush()
    run = FollowedRun(tmp_path / "r")
    assert run.update() == {"train/loss", "lr"}
    assert run.update() == set()
    writer.scalars(5, {"train/loss": 0.5})
    writer.flush()
    assert run.update() == {"train/loss"}
    assert list(run.tracks["train/loss"].x) == [0, 1, 2, 3, 4, 5]
    # resumed from tick 3: rows from there are replaced as it replays them
    writer.truncate_from(3)
    writer.set_status("running", 3)
    writer.scalars(3, {"train/loss": 9.0})
    writer.flush()
    assert run.update() == {"train/loss", "lr"}
    assert list(run.tracks["train/loss"].y) == [5.0, 4.0, 3.0, 9.0]
    writer.close()


def test_track_grows_in_chunks():
    track = Track(capacity=2)
    for start in range(0, 1000, 100):
        ticks = np.arange(start, start + 100)
        track.extend(ScalarRows(ticks, ticks * 0.5, ticks + 1e9))
    assert len(track) == 1000 and track.next_tick == 1000
    assert track.y[-1] == 499.5 and track.wall[0] == 1e9


@pytest.fixture
def headless_run(tmp_path):
    """``python -m engine run`` training the tiny spec for far longer than the test waits."""
    spec = write_tiny(tmp_path, steps=100_000)
    text = spec.read_text().replace("device: cpu}", "device: cpu, threads: 1}")
    spec.write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(spec), "--runs-dir", str(tmp_path / "runs"),
         "--name", "headless"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # stops cleanly: checkpoint, status "stopped"
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_run_written_by_another_process_appears_and_grows(qtbot, tmp_path, headless_run):
    panel = RunsPanel(tmp_path / "runs", poll_ms=100)
    qtbot.addWidget(panel)
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    panel.overlay.attach(plot, lambda metric: metric == "train/loss")
    try:
        qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=WAIT_MS)
        path = panel.model.rows[0].path
        # the folder can be seen before its metadata is written; the row catches up on its own
        qtbot.waitUntil(lambda: panel.model.rows[0].name == "headless", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: panel.model.rows[0].summary.status == "running", timeout=WAIT_MS)
        panel.select([path])

        def points() -> int:
            curve = panel.overlay.curves(plot).get((path, "train/loss"))
            return 0 if curve is None or series_of(curve)[0] is None else len(series_of(curve)[0])

        first = points()
        qtbot.waitUntil(lambda: points() > first + 10, timeout=WAIT_MS)
        second = points()
        qtbot.waitUntil(lambda: points() > second + 10, timeout=WAIT_MS)
        assert series_of(panel.overlay.curves(plot)[(path, "train/loss")])[0].tolist() == list(
            range(points())
        )
        ticks = int(panel.model.rows[0].summary.ticks)
        assert ticks >= second
        headless_run.send_signal(signal.SIGINT)
        assert headless_run.wait(60) == 0
        qtbot.waitUntil(lambda: panel.model.rows[0].summary.status == "stopped", timeout=WAIT_MS)
        assert engine.open_run(path).status == "stopped"
    finally:
        panel.shutdown()


def test_a_run_forgotten_then_deleted_is_reported_gone(tmp_path):
    """A row whose re-read was put off (``forget``) must still go when its folder does: the
    Runs table kept deleted runs when naming them had been put off under load."""
    import shutil

    from tests.engine.helpers import tiny_spec

    handle = engine.start_run(tiny_spec(train={"steps": 2}), tmp_path)
    assert handle.join(60)
    watcher = RunsDirWatcher(tmp_path)
    assert watcher.poll() == ([handle.run_dir], [])
    watcher.forget(handle.run_dir)
    shutil.rmtree(handle.run_dir)
    assert watcher.poll() == ([], [handle.run_dir])
