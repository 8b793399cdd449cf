"""Byte-level BPE data: a tokenizer trained on the run's text (data.tokenizer: bpe), kept with
the run, read back for sampling and resume; text round-trips exactly."""

from __future__ import annotations

import pytest
import torch

import engine
from engine.data.base import Vocab
from engine.data.bpe import BpeVocab, train_bpe
from engine.data.text import TextTask, stdlib_text
from engine.sample import sample_run
from tests.engine.helpers import tiny_spec

BPE = {"source": "text", "path": "builtin:python-stdlib", "max_chars": 200_000,
       "tokenizer": "bpe", "bpe_vocab": 400}  # fmt: skip


def test_a_trained_bpe_is_deterministic_and_round_trips_any_text():
    text, _ = stdlib_text(60_000)
    a, b = train_bpe(text, 400), train_bpe(text, 400)
    assert a == b and len(a) == 400
    sample = text[-5_000:] + "\nnon-ASCII: σ̄ ≤ 1e-4 — 名前 \U0001f600\n"
    ids = a.encode(sample)
    assert a.decode(ids) == sample  # every byte is a token: nothing is unknown
    assert len(ids) < 0.7 * len(sample.encode("utf-8"))  # 144 merges make it shorter


def test_a_bpe_vocab_is_stored_as_plain_data_and_read_back_equal():
    vocab = train_bpe("def f(x):\n    return x + 1\n" * 200, 300)
    padded = vocab.padded(320)
    assert len(padded) == 320 and padded.tokens[-1] == "<unused 319>"
    back = Vocab.from_dict(padded.to_dict())
    assert isinstance(back, BpeVocab) and back == padded and back != vocab
    assert back.decode([*vocab.encode("return x"), 319]) == "return x"  # spare rows: nothing


def test_a_bpe_text_run_trains_samples_and_keeps_its_tokenizer(tmp_path):
    spec = tiny_spec(data=BPE, train={"steps": 6, "eval_every": 3, "checkpoint_every": 6})
    task = TextTask.build(spec.data, spec.model)
    assert isinstance(task.vocab, BpeVocab) and task.vocab_size == 400
    text, _ = stdlib_text(200_000)
    n_train = int(len(text) * 0.9)
    assert task.vocab == train_bpe(text[:n_train], 400, ("<pad>",))  # on the train part only
    assert task.vocab.pad_id == task.vocab.encode("<pad>")[0]  # a token of its own
    assert task.tokens_in_split("train") < n_train / 2  # tokens, not characters

    handle = engine.start_run(spec, tmp_path)
    assert handle.join(120) and handle.status == "finished", handle.error
    record = engine.open_run(handle.run_dir)
    assert Vocab.from_dict(record.vocab) == task.vocab
    batch = task.batch("val", 2, torch.Generator().manual_seed(0))
    assert int(batch.x.max()) < 400
    out = sample_run(handle.run_dir, prompt="def ", tokens=20, seed=1)
    assert out.startswith("def ") and len(out) > len("def ")


@pytest.mark.parametrize(
    "data, model, path, words",
    [
        ({**BPE, "source": "copy"}, {}, "data.tokenizer", "bpe tokenizes text"),
        ({"tokenizer": "char"}, {"from_pretrained": "gpt2"}, "data.tokenizer",
         "set data.tokenizer: bpe"),
        ({**BPE, "bpe_vocab": 100}, {}, "data.bpe_vocab", ">= 260"),
    ],
)  # fmt: skip
def test_bpe_fields_that_cannot_work_are_refused(data, model, path, words):
    with pytest.raises(engine.ConfigError) as info:
        tiny_spec(data=data, model=model)
    assert info.value.path == path and words in str(info.value)
