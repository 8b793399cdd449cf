"""Comparing runs in the window: curves overlaid on every plot, x axes, smoothing, timelines,
the spec diff, distribution compare and the exports."""

from __future__ import annotations

import csv

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

import engine
from engine.messages import PERCENTILES, SiteStats, Stats
from engine.runs import RunWriter
from workbench.plots.envelope import series_of
from workbench.runs.export import CSV_HEADER
from workbench.runs.spec_diff import spec_diff

WAIT_MS = 20_000


@pytest.fixture
def window(runs_window):  # conftest's: a window over copies of the base runs
    return runs_window


def test_big_stores_are_read_off_the_gui_thread_and_drawn_when_they_arrive(window, qtbot):
    runs, panel = window.runs_dir_of_test, window.runs
    a, b, c = runs["alpha"], runs["beta"], runs["gamma"]
    panel.inline_bytes = 0  # every store counts as big
    panel.select([a, b])
    plot = window.plots.loss.plot
    assert panel.overlay.curves(plot) == {} and set(panel.loading) == {a, b}
    qtbot.waitUntil(lambda: len(panel.overlay.curves(plot)) == 4, timeout=WAIT_MS)
    assert panel.loading == {}
    for path in (a, b):  # what arrived is the store's, drawn
        for metric in ("train/loss", "val/loss"):
            ticks, values = engine.open_run(path).scalars(metric)
            track = panel.followed[path].tracks[metric]
            assert np.array_equal(track.x, ticks) and np.array_equal(track.y, values)
            x, _ = series_of(panel.overlay.curves(plot)[(path, metric)])
            assert np.array_equal(x, ticks)
    colors = {p: panel.overlay.runs[p].color for p in (a, b)}
    assert colors[a] != colors[b]  # colours are given at the click, not on arrival
    # a run deselected while it loads never shows
    panel.select([a, c])
    panel.select([a])
    qtbot.wait(300)
    assert set(panel.overlay.runs) == {a} and panel.loading == {}


def test_two_runs_overlay_one_curve_per_run_per_metric(window):
    runs, panel = window.runs_dir_of_test, window.runs
    a, b = runs["alpha"], runs["beta"]
    panel.select([a, b])
    loss = panel.overlay.curves(window.plots.loss.plot)
    assert set(loss) == {(a, "train/loss"), (a, "val/loss"), (b, "train/loss"), (b, "val/loss")}
    for plot, metric in (
        (window.plots.lr, "lr"),
        (window.plots.grad_norm, "grad_norm"),
        (window.plots.tokens, "tokens_per_s"),
    ):
        assert set(panel.overlay.curves(plot)) == {(a, metric), (b, metric)}
    # the raw values under the smoothing are the store's
    ticks, values = engine.open_run(a).scalars("val/loss")
    x, y = series_of(loss[(a, "val/loss")])
    assert list(x) == list(ticks)
    # a colour per run, named in the legend, kept when the selection changes
    colors = {p: loss[(p, "train/loss")].opts["pen"].color().name() for p in (a, b)}
    assert colors[a] != colors[b]
    legend = [label.text for _, label in window.plots.loss.plot.legend.items]
    named = {f"{run} · {m}" for run in ("alpha", "beta") for m in ("train/loss", "val/loss")}
    assert named <= set(legend)  # each curve: "<run> · <metric>"
    assert "train/loss" not in legend  # the window's own curves are named once they have data
    # within a run the validation loss is dashed with markers, the training loss solid
    assert loss[(a, "val/loss")].opts["pen"].style() == Qt.PenStyle.DashLine
    assert loss[(a, "val/loss")].opts["symbol"] == "o"
    assert loss[(a, "train/loss")].opts["pen"].style() == Qt.PenStyle.SolidLine
    assert loss[(a, "train/loss")].opts["symbol"] is None
    # a plot of one metric names each run once
    lr_legend = [label.text for _, label in window.plots.lr.legend.items]
    assert {"alpha", "beta"} <= set(lr_legend) and not any("·" in t for t in lr_legend)
    panel.select([b])
    assert set(panel.overlay.curves(window.plots.loss.plot)) == {(b, "train/loss"), (b, "val/loss")}
    panel.select([a, b])
    again = panel.overlay.curves(window.plots.loss.plot)
    assert again[(a, "train/loss")].opts["pen"].color().name() == colors[a]


