"""The classification view beside the Metrics plot: the latest evaluation's metrics table and
confusion matrix, for the live run and for a run selected in the Runs browser."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

import engine
from tests.engine.helpers import tiny_spec
from tests.workbench.classify_helpers import eval_values, write_classify_run
from tests.workbench.helpers import run_to_end
from workbench.log_panel import describe
from workbench.metric_kinds import confusion_cell, is_eval_value, is_task_metric
from workbench.plots.classify import class_names, last_evaluation
from workbench.plots.live import TASK_TITLE
from workbench.plots.series import MetricStore
from workbench.training.progress import RunProgress

FIRST = [[3, 2], [4, 1]]
LAST = [[40, 10], [5, 45]]  # rows: true class, columns: predicted class
METRICS = dict(loss=0.4321, accuracy=0.85, precision=0.8512, recall=0.85, f1=0.8499)


def test_metric_names():
    assert confusion_cell("val/confusion/2/10") == (2, 10)
    assert confusion_cell("val/confusion/x/1") is None and confusion_cell("val/f1") is None
    assert is_task_metric("val/f1") and is_task_metric("val/accuracy")
    assert not is_task_metric("val/loss") and not is_task_metric("val/confusion/0/1")
    # the train split's evaluation (train.eval_train): its metrics are curves too, not its loss
    # (train/eval_loss), its matrix, nor the per-tick training loss
    assert is_task_metric("train/f1") and is_task_metric("train/accuracy")
    for name in ("train/loss", "train/eval_loss", "train/confusion/0/1", "lr", "grad_norm"):
        assert not is_task_metric(name), name
    assert is_eval_value("train/eval_loss") and is_eval_value("train/accuracy")
    assert not is_eval_value("train/loss") and not is_eval_value("train/confusion/1/0")
    assert confusion_cell("train/confusion/1/0") is None  # the matrix shown is validation's
    assert confusion_cell("train/confusion/1/0", "train") == (1, 0)
    assert class_names({"data": {"classes": ["neg", "pos"]}}, 3) == ["neg", "pos", "2"]
    assert class_names({}, 2) == ["0", "1"]


def test_last_evaluation_takes_every_cell_at_the_latest_tick():
    store = MetricStore()
    store.add(10, eval_values(FIRST, **METRICS))
    store.add(11, {"train/loss": 1.0})
    store.add(20, eval_values(LAST, accuracy=0.85))
    ev = last_evaluation({n: store.get(n) for n in store.names()})
    assert ev.tick == 20 and ev.examples == 100
    assert ev.confusion.tolist() == LAST and ev.confusion.dtype == np.int64
    assert ev.metrics == {"accuracy": 0.85}  # the others were not logged at tick 20
    assert last_evaluation({"val/loss": store.get("val/loss")}) is None


@pytest.fixture
def window(make_main_window):
    return make_main_window()


def feed(window, tick: int, values: dict[str, float]) -> None:
    """Scalars from the engine, through the window's own message handler."""
    window.session.messages.emit([engine.Scalars(tick, values, wall=float(tick))])


