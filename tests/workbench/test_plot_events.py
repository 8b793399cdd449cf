"""Events on the plots: a run's recorded phases shaded and its applied events as labelled lines,
on every tick-aligned plot, hidden by one toggle; a past run shows what its store recorded."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

import engine
from tests.workbench.helpers import click, run_to_end
from tests.workbench.timeline_helpers import write_spec
from workbench.plots.events import EventOverlay, RunEvents
from workbench.plots.scalar_plot import ScalarPlot
from workbench.plots.series import MetricStore

# 60 ticks: a phase switch, a staggered norm ramp over the two blocks and the final norm, a
# note, an eval mark and a checkpoint at the end
EVENTS_YAML = """\
name: events
seed: 5
model: {n_layer: 2, n_head: 2, d_model: 32, d_ff: 64, context: 16}
data: {source: text, path: "builtin:python-stdlib", max_chars: 200000}
train: {steps: 60, batch_size: 4, eval_every: 0, eval_batches: 2, checkpoint_every: 0,
        device: cpu, stats_every: 0}
timeline:
  phases:
    - {name: warm, start: 0}
    - {name: cool, start: 30, lr_scale: 0.5}
  layernorm:
    - {at: 20, action: ramp, to: 0.0, over: 5, stagger: 10}
  marks:
    - {at: 30, action: note, text: switch}
    - {at: 45, action: eval}
"""


def lines_of(plot) -> dict[float, pg.InfiniteLine]:
    return {i.value(): i for i in plot.getPlotItem().items if isinstance(i, pg.InfiniteLine)}


def regions_of(plot) -> list[tuple[float, float]]:
    items = plot.getPlotItem().items
    return [i.getRegion() for i in items if isinstance(i, pg.LinearRegionItem)]


def labels_of(plot) -> list[str]:
    return [i.toPlainText() for i in plot.getPlotItem().items if isinstance(i, pg.TextItem)]


def test_run_events_group_by_tick_and_span_phases():
    events = RunEvents("warm", 60)
    events.add(20, "norm", {"label": "LN ramp 0", "action": "ramp"})
    events.add(20, "norm", {"label": "LN calibrate", "auto": True})  # the engine's own: no label
    events.add(30, "phase", {"label": "cool", "phase": "cool", "index": 1})
    events.add(30, "mark", {"label": "switch", "action": "note"})
    events.add(59, "checkpoint", {"path": "tick_0000060.pt", "tick": 60})
    lines = events.lines()
    assert [(x.tick, x.kind, x.label) for x in lines] == [
        (20, "norm", "LN ramp 0"),
        (30, "phase", "cool · switch"),
        (59, "checkpoint", "ckpt"),
    ]
    assert events.phases() == [("warm", 0, 30), ("cool", 30, 60)]
    assert RunEvents("main", 60).phases() == []  # one phase: nothing to shade


def test_a_finished_run_shows_its_recorded_events_on_every_plot(make_main_window, tmp_path, qtbot):
    window = make_main_window()
    assert window.files.load(write_spec(tmp_path, EVENTS_YAML, "events.yaml"))
    assert run_to_end(qtbot, window) == "finished"
    recorded = engine.RunRecord(window.last_run_dir).events()
    ticks = {e.tick for e in recorded}
    # what the store holds: the phase, the norm ramp per layer group, the marks, the checkpoint
    assert ticks == {20, 30, 40, 45, 59}
    plots = window.plots
    for plot in (plots.loss.plot, plots.lr, plots.grad_norm):
        assert set(lines_of(plot)) == ticks
        assert regions_of(plot) == [(0, 30), (30, 60)]
        labels = labels_of(plot)
        # events at one tick share a line: tick 30 switches phase, ramps block 1, has a note
        assert {"warm", "cool", "LN ramp 0", "cool · LN ramp 1 · switch", "LN ramp final"} <= set(
            labels
        )
    loss_lines = lines_of(plots.loss.plot)
    assert loss_lines[45.0].pen.style() != loss_lines[30.0].pen.style()  # a mark, a phase
    # the toggle hides every event on every plot, and brings them back
    check = window.findChild(type(plots.loss.events_check), "eventsCheck")
    click(qtbot, check)
    assert not any(i.isVisible() for i in lines_of(plots.lr).values())
    assert not any(i.isVisible() for i in lines_of(plots.loss.plot).values())
    click(qtbot, check)
    assert all(i.isVisible() for i in lines_of(plots.grad_norm).values())
    # a new run starts with a clean slate
    window.plots.begin_run(window.config.spec)
    assert lines_of(plots.loss.plot) == {} and regions_of(plots.loss.plot) == []


@pytest.fixture
def finished_run(tmp_path):
    spec = engine.spec_from_yaml(EVENTS_YAML)
    handle = engine.start_run(engine.replace(spec, {"train.threads": 1}), tmp_path / "runs")
    handle.join(120)
    assert handle.status == "finished"
    return engine.RunRecord(handle.run_dir)


def test_a_past_run_shows_what_its_store_recorded(finished_run, qtbot):
    plot = ScalarPlot(MetricStore(), "Loss", "nats")
    qtbot.addWidget(plot)
    overlay = EventOverlay()
    overlay.attach(plot)
    overlay.show(RunEvents.from_record(finished_run))
    assert set(lines_of(plot)) == {e.tick for e in finished_run.events()}
    assert regions_of(plot) == [(0, 30), (30, 60)]
    # the overlay never widens the plot's range: it follows the data
    plot.getPlotItem().plot([0, 10], [1.0, 2.0])
    plot.getPlotItem().vb.autoRange()
    assert plot.getPlotItem().vb.viewRange()[0][1] < 20


def test_an_event_label_longer_than_a_short_plot_is_left_to_the_tooltip(qtbot):
    """On a plot too short for it (the Activations tab's at 1280x800), a vertical label was
    cut off by the x axis; it is left out there, kept where it fits, and its line stays."""
    events = RunEvents("warm", 60)
    events.add(30, "mark", {"label": "a note long enough to need a tall plot", "action": "note"})
    events.add(40, "mark", {"label": "ok", "action": "note"})
    plot = ScalarPlot(MetricStore(), "Loss", "nats")
    qtbot.addWidget(plot)
    overlay = EventOverlay()
    overlay.attach(plot)
    overlay.show(events)
    shown = lambda: {t.toPlainText() for t in plot.getPlotItem().items  # noqa: E731
                     if isinstance(t, pg.TextItem) and t.isVisible()}  # fmt: skip
    plot.resize(500, 140)
    plot.show()
    qtbot.waitUntil(lambda: plot.getPlotItem().vb.height() < 120)
    qtbot.waitUntil(lambda: shown() == {"ok"})
    assert set(lines_of(plot)) == {30.0, 40.0}
    assert "a note long enough" in lines_of(plot)[30.0].toolTip()
    plot.resize(500, 500)
    qtbot.waitUntil(lambda: shown() == {"ok", "a note long enough to need a tall plot"})


def test_the_quantize_edge_is_a_line_of_its_own_kind():
    spec = engine.parse_spec(
        {
            "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
            "data": {"source": "text", "path": "builtin:python-stdlib", "max_chars": 200000},
            "train": {"steps": 40, "batch_size": 4, "device": "cpu"},
            "timeline": {"quantize": [{"at": "50%", "mode": "qat"}]},
        }
    )
    lines = RunEvents.from_timeline(engine.plan_timeline(spec)).lines()
    assert [(x.tick, x.kind, x.label) for x in lines] == [(20, "quantize", "QAT int8")]
