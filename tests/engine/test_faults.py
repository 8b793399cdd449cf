"""Faults a hostile user or a bad day brings: each ends the run with a clear status and one line,
never hangs, and loses no committed tick. Real SQLite, real files, real processes and, where the
test runs as root, a real 2 MB tmpfs for the full disk."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.errors import ConfigError
from engine.messages import Log
from engine.runs import RunLock, StoreError, list_runs, open_run
from engine.specs import save_spec
from engine.trainer import resume_run, start_run

from .helpers import run_ticks_then_stop, tiny_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE = 120  # seconds any one command may take here before it counts as a hang


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "engine", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=env,
    )


def one_error_line(out, code):
    """The command failed with ``code`` and said why in one ``error:`` line, no traceback."""
    assert out.returncode == code, (out.returncode, out.stderr)
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return errors[0]


def spec_file(tmp_path, **sections):
    path = tmp_path / "spec.yaml"
    save_spec(tiny_spec(**sections), path)
    return path


def test_a_nan_metric_marks_the_run_diverged_and_exits_1_within_seconds(tmp_path):
    path = spec_file(
        tmp_path,
        model={"n_layer": 2, "d_model": 32},
        train={"optimizer": "sgd", "lr": 1000.0, "grad_clip": 0.0, "steps": 200},
    )
    start = time.monotonic()
    out = cli("run", path, "--runs-dir", tmp_path / "runs")
    assert time.monotonic() - start < 60
    line = one_error_line(out, 1)
    assert "became" in line and "at tick" in line
    (folder,) = (tmp_path / "runs").iterdir()
    run = open_run(folder)
    assert run.status == "diverged"
    assert run.meta["status_detail"] in line
    diverged = [e for e in run.events() if e.kind == "diverged"]
    assert len(diverged) == 1 and diverged[0].detail["metric"] in ("train/loss", "grad_norm")
    tick = diverged[0].tick
    ticks, losses = run.scalars("lr")  # every finite metric up to that tick is on disk
    assert ticks.tolist() == list(range(tick + 1)) and losses[0] == 1000.0


def test_the_store_keeps_finite_values_and_skips_non_finite_ones(tmp_path):
    from engine.runs import RunWriter

    writer = RunWriter(tmp_path / "r")
    writer.scalars(0, {"a": 1.0, "b": float("nan"), "c": float("inf")})
    writer.close()  # no NOT NULL failure, no retry loop
    assert open_run(tmp_path / "r").metric_names() == ["a"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (needs root, as CI has); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_run_in_one_line_and_keeps_what_was_committed(tmp_path, tiny_disk):
    path = spec_file(
        tmp_path,
        model={"n_layer": 2, "d_model": 64, "d_ff": 256},  # ~0.5 MB checkpoints: 4 fit
        train={"steps": 400, "checkpoint_every": 1, "keep_checkpoints": 0, "eval_every": 5},
    )
    out = cli("run", path, "--runs-dir", tiny_disk / "runs")
    line = one_error_line(out, 1)
    assert "disk full" in line
    (folder,) = (tiny_disk / "runs").iterdir()
    run = open_run(folder)
    assert run.status == "failed" and "disk full" in run.meta["status_detail"]
    ckpts = run.checkpoints()
    assert ckpts and not list((folder / "checkpoints").glob("*.tmp"))
    last = load_checkpoint(ckpts[-1])  # the last complete checkpoint loads
    ticks, _ = run.scalars("train/loss")
    assert len(ticks) >= last["tick"] and ticks.tolist() == list(range(len(ticks)))
    assert run.summary().ticks == len(ticks)


def test_a_second_process_cannot_resume_a_run_being_trained(tmp_path):
    handle = run_ticks_then_stop(tiny_spec(), tmp_path, 10)
    first = resume_run(handle.run_dir, paused=True)  # holds the run from set-up on
    try:
        with pytest.raises(StoreError, match="being trained by another process"):
            resume_run(handle.run_dir)
        out = cli("resume", handle.run_dir)
        line = one_error_line(out, 1)
        assert f"pid {os.getpid()}" in line
    finally:
        first.stop()
        assert first.join(DEADLINE)
    assert first.status == "stopped"
    again = resume_run(handle.run_dir)  # the lock went with the run
    assert again.join(DEADLINE) and again.status == "finished"


def test_a_killed_owner_leaves_no_stale_lock(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from engine.runs import RunLock; RunLock({str(run_dir)!r}); "
         "import time; print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError):
            RunLock(run_dir)
    finally:
        holder.kill()
        holder.wait()
    RunLock(run_dir).release()


def test_kill_9_in_the_first_second_leaves_no_half_made_run(tmp_path):
    path = spec_file(tmp_path, train={"steps": 20})
    runs = tmp_path / "runs"
    rng = random.Random(3)
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", path, "--runs-dir", runs],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + DEADLINE
        while not runs.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)  # kill while the run is being set up, or just after
        time.sleep(rng.uniform(0.0, 1.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    visible = [p for p in runs.iterdir() if not p.name.startswith(".")]
    listed = {s.path for s in list_runs(runs)}
    assert set(visible) == listed  # every folder the user sees is a run
    for folder in visible:  # ... and every one resumes to the end
        assert open_run(folder).status in ("interrupted", "finished")
        if open_run(folder).status == "interrupted":
            out = cli("resume", folder)
            assert out.returncode == 0, out.stderr
        assert open_run(folder).status == "finished"
    out = cli("run", path, "--runs-dir", runs)  # the next run sweeps dead staging folders
    assert out.returncode == 0, out.stderr
    assert not [p for p in runs.iterdir() if p.name.startswith(".staging")]


def test_an_empty_or_half_made_store_is_listed_not_a_crash(tmp_path):
    folder = tmp_path / "runs" / "half"
    folder.mkdir(parents=True)
    (folder / "metrics.sqlite").touch()
    (summary,) = list_runs(tmp_path / "runs")
    assert summary.status == "interrupted" and summary.ticks == 0
    assert summary.best_val_loss is None and summary.tokens_per_s is None
    out = cli("list", "--runs-dir", tmp_path / "runs")
    assert out.returncode == 0 and "half" in out.stdout


@pytest.mark.parametrize(
    "where",
    ["a file", "read-only", "under /sys"],
)
def test_a_runs_directory_that_cannot_be_created_is_one_line_exit_2(tmp_path, where):
    path = spec_file(tmp_path)
    if where == "a file":
        runs = tmp_path / "file"
        runs.write_text("x")
    elif where == "read-only":
        runs = tmp_path / "ro"
        runs.mkdir()
        if subprocess.run(["mount", "--bind", "-o", "ro", str(runs), str(runs)]).returncode:
            pytest.skip("cannot make a read-only bind mount here")
    else:
        runs = "/sys/tickbench-runs"
    try:
        line = one_error_line(cli("run", path, "--runs-dir", runs), 2)
        assert "runs_dir: cannot create run folders in" in line
    finally:
        if where == "read-only":
            subprocess.run(["umount", str(runs)], check=False)


def no_cuda_env():
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)  # the tests' conftest sets it; a user has not
    return env


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """A binary corpus, a file that is no checkpoint, a truncated checkpoint."""
    folder = tmp_path_factory.mktemp("bad")
    binary = folder / "corpus.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    junk = folder / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint\n" * 10)
    good = run_ticks_then_stop(tiny_spec(), folder / "base", 2)
    cut = folder / "cut.pt"
    cut.write_bytes(open_run(good.run_dir).checkpoints()[-1].read_bytes()[:2000])
    return {"BINARY": str(binary), "NOT_A_CHECKPOINT": str(junk), "TRUNCATED": str(cut)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "sections, field",
    [
        ({"train": {"device": "cuda"}}, "train.device"),
        ({"model": {"norm_backend": "triton"}}, "model.norm_backend"),
        ({"data": {"path": "/no/such/corpus.txt"}}, "data.path"),
        ({"data": {"path": "BINARY"}}, "data.path"),
        ({"train": {"lora": {"rank": 2, "targets": ["no_such_layer"]}}}, "train.lora"),
        (
            {"timeline": {"phases": [{"name": "a", "start": 0, "freeze": ["nothing.here"]}]}},
            "timeline.phases[0].freeze[0]",
        ),
        (
            {
                "timeline": {
                    "phases": [
                        {"name": "a", "start": 0},
                        {"name": "b", "start": 10, "data": {"path": "/no/such/file.txt"}},
                    ]
                }
            },
            "timeline.phases[1].data.path",
        ),
        ({"train": {"init_from": "NOT_A_CHECKPOINT"}}, "train.init_from"),
        ({"train": {"init_from": "TRUNCATED"}}, "train.init_from"),
        (
            {"model": {"n_layer": 48, "d_model": 8192, "n_head": 64, "d_ff": 32768,
                       "context": 8192}},
            "model",
        ),
    ],
    ids=["cuda", "triton", "no corpus", "binary corpus", "lora target", "freeze", "phase data",
         "not a checkpoint", "truncated checkpoint", "150 GB model"],
)  # fmt: skip
def test_a_spec_problem_is_one_line_exit_2_and_writes_nothing(tmp_path, bad_files, sections, field):
    swap = bad_files

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return swap.get(value, value)

    path = spec_file(tmp_path, **fill(sections))
    out = cli("run", path, "--runs-dir", tmp_path / "runs", env=no_cuda_env())
    line = one_error_line(out, 2)
    assert line.startswith(f"error: {field}"), line
    assert not (tmp_path / "runs").exists()


def test_the_memory_check_says_what_is_needed_and_what_there_is(tmp_path):
    spec = tiny_spec(
        model={"n_layer": 48, "d_model": 8192, "n_head": 64, "d_ff": 32768, "context": 8192}
    )
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"GB.*GB"):
        start_run(spec, tmp_path / "runs")
    assert time.monotonic() - start < 10  # refused before any allocation
    assert not (tmp_path / "runs").exists()


def test_exported_weights_are_accepted_back_by_init_from(tmp_path):
    base = run_ticks_then_stop(tiny_spec(), tmp_path / "base", 5)
    weights = tmp_path / "weights.pt"
    out = cli("export", base.run_dir, "--format", "weights", "-o", weights)
    assert out.returncode == 0, out.stderr
    spec = tiny_spec(train={"steps": 3, "init_from": str(weights), "lr": 0.0})
    handle = start_run(spec, tmp_path / "runs")
    assert handle.join(DEADLINE) and handle.status == "finished", handle.error
    exported = torch.load(weights, weights_only=True)
    trained = load_checkpoint(open_run(handle.run_dir).checkpoints()[-1])["model"]
    tensors = {k: v for k, v in exported.items() if isinstance(v, torch.Tensor)}
    assert tensors
    for key, value in tensors.items():  # lr 0: the weights are exactly the exported ones
        assert torch.equal(trained[key], value), key


def test_checkpoints_are_pruned_to_the_last_few_plus_boundaries_and_marks(tmp_path):
    spec = tiny_spec(
        train={"steps": 40, "checkpoint_every": 1, "keep_checkpoints": 3, "eval_every": 0},
        timeline={
            "phases": [{"name": "a", "start": 0}, {"name": "b", "start": 20}],
            "marks": [{"at": 29, "action": "checkpoint"}],
        },
    )
    handle = start_run(spec, tmp_path / "runs")
    assert handle.join(DEADLINE) and handle.status == "finished", handle.error
    kept = [int(p.stem.split("_")[1]) for p in open_run(handle.run_dir).checkpoints()]
    assert kept == [20, 30, 38, 39, 40]


def test_a_closed_pipe_ends_the_timeline_printout_quietly():
    done = subprocess.run(
        f"{sys.executable} -m engine timeline presets/baby-gpt.yaml --csv | head -n 2",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.stdout.count("\n") == 2 and done.stderr == ""


def test_a_store_write_that_fails_mid_run_ends_the_run_and_the_thread(tmp_path):
    """A writer error (here: the database made read-only under the run) is a failed run with
    one line, and join returns; no handler retries the same failing write forever."""
    handle = start_run(tiny_spec(train={"steps": 10_000}), tmp_path / "runs", paused=True)
    db = handle.run_dir / "metrics.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER no_more BEFORE INSERT ON scalars BEGIN "
                "SELECT RAISE(ABORT, 'refused by the test'); END")  # fmt: skip
    con.commit()
    con.close()
    handle.resume()
    assert handle.join(DEADLINE), "the run hung after a failed write"
    assert handle.status == "failed" and "refused by the test" in handle.error


def test_rewind_points_leave_a_nearly_full_disk_to_the_checkpoints(
    tmp_path, tiny_disk, monkeypatch
):
    monkeypatch.setattr("engine.rewind.FIRST_POINT_SECONDS", 0.0)  # a point after every tick
    monkeypatch.setattr("engine.rewind.rewind_interval", lambda seconds: 0.0)
    logs = []
    spec = tiny_spec(train={"steps": 30, "checkpoint_every": 10, "keep_checkpoints": 0})
    handle = start_run(
        spec, tiny_disk / "runs", lambda msgs: logs.extend(m for m in msgs if isinstance(m, Log))
    )
    assert handle.join(DEADLINE) and handle.status == "finished", handle.error
    assert not list((handle.run_dir / "rewind").rglob("*.pt"))  # 2 MB: no room for points
    assert [c.name for c in open_run(handle.run_dir).checkpoints()][-1] == "tick_0000030.pt"
    skipped = [m.text for m in logs if "rewind points skipped" in m.text]
    assert skipped == ["rewind points skipped: the disk is nearly full (kept for checkpoints)"]
