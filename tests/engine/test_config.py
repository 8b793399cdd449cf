"""The run spec: YAML <-> dataclasses, and one ConfigError naming the field for bad input."""

from pathlib import Path

import pytest

from engine import ConfigError, RunSpec, dump_spec, load_spec, parse_spec, spec_from_yaml
from engine.specs import replace

PRESETS = [
    p
    for p in sorted(Path(__file__).parents[2].glob("presets/*.yaml"))
    if "\nvariants:" not in p.read_text()  # studies: tests/engine/test_study.py
]


def error_of(data) -> str:
    with pytest.raises(ConfigError) as info:
        parse_spec(data)
    return str(info.value)


def test_defaults_are_a_valid_spec():
    spec = parse_spec({})
    assert isinstance(spec, RunSpec)
    assert spec.model.arch == "decoder" and spec.train.steps == 2000


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_round_trip_load_save_load(path, tmp_path):
    spec = load_spec(path)
    saved = tmp_path / "again.yaml"
    saved.write_text(dump_spec(spec))
    again = load_spec(saved)
    assert again == spec
    assert dump_spec(again) == dump_spec(spec)


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"model": {"d_model": 128, "n_head": 3}},
            "model.d_model: 128 is not divisible by n_head=3",
        ),
        ({"train": {"steps": -5}}, "train.steps: must be > 0, got -5"),
        ({"train": {"steps": 0}}, "train.steps: must be > 0, got 0"),
        ({"foo": 1}, "foo: unknown key"),
        ({"model": {"heads": 4}}, "model.heads: unknown key"),
        ({"model": {"n_layer": "four"}}, "model.n_layer: expected an integer, got 'four'"),
        ({"model": {"n_layer": 2.5}}, "model.n_layer: expected an integer, got 2.5"),
        ({"model": {"n_layer": True}}, "model.n_layer: expected an integer, got True"),
        (
            {"model": {"arch": "rnn"}},
            "model.arch: must be one of decoder, encoder_decoder; got 'rnn'",
        ),
        ({"model": {"norm": "batchnorm"}}, "model.norm: must be one of"),
        ({"model": {"dropout": 1.0}}, "model.dropout: must be < 1.0, got 1.0"),
        ({"model": {"norm_eps": 0.0}}, "model.norm_eps: must be > 0.0, got 0.0"),
        ({"model": {"bias": "yes"}}, "model.bias: expected true or false"),
        ({"train": {"lr": "fast"}}, "train.lr: expected a number, got 'fast'"),
        ({"train": {"lr": float("nan")}}, "train.lr: must be a finite number"),
        ({"train": {"betas": [0.9]}}, "train.betas: expected a list of 2 numbers"),
        ({"train": {"device": "tpu"}}, "train.device: must be auto, cpu, cuda or cuda:N"),
        ({"train": {"batch_size": 0}}, "train.batch_size: must be >= 1, got 0"),
        ({"data": {"val_fraction": 1.5}}, "data.val_fraction: must be < 1.0, got 1.5"),
        ({"data": {"source": "imagenet"}}, "data.source: must be one of"),
        ({"model": {"arch": "encoder_decoder"}}, "model.arch: encoder_decoder needs a seq2seq"),
        ({"model": 5}, "model: expected a mapping, got int"),
        ([1, 2], "spec: expected a mapping, got a list"),
        (
            {"timeline": {"lr": [{"shape": "zigzag", "from": 1}]}},
            "timeline.lr[0].shape: must be one of",
        ),
        (
            {"timeline": {"lr": [{"start": 0, "end": 10, "shape": "linear", "from": 0}]}},
            "timeline.lr[0].to: a linear segment needs an end value",
        ),
        (
            {"timeline": {"lr": [{"start": 10, "end": 10, "shape": "constant", "from": 1e-3}]}},
            "timeline.lr[0].end: must be after start (10), got 10",
        ),
        (
            {"timeline": {"lr": [{"start": 0, "end": 3000, "shape": "constant", "from": 1e-3}]}},
            "timeline.lr[0].end: tick 3000 is past the end of the run (train.steps=2000)",
        ),
        (
            {
                "timeline": {
                    "lr": [
                        {"start": 0, "end": 100, "shape": "constant", "from": 1e-3},
                        {"start": 50, "end": 200, "shape": "constant", "from": 1e-4},
                    ]
                }
            },
            "timeline.lr[1].start: tick 50 overlaps the previous segment (ends at 100)",
        ),
        (
            {"timeline": {"lr": [{"start": "soon", "end": 10, "shape": "constant", "from": 1}]}},
            "timeline.lr[0].start: expected a tick or a position like",
        ),
        ({"timeline": {"events": []}}, "timeline.events: unknown key"),
    ],
)
def test_every_invalid_input_names_its_field(data, message):
    assert message in error_of(data)


def test_yaml_floats_without_a_dot_are_numbers():
    spec = spec_from_yaml("train: {lr: 3e-4}\n")  # YAML 1.1 reads 3e-4 as a string
    assert spec.train.lr == pytest.approx(3e-4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "spec: the document is empty"),
        ("model: {n_layer: [\n", "spec: not valid YAML at line"),
        ("just a string", "spec: expected a mapping, got a string"),
        ("- 1\n- 2\n", "spec: expected a mapping, got a list"),
        ("!!python/object:os.system {}", "spec: not valid YAML"),  # safe_load only
    ],
)
def test_bad_documents_are_config_errors(text, message, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert message in str(info.value)


def test_missing_and_unreadable_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        load_spec(binary)


def test_replace_applies_dotted_overrides_and_revalidates():
    spec = parse_spec({})
    assert replace(spec, {"train.steps": 10}).train.steps == 10
    with pytest.raises(ConfigError, match="train.steps"):
        replace(spec, {"train.steps": -1})


def test_saved_timeline_omits_defaults():
    spec = parse_spec(
        {"timeline": {"lr": [{"start": 0, "end": 10, "shape": "constant", "from": 1e-3}]}}
    )
    text = dump_spec(spec)
    assert "milestones" not in text and "gamma" not in text
    assert spec_from_yaml(text) == spec


def test_the_spec_names_the_backends_the_kernels_have():
    import typing

    from engine import kernels
    from engine.config import ModelConfig, NormEvent

    hints = typing.get_type_hints(ModelConfig)
    assert typing.get_args(hints["norm_backend"]) == kernels.BACKENDS
    event = typing.get_args(typing.get_type_hints(NormEvent)["backend"])
    assert typing.get_args(event[0]) == kernels.BACKENDS
    assert kernels.backend_on("auto", "cpu") == "torch"
