"""The Activations view on real runs: a finished one, one still being written, and the one a
window trains, fed by its messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine
from tests.engine.helpers import tiny_spec
from workbench.plots.activations import (
    HEAT_HEIGHT,
    IMAGE_ROWS,
    SIGMA_HEIGHT,
    ActivationsView,
    density_image,
)


@pytest.fixture
def view(qtbot):
    widget = ActivationsView()
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """30 ticks of the tiny spec with a capture every 5: ticks 0, 5, ..., 25."""
    handle = engine.start_run(tiny_spec(train={"stats_every": 5}), tmp_path_factory.mktemp("runs"))
    assert handle.join(60) and handle.status == "finished", handle.error
    return engine.open_run(handle.run_dir)


def test_a_finished_run_shows_a_heatmap_per_site(view, finished_run):
    view.set_record(finished_run)
    assert view.objectName() == "activationsView"
    assert view.sites == ["0.attn", "0.mlp", "final"]
    image = view.image.image
    assert image.shape == (IMAGE_ROWS, 6)
    assert np.all(image.max(0) == 1.0)  # every capture column has content, scaled to its peak
    assert view.selected().ticks.tolist() == [0, 5, 10, 15, 20, 25]

    shown = {}
    for site in view.sites:
        for kind in ("in", "out"):
            view.select(site, kind)
            assert view.selected().site == site and view.selected().kind == kind
            shown[site, kind] = (view.image.image.copy(), view.median.getData()[1].copy())
    assert not np.array_equal(shown["0.attn", "in"][1], shown["0.mlp", "in"][1])
    assert not np.array_equal(shown["final", "in"][0], shown["final", "out"][0])
    # the normalised output of a strength-1 norm sits around 0 with σ ≈ 1
    assert abs(np.median(shown["final", "out"][1])) < 0.5
    assert len(view.sigma.getPlotItem().listDataItems()) == 3  # one σ line per site


def test_log_colour_and_cursor(view, finished_run):
    view.set_record(finished_run)
    linear = view.image.image.copy()
    view.log_color.setChecked(True)
    logged = view.image.image
    assert logged.shape == linear.shape and logged.max() == pytest.approx(4.0)
    assert (logged / 4).mean() > 1.5 * linear.mean()  # faint tails come up

    view.show_tick(11)
    assert view.cursor.value() == 10 and "tick 10" in view.hist_title.text()
    x, y = view.hist_curve.getData()
    assert len(x) == len(y) + 1 and np.sum(y * np.diff(x)) == pytest.approx(1.0)  # a density


def test_the_plots_keep_their_room_in_the_tab_of_a_1280x800_window(view, finished_run, qtbot):
    view.resize(910, 361)  # the Activations tab's size in a 1280x800 window with its docks
    view.set_record(finished_run)
    qtbot.waitUntil(lambda: view.hist.height() > 250)  # beside the map and σ, not a strip
    assert view.heat.height() >= HEAT_HEIGHT and view.sigma.height() >= SIGMA_HEIGHT
    assert "at tick 25:" in view.hist_title.text() and view.hist_title.isVisible()
    for plot in (view.heat, view.hist, view.sigma):  # nothing pushes a plot past its widget
        assert plot.getPlotItem().geometry().width() <= plot.viewport().width() + 1
    # the sites' key is above the σ plot, not over its curves; every site in it, readable
    key = view.sigma_key
    assert key.isVisible() and key.geometry().bottom() <= view.sigma.geometry().top()
    assert all(f">\u25a0&nbsp;{site}</a>" in key.text() for site in view.sites)
    assert key.height() >= key.fontMetrics().height()


def test_stats_messages_feed_the_view_one_capture_at_a_time(view, tmp_path):
    """The run a window trains is drawn from its messages: each capture shows as soon as it is
    added, the last one included, and the arrays are those the store keeps."""
    batches: list[list[engine.Message]] = []
    handle = engine.start_run(tiny_spec(train={"stats_every": 5}), tmp_path, sink=batches.append)
    assert handle.join(60) and handle.status == "finished", handle.error
    captures = [m for batch in batches for m in batch if isinstance(m, engine.Stats)]
    assert [c.tick for c in captures] == [0, 5, 10, 15, 20, 25]

    view.begin_run(handle.run_dir)
    assert view.run_dir == handle.run_dir and view.record is None and view.sites == []
    assert not view.refresh()  # no store to read
    for i, capture in enumerate(captures):
        assert view.add_stats([capture])
        assert view.selected().ticks[-1] == capture.tick
        assert view.image.image.shape == (IMAGE_ROWS, i + 1)
        assert view.median.getData()[0][-1] == capture.tick
        assert f"at tick {capture.tick}:" in view.hist_title.text()
    assert not view.add_stats(captures)  # every tick already shown: nothing doubles

    stored = engine.open_run(handle.run_dir).activation_stats()
    assert view.sites == ["0.attn", "0.mlp", "final"]
    for site, kind in stored:
        view.select(site, kind)
        shown = view.selected()
        assert np.array_equal(shown.ticks, stored[site, kind].ticks)
        assert np.array_equal(shown.counts, stored[site, kind].counts)
        assert np.array_equal(shown.sigma_mean, stored[site, kind].sigma_mean)

    view.set_record(engine.open_run(handle.run_dir))  # the same run, read from its store
    assert view.record is not None and view.selected().ticks.tolist() == [0, 5, 10, 15, 20, 25]


def test_refresh_follows_a_run_being_written(view, tmp_path, qtbot):
    handle = engine.start_run(
        tiny_spec(train={"stats_every": 2, "steps": 200}), tmp_path, paused=True
    )
    record = engine.open_run(handle.run_dir)

    def paused_after(tick: int) -> bool:  # the stored status: the same commit holds the rows
        return handle.tick == tick and record.status == "paused"

    try:
        for _ in range(3):
            handle.step()
        qtbot.waitUntil(lambda: paused_after(3), timeout=20_000)
        view.set_record(record)
        assert view.selected().ticks.tolist() == [0, 2]
        item_before = view.image
        assert not view.refresh()  # nothing new
        for _ in range(4):
            handle.step()
        qtbot.waitUntil(lambda: paused_after(7), timeout=20_000)
        assert view.refresh()
        assert view.selected().ticks.tolist() == [0, 2, 4, 6]
        assert view.image is item_before and view.image.image.shape == (IMAGE_ROWS, 4)
    finally:
        handle.stop()
        assert handle.join(60)


def test_density_image_places_every_capture_and_keeps_mass(finished_run):
    h = finished_run.activation_stats()["0.attn", "in"]
    image, rect = density_image(h, rows=50)
    assert image.shape == (50, 6)
    assert rect.left() == -2.5 and rect.width() == 30  # columns centred on ticks 0, 5, ..., 25
    assert rect.top() == h.lo.min() and rect.top() + rect.height() == pytest.approx(h.hi.max())
    gap = dataclasses.replace(h, ticks=np.array([0, 10, 20, 40, 50, 60]))  # no capture at 30
    image, _ = density_image(gap, rows=50)
    assert image.shape == (50, 7) and not image[:, 3].any() and image.max(0)[[0, 1, 2, 4]].all()


def test_the_window_shows_the_running_runs_activations(make_main_window, qtbot):
    """The Activations tab of the main window follows the run the window trains: each capture
    shows in the frame that brings its message, before the store has committed it."""
    from tests.engine.helpers import tiny_spec
    from tests.workbench.helpers import run_to_end

    window = make_main_window()
    view = window.activations
    window.config.set_spec(tiny_spec(train={"steps": 30, "stats_every": 5, "threads": 1}))
    seen: list[tuple[int, bool]] = []  # (capture tick, shown once the window handled it)

    def shows(tick: int, latest: bool) -> bool:
        image, h = view.image.image, view.selected()
        return (
            h is not None
            and tick in h.ticks
            and tick in view.median.getData()[0]
            and image is not None
            and image.shape[1] >= tick // 5 + 1
            # the histogram below the map shows the batch's latest capture
            and (not latest or f"at tick {tick}:" in view.hist_title.text())
        )

    def after_the_window(batch: list[engine.Message]) -> None:  # connected after its own slot
        ticks = [m.tick for m in batch if isinstance(m, engine.Stats)]
        seen.extend((t, shows(t, t == ticks[-1])) for t in ticks)

    window.session.messages.connect(after_the_window)
    assert run_to_end(qtbot, window) == "finished"
    # every capture in the frame its message arrived in, the last one too; no refresh() here
    assert seen == [(t, True) for t in (0, 5, 10, 15, 20, 25)]
    assert view.run_dir == window.last_run_dir and view.run_dir.name.startswith("tiny-")
    assert view.record is None  # fed by the messages: the store was not read
    assert view.image.image.max() > 0