def test_live_evaluations_fill_the_table_and_the_matrix(window, tmp_path, qtbot):
    run = write_classify_run(tmp_path / "live", "live", {}, ["unbalanced", "balanced"])
    window.plots.begin_run(tiny_spec(), run)  # as a run this window started
    window.progress = RunProgress(30)
    view = window.plots.classify
    assert view.isHidden()  # nothing to show before the first evaluation

    feed(window, 0, {"train/loss": 2.0})
    feed(window, 9, {"train/loss": 1.5, **eval_values(FIRST, **METRICS)})
    feed(window, 19, {"train/loss": 1.0, **eval_values(LAST, **METRICS)})
    window.tabs.setCurrentWidget(window.plots.metrics_tab)
    # the live plots redraw at most every REDRAW_MS: the last evaluation shows at the next one
    qtbot.waitUntil(lambda: view.isVisible() and ("tick", "19") in view.rows(), timeout=5000)
    assert view.rows() == [
        ("tick", "19"),
        ("accuracy", "0.8500"),
        ("precision", "0.8512"),
        ("recall", "0.8500"),
        ("f1", "0.8499"),
        ("loss", "0.4321"),
        ("examples", "100"),
    ]
    assert view.heading.text() == "Last evaluation of this run: tick 19"
    assert view.cell_texts() == [["40", "10"], ["5", "45"]]
    assert view.image.image.tolist() == LAST  # row-major: image[true, predicted]
    assert view.title.text() == "Confusion matrix (rows: true, columns: predicted)"
    axes = view.matrix.getPlotItem()
    left = [label for _, label in axes.getAxis("left")._tickLevels[0]]
    assert left == ["unbalanced", "balanced"]
    assert view.classes == ["unbalanced", "balanced"]

    # no confusion cell is a curve on the Metrics plot, nor a line in the log
    curves = set(window.plots.task._raw)
    assert {"val/accuracy", "val/f1", "val/precision", "val/recall"} <= curves
    assert not any("confusion" in name for name in curves)
    eval_lines = [line for line in window.log.lines() if "tick 19:" in line]
    assert len(eval_lines) == 1 and "val/accuracy 0.8500" in eval_lines[0]
    assert "confusion" not in eval_lines[0]

    window.plots.begin_run(tiny_spec(), None)  # a new run: nothing shown until it evaluates
    assert view.isHidden() and view.rows() == [] and view.cell_texts() == []


def _split(split: str, confusion, **metrics: float) -> dict[str, float]:
    """``eval_values`` of the train split, as a run with ``train.eval_train`` logs them."""
    values = eval_values(confusion, **metrics)
    out = {name.replace("val/", f"{split}/", 1): v for name, v in values.items()}
    if "train/loss" in out:
        out["train/eval_loss"] = out.pop("train/loss")
    return out


def test_live_train_split_metrics_are_dashed(window):
    """A run evaluating the train split too: its metrics on the Metrics plot beside the
    validation's, dashed, each metric its own colour and marker (the same for both splits)."""
    window.plots.begin_run(tiny_spec(), None)
    window.progress = RunProgress(30)
    train = _split("train", LAST, loss=0.1, accuracy=0.99, f1=0.98)
    feed(window, 9, {"train/loss": 1.5, **eval_values(FIRST, **METRICS), **train})
    curves = window.plots.task._raw
    val = {f"val/{m}" for m in METRICS if m != "loss"}
    assert set(curves) == val | {"train/accuracy", "train/f1"}
    assert "train/eval_loss" not in curves and "train/loss" not in curves
    pen = {name: item.opts["pen"] for name, item in curves.items()}
    assert pen["train/accuracy"].style() == Qt.PenStyle.DashLine
    assert pen["val/accuracy"].style() == Qt.PenStyle.SolidLine
    assert pen["train/accuracy"].color() != pen["val/accuracy"].color()
    symbol = {name: item.opts["symbol"] for name, item in curves.items()}
    assert symbol["val/accuracy"] == symbol["train/accuracy"] == "o"
    assert symbol["val/f1"] == "t" and symbol["val/precision"] == "s"
    assert symbol["val/recall"] == "d"
    assert window.plots.task.item.titleLabel.text == TASK_TITLE
    legend = {label.text for _, label in window.plots.task.legend.items}
    assert {"train/accuracy", "val/accuracy"} <= legend
    # the log line of the evaluation has the train split's values, not the per-tick loss
    line = next(line for line in window.log.lines() if "tick 9:" in line)
    assert "train/accuracy 0.9900" in line and "train/eval_loss 0.1000" in line
    assert "train/loss" not in line and "confusion" not in line


