"""The data layer: correct targets, masking, layouts, splits, reproducibility, corpora, metrics."""

from __future__ import annotations

import dataclasses
import json
import platform
import random
import time
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import DataConfig, ModelConfig
from engine.data import (
    IGNORE,
    Batch,
    ClassifyMetrics,
    Seq2SeqMetrics,
    Vocab,
    build_task,
)
from engine.data import text as text_mod
from engine.data.brackets import all_near_misses, is_balanced, near_miss, random_balanced
from engine.data.tasks import hash_rows
from engine.errors import ConfigError

SEQ2SEQ = ["copy", "reverse", "sort", "add", "modadd"]
TASKS = [*SEQ2SEQ, "brackets"]
ARCHS = ["decoder", "encoder_decoder"]
SMALL_TEXT = 200_000  # chars of the stdlib corpus the text tests load


def make(source: str, arch: str = "decoder", context: int = 64, **data) -> object:
    if source == "text":
        data.setdefault("max_chars", SMALL_TEXT)
    return build_task(DataConfig(source=source, **data), ModelConfig(arch=arch, context=context))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def config_error(source: str, arch: str = "decoder", **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make(source, arch, **kw)
    return info.value


def split_rows(task, batch: Batch) -> list[tuple[list[int], list[int]]]:
    """(input ids, target ids) per row, read back out of either layout."""
    if task.layout == "decoder":
        s = task.input_len
        return [(x[:s].tolist(), y[s:].tolist()) for x, y in zip(batch.x, batch.y)]
    return [(src.tolist(), y.tolist()) for src, y in zip(batch.src, batch.y)]


def balanced(s: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{", ">": "<"}, []
    for ch in s:
        if ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
        else:
            stack.append(ch)
    return not stack


def expected_target(task, source: str, inp: list[int]) -> list[int]:
    """The right answer computed independently, in plain Python on decoded text."""
    v = task.vocab
    if source == "copy":
        return inp
    if source == "reverse":
        return inp[::-1]
    if source == "sort":
        return sorted(inp)
    if source == "add":
        a, b = v.decode(inp).split("+")
        assert len(a) == len(b) == task.input_len // 2
        return v.encode(str(int(a) + int(b)).zfill(len(a) + 1))
    if source == "modadd":
        a, plus, b = v.decode(inp).split()
        assert plus == "+"
        return [v.id(str((int(a) + int(b)) % task.modulus))]
    if source == "brackets":
        return [v.id("Y" if balanced(v.decode(inp)) else "N")]
    raise AssertionError(source)


# --- Vocab ----------------------------------------------------------------------------------


def test_vocab_round_trip_through_plain_data():
    for tokens in (list("\n ab{}"), ["0", "1", "12", "+", "="]):
        vocab = Vocab(tokens)
        stored = json.loads(json.dumps(vocab.to_dict()))
        again = Vocab.from_dict(stored)
        assert again == vocab and again.tokens == tokens
    chars = Vocab(list("\n abc"))
    assert chars.decode(chars.encode("ab c\n")) == "ab c\n"
    numbers = Vocab(["0", "1", "12", "+", "="])
    assert numbers.encode("12 + 1 =") == [2, 3, 1, 4]
    assert numbers.decode([2, 3, 1, 4]) == "12 + 1 ="


def test_vocab_rejects_unknown_tokens_and_ids():
    vocab = Vocab(list("ab"))
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("az")
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([0, 2])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(list("aba"))
    with pytest.raises(ValueError):
        Vocab.from_dict({"chars": "ab"})


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="\n\tab c{}é", max_size=40))
def test_char_vocab_round_trips_any_text_in_it(s):
    vocab = Vocab(sorted(set("\n\tab c{}é")))
    assert vocab.decode(vocab.encode(s)) == s


# --- synthetic tasks: targets, masks, layouts -----------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", TASKS)
def test_every_target_is_the_right_answer(source, arch):
    task = make(source, arch, seq_len=6, vocab=8, modulus=23)
    for split in ("train", "val"):
        batch = task.batch(split, 64, gen(1))
        for inp, tgt in split_rows(task, batch):
            assert tgt == expected_target(task, source, inp), task.vocab.decode(inp)


@pytest.mark.parametrize("source", TASKS)
def test_decoder_layout_masks_exactly_the_non_target_positions(source):
    task = make(source, seq_len=4, vocab=6, modulus=11)
    b = task.batch("train", 32, gen(2))
    s, t = task.input_len, task.target_len
    assert b.src is None
    assert b.x.shape == b.y.shape == (32, s + t) and b.x.dtype == b.y.dtype == torch.int64
    assert (b.y[:, :s] == IGNORE).all()
    assert (b.y[:, s:] != IGNORE).all()
    assert (b.x[:, s] == task.sep_id).all()  # the separator follows the input
    assert torch.equal(b.x[:, s + 1 :], b.y[:, s:-1])  # teacher forcing: x is y shifted


@pytest.mark.parametrize("source", TASKS)
def test_encoder_decoder_layout(source):
    task = make(source, "encoder_decoder", seq_len=4, vocab=6, modulus=11)
    b = task.batch("val", 16, gen(3))
    assert b.src.shape == (16, task.input_len) and b.src.dtype == torch.int64
    assert b.x.shape == b.y.shape == (16, task.target_len)
    assert (b.x[:, 0] == task.bos_id).all()
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    assert (b.y != IGNORE).all()  # every decoder position is a target


def test_shapes_match_context():
    text = make("text", context=48)
    b = text.batch("train", 5, gen())
    assert b.x.shape == b.y.shape == (5, 48) and text.x_len == 48
    assert text.tokens_per_batch(5) == 5 * 48
    copy = make("copy", context=16, seq_len=8)  # 8 input + 8 target positions: exactly fits
    assert copy.batch("train", 3, gen()).x.shape == (3, 16)
    assert copy.tokens_per_batch(3) == 3 * 16
    add = make("add", "encoder_decoder", context=9, seq_len=4)  # 9 source, 5 target tokens
    b = add.batch("train", 2, gen())
    assert b.src.shape == (2, 9) and b.x.shape == (2, 5) and add.tokens_per_batch(2) == 10


def test_sequences_longer_than_the_context_are_config_errors():
    err = config_error("copy", context=15, seq_len=8)
    assert err.path == "data.seq_len" and "model.context=15" in str(err)
    assert "16 positions" in str(err)
    assert config_error("add", "encoder_decoder", context=8, seq_len=4).path == "data.seq_len"
    assert config_error("modadd", context=3).path == "model.context"
    make("modadd", context=4)  # a b = c: four positions fit


def test_text_with_encoder_decoder_is_rejected():
    assert config_error("text", "encoder_decoder").path == "model.arch"


def test_bad_split_and_batch_size():
    task = make("copy")
    with pytest.raises(ValueError, match="split"):
        task.batch("test", 4, gen())
    with pytest.raises(ValueError, match="batch_size"):
        task.batch("train", 0, gen())


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**12 - 1), st.integers(0, 10**12 - 1))
def test_add_targets_any_numbers(a, b):
    task = make("add", seq_len=12)
    inputs = torch.tensor([task.vocab.encode(f"{a:012d}+{b:012d}")])
    assert task.vocab.decode(task._targets(inputs)[0]) == f"{a + b:013d}"


