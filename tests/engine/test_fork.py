"""Forking a run from a checkpoint; renaming, tagging and deleting runs; rows with wall times."""

from __future__ import annotations

import time

import pytest

import engine
from engine.fork import fork_run
from engine.run_edit import delete_run, rename_run, set_tags
from engine.run_rows import read_scalars
from engine.runs import RunWriter
from engine.specs import replace
from tests.engine.helpers import tiny_spec


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """30 ticks, checkpoints at 10, 20, 30, LayerNorm set to 0.5 from tick 15."""
    spec = tiny_spec(
        train={"threads": 1},
        timeline={"layernorm": [{"at": 15, "action": "set", "strength": 0.5}]},
    )
    handle = engine.start_run(spec, tmp_path_factory.mktemp("runs"))
    assert handle.join(60) and handle.status == "finished", handle.error
    return handle.run_dir


def test_a_fork_continues_from_the_checkpoint_with_its_own_spec(parent, tmp_path):
    before = engine.open_run(parent).all_scalars()
    spec = replace(engine.open_run(parent).spec, {"name": "longer", "train.steps": 45})
    handle = fork_run(parent, spec, 20, tmp_path)
    assert handle.join(60) and handle.status == "finished", handle.error
    fork = engine.open_run(handle.run_dir)
    assert handle.run_dir.parent == tmp_path
    ticks, _ = fork.scalars("train/loss")
    assert ticks.tolist() == list(range(20, 45))
    assert fork.meta["forked_from"] == {"run": str(parent), "checkpoint": "tick_0000020.pt",
                                        "tick": 20}  # fmt: skip
    assert fork.vocab == engine.open_run(parent).vocab and fork.vocab
    assert [c.name for c in fork.checkpoints()][0] == "tick_0000020.pt"
    assert engine.open_run(parent).all_scalars() == before


def test_a_fork_replays_what_the_parent_did_with_the_same_spec(parent, tmp_path):
    """Same spec from a checkpoint: the same losses as the parent, bit for bit."""
    handle = fork_run(parent, engine.open_run(parent).spec, 10, tmp_path)
    assert handle.join(60) and handle.status == "finished", handle.error
    _, mine = engine.open_run(handle.run_dir).scalars("train/loss")
    _, theirs = engine.open_run(parent).scalars("train/loss", since_tick=10)
    assert mine.tolist() == theirs.tolist()


def test_a_fork_whose_timeline_changes_the_past_is_refused(parent, tmp_path):
    spec = replace(engine.open_run(parent).spec, {"timeline.layernorm": []})
    with pytest.raises(engine.ConfigError, match="must match the checkpoint up to tick 20"):
        fork_run(parent, spec, 20, tmp_path)
    with pytest.raises(engine.ConfigError, match="needs more than 20 steps"):
        fork_run(parent, replace(spec, {"train.steps": 20}), 20, tmp_path)
    bigger = replace(engine.open_run(parent).spec, {"model.d_model": 64})
    with pytest.raises(engine.ConfigError, match="does not fit"):
        fork_run(parent, bigger, 10, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_rename_tag_and_delete(tmp_path):
    writer = RunWriter(tmp_path / "r")
    writer.set_meta(name="r", steps=3, started=1.0)
    writer.set_status("finished", 3)
    writer.close()
    heartbeat = engine.open_run(tmp_path / "r").meta["heartbeat"]
    rename_run(tmp_path / "r", "  better name ")
    assert set_tags(tmp_path / "r", [" a", "b", "a", ""]) == ["a", "b"]
    meta = engine.open_run(tmp_path / "r").meta
    assert (meta["name"], meta["tags"], meta["heartbeat"]) == ("better name", ["a", "b"], heartbeat)
    assert engine.list_runs(tmp_path)[0].name == "better name"
    with pytest.raises(ValueError):
        rename_run(tmp_path / "r", " ")
    delete_run(tmp_path / "r")
    assert not (tmp_path / "r").exists()
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(FileNotFoundError):
        delete_run(tmp_path / "not-a-run")
    assert (tmp_path / "not-a-run").exists()


def test_a_live_run_cannot_be_deleted(tmp_path):
    writer = RunWriter(tmp_path / "live")
    writer.set_status("running", 0)  # this process is alive: the run is being written
    with pytest.raises(RuntimeError, match="stop it before deleting"):
        delete_run(tmp_path / "live")
    writer.close()
    assert (tmp_path / "live").exists()


def test_read_scalars_with_wall_times_since_a_tick(tmp_path):
    writer = RunWriter(tmp_path / "r")
    t0 = time.time()
    for t in range(10):
        writer.scalars(t, {"a": t * 1.5, "b": -t})
    writer.close()
    record = engine.open_run(tmp_path / "r")
    rows = read_scalars(record, {"a": 7})
    assert rows["a"].ticks.tolist() == [7, 8, 9] and rows["a"].values.tolist() == [10.5, 12, 13.5]
    assert len(rows["b"]) == 10 and t0 - 1 < rows["b"].walls[0] <= rows["b"].walls[-1]
    assert read_scalars(record, {"a": 10, "b": 10}) == {}
