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


def test_listing_runs_while_another_process_stages_and_renames_them_never_fails(tmp_path):
    """A run appears by a rename of a hidden staging folder (``new_run_dir``). Listing at any
    moment of that rename used to raise FileNotFoundError from inside a glob (seen in the
    window's Runs dock while a headless run started): a real second process here, renaming
    folders as fast as it can while this one lists them."""
    from engine.runs import run_dirs

    script = (
        "import os, sys, pathlib\n"
        "root = pathlib.Path(sys.argv[1])\n"
        "for i in range(400):\n"
        "    stage = root / f'.staging-{i}' / 'checkpoints'\n"
        "    stage.mkdir(parents=True)\n"
        "    (stage.parent / 'metrics.sqlite').write_bytes(b'')\n"
        "    os.rename(stage.parent, root / f'run-{i}')\n"
        "    study = root / f'study-{i}'\n"
        "    (study / '.staging-x').mkdir(parents=True)\n"
        "    os.rename(study, root / f'.gone-{i}')\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    seen = 0
    try:
        while writer.poll() is None:
            found = run_dirs(tmp_path)
            assert all(not p.name.startswith(".") for p in found)
            seen = max(seen, len(found))
    finally:
        writer.wait(60)
    assert writer.returncode == 0
    assert len(run_dirs(tmp_path)) == 400 and seen <= 400