# --- reproducibility and the global RNG -----------------------------------------------------


@pytest.mark.parametrize("source", ["text", *TASKS])
def test_batches_are_a_pure_function_of_the_generator(source):
    task = make(source)
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()
    py_state = random.getstate()
    a, b = task.batch("train", 16, gen(5)), task.batch("train", 16, gen(5))
    c = task.batch("train", 16, gen(6))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    # Resume: restoring the generator state mid-stream gives the same next batch.
    g = gen(7)
    task.batch("train", 8, g)
    saved = g.get_state()
    nxt = task.batch("train", 8, g)
    g.set_state(saved)
    assert torch.equal(task.batch("train", 8, g).x, nxt.x)
    make(source)  # building touches no global RNG either
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert random.getstate() == py_state
    np_after = np.random.get_state()
    assert np_after[0] == np_state[0] and np.array_equal(np_after[1], np_state[1])


def test_split_hash_is_pinned():
    # The held-out split of every hash-split task depends on these values: changing the hash
    # silently moves inputs between train and val for all saved runs.
    got = hash_rows(np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 0, 0]]))
    assert got.tolist() == [13888429996271860896, 16643940421162959752, 12440867094808227077]


# --- held-out splits ------------------------------------------------------------------------


def inputs_of(task, split: str, n: int, seed: int) -> set[tuple[int, ...]]:
    b = task.batch(split, n, gen(seed))
    return {tuple(inp) for inp, _ in split_rows(task, b)}