def test_x_axis_in_tokens_and_wall_time_and_shared_smoothing(window, qtbot):
    runs, panel = window.runs_dir_of_test, window.runs
    a = runs["alpha"]
    panel.select([a, runs["beta"]])
    plot = window.plots.loss.plot
    own = [i for i in plot.getPlotItem().listDataItems() if i.name() == "train/loss"]
    panel.x_box.setCurrentIndex(panel.x_box.findData("tokens"))
    x, _ = series_of(panel.overlay.curves(plot)[(a, "train/loss")])
    assert list(x[:3]) == [64, 128, 192]  # batch 4 x context 16 tokens per tick
    assert not any(i.isVisible() for i in own)  # the window's own curves are in ticks
    assert plot.getPlotItem().getAxis("bottom").labelText == "tokens seen"
    panel.x_box.setCurrentIndex(panel.x_box.findData("wall"))
    x, _ = series_of(panel.overlay.curves(plot)[(a, "train/loss")])
    assert 0 <= x[0] < x[-1] < 600 and np.all(np.diff(x) >= 0)
    panel.x_box.setCurrentIndex(panel.x_box.findData("tick"))
    assert all(i.isVisible() for i in own)

    # the loss plot's smoothing slider smooths the overlay too (faint raw curve underneath)
    window.plots.loss.slider.setValue(900)
    qtbot.waitUntil(lambda: panel.overlay.smoothing == pytest.approx(0.9))
    qtbot.waitUntil(lambda: all(c.raw is not None for c in panel.overlay._curves.values()
                                if c.main.getViewBox() is plot.getPlotItem().vb))  # fmt: skip
    _, smooth = series_of(panel.overlay.curves(plot)[(a, "train/loss")])
    _, raw = engine.open_run(a).scalars("train/loss")
    assert smooth[0] == pytest.approx(raw[0]) and np.std(np.diff(smooth)) < np.std(np.diff(raw))
    window.plots.loss.slider.setValue(0)
    qtbot.waitUntil(lambda: np.allclose(
        series_of(panel.overlay.curves(plot)[(a, "train/loss")])[1], raw))  # fmt: skip


def test_timelines_are_drawn_in_each_runs_colour(window):
    runs, panel = window.runs_dir_of_test, window.runs
    a, b = runs["alpha"], runs["beta"]
    panel.select([a, b])
    items = panel.overlay.timeline_items(window.plots.loss.plot)
    lines = {p: [i for i in items[p] if isinstance(i, pg.InfiniteLine)] for p in (a, b)}
    assert [line.value() for line in lines[a]] == [10]  # alpha's note
    assert [line.value() for line in lines[b]] == [15]  # beta's, moved
    curves = panel.overlay.curves(window.plots.loss.plot)
    for p in (a, b):
        assert lines[p][0].pen.color().rgb() == curves[(p, "train/loss")].opts["pen"].color().rgb()
    panel.timeline_check.setChecked(False)
    assert not any(panel.overlay.timeline_items(window.plots.loss.plot).values())


def test_the_diff_shows_exactly_the_changed_fields(window):
    runs, panel = window.runs_dir_of_test, window.runs
    panel.select([runs["alpha"], runs["beta"]])
    view = panel.diff_view
    shown = {row.path: row.kind for row in view.rows}
    assert shown == {"name": "changed", "train.lr": "changed", "timeline.marks[note look]": "moved"}
    assert view.table.rowCount() == 3
    headers = [view.table.horizontalHeaderItem(c).text() for c in (2, 3)]
    order = [engine.open_run(p).meta["name"] for p in panel.selected_paths()]
    assert headers == order and sorted(order) == ["alpha", "beta"]  # the table's order
    view.all_fields.setChecked(True)
    assert view.table.rowCount() > 40 and {"model.n_layer", "train.steps"} <= {
        row.path for row in view.rows
    }


