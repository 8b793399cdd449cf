"""Studies: a base spec and variants in one preset file, trained into one study folder."""

import pytest

from engine import ConfigError, open_run
from engine.runs import list_runs
from engine.study import load_preset, parse_study, run_study

BASE = {
    "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
    "data": {"max_chars": 200_000},
    "train": {
        "steps": 6,
        "batch_size": 4,
        "eval_every": 3,
        "eval_batches": 1,
        "checkpoint_every": 0,
        "device": "cpu",
    },
}


def study(**extra):
    return {"study": "s", "description": "d", "base": BASE, **extra}


def test_variants_override_dotted_fields_and_are_named():
    st = parse_study(
        study(
            variants=[
                {"name": "pre", "set": {"model.norm_position": "pre"}},
                {
                    "name": "rms",
                    "set": {
                        "model.norm": "rmsnorm",
                        "timeline.lr": [
                            {"start": 0, "end": 6, "shape": "linear", "from": 0.0, "to": 1e-3}
                        ],
                    },
                },
            ]
        )
    )
    (n1, a), (n2, b) = st.variants
    assert (n1, a.name, a.model.norm_position) == ("pre", "s-pre", "pre")
    assert (n2, b.model.norm, b.timeline.lr[0].to) == ("rms", "rmsnorm", 1e-3)
    assert a.train == b.train == st.base.train


@pytest.mark.parametrize(
    "data, message",
    [
        (study(variants=[]), "variants: expected a non-empty list"),
        (
            study(variants=[{"name": "a", "set": {"model.n_head": 3}}]),
            "variants[0].set.model.d_model: 32 is not divisible by n_head=3",
        ),
        (
            study(variants=[{"name": "a", "set": {"model.heads": 3}}]),
            "variants[0].set.model.heads: unknown key",
        ),
        (
            study(variants=[{"name": "a", "set": {"nope.x": 3}}]),
            "variants[0].set: a dotted field does not exist",
        ),
        (study(variants=[{"name": "a"}, {"name": "a"}]), "variants[1].name: 'a' is used twice"),
        (study(variants=[{"name": "a"}], parallel=0), "parallel: must be an integer >= 1"),
        (study(variants=[{"name": "a"}], extra=1), "extra: unknown key"),
        (
            {**study(variants=[{"name": "a"}]), "base": {"train": {"steps": -1}}},
            "base.train.steps: must be > 0, got -1",
        ),
    ],
)
def test_bad_studies_name_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        parse_study(data)
    assert message in str(info.value)


def test_a_study_trains_every_variant_into_one_folder(tmp_path):
    st = parse_study(
        study(
            parallel=2,
            variants=[
                {"name": "ln", "set": {"model.norm": "layernorm"}},
                {"name": "none", "set": {"model.norm": "none"}},
                {"name": "rms", "set": {"model.norm": "rmsnorm"}},
            ],
        )
    )
    folder, summaries = run_study(st, tmp_path)
    assert (folder / "study.yaml").exists()
    assert sorted(s.name for s in summaries) == ["s-ln", "s-none", "s-rms"]
    assert all(s.status == "finished" and s.ticks == 6 for s in summaries)
    listed = list_runs(tmp_path)  # the runs browser sees runs inside study folders
    assert sorted(r.name for r in listed) == ["s-ln", "s-none", "s-rms"]
    assert {r.study for r in listed} == {folder.name}
    assert {open_run(r.path).meta["preset"] for r in listed} == {"s"}  # what they were made from


def test_load_preset_tells_specs_and_studies_apart(tmp_path):
    spec_file = tmp_path / "run.yaml"
    spec_file.write_text("name: plain\n")
    assert load_preset(spec_file).name == "plain"
    with pytest.raises(ConfigError, match="file not found"):
        load_preset(tmp_path / "missing.yaml")


def test_study_command_prints_the_comparison_and_the_folder(tmp_path):
    import subprocess
    import sys

    import yaml

    path = tmp_path / "study.yaml"
    path.write_text(
        yaml.safe_dump(
            study(variants=[{"name": "a"}, {"name": "b", "set": {"model.norm": "none"}}])
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "study",
            str(path),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--steps",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "status", "ticks"]
    assert {line.split()[0] for line in lines[1:3]} == {"s-a", "s-b"}
    assert all("finished" in line and "3/3" in line for line in lines[1:3])
    assert (tmp_path / "runs" / lines[-1].rsplit("/", 1)[-1] / "study.yaml").exists()


def test_run_and_timeline_on_a_study_say_how_to_train_it(tmp_path):
    import subprocess
    import sys

    import yaml

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study(variants=[{"name": "a"}, {"name": "b"}])))

    def engine_cli(*args):
        cmd = [sys.executable, "-m", "engine", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    out = engine_cli("run", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 2 and not (tmp_path / "runs").exists()
    assert f"is a study of 2 runs (a, b): train it with `python -m engine study {path}`" in (
        out.stderr
    )
    out = engine_cli("timeline", str(path), "--variant", "b", "--at", "0")
    assert out.returncode == 0 and "tick: 0" in out.stdout, out.stderr
    out = engine_cli("timeline", str(path), "--variant", "c")
    assert out.returncode == 2 and "no variant 'c'" in out.stderr