@pytest.mark.parametrize("source", ["copy", "reverse", "sort", "add", "brackets"])
def test_train_and_val_inputs_are_disjoint(source):
    # A small input space makes collisions likely if the split were not by input.
    task = make(source, seq_len=4, vocab=4)
    train = inputs_of(task, "train", 3000, 0)
    val = inputs_of(task, "val", 1000, 1)
    assert len(train) > 20 and len(val) > 5
    assert not train & val


def test_enumerated_split_counts_are_exact_and_both_splits_cover_their_share():
    task = make("copy", seq_len=3, vocab=4, val_fraction=0.25)  # 64 inputs
    train = inputs_of(task, "train", 4000, 0)
    val = inputs_of(task, "val", 2000, 1)
    assert task.info["n_examples_exact"]
    assert len(train) == task.n_examples["train"] and len(val) == task.n_examples["val"]
    assert len(train) + len(val) == 64 and 8 <= len(val) <= 24  # about a quarter
    assert task.tokens_in_split("val") == len(val) * task.x_len


def test_hash_split_share_matches_val_fraction():
    task = make("sort", seq_len=6, vocab=4, val_fraction=0.2)  # 4096 inputs, enumerated
    share = task.n_examples["val"] / 4096
    assert abs(share - 0.2) < 0.03


def test_too_small_input_space_or_extreme_fraction_is_a_config_error():
    assert config_error("copy", seq_len=1, vocab=2).path == "data.seq_len"  # 2 inputs
    assert config_error("copy", val_fraction=0.0001).path == "data.val_fraction"


def test_modadd_split_sizes_and_membership():
    p, vf = 13, 0.3
    task = make("modadd", modulus=p, val_fraction=vf)
    train, val = task.split_inputs("train"), task.split_inputs("val")
    n_val = round(p * p * vf)
    assert len(val) == n_val and len(train) == p * p - n_val
    pairs = {(int(a), int(b)) for a, _, b in torch.cat([train, val]).tolist()}
    assert pairs == {(a, b) for a in range(p) for b in range(p)}  # disjoint and complete
    seen_val = inputs_of(task, "val", 500, 3)
    assert seen_val <= {tuple(r) for r in val.tolist()}
    assert task.tokens_in_split("train") == len(train) * 4
    # The split is fixed by the config, not by any seed or generator.
    assert torch.equal(make("modadd", modulus=p, val_fraction=vf).split_inputs("val"), val)