def test_overlaid_metrics_of_one_run_differ_by_style_and_legend(make_main_window, tmp_path):
    """In the Runs overlay a run's curves share its colour: each metric gets its own marker,
    the train split's are dashed, and each has a legend entry "<run> · <metric>"."""
    runs = tmp_path / "runs"
    train = _split("train", LAST, loss=0.1, accuracy=0.99, f1=0.98)
    evals = {9: {**eval_values(LAST, **METRICS), **train}, 29: eval_values(LAST, **METRICS)}
    run = write_classify_run(runs / "one", "grok", evals, ["N", "Y"])
    window = make_main_window()
    window.runs.select([run])
    task = window.plots.task
    curves = {m: item for (_, m), item in window.runs.overlay.curves(task).items()}
    wanted = {"val/accuracy", "val/precision", "val/recall", "val/f1"}
    assert set(curves) == wanted | {"train/accuracy", "train/f1"}  # no losses, no matrix
    pens = {m: item.opts["pen"] for m, item in curves.items()}
    symbols = {m: item.opts["symbol"] for m, item in curves.items()}
    assert len({pens[m].color().name() for m in curves}) == 1  # the run's colour
    assert symbols["val/accuracy"] != symbols["val/f1"]  # two metrics of one run
    assert len({symbols[m] for m in wanted}) == 4  # accuracy, precision, recall, F1
    assert symbols["train/f1"] == symbols["val/f1"]  # one metric, two splits
    assert pens["train/f1"].style() == Qt.PenStyle.DashLine
    assert pens["val/f1"].style() == Qt.PenStyle.SolidLine
    legend = {label.text for _, label in task.legend.items}
    assert {"grok · val/accuracy", "grok · val/f1", "grok · train/f1"} <= legend


def test_log_line_of_an_evaluation_skips_the_matrix():
    level, text = describe(engine.Scalars(5, eval_values(FIRST, accuracy=0.4, f1=0.5), 0.0))
    assert text == "tick 5: val/accuracy 0.4000  val/f1 0.5000"


def test_a_selected_run_shows_its_last_evaluation(make_main_window, tmp_path):
    runs = tmp_path / "runs"  # the fixture's window reads this folder
    evals = {9: eval_values(FIRST, **METRICS), 29: eval_values(LAST, **METRICS)}
    named = write_classify_run(runs / "named", "brackets-cls", evals, ["N", "Y"])
    bare = write_classify_run(runs / "bare", "old-run", {29: eval_values(np.eye(3) * 7)}, None)
    window = make_main_window()
    panel, view = window.runs, window.plots.classify
    window.tabs.setCurrentWidget(window.plots.metrics_tab)

    panel.select([named])
    assert view.isVisible() and window.plots.pinned == "brackets-cls"
    assert view.heading.text() == "Last evaluation of brackets-cls: tick 29"
    assert view.rows()[:2] == [("tick", "29"), ("accuracy", "0.8500")]
    assert view.cell_texts() == [["40", "10"], ["5", "45"]]
    assert view.classes == ["N", "Y"]
    # the run's metrics overlaid on the Metrics plot: no confusion cells among them
    overlaid = {metric for _, metric in panel.overlay.curves(window.plots.task)}
    assert "val/accuracy" in overlaid and not any("confusion" in m for m in overlaid)

    panel.select([bare])  # no class names stored: their indices
    assert view.classes == ["0", "1", "2"] and view.cell_texts()[1] == ["0", "7", "0"]

    panel.select([named, bare])  # a comparison: back to the live run, which has none
    assert window.plots.pinned is None and view.isHidden()


def test_a_classification_run_in_the_window(make_main_window, qtbot):
    """End to end: the engine's own evaluations of a brackets run, as they arrive."""
    window = make_main_window()
    brackets = tiny_spec(
        name="brackets",
        data={"source": "brackets", "seq_len": 8, "vocab": 2},
        train={"steps": 20, "eval_every": 10, "threads": 1, "stats_every": 0},
    )
    window.config.set_spec(brackets)
    assert run_to_end(qtbot, window) == "finished"
    record = engine.open_run(window.last_run_dir)
    classes = record.meta["data"]["classes"]
    view = window.plots.classify
    window.tabs.setCurrentWidget(window.plots.metrics_tab)
    assert view.isVisible() and view.classes == classes
    ticks, accuracy = record.scalars("val/accuracy")
    assert view.rows()[:2] == [("tick", str(ticks[-1])), ("accuracy", f"{accuracy[-1]:.4f}")]
    n = len(classes)
    stored = [[record.scalars(f"val/confusion/{i}/{j}")[1][-1] for j in range(n)] for i in range(n)]
    assert view.image.image.tolist() == stored
    assert dict(view.rows())["examples"] == str(int(sum(map(sum, stored))))
    assert not any("confusion" in name for name in window.plots.task._raw)
