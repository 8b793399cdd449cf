"""Min/max pyramids: every spike survives decimation at every level, growth keeps the levels
exact, and a plot item is fed about two points per pixel column, again only when the zoom or
the data change."""

from __future__ import annotations

import csv

import numpy as np
import pyqtgraph as pg
import pytest

from workbench.plots.envelope import BASE, Decimated, Pyramid, series_of
from workbench.plots.export import export_plot


def _spiky(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(0, 0.01, n))
    spikes = rng.choice(n, size=n // 97, replace=False)
    y[spikes] += rng.choice([-1.0, 1.0], size=len(spikes)) * rng.uniform(1, 5, len(spikes))
    return np.arange(n, dtype=float), y


@pytest.mark.parametrize("size", [BASE**k for k in range(1, 12, 2)])
def test_every_bucket_keeps_its_min_and_max_at_their_ticks(size):
    x, y = _spiky(10_007)  # not a multiple of any size: a partial last bucket
    pyramid = Pyramid()
    pyramid.set(x, y)
    lx, ly = pyramid.level(size)
    drawn = set(zip(lx.tolist(), ly.tolist()))
    for start in range(0, len(y), size):
        seg = slice(start, min(start + size, len(y)))
        lo, hi = start + np.argmin(y[seg]), start + np.argmax(y[seg])
        assert (x[lo], y[lo]) in drawn and (x[hi], y[hi]) in drawn
    assert len(lx) == 2 * -(-len(y) // size)  # two points a bucket, the partial one too
    assert np.all(np.diff(lx) >= 0)  # in the order they occur


def test_a_growing_series_gives_the_levels_a_fresh_pyramid_gives():
    x, y = _spiky(20_000, seed=1)
    grown, rng, n = Pyramid(), np.random.default_rng(2), 0
    while n < len(y):
        n = min(len(y), n + int(rng.integers(1, 700)))
        grown.set(x[:n], y[:n])
        for size in (4, 64, 1024):
            fresh = Pyramid()
            fresh.set(x[:n], y[:n])
            for a, b in zip(grown.level(size), fresh.level(size)):
                assert np.array_equal(a, b)


def test_a_replaced_series_drops_the_old_levels():
    pyramid = Pyramid()
    pyramid.set(np.arange(100.0), np.zeros(100))
    pyramid.level(4)
    pyramid.set(np.arange(50.0), np.ones(50))  # shorter: re-read from the start
    assert np.array_equal(pyramid.level(4)[1], np.ones(26))


def test_nan_is_a_gap_only_where_a_bucket_has_nothing_else():
    y = np.array([1.0, np.nan, 3.0, 2.0] + [np.nan] * 4)
    pyramid = Pyramid()
    pyramid.set(np.arange(8.0), y)
    _, ly = pyramid.level(4)
    assert ly[:2].tolist() == [1.0, 3.0]
    assert np.isnan(ly[2:]).all()


def test_a_plot_item_gets_a_level_for_its_zoom_and_keeps_it_while_panning(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(700, 400)
    widget.show()
    qtbot.waitExposed(widget)
    x, y = _spiky(200_000, seed=3)
    item = widget.getPlotItem().plot()
    feed = Decimated(item)
    feed.set_data(x, y)
    vb = widget.getPlotItem().vb
    vb.setXRange(0, len(x), padding=0)
    shown_x, shown_y = item.getData()
    assert len(shown_x) <= 4 * vb.width() + 4  # two to four points per pixel column
    assert shown_y.max() == y.max() and shown_y.min() == y.min()
    assert np.array_equal(series_of(item)[1], y)

    coarse, sets = feed.size, []
    item.sigPlotChanged.connect(lambda *_: sets.append(1))
    vb.setXRange(50_000, 100_000, padding=0)  # zoom in: a finer level, a window around it
    assert len(sets) == 1 and feed.size == coarse // 4  # a quarter of the span
    sets.clear()
    vb.setXRange(60_000, 110_000, padding=0)  # a pan inside the window: nothing is set
    assert sets == []
    shown_x, shown_y = item.getData()
    inside = (x >= 60_000) & (x <= 110_000)
    seen = (shown_x >= 60_000) & (shown_x <= 110_000)
    assert shown_y[seen].max() == y[inside].max() and shown_y[seen].min() == y[inside].min()
    vb.setXRange(150_000, 160_000, padding=0)  # out of the window and deeper: set again
    assert len(sets) == 1
    feed.detach()


def test_a_csv_export_holds_every_point_not_the_level_on_show(qtbot, tmp_path):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    x, y = _spiky(30_000, seed=4)
    item = widget.getPlotItem().plot()
    Decimated(item).set_data(x, y)
    assert len(item.getData()[0]) < len(x)
    export_plot(widget.getPlotItem(), tmp_path / "curve.csv")
    rows = list(csv.reader((tmp_path / "curve.csv").open()))[1:]
    assert len(rows) == len(x)
    assert np.allclose([float(r[1]) for r in rows], y)