# --- brackets -------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "val"])
def test_brackets_labels_are_about_half_and_unbalanced_are_near_misses(split):
    task = make("brackets", seq_len=12)
    rows = split_rows(task, task.batch(split, 2000, gen(4)))
    labels = [tgt[0] == task.positive_id for _, tgt in rows]
    assert 0.44 < sum(labels) / len(labels) < 0.56
    unbalanced = [task.vocab.decode(inp) for (inp, _), y in zip(rows, labels) if not y]
    same_counts = [s for s in unbalanced if sum(c in "([{<" for c in s) == len(s) // 2]
    assert len(same_counts) / len(unbalanced) > 0.4  # counting brackets is not enough


def test_brackets_vectorised_checker_agrees_with_python():
    ids = torch.randint(0, 4, (500, 6), generator=gen(9))
    vocab = Vocab(list("()[]"))
    assert is_balanced(ids).tolist() == [balanced(vocab.decode(r)) for r in ids]


def test_random_balanced_strings_are_uniform():
    ids = random_balanced(20_000, 3, 2, gen(8))  # length 6, types () and []
    assert is_balanced(ids).all()
    vocab = Vocab(list("()[]"))
    counts = Counter(vocab.decode(r) for r in ids)
    assert len(counts) == 5 * 2**3  # Catalan(3) shapes x a type per pair
    expected = 20_000 / 40
    assert all(abs(c - expected) < 0.25 * expected for c in counts.values())


def test_near_misses_are_one_enumerated_edit_away():
    good = random_balanced(200, 3, 3, gen(10))
    bad = near_miss(good, 3, gen(11))
    changed = (good != bad).any(dim=1)  # a swap of two equal brackets changes nothing
    assert changed.float().mean() > 0.8
    for g, b in zip(good[changed], bad[changed]):
        assert (all_near_misses(g[None], 3) == b).all(dim=1).any()


def test_brackets_length_errors():
    err = config_error("brackets", seq_len=7)
    assert err.path == "data.seq_len" and "even" in str(err)
    assert config_error("brackets", seq_len=2, vocab=2).path == "data.seq_len"  # only "()"


# --- text corpora ---------------------------------------------------------------------------


def test_stdlib_corpus_is_deterministic_fast_and_records_the_python_version():
    text_mod.clear_cache()
    start = time.perf_counter()
    first = make("text", max_chars=1_000_000)
    assert time.perf_counter() - start < 3.0
    text_mod.clear_cache()
    second = make("text", max_chars=1_000_000)
    assert first.vocab == second.vocab
    assert torch.equal(first._splits["train"], second._splits["train"])
    info = first.info
    assert info["python_version"] == platform.python_version()
    assert info["n_chars"] == 1_000_000 and info["n_files"] > 1
    assert info["n_chars_train"] == 900_000 and first.tokens_in_split("val") == 100_000
    assert "def " in first.vocab.decode(first._splits["train"][:20_000])


def test_stdlib_files_are_sorted_and_skip_tests_and_site_packages():
    _, names = text_mod.stdlib_files()
    assert names == sorted(names) and all(n.endswith(".py") for n in names)
    parts = {p for n in names for p in n.split("/")[:-1]}
    assert not parts & {"site-packages", "test", "tests", "idle_test"}


def test_user_text_file(tmp_path):
    body = "".join(f"line {i}: the quick brown fox {i * i}\n" for i in range(200))
    path = tmp_path / "corpus.txt"
    path.write_text(body, encoding="utf-8")
    task = make("text", context=32, path=str(path), val_fraction=0.25)
    assert task.vocab.tokens == sorted(set(body))
    n_train = int(len(body) * 0.75)
    assert task.tokens_in_split("train") == n_train
    assert task.info["path"] == str(path) and task.info["n_chars"] == len(body)
    for split, part in (("train", body[:n_train]), ("val", body[n_train:])):
        b = task.batch(split, 20, gen(1))
        assert torch.equal(b.x[:, 1:], b.y[:, :-1])  # y is x shifted by one
        for x, y in zip(b.x, b.y):
            assert task.vocab.decode(x) + task.vocab.decode(y)[-1] in part


def test_edited_text_file_is_read_again(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a" * 2000)
    assert make("text", context=8, path=str(path)).vocab_size == 1
    path.write_text("ab" * 2000)
    assert make("text", context=8, path=str(path)).vocab_size == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.txt", None, "file not found"),
        ("folder", "dir", "not a file"),
        ("latin1.txt", "caf\xe9 ".encode("latin-1") * 500, "not UTF-8"),
        ("empty.txt", b"", "empty"),
        ("short.txt", b"x" * 100, "too short"),
    ],
)
def test_broken_text_files_are_config_errors_on_data_path(tmp_path, name, content, message):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    err = config_error("text", context=64, path=str(path))
    assert err.path == "data.path" and message in str(err)


