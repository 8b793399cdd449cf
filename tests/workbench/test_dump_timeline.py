"""What the editor draws is what the engine runs: the window holds the engine's one compiled
timeline (``engine.plan_timeline``) and every view reads it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

import engine
from engine.cli import main as cli_main
from engine.specs import parse_spec
from tests.engine.test_plan import ALL, MIXED
from tests.workbench.helpers import run_workbench
from workbench.plots.envelope import series_of
from workbench.timeline import geometry

ROOT = Path(__file__).resolve().parents[2]


def engine_csv(capsys, path, variant=None) -> str:
    capsys.readouterr()
    args = ["timeline", str(path), "--csv"] + (["--variant", variant] if variant else [])
    assert cli_main(args) == 0
    return capsys.readouterr().out


def csv_of(compiled) -> str:
    out = io.StringIO()
    engine.write_timeline_csv(compiled, out)
    return out.getvalue()


def test_dump_timeline_writes_what_the_engine_prints(tmp_path, capsys):
    spec_file = tmp_path / "mixed.yaml"
    engine.save_spec(parse_spec(MIXED), spec_file)
    out = tmp_path / "drawn.csv"
    done = run_workbench(
        "--preset", spec_file, "--dump-timeline", out, "--settings", tmp_path / "settings.ini"
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == engine_csv(capsys, spec_file)


def test_dump_timeline_says_why_a_timeline_cannot_be_drawn(tmp_path):
    spec_file = tmp_path / "late.yaml"  # a mark at two epochs: past the end of the run
    spec_file.write_text(engine.dump_spec(parse_spec(MIXED)).replace("1Ktok", "2ep"), "utf-8")
    out, settings = tmp_path / "x.csv", tmp_path / "s.ini"
    done = run_workbench("--preset", spec_file, "--dump-timeline", out, "--settings", settings)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("timeline.marks[0].at: tick 221 is past the end of the run (train.steps=160)")
    )


def test_the_editor_and_planned_lr_read_the_engines_plan_for_every_preset(make_main_window, capsys):
    window = make_main_window()  # one window, every preset and study variant loaded in turn
    for name, path, variant, spec in ALL:
        window.files.show_spec(spec, path)
        doc = window.timeline_editor.doc
        assert doc.error is None, name
        assert doc.compiled is engine.plan_timeline(spec), name  # the one object
        assert csv_of(doc.compiled) == engine_csv(capsys, path, variant), name
        planned = series_of(window.plots.lr._guide)[1]
        assert np.array_equal(planned, doc.compiled.lr_curve()), name
        # the tokens axis counts the data's real tokens per tick
        assert window.timeline_editor.unit.units == doc.compiled.units, name


def test_the_lanes_place_each_item_where_the_engine_fires_it(make_main_window):
    spec = parse_spec(MIXED)
    window = make_main_window()
    window.files.show_spec(spec, None)
    compiled = window.timeline_editor.doc.compiled
    assert geometry.segment_spans(compiled, 3) == [(0, 10), (24, 110), (110, 160)]
    assert [(f.tick, f.layer) for f in geometry.firings(compiled, 0)] == [
        (55, 0),
        (60, 1),
        (65, "final"),
    ]
    assert geometry.mark_ticks(compiled, 0) == [31]
    assert [s[2] for s in geometry.phase_spans(spec, compiled)] == [0, 125]


def test_one_edit_in_the_config_form_compiles_the_timeline_once(
    make_main_window, qtbot, monkeypatch
):
    import engine.plan as plan_module

    built = []

    class Counted(engine.CompiledTimeline):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    window = make_main_window()
    window.files.show_spec(parse_spec(MIXED), None)
    monkeypatch.setattr(plan_module, "CompiledTimeline", Counted)
    batch = window.config.editor("train.batch_size").widget
    batch.setFocus()
    qtbot.keyClick(batch, "1")  # the cursor is at the start: batch 8 -> 18, one keystroke
    qtbot.wait(50)
    doc = window.timeline_editor.doc
    assert batch.value() == 18 and doc.error is None
    assert len(built) == 1  # the form's check, the editor, the lanes and the LR plot share it
    # 72 tokens a tick now: every token and epoch position moved, "15%" did not
    assert geometry.segment_spans(doc.compiled, 3) == [(0, 4), (24, 49), (49, 160)]
    assert np.array_equal(series_of(window.plots.lr._guide)[1], doc.compiled.lr_curve())

    built.clear()
    steps = window.config.editor("train.steps").widget
    steps.setFocus()
    qtbot.keyClick(steps, "8")  # 160 -> 8160 ticks: "15%" is now after "1ep"
    qtbot.wait(50)
    assert doc.error is not None and doc.error.path == "timeline.lr[1].end"
    assert len(built) == 2  # the refused compile, and every good item without lr[1]
    assert geometry.segment_spans(doc.compiled, 3) == [(0, 4), None, (49, 8160)]


def test_a_study_or_a_variant_that_cannot_be_drawn_is_refused_in_one_line(tmp_path):
    settings = tmp_path / "s.ini"
    cases = [
        (["--preset", "presets/brackets-finetune.yaml"], "pick one with --variant"),
        (["--preset", "presets/baby-gpt.yaml", "--variant", "x"], "only a study preset"),
        (["--preset", "presets/brackets-finetune.yaml", "--variant", "x"], "no variant 'x'"),
    ]
    for args, says in cases:
        out = tmp_path / "never.csv"
        done = run_workbench(*args, "--dump-timeline", out, "--settings", settings)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
        assert not out.exists()  # never another preset's timeline in its place
