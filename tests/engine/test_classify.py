"""Classification heads, the CSV task, few-example pools, finetuning into a head, the unknown
token, and studies whose variants start from each other's weights."""

from __future__ import annotations

import pytest
import torch

from engine import ConfigError
from engine.checkpoint import load_checkpoint
from engine.config import ModelConfig
from engine.data import build_task
from engine.data.brackets import is_balanced
from engine.data.vocabulary import PAD, UNK
from engine.estimate import count_trainable
from engine.model import build_model
from engine.runs import open_run
from engine.specs import parse_spec, replace
from engine.study import parse_study, run_study
from engine.trainer import start_run

HEAD = {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 12}


def spec_of(**sections):
    data = {
        "name": "cls",
        "seed": 3,
        "model": {**HEAD, "head": "classify"},
        "data": {"source": "brackets", "seq_len": 8},
        "train": {
            "steps": 12,
            "batch_size": 8,
            "eval_every": 6,
            "eval_batches": 2,
            "checkpoint_every": 0,
            "device": "cpu",
            "threads": 1,
        },
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_spec(data)


def finished(spec, runs_dir):
    handle = start_run(spec, runs_dir)
    assert handle.join(120) and handle.status == "finished", handle.error
    return handle.run_dir


def write_csv(path, rows, header="text,label"):
    lines = [header] + [f"{t},{lab}" for t, lab in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


# --- the head ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_pooling_reads_only_the_real_tokens(pooling):
    """Right padding never changes a classifier's output (causal attention, pooling skips it),
    and the pooled vector is the last real token's state or the mean of the real tokens."""
    torch.manual_seed(0)
    cfg = ModelConfig(**HEAD, head="classify", pooling=pooling)
    model = build_model(cfg, vocab_size=6, n_classes=3, pad_id=5).eval()
    x = torch.tensor([[1, 2, 3, 5, 5, 5], [4, 1, 2, 3, 4, 1]])
    out = model(x)
    assert out.shape == (2, 3)
    torch.testing.assert_close(model(x[:1, :3]), out[:1])  # the same text without padding
    h = model.ln_final(model.blocks[0](model._embed(x[:1, :3], "input")))
    pooled = h[0, -1] if pooling == "last" else h[0].mean(0)
    torch.testing.assert_close(model.classifier(pooled), out[0])


def test_a_classification_head_needs_a_task_with_classes():
    with pytest.raises(ConfigError, match="model.head: a classification head needs a task"):
        spec_of(data={"source": "copy"})
    with pytest.raises(ConfigError, match="data.objective: lm pretraining needs model.head: lm"):
        spec_of(data={"objective": "lm"})
    with pytest.raises(ConfigError, match="model.head: a csv"):
        spec_of(model={"head": "lm"}, data={"source": "csv", "path": "x.csv"})


def test_brackets_batches_for_a_head_and_for_pretraining():
    spec = spec_of()
    task = build_task(spec.data, spec.model)
    b = task.batch("train", 64, torch.Generator().manual_seed(0))
    assert b.x.shape == (64, 9) and b.y.shape == (64,) and task.n_classes == 2
    assert (b.x[:, 0] == task.bos_id).all()
    assert torch.equal(b.y, is_balanced(b.x[:, 1:]).long())  # 1 = balanced
    assert task.info["classes"] == ["unbalanced", "balanced"]
    lm = replace(spec, {"model.head": "lm", "data.objective": "lm"})
    task = build_task(lm.data, lm.model)
    b = task.batch("train", 4, torch.Generator().manual_seed(0))
    assert task.kind == "lm" and b.x.shape == b.y.shape == (4, 9)
    assert torch.equal(b.y[:, :-1], b.x[:, 1:]) and (b.y[:, -1] == task.sep_id).all()


def test_a_train_pool_is_the_same_few_examples_for_every_seed():
    spec = spec_of(data={"train_examples": 5})
    task = build_task(spec.data, spec.model)
    pool = {tuple(r) for r in task.train_pool().tolist()}
    seen = set()
    for seed in range(3):
        b = task.batch("train", 32, torch.Generator().manual_seed(seed))
        seen |= {tuple(r) for r in b.x[:, 1:].tolist()}
    assert seen <= pool and len(pool) <= 5
    again = build_task(spec.data, spec.model)
    assert torch.equal(again.train_pool(), task.train_pool())
    assert task.tokens_in_split("train") == 5 * task.x_len


# --- the CSV task ------------------------------------------------------------------------------

ROWS = [(f"{w} {i}", lab) for i in range(30) for w, lab in (("good", "pos"), ("bad", "neg"))]


def test_csv_task_reads_classes_splits_by_text_and_pads(tmp_path):
    rows = ROWS + [("a very long review " * 3, "meh")]
    path = write_csv(tmp_path / "d.csv", rows)
    spec = spec_of(model={"context": 16}, data={"source": "csv", "path": path})
    task = build_task(spec.data, spec.model)
    assert task.info["classes"] == ["meh", "neg", "pos"] and task.n_classes == 3
    assert task.info["n_truncated"] == 1 and task.x_len == 16
    assert task.info["n_examples_train"] + task.info["n_examples_val"] == 61
    b = task.batch("val", 16, torch.Generator().manual_seed(0))
    assert b.x.shape == (16, 16) and set(b.y.tolist()) <= {0, 1, 2}
    first = task.vocab.decode(b.x[0]).rstrip(PAD)
    assert PAD not in first and first.split()[0] in ("good", "bad", "a")
    # the split depends on the text alone: reversed rows give the same val set
    path2 = write_csv(tmp_path / "r.csv", list(reversed(rows)))
    other = build_task(replace(spec, {"data.path": path2}).data, spec.model)
    as_set = lambda t: {tuple(r) for r in t._splits["val"][0].tolist()}  # noqa: E731
    assert as_set(other) == as_set(task)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("words,label\na,b\n", "header with text and label"),
        ("text,label\n,pos\nb,neg\n", "line 2: the text is empty"),
        ("text,label\na,pos\nb,pos\n", "at least two labels"),
        ("text,label\na,pos\nb\n", "line 3: too few columns"),
    ],
)
def test_a_bad_csv_says_what_and_where(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    spec = spec_of(data={"source": "csv", "path": str(path)})
    with pytest.raises(ConfigError, match=f"data.path: .*{message}"):
        build_task(spec.data, spec.model)


# --- finetuning into a head -------------------------------------------------------------------


def test_finetune_from_a_text_model_maps_unknown_characters_and_grows_the_embedding(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("good bad neg pos\n" * 40, encoding="utf-8")
    base_spec = parse_spec(
        {
            "name": "base",
            "seed": 1,
            "model": {**HEAD, "context": 8},
            "data": {"source": "text", "path": str(text)},
            "train": {"steps": 3, "batch_size": 2, "checkpoint_every": 0, "device": "cpu"},
        }
    )
    base = finished(base_spec, tmp_path / "runs")
    base_vocab = open_run(base).vocab["tokens"]
    rows = ROWS + [("naïve ☃", "pos")]  # ï and ☃ (and digits) are not in the base text
    path = write_csv(tmp_path / "d.csv", rows)
    spec = spec_of(
        model={"context": 8},
        data={"source": "csv", "path": path},
        train={"init_from": str(base), "lr": 0.0, "steps": 2},
    )
    run = open_run(finished(spec, tmp_path / "runs"))
    tokens = run.vocab["tokens"]
    assert tokens == base_vocab + [PAD, UNK]
    unknown = sum(ch not in base_vocab for text, _ in rows for ch in text[:8])
    assert f"{unknown} character(s)" in run.meta["unknown_chars"][0]
    assert run.meta["data"]["n_unknown"] == unknown
    old = load_checkpoint(open_run(base).checkpoints()[-1])["model"]["embed.weight"]
    new = load_checkpoint(run.checkpoints()[-1])["model"]["embed.weight"]
    # lr 0: the base rows are the base model's, the two new rows their mean
    torch.testing.assert_close(new[: len(old)], old)
    torch.testing.assert_close(new[len(old) :], old.mean(0).expand(2, -1))


def test_lora_with_a_head_trains_the_adapters_and_the_head_only(tmp_path):
    pre = spec_of(model={"head": "lm"}, data={"objective": "lm"})
    base = finished(pre, tmp_path / "runs")
    lora = {"rank": 2, "alpha": 4.0, "targets": ["attn.q", "attn.kv"]}
    spec = spec_of(train={"init_from": str(base), "lora": lora})
    run = finished(spec, tmp_path / "runs")
    before = load_checkpoint(open_run(base).checkpoints()[-1])["model"]
    after = load_checkpoint(open_run(run).checkpoints()[-1])["model"]
    tensors = {k: v for k, v in after.items() if isinstance(v, torch.Tensor)}
    moved = {k for k, v in tensors.items() if k not in before or not torch.equal(v, before[k])}
    moved -= {k for k in moved if k.endswith("sigma_bar")}
    assert moved and all("lora_" in k or k.startswith("classifier.") for k in moved), moved
    assert any(k.startswith("classifier.") for k in moved)
    trainable = open_run(run).meta["trainable_params"]
    assert trainable == sum(v.numel() for k, v in after.items() if k in moved)
    vocab = len(open_run(run).vocab["tokens"])
    assert count_trainable(spec.model, vocab, spec.train.lora, 2) == trainable  # the GUI's count


def test_eval_logs_macro_metrics_and_the_confusion_matrix(tmp_path):
    run = open_run(finished(spec_of(train={"eval_train": True}), tmp_path / "runs"))
    for name in ("val/accuracy", "val/f1", "train/accuracy", "train/f1", "train/eval_loss"):
        ticks, values = run.scalars(name)
        assert ticks.tolist() == [5, 11] and ((values >= 0) & (values <= 1)).all() or "loss" in name
    cells = [run.scalars(f"val/confusion/{i}/{j}")[1][-1] for i in (0, 1) for j in (0, 1)]
    assert sum(cells) == 2 * 8  # eval_batches x batch_size examples
    acc = (cells[0] + cells[3]) / sum(cells)
    assert run.scalars("val/accuracy")[1][-1] == pytest.approx(acc)
    assert run.meta["data"]["classes"] == ["unbalanced", "balanced"]
    assert run.meta["tokens_per_tick"] == 8 * 9  # batch x ([BOS] + 8 brackets): for tokens axes


# --- studies: a variant starts from another's weights ------------------------------------------


def study_data(**variant_sets):
    base = {
        "seed": 3,
        "model": {**HEAD, "head": "classify"},
        "data": {"source": "brackets", "seq_len": 8, "train_examples": 16},
        "train": {"steps": 4, "batch_size": 8, "eval_batches": 1, "device": "cpu"},
    }
    pretrain = {"model.head": "lm", "data.objective": "lm", "data.train_examples": 0}
    variants = [{"name": "pretrain", "set": pretrain}]
    variants += [{"name": n, "set": s} for n, s in variant_sets.items()]
    return {"study": "ft", "base": base, "variants": variants}


def test_a_variant_starts_from_an_earlier_variants_run(tmp_path):
    study = parse_study(study_data(finetune={"train.init_from": "variant:pretrain"}, scratch={}))
    folder, summaries = run_study(study, tmp_path)
    assert [s.status for s in summaries] == ["finished"] * 3
    runs = {open_run(p).meta["name"].removeprefix("ft-"): p for p in folder.iterdir() if p.is_dir()}
    lineage = open_run(runs["finetune"]).meta["lineage"]
    assert lineage[0]["run"] == str(runs["pretrain"])  # the stored spec holds the real folder
    assert open_run(runs["finetune"]).spec.train.init_from == str(runs["pretrain"])
    assert open_run(runs["scratch"]).meta["lineage"] == []


def test_a_reference_to_no_earlier_variant_is_refused():
    with pytest.raises(ConfigError, match=r"variants\[1\].set: init_from variant:later names no"):
        parse_study(study_data(ft={"train.init_from": "variant:later"}, later={}))


def test_sampling_a_classifier_lists_examples_with_their_classes(tmp_path):
    from engine.sample import sample_run

    run = finished(spec_of(), tmp_path / "runs")
    lines = sample_run(run, examples=4).splitlines()
    assert len(lines) == 4
    for line in lines:
        text, rest = line.split(" -> ")
        assert text.startswith("^") and len(text) == 9  # the start token and 8 brackets
        got, want = rest.split("   (expected ")
        assert got in ("balanced", "unbalanced") and want.split(")")[0] in (
            "balanced",
            "unbalanced",
        )


def test_study_command_prints_the_classifiers_f1(tmp_path):
    import subprocess
    import sys

    import yaml

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study_data(finetune={"train.init_from": "variant:pretrain"})))
    cmd = [sys.executable, "-m", "engine", "study", str(path), "--runs-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    said = [x for x in out.stdout.splitlines() if "at tick" in x]
    assert [x.split()[0] for x in said] == ["ft-finetune"]  # the LM pretraining has no metrics
    assert "at tick 3: val/accuracy " in said[0] and " val/f1 " in said[0]


def test_merged_lora_weights_give_the_adapted_classifiers_outputs():
    from engine.config import LoRAConfig
    from engine.lora import apply_lora, merge_lora

    from .test_lora import as_if_trained

    torch.manual_seed(0)
    model = build_model(ModelConfig(**HEAD, head="classify"), 12, n_classes=3).eval()
    apply_lora(model, LoRAConfig(rank=2, alpha=4.0, targets=["attn.q", "attn.kv", "mlp.fc"]))
    as_if_trained(model)
    x = torch.randint(0, 12, (4, 10))
    adapted = model(x)
    torch.testing.assert_close(merge_lora(model)(x), adapted, rtol=1e-5, atol=1e-5)
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_an_untied_lm_head_beside_a_classifier_is_not_counted_as_trained(tmp_path):
    run = open_run(finished(spec_of(model={"tie_weights": False}), tmp_path))
    vocab = len(run.vocab["tokens"])
    assert run.meta["trainable_params"] == run.meta["params"] - vocab * HEAD["d_model"]
    spec = spec_of(model={"tie_weights": False})
    assert count_trainable(spec.model, vocab, spec.train.lora, 2) == run.meta["trainable_params"]


def test_phases_must_keep_the_heads_classes(tmp_path):
    one = write_csv(tmp_path / "one.csv", ROWS)
    other = write_csv(
        tmp_path / "other.csv", [(t, "x" if lab == "pos" else "y") for t, lab in ROWS]
    )
    spec = spec_of(
        data={"source": "csv", "path": one},
        timeline={"phases": [{"start": 0}, {"start": 6, "data": {"source": "csv", "path": other}}]},
    )
    with pytest.raises(ConfigError, match=r"phases\[1\].data: classes \['x', 'y'\] differ"):
        start_run(spec, tmp_path / "runs")


def test_a_classifier_finetuned_on_other_classes_gets_a_fresh_head(tmp_path):
    base = finished(spec_of(), tmp_path / "runs")  # brackets: 2 classes
    rows = [(t, lab) for t, lab in ROWS] + [("()[]", "brackets")] * 3
    path = write_csv(tmp_path / "three.csv", rows)
    spec = spec_of(data={"source": "csv", "path": path}, train={"init_from": str(base)})
    run = open_run(finished(spec, tmp_path / "runs"))
    assert run.meta["data"]["classes"] == ["brackets", "neg", "pos"]
    head = load_checkpoint(run.checkpoints()[-1])["model"]["classifier.weight"]
    assert head.shape == (3, HEAD["d_model"])


def test_a_finetune_resumes_in_its_own_vocabulary(tmp_path):
    from engine.trainer import resume_run

    from .helpers import run_ticks_then_stop

    text = tmp_path / "t.txt"
    text.write_text("good bad neg pos\n" * 40, encoding="utf-8")
    base = finished(
        parse_spec(
            {
                "name": "base",
                "model": {**HEAD, "context": 8},
                "data": {"source": "text", "path": str(text)},
                "train": {"steps": 2, "batch_size": 2, "device": "cpu"},
            }
        ),
        tmp_path / "runs",
    )
    spec = spec_of(
        model={"context": 8},
        data={"source": "csv", "path": write_csv(tmp_path / "d.csv", ROWS)},
        train={"init_from": str(base), "checkpoint_every": 3},
    )
    handle = run_ticks_then_stop(spec, tmp_path / "runs", 4)
    (base / "spec.yaml").unlink()  # the base run is gone as a run: its vocabulary with it
    resumed = resume_run(handle.run_dir)
    assert resumed.join(120) and resumed.status == "finished", resumed.error
    assert open_run(handle.run_dir).vocab["tokens"][-2:] == [PAD, UNK]


def test_texts_cut_at_the_context_are_reported(tmp_path):
    from engine.messages import Log

    rows = ROWS + [("a very long review " * 3, "pos")]
    spec = spec_of(data={"source": "csv", "path": write_csv(tmp_path / "d.csv", rows)})
    logs = []
    handle = start_run(spec, tmp_path, lambda b: logs.extend(m for m in b if isinstance(m, Log)))
    assert handle.join(120) and handle.status == "finished", handle.error
    assert any("1 of 61 texts are longer than model.context=12" in m.text for m in logs)