def test_spec_diff_events_added_removed_moved_changed():
    from engine.specs import replace
    from tests.engine.helpers import tiny_spec

    base = tiny_spec(
        timeline={
            "layernorm": [{"at": 0, "action": "set", "strength": 0.0}],
            "marks": [{"at": 5, "text": "a"}],
        }
    )
    other = replace(
        base,
        {
            "timeline.layernorm": [{"at": 3, "action": "set", "strength": 0.0}],  # moved
            "timeline.marks": [{"at": 7, "action": "eval"}],  # note removed, eval added
        },
    )
    third = replace(base, {"timeline.layernorm": [{"at": 0, "action": "set", "strength": 0.5}]})
    rows = {r.path: r.kind for r in spec_diff([base, other])}
    assert rows == {
        "timeline.layernorm[set all]": "moved",
        "timeline.marks[note a]": "removed",
        "timeline.marks[eval]": "added",
    }
    assert {r.path: r.kind for r in spec_diff([base, third])} == {
        "timeline.layernorm[set all]": "changed"
    }
    assert spec_diff([base, base]) == []


def test_spec_diff_shows_the_compression_lanes():
    from engine.specs import replace
    from tests.engine.helpers import tiny_spec

    dense = tiny_spec()
    pruned = replace(dense, {"timeline.prune": [{"start": 5, "end": 20, "params": ["blocks"]}]})
    once = replace(dense, {"timeline.prune": [{"start": 19, "end": 20, "params": ["blocks"]}]})
    qat = replace(dense, {"timeline.quantize": [{"at": 10, "mode": "qat"}]})
    assert {r.path: r.kind for r in spec_diff([dense, pruned, qat])} == {
        "timeline.prune[[blocks]]": "added",  # the patterns, as a list
        "timeline.quantize[qat]": "added",
    }
    assert {r.path: r.kind for r in spec_diff([pruned, once])} == {
        "timeline.prune[[blocks]]": "moved"
    }


def _write_stats(run_dir, tick: int, center: float) -> None:
    """One synthetic capture of site 0.attn (in and out) into an existing run's store."""
    counts = np.array([1, 4, 10, 4, 1], dtype=np.int64)
    sites = tuple(
        SiteStats("0.attn", kind, 20, center - 1.0, center + 1.0, counts,
                  np.linspace(center - 1, center + 1, len(PERCENTILES)), 0.1, 0.0, 1.0, 0.1,
                  1.0, 1.0)
        for kind in ("in", "out")
    )  # fmt: skip
    writer = RunWriter(run_dir)
    writer.activation_stats(Stats(tick, sites))
    writer.close()


def test_distribution_compare_at_the_same_tick(window, qtbot):
    runs, panel = window.runs_dir_of_test, window.runs
    a, b = runs["alpha"], runs["beta"]
    for tick in (0, 10, 20):
        _write_stats(a, tick, 0.0)
        _write_stats(b, tick, 2.0)
    panel.select([a, b])
    window.tabs.setCurrentWidget(panel.distributions)
    view = panel.distributions
    assert view.tick_box.value() == 20 and view.site_box.currentText() == "0.attn"
    view.tick_box.setValue(11)  # each run's nearest capture: tick 10
    drawn = {box.currentData(): curve.getData() for box, curve in zip(view.run_boxes, view.curves)}
    (xa, ya), (xb, _) = drawn[str(a)], drawn[str(b)]
    assert np.sum(ya * np.diff(xa)) == pytest.approx(1.0)
    assert xa[0] == pytest.approx(-1.0) and xb[0] == pytest.approx(1.0)  # each its own range
    assert all("tick 10" in label.text for _, label in view.legend.items)


def test_exports_csv_png_svg(window, tmp_path):
    runs, panel = window.runs_dir_of_test, window.runs
    panel.select([runs["alpha"], runs["beta"]])
    out = tmp_path / "scalars.csv"
    panel.actions.export_csv(panel.actions._named(), out)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CSV_HEADER
    alpha = engine.open_run(runs["alpha"]).all_scalars()
    got = sorted((int(r[3]), r[2], float(r[4])) for r in rows[1:] if r[0] == "alpha")
    assert got == sorted(alpha)  # every value, exactly
    for suffix in ("png", "svg"):
        path = tmp_path / f"overlay.{suffix}"
        panel.actions.export_image(path)
        assert path.stat().st_size > 1000
    assert "alpha" in (tmp_path / "overlay.svg").read_text()  # the legend names the runs
