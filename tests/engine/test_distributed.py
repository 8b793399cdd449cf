"""The headless engine under torchrun with DistributedDataParallel (gloo, two CPU processes)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.runs import open_run, run_dirs
from engine.specs import save_spec
from engine.trainer import start_run

from .helpers import tiny_spec

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = [
    sys.executable,
    "-m",
    "torch.distributed.run",
    "--nproc_per_node=2",
    "--master_port=0",
    "--rdzv_backend=c10d",
    "--rdzv_endpoint=127.0.0.1:0",
]


def spec_file(tmp_path, **train):
    spec = tiny_spec(train={"threads": 1, **train})
    path = tmp_path / "spec.yaml"
    save_spec(spec, path)
    return spec, path


def test_two_ranks_train_what_one_process_trains_with_the_global_batch(tmp_path):
    # each rank's 4 sequences in micro-batches of 3 and 1: gradients all-reduced once a tick
    spec, path = spec_file(tmp_path, steps=20, checkpoint_every=10, micro_batch=3)
    out = subprocess.run(
        [*TORCHRUN, "-m", "engine", "run", path, "--runs-dir", tmp_path / "runs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(re.findall(r"rank (\d) of 2", out.stderr)) == ["0", "1"]  # both ranks ran
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1  # only rank 0 wrote
    ddp = open_run(folders[0])
    assert ddp.status == "finished" and out.stdout.strip() == str(folders[0])
    assert ddp.meta["world_size"] == 2 and ddp.meta["global_batch"] == 8

    single = start_run(
        tiny_spec(train={"threads": 1, "steps": 20, "checkpoint_every": 10, "batch_size": 8}),
        tmp_path / "single",
    )
    assert single.join(120) and single.status == "finished"
    a = ddp.scalars("train/loss")[1]
    b = open_run(single.run_dir).scalars("train/loss")[1]
    assert len(a) == 20
    assert max(abs(x - y) / y for x, y in zip(a, b)) < 1e-5  # same batches, reduction order aside

    resumed = subprocess.run(
        [sys.executable, "-m", "engine", "resume", folders[0]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr  # a finished 2-rank run opens in 1 process


def test_a_killed_rank_ends_the_job_and_leaves_a_resumable_folder(tmp_path):
    _, path = spec_file(tmp_path, steps=400, checkpoint_every=20, eval_every=50)
    proc = subprocess.Popen(
        [*TORCHRUN, "-m", "engine", "run", path, "--runs-dir", tmp_path / "runs"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        run_dir = None
        while time.monotonic() < deadline:
            folders = run_dirs(tmp_path / "runs")
            if folders:
                run_dir = folders[0]
                ticks, _ = open_run(run_dir).scalars("train/loss")
                if len(ticks) and ticks[-1] >= 50:
                    break
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        workers = subprocess.run(
            ["pgrep", "-f", "-P", str(proc.pid), "engine run"], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) == 2
        rank1 = [
            int(p) for p in workers if b"RANK=1\x00" in Path(f"/proc/{p}/environ").read_bytes()
        ]
        os.kill(rank1[0], signal.SIGKILL)  # rank 0 is left blocked in an all-reduce
        _, proc_err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "failed" in proc_err.lower() or "terminated" in proc_err.lower()
    run = open_run(run_dir)
    assert run.status == "interrupted"
    assert run.meta["status_detail"].startswith("another rank failed")
    ticks, _ = run.scalars("train/loss")
    assert ticks[-1] >= 50 and list(ticks) == list(range(len(ticks)))
    resumed = subprocess.run(
        [sys.executable, "-m", "engine", "resume", run_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = open_run(run_dir)
    assert run.status == "finished" and run.meta["world_size"] == 1
    assert list(run.scalars("train/loss")[0]) == list(range(400))


def test_two_ranks_on_a_batch_ramp_train_what_one_process_trains_with_it_doubled(tmp_path):
    """timeline.batch is per rank, as train.batch_size: 2, 3, 4, 5 sequences on each of two
    ranks (each its slice of the 4, 6, 8, 10 drawn) train what one process trains on 4 .. 10."""
    ramp = [{"start": 0, "end": 4, "shape": "linear", "from": 1, "to": 5}]
    spec = tiny_spec(train={"threads": 1, "steps": 8, "eval_every": 0}, timeline={"batch": ramp})
    save_spec(spec, tmp_path / "spec.yaml")
    out = subprocess.run(
        [*TORCHRUN, "-m", "engine", "run", tmp_path / "spec.yaml", "--runs-dir", tmp_path / "runs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (folder,) = (tmp_path / "runs").iterdir()
    ddp = open_run(folder)
    assert ddp.scalars("batch_size")[1].tolist() == [2, 3, 4, 5, 4, 4, 4, 4]
    doubled = [{**ramp[0], "from": 2, "to": 10}]
    single = start_run(
        tiny_spec(
            train={"threads": 1, "steps": 8, "eval_every": 0, "batch_size": 8},
            timeline={"batch": doubled},
        ),
        tmp_path / "single",
    )
    assert single.join(120) and single.status == "finished"
    a = ddp.scalars("train/loss")[1]
    b = open_run(single.run_dir).scalars("train/loss")[1]
    assert max(abs(x - y) / y for x, y in zip(a, b)) < 1e-5  # same batches, reduction order aside