def test_unknown_builtin_corpus():
    err = config_error("text", path="builtin:nope")
    assert err.path == "data.path" and "builtin:python-stdlib" in str(err)


# --- metrics --------------------------------------------------------------------------------


def perfect_logits(batch: Batch, vocab_size: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(batch.y.clamp(min=0), vocab_size).float()


@pytest.mark.parametrize("arch", ARCHS)
def test_seq2seq_metrics_exact_match_and_token_accuracy(arch):
    task = make("reverse", arch, seq_len=4)
    batch = task.batch("val", 10, gen())
    m = task.new_metrics()
    m.update(perfect_logits(batch, task.vocab_size), batch)
    assert m.result() == {"accuracy": 1.0, "token_accuracy": 1.0}
    # One wrong token in one sequence: exact match loses that sequence, token accuracy one token.
    logits = perfect_logits(batch, task.vocab_size)
    pos = batch.y.shape[1] - 1  # a target position in both layouts
    logits[3, pos, (batch.y[3, pos] + 1) % 4] = 2.0
    m = task.new_metrics()
    m.update(logits, batch)
    m.update(perfect_logits(batch, task.vocab_size), batch)  # accumulates over batches
    t = task.target_len
    assert m.result()["accuracy"] == pytest.approx(19 / 20)
    assert m.result()["token_accuracy"] == pytest.approx(1 - 1 / (20 * t))


def test_seq2seq_metrics_ignore_positions_without_a_target():
    task = make("sort", seq_len=4)
    batch = task.batch("val", 10, gen())
    logits = perfect_logits(batch, task.vocab_size)
    masked = batch.y == IGNORE
    logits[masked] = torch.nn.functional.one_hot(
        (batch.x[masked] + 1) % task.vocab_size, task.vocab_size
    ).float()  # wrong everywhere there is no loss
    m = task.new_metrics()
    m.update(logits, batch)
    assert m.result() == {"accuracy": 1.0, "token_accuracy": 1.0}


def test_seq2seq_metrics_zero_batches_and_shape_check():
    m = Seq2SeqMetrics()
    assert m.result() == {"accuracy": 0.0, "token_accuracy": 0.0}
    batch = Batch(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="do not match"):
        m.update(torch.zeros(2, 4, 5), batch)


def classify_batch(truth: list[int], pred: list[int]) -> tuple[torch.Tensor, Batch]:
    """Decoder-style batch: one labelled last position per row; labels N=1, Y=2, other=0."""
    n = len(truth)
    y = torch.full((n, 3), IGNORE)
    y[:, -1] = torch.tensor([2 if t else 1 for t in truth])
    logits = torch.zeros(n, 3, 4)
    logits[:, :, 3] = 10.0  # a non-label token wins the full argmax: must be ignored
    for i, p in enumerate(pred):
        logits[i, -1, 2 if p else 1] = 1.0
    return logits, Batch(torch.zeros(n, 3, dtype=torch.long), y)


BINARY = ["unbalanced", "balanced"]


def test_classification_metrics_on_a_known_confusion_matrix():
    truth = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    pred = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]  # class 1: tp=3 fn=2 fp=1; class 0: tp=4 fn=1 fp=2
    logits, batch = classify_batch(truth, pred)
    m = ClassifyMetrics(BINARY, label_ids=[1, 2])
    m.update(logits[:6], Batch(batch.x[:6], batch.y[:6]))
    m.update(logits[6:], Batch(batch.x[6:], batch.y[6:]))
    assert m.confusion() == [[4, 1], [2, 3]]
    r = m.result()
    # by hand: P0 = 4/6, R0 = 4/5, F1_0 = 8/11; P1 = 3/4, R1 = 3/5, F1_1 = 6/9; macro = means
    assert r["accuracy"] == pytest.approx(0.7)
    assert r["precision"] == pytest.approx((4 / 6 + 3 / 4) / 2)
    assert r["recall"] == pytest.approx((4 / 5 + 3 / 5) / 2)
    assert r["f1"] == pytest.approx((8 / 11 + 6 / 9) / 2)
    assert [r[f"confusion/{i}/{j}"] for i in (0, 1) for j in (0, 1)] == [4, 1, 2, 3]


