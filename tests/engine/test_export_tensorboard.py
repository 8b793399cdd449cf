"""TensorBoard export: what tensorboard's own reader finds in the event files equals the store."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import export_tensorboard as tb
from engine.messages import PERCENTILES, SiteStats, Stats
from engine.runs import RunWriter
from tests.engine.helpers import tiny_spec


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny run with a note mark, plus two synthetic activation captures."""
    spec = tiny_spec(
        train={"threads": 1, "stats_every": 0}, timeline={"marks": [{"at": 12, "text": "look"}]}
    )
    handle = engine.start_run(spec, tmp_path_factory.mktemp("runs"))
    assert handle.join(60) and handle.status == "finished", handle.error
    counts = np.array([2, 5, 9, 3], dtype=np.int64)
    writer = RunWriter(handle.run_dir)
    levels = np.linspace(-1.9, 1.9, len(PERCENTILES))
    site = SiteStats("0.attn", "in", 19, -2.0, 2.0, counts, levels, 0.1, 0.0, 1.0, 0.1, 1.0, 1.0)
    for tick in (0, 20):
        writer.activation_stats(Stats(tick, (site,)))
    writer.close()
    return handle.run_dir


def _reader(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_round_trip_through_tensorboards_reader(run_dir, tmp_path):
    pytest.importorskip("tensorboard")
    (out,) = tb.export_tensorboard([run_dir], tmp_path / "tb")
    assert out == tmp_path / "tb" / run_dir.name  # TensorBoard's run name is the folder's
    acc = _reader(out)
    record = engine.open_run(run_dir)
    assert sorted(acc.Tags()["scalars"]) == record.metric_names()
    for metric in record.metric_names():
        ticks, values = record.scalars(metric)
        events = acc.Scalars(metric)
        assert [e.step for e in events] == ticks.tolist()
        # TensorBoard keeps float32: equal to the store's values rounded once
        assert [e.value for e in events] == values.astype(np.float32).tolist(), metric
        assert all(e.wall_time > 1e9 for e in events)  # when each was recorded

    (hist,) = [h for h in acc.Histograms("activations/0.attn/in") if h.step == 20]
    value = hist.histogram_value
    assert value.num == 19 and list(value.bucket) == [2, 5, 9, 3]
    assert list(value.bucket_limit) == [-1.0, 0.0, 1.0, 2.0]
    assert (value.min, value.max) == (pytest.approx(-1.9), pytest.approx(1.9))

    texts = {e.step: e.tensor_proto.string_val[0] for e in acc.Tensors("timeline/text_summary")}
    texts = {step: text.decode() for step, text in texts.items()}
    assert "look" in texts[12] and "checkpoint" in texts[29]
    spec = acc.Tensors("spec/text_summary")[0].tensor_proto.string_val[0].decode()
    assert engine.spec_from_yaml(spec.split("```yaml\n")[1].split("```")[0]) == record.spec


def test_exporting_again_replaces_the_files(run_dir, tmp_path):
    pytest.importorskip("tensorboard")
    tb.export_tensorboard([run_dir], tmp_path)
    (out,) = tb.export_tensorboard([run_dir], tmp_path)
    assert len(list(out.glob(tb.EVENT_FILES))) == 1
    assert len(_reader(out).Scalars("lr")) == 30  # not 60


def test_without_tensorboard_the_export_says_which_extra(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tb, "HAS_TENSORBOARD", False)
    with pytest.raises(ImportError, match=r"\.\[tensorboard\]"):
        tb.export_tensorboard([run_dir], tmp_path)
    assert tb.main([str(run_dir), "--logdir", str(tmp_path)]) == 1
    assert "pip install" in capsys.readouterr().err
