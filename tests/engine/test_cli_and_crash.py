"""The headless CLI end to end, including a kill -9 mid-run and a resume."""

import csv
import io
import os
import signal
import subprocess
import sys
import time

from engine.runs import open_run, run_dirs
from engine.specs import save_spec
from engine.trainer import start_run

from .helpers import cli_run, tiny_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "engine", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_run_prints_progress_and_the_run_folder_last(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    save_spec(tiny_spec(), spec_path)
    out = cli("run", spec_path, "--runs-dir", tmp_path / "runs", "--steps", 12, "--name", "a b/c")
    run_dir = out.stdout.strip().splitlines()[-1]
    assert os.path.basename(run_dir).startswith("a-b-c-")  # a safe folder name
    run = open_run(run_dir)
    assert run.status == "finished" and run.spec.train.steps == 12
    assert run.meta["preset"] == "spec"  # the file it was made from, whatever the run's name
    assert "tick 12/12" in out.stderr and "tok/s" in out.stderr and "ETA" in out.stderr
    listing = cli("list", "--runs-dir", tmp_path / "runs").stdout
    assert "a b/c" in listing and "finished" in listing and "12/12" in listing


def test_bad_spec_is_one_line_on_stderr_and_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {d_model: 128, n_head: 3}\n")
    out = cli("run", bad, check=False)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: model.d_model: 128 is not divisible by n_head=3"
    out = cli("run", tmp_path / "missing.yaml", check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def wait_for_tick(runs_dir, tick, proc):
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        for run_dir in run_dirs(runs_dir):  # not a folder still being set up
            ticks, _ = open_run(run_dir).scalars("train/loss")
            if len(ticks) and ticks[-1] >= tick:
                return run_dir
        time.sleep(0.02)
    raise AssertionError("the run never reached the tick")


def test_kill_9_leaves_a_readable_run_that_resumes_to_identical_losses(tmp_path):
    spec = tiny_spec(train={"steps": 120, "checkpoint_every": 20, "eval_every": 20})
    reference = start_run(spec, tmp_path / "ref")
    assert reference.join(300) and reference.status == "finished"
    ref = open_run(reference.run_dir)

    with cli_run(spec, tmp_path) as proc:
        run_dir = wait_for_tick(tmp_path / "runs", 50, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    killed = open_run(run_dir)
    assert killed.status == "interrupted"
    ticks, losses = killed.scalars("train/loss")
    assert ticks[-1] >= 50 and list(ticks) == list(range(len(ticks)))
    assert losses.tolist() == ref.scalars("train/loss")[1][: len(ticks)].tolist()

    out = cli("resume", run_dir)
    assert out.stdout.strip().splitlines()[-1] == str(run_dir)
    resumed = open_run(run_dir)
    assert resumed.status == "finished"
    for metric in ("train/loss", "val/loss", "grad_norm"):
        assert resumed.scalars(metric)[1].tolist() == ref.scalars(metric)[1].tolist(), metric

    rows = list(csv.reader(io.StringIO(cli("export", run_dir, "--format", "csv").stdout)))
    assert rows[0] == ["tick", "metric", "value"]
    keys = [(r[0], r[1]) for r in rows[1:]]
    assert len(keys) == len(set(keys))  # no duplicate ticks after the resume
    assert sum(1 for _, m in keys if m == "train/loss") == 120
    assert {m for _, m in keys} >= {"train/loss", "val/loss", "lr", "grad_norm", "tokens_per_s"}

    text = cli("sample", run_dir, "--prompt", "def ", "--tokens", 40).stdout
    assert text.startswith("def ") and len(text.rstrip("\n")) >= 40


def test_timeline_inspector_prints_every_tick_and_one_tick_as_yaml():
    out = cli("timeline", "presets/ln-removal-finetune.yaml", "--csv").stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:6] == ["tick", "phase", "lr", "lr_unscaled", "batch_size", "tokens"]
    assert rows[0][6:] == [
        f"ln.{s}.strength"
        for s in [
            "0.attn",
            "0.mlp",
            "1.attn",
            "1.mlp",
            "2.attn",
            "2.mlp",
            "3.attn",
            "3.mlp",
            "final",
        ]
    ]
    assert len(rows) == 1 + 1200 and rows[1][0] == "0" and rows[-1][0] == "1199"
    by_tick = {int(r[0]): r for r in rows[1:]}
    assert by_tick[599][1] == "pretrain" and by_tick[600][1] == "remove-ln"
    # the staircase: block 0 reaches 0 at tick 659, block 1 starts at 660, the final norm last
    assert float(by_tick[659][6]) == 0.0 and float(by_tick[659][8]) == 1.0
    assert float(by_tick[899][-1]) == 0.0 and float(by_tick[839][-1]) == 1.0
    one = cli("timeline", "presets/ln-removal-finetune.yaml", "--at", 600).stdout
    assert "phase: remove-ln" in one and "label: LN ramp 0" in one
    bad = cli("timeline", "presets/ln-removal-finetune.yaml", "--at", 5000, check=False)
    assert bad.returncode == 2 and "--at: tick 5000 outside 0..1199" in bad.stderr