def test_classification_metrics_of_a_head_three_classes():
    # rows: true class; columns: predicted. Known matrix [[2, 1, 0], [0, 3, 1], [1, 0, 0]]
    truth = [0, 0, 0, 1, 1, 1, 1, 2]
    pred = [0, 0, 1, 1, 1, 1, 2, 0]
    logits = torch.nn.functional.one_hot(torch.tensor(pred), 3).float()
    m = ClassifyMetrics(["a", "b", "c"])
    m.update(logits, Batch(torch.zeros(8, 4, dtype=torch.long), torch.tensor(truth)))
    assert m.confusion() == [[2, 1, 0], [0, 3, 1], [1, 0, 0]]
    r = m.result()
    # P = (2/3, 3/4, 0/1), R = (2/3, 3/4, 0/1), F1 = (2/3, 3/4, 0): class c is never right
    assert r["accuracy"] == pytest.approx(5 / 8)
    assert r["precision"] == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)
    assert r["recall"] == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)
    assert r["f1"] == pytest.approx((2 / 3 + 3 / 4 + 0) / 3)
    with pytest.raises(ValueError, match="outside the classes"):
        m.update(logits[:1], Batch(torch.zeros(1, 4, dtype=torch.long), torch.tensor([3])))
    with pytest.raises(ValueError, match="do not match"):
        m.update(torch.zeros(8, 4), Batch(torch.zeros(8, 4, dtype=torch.long), torch.tensor(truth)))


def test_classification_metrics_zero_denominators():
    logits, batch = classify_batch([1, 0, 0], [0, 0, 0])  # class 1 is never predicted
    m = ClassifyMetrics(BINARY, [1, 2])
    m.update(logits, batch)
    r = m.result()
    # class 0: P = 2/3, R = 1, F1 = 4/5; class 1: P = R = F1 = 0 (zero_division=0)
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["precision"] == pytest.approx(1 / 3)
    assert r["recall"] == pytest.approx(1 / 2)
    assert r["f1"] == pytest.approx(2 / 5)
    assert ClassifyMetrics(BINARY, [1, 2]).result()["accuracy"] == 0.0
    with pytest.raises(ValueError, match="two classes"):
        ClassifyMetrics(["only"])


@pytest.mark.parametrize("arch", ARCHS)
def test_brackets_task_metrics_end_to_end(arch):
    task = make("brackets", arch, seq_len=8)
    batch = task.batch("val", 64, gen())
    m = task.new_metrics()
    m.update(perfect_logits(batch, task.vocab_size), batch)
    r = m.result()
    assert {k: r[k] for k in ("accuracy", "precision", "recall", "f1")} == dict.fromkeys(
        ("accuracy", "precision", "recall", "f1"), 1.0
    )
    assert r["confusion/0/1"] == r["confusion/1/0"] == 0
    assert r["confusion/0/0"] + r["confusion/1/1"] == 64
    (tn, fp), (fn, tp) = m.confusion()
    assert fp == fn == 0 and tn + tp == 64 and tp == int((batch.y == task.positive_id).sum())


def test_lm_metrics_are_empty():
    task = make("text", context=16)
    batch = task.batch("val", 2, gen())
    m = task.new_metrics()
    m.update(torch.zeros(2, 16, task.vocab_size), batch)
    assert m.result() == {}


def test_batch_to_device_and_frozen():
    b = Batch(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
    moved = b.to("cpu")
    assert torch.equal(moved.y, b.y) and moved.src is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.x = b.y
