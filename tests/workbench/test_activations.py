"""The Activations view on real runs: a finished one, and one still being written."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine
from tests.engine.helpers import tiny_spec
from workbench.plots.activations import IMAGE_ROWS, ActivationsView, density_image


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


def test_log_colour_cursor_and_edges(view, finished_run, qtbot):
    view.set_record(finished_run)
    linear = view.image.image.copy()
    view.log_color.setChecked(True)
    logged = view.image.image
    assert logged.shape == linear.shape and logged.max() == pytest.approx(4.0)
    assert (logged / 4).mean() > 1.5 * linear.mean()  # faint tails come up

    view.show_tick(11)
    assert view.cursor.value() == 10 and "tick 10" in view.hist.getPlotItem().titleLabel.text
    x, y = view.hist_curve.getData()
    assert len(x) == len(y) + 1 and np.sum(y * np.diff(x)) == pytest.approx(1.0)  # a density

    view.add_edges([(3, "warm-up end"), (20, "ln ramp")])
    lines = [i for i in view.heat.getPlotItem().items if getattr(i, "label", None)]
    assert sorted(line.value() for line in lines) == [3, 20]
    view.set_record(finished_run)  # a run's events go with it
    assert not [i for i in view.heat.getPlotItem().items if getattr(i, "label", None)]


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
    """The Activations tab of the main window follows the run the window trains."""
    from tests.engine.helpers import tiny_spec
    from tests.workbench.helpers import run_to_end

    window = make_main_window()
    window.config.set_spec(tiny_spec(train={"steps": 30, "stats_every": 5, "threads": 1}))
    assert run_to_end(qtbot, window) == "finished"
    view = window.activations
    assert view.record is not None and view.record.path.name.startswith("tiny-")
    view.refresh()
    image = view.image.image
    assert image is not None and image.shape[1] >= 6 and image.max() > 0
