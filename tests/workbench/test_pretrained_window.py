"""A pretrained GPT-2 in the window: its folder typed into model.from_pretrained fills and locks
the architecture, the Config panel says where the model is from, and Runs ▸ Export ▸ Hugging
Face model folder writes what transformers loads, with the run's logits."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

transformers = pytest.importorskip("transformers")

import engine  # noqa: E402
from engine.data.bpe import train_bpe  # noqa: E402
from engine.data.text import stdlib_text  # noqa: E402
from engine.sample import load_model_from_run  # noqa: E402
from tests.workbench.focus_helpers import WAIT_MS, click_row  # noqa: E402
from tests.workbench.helpers import dialog, type_into  # noqa: E402

CONTEXT = 32


@pytest.fixture
def gpt2_folder(tmp_path):
    """A tiny random GPT-2 with 3 blocks and a 300-token BPE, as transformers saves one."""
    bpe = train_bpe(stdlib_text(60_000)[0], 300)
    config = transformers.GPT2Config(
        n_layer=3, n_head=2, n_embd=32, n_positions=CONTEXT, vocab_size=len(bpe),
        bos_token_id=None, eos_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2-mini")
    bpe.tokenizer.save(str(tmp_path / "gpt2-mini" / "tokenizer.json"))
    return tmp_path / "gpt2-mini"


def test_from_pretrained_fills_and_locks_the_architecture(make_main_window, qtbot, gpt2_folder):
    window = make_main_window()
    config = window.config
    tokenizer = config.editor("data.tokenizer").widget
    tokenizer.setCurrentIndex(tokenizer.findText("bpe"))  # as picked from the list
    qtbot.waitUntil(lambda: config.is_valid and config.spec.data.tokenizer == "bpe")
    n_layer = config.editor("model.n_layer").widget
    assert n_layer.isEnabled()
    with qtbot.waitSignal(config.estimated, timeout=20_000):
        type_into(qtbot, config.editor("model.from_pretrained").widget, str(gpt2_folder))
    spec = config.spec
    assert spec is not None and spec.model.from_pretrained == str(gpt2_folder)
    assert (spec.model.n_layer, spec.model.d_model, spec.model.activation) == (3, 32, "gelu_tanh")
    assert n_layer.value() == 3 and not n_layer.isEnabled()  # the checkpoint's, locked
    assert not config.editor("model.activation").widget.isEnabled()
    assert config.editor("model.dropout").widget.isEnabled()  # training's, not the model's
    assert (
        "from: gpt2-mini" in config.params_label.text()
        and "vocab 300" in config.params_label.text()
    )

    source = config.editor("model.from_pretrained").widget
    source.setFocus()
    qtbot.keyClick(source, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(source, Qt.Key.Key_Backspace)  # cleared: the fields are editable again
    qtbot.waitUntil(lambda: config.is_valid and not config.spec.model.from_pretrained)
    assert n_layer.isEnabled() and n_layer.value() == 3


def test_runs_export_writes_a_folder_transformers_loads(
    make_main_window, qtbot, gpt2_folder, tmp_path
):
    spec = engine.parse_spec(
        {
            "name": "mini-ft",
            "model": {"from_pretrained": str(gpt2_folder), "norm_center": "always"},
            "data": {"max_chars": 60_000, "tokenizer": "bpe"},
            "train": {
                "steps": 4,
                "batch_size": 4,
                "eval_every": 0,
                "checkpoint_every": 0,
                "threads": 1,
                "device": "cpu",
            },  # fmt: skip
            "timeline": {"layernorm": [{"at": 1, "action": "set", "strength": 0.0}]},
        }
    )
    handle = engine.start_run(spec, tmp_path / "runs")  # the window's runs folder
    assert handle.join(120) and handle.status == "finished", handle.error
    window = make_main_window()
    click_row(qtbot, window, handle.run_dir)
    action = window.runs.actions.export_hf_action
    qtbot.waitUntil(action.isEnabled, timeout=WAIT_MS)
    action.trigger()
    picker = dialog(qtbot, window, "hfExportDialog")
    out = tmp_path / "exported"
    out.mkdir()
    with qtbot.waitSignal(window.runs.message, timeout=60_000) as said:
        picker.selectFile(str(out))
        picker.accept()
    assert said.args[0] == "info" and str(out) in said.args[1], said.args
    theirs = transformers.GPT2LMHeadModel.from_pretrained(str(out)).eval()
    ours = load_model_from_run(handle.run_dir)[3]
    idx = torch.randint(300, (2, CONTEXT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (ours(idx) - theirs(idx).logits).abs().max().item() <= 1e-4
