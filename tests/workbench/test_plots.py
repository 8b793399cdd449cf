"""Live plots: TensorBoard smoothing, full data with peak downsampling, export from the menu."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from tests.workbench.helpers import dialog, run_to_end
from workbench.plots.envelope import series_of
from workbench.plots.series import MetricStore, Series
from workbench.plots.smoothing import Ema


def tensorboard_smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's resmoothDataset (vz_line_chart2), transcribed line by line."""
    last = 0.0 if values else math.nan
    num_accum = 0
    out = []
    is_constant = all(v == values[0] for v in values)
    for v in values:
        if is_constant or not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        debias = 1 - weight**num_accum if weight != 1 else 1
        out.append(last / debias)
    return out


@pytest.mark.parametrize("weight", [0.0, 0.6, 0.95, 0.999])
def test_ema_matches_tensorboard_including_nans_and_increments(weight):
    rng = np.random.default_rng(0)
    values = list(3 * np.exp(-np.arange(500) / 100) + rng.normal(0, 0.2, 500))
    values[7] = math.nan
    values[300] = math.inf
    source, ema = Series(4), Ema(weight)
    for i, v in enumerate(values):  # fed in uneven chunks, as frames deliver them
        source.append(i, v)
        if i % 37 == 0:
            ema.update(source)
    out = ema.update(source)
    expected = tensorboard_smooth(values, weight)
    assert np.allclose(out.y, expected, rtol=1e-12, equal_nan=True)
    assert list(out.x) == list(range(500))


def test_series_doubles_and_hands_out_views():
    s = Series(capacity=2)
    for i in range(1000):
        s.append(i, i * 0.5)
    assert len(s) == 1000 and s.x[-1] == 999 and s.y[-1] == 499.5
    assert s.x.base is not None  # a view into the buffer, not a copy


def test_store_reports_what_changed():
    store = MetricStore()
    store.add(0, {"train/loss": 2.0, "lr": 1e-3})
    assert store.take_dirty() == {"train/loss", "lr"}
    assert store.take_dirty() == set()
    store.add(1, {"val/loss": 1.5})
    assert store.take_dirty() == {"val/loss"}


def test_plots_keep_every_point_and_draw_a_min_max_envelope(qtbot, make_main_window):
    window = make_main_window()
    plots = window.plots
    n = 50_000
    loss = 2 + np.sin(np.arange(n) / 500)
    loss[31_337] = 9.0  # one spike, one point wide
    for tick in range(n):
        plots.add(tick, {"train/loss": loss[tick], "lr": 1e-3, "grad_norm": 1.0})
    plots.redraw()
    window.tabs.setCurrentWidget(plots.loss)
    raw = plots.loss.plot._raw["train/loss"]
    qtbot.waitUntil(lambda: raw.getData()[0] is not None and len(raw.getData()[0]) < n)
    x, y = series_of(raw)
    assert len(x) == n and np.array_equal(y, loss)
    shown_x, shown_y = raw.getData()
    assert len(shown_x) <= 4 * plots.loss.plot.getPlotItem().vb.width() + 4  # 2-4 a column
    assert shown_y.max() == loss.max() and shown_y.min() == loss.min()  # the spike survives
    assert 31_337.0 in shown_x


def test_smoothing_slider_and_log_axis(qtbot, make_main_window):
    window = make_main_window()
    panel = window.plots.loss
    window.tabs.setCurrentWidget(panel)
    for tick in range(100):
        window.plots.add(tick, {"train/loss": 3.0 - tick / 50 + (tick % 2) * 0.3})
    window.plots.redraw()
    smoothed = panel.plot._smoothed["train/loss"][0]
    assert smoothed.isVisible()
    _, y = series_of(smoothed)
    assert np.ptp(np.diff(y)) < 0.3  # the alternating wiggle is smoothed away

    panel.slider.setValue(900)
    assert panel.smoothing_label.text() == "0.900"
    _, y90 = series_of(smoothed)
    assert np.allclose(y90, tensorboard_smooth(list(window.plots.store.get("train/loss").y), 0.9))

    panel.slider.setValue(0)
    assert not smoothed.isVisible()  # raw values only, at full strength

    qtbot.mouseClick(panel.log_y, Qt.MouseButton.LeftButton)
    assert panel.log_y.isChecked()
    assert panel.plot.item.ctrl.logYCheck.isChecked()


@pytest.mark.parametrize("suffix", [".csv", ".png", ".svg"])
def test_export_a_plot_from_its_right_click_menu(
    qtbot, make_main_window, tiny_spec_file, tmp_path, suffix
):
    window = make_main_window()
    window.files.load(tiny_spec_file)
    assert run_to_end(qtbot, window) == "finished"
    plot = window.plots.loss.plot
    window.tabs.setCurrentWidget(window.plots.loss)
    qtbot.waitExposed(plot)

    menu = plot.getPlotItem().vb.menu
    with qtbot.waitSignal(menu.aboutToShow, timeout=5000):
        qtbot.mouseClick(
            plot.viewport(), Qt.MouseButton.RightButton, pos=plot.viewport().rect().center()
        )
    export_menu = next(a.menu() for a in menu.actions() if a.text() == "Export as")
    action = next(a for a in export_menu.actions() if a.text().startswith(suffix[1:].upper()))
    menu.close()
    action.trigger()
    saver = dialog(qtbot, window, "exportDialog")
    target = tmp_path / f"loss{suffix}"
    saver.selectFile(str(target))
    saver.accept()
    qtbot.waitUntil(target.exists)

    if suffix == ".csv":
        rows = list(csv.reader(target.open()))
        header = rows[0]
        assert header[:2] == ["train/loss (raw)_x", "train/loss (raw)_y"]
        assert "val/loss_y" in header
        column = header.index("train/loss (raw)_y")
        values = [float(r[column]) for r in rows[1:] if r[column]]
        assert np.allclose(values, window.plots.store.get("train/loss").y)
    elif suffix == ".png":
        image = QImage(str(target))
        assert image.width() > 100 and image.height() > 100
    else:
        assert target.read_text().lstrip().startswith("<?xml")
        assert "<svg" in target.read_text()


@pytest.mark.parametrize("weight", [0.3, 0.6, 0.99, 0.999])
def test_ema_stays_exact_over_long_runs_of_large_values(weight):
    """Many blocks of the vectorised EMA, values like tokens/s (about 5e4), a late NaN."""
    rng = np.random.default_rng(1)
    values = list(5e4 + rng.normal(0, 3e3, 20_000))
    values[12_345] = math.nan
    source = Series()
    for i, v in enumerate(values):
        source.append(i, v)
    out = Ema(weight).update(source)
    expected = tensorboard_smooth(values, weight)
    assert np.allclose(out.y, expected, rtol=1e-9, equal_nan=True)
