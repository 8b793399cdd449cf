"""The run store on its own: folder names, statuses, readers racing the writer."""

import os
import subprocess
import sys

from engine.runs import RunWriter, list_runs, new_run_dir, open_run, safe_name


def test_safe_names():
    assert safe_name("baby gpt / v2") == "baby-gpt-v2"
    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("...") == "run" and safe_name("") == "run"
    assert len(safe_name("x" * 500)) == 60


def test_new_run_dirs_never_collide(tmp_path):
    dirs = {new_run_dir(tmp_path, "same") for _ in range(5)}
    assert len(dirs) == 5 and all(d.parent == tmp_path for d in dirs)


def test_rows_are_readable_after_flush_and_replace_on_replay(tmp_path):
    w = RunWriter(tmp_path / "r")
    w.set_meta(name="r", steps=10, started=1.0)
    w.set_status("running", 0)
    for t in range(5):
        w.scalars(t, {"train/loss": 5.0 - t})
    w.flush()
    run = open_run(tmp_path / "r")  # a second connection, as the GUI or another process has
    assert run.scalars("train/loss")[1].tolist() == [5.0, 4.0, 3.0, 2.0, 1.0]
    w.truncate_from(3)
    w.scalars(3, {"train/loss": 9.0})
    w.flush()
    assert run.scalars("train/loss")[1].tolist() == [5.0, 4.0, 3.0, 9.0]
    assert run.status == "running"  # this process is alive
    w.close()


def test_a_running_run_whose_process_died_reads_interrupted(tmp_path):
    code = (
        "import sys; from engine.runs import RunWriter; w = RunWriter(sys.argv[1]); "
        "w.set_meta(name='dead', steps=5); w.set_status('running', 2)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")],
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    run = open_run(tmp_path / "d")
    assert run.meta["status"] == "running" and run.status == "interrupted"


def test_list_runs_skips_folders_that_are_not_runs(tmp_path):
    w = RunWriter(tmp_path / "good")
    w.set_meta(name="good", steps=3, started=5.0)
    w.set_status("finished", 3)
    w.close()
    (tmp_path / "junk").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.sqlite").write_bytes(b"not a database at all" * 100)
    runs = list_runs(tmp_path)
    assert [r.name for r in runs] == ["good"] and runs[0].status == "finished"
