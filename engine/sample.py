"""Sampling from a run's checkpoint: text continuations, or task answers next to the truth."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.checkpoint import load_checkpoint
from engine.data import Vocab, build_task
from engine.data.vocabulary import PAD, fit_vocab
from engine.lora import apply_lora
from engine.model import build_model, generate
from engine.runs import open_run


def load_model_from_run(run_dir: str | Path, checkpoint: Path | None = None):
    """(spec, task, vocab, model in eval mode on the CPU) from a run's latest (or given)
    checkpoint. The vocabulary is the one stored with the run, even if a text file changed."""
    record = open_run(run_dir)
    ckpts = record.checkpoints()
    if checkpoint is None:
        if not ckpts:
            raise FileNotFoundError(f"{run_dir} has no checkpoint yet")
        checkpoint = ckpts[-1]
    spec = record.spec
    vocab = Vocab.from_dict(record.vocab)  # what the model was trained on
    task = fit_vocab([build_task(spec.data, spec.model)], vocab, ["data"])[0]  # run's tokens
    model = build_model(spec.model, len(vocab.tokens), task.n_classes, task.pad_id)
    apply_lora(model, spec.train.lora)
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    model.eval()
    return spec, task, vocab, model


@torch.no_grad()
def sample_run(
    run_dir: str | Path,
    prompt: str = "\n",
    tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
    seed: int = 0,
    examples: int = 8,
) -> str:
    """Generated text for a language-model run; for a task, ``examples`` held-out inputs with
    the model's greedy answer and the expected one."""
    spec, task, vocab, model = load_model_from_run(run_dir)
    gen = torch.Generator().manual_seed(seed)
    if task.kind == "lm":
        if prompt == "\n" and hasattr(task, "bos_id"):  # a synthetic task's LM: from its start
            prompt = vocab.tokens[task.bos_id]
        unknown = vocab.unknown(prompt)
        if unknown:
            raise ValueError(f"the prompt has characters this run never saw: {unknown}")
        idx = torch.tensor([vocab.encode(prompt) or [0]], dtype=torch.long)
        out = generate(model, idx, tokens, temperature=temperature, top_k=top_k, generator=gen)
        return vocab.decode(out[0].tolist())
    batch = task.batch("val", examples, gen)
    pred = model(batch.x, batch.src).argmax(-1)
    if task.n_classes:  # a classification head: one class per example
        classes = task.info["classes"]
        lines = []
        for i in range(examples):
            text = task.vocab.decode(batch.x[i].tolist()).replace(PAD, "")
            got, want = classes[int(pred[i])], classes[int(batch.y[i])]
            verdict = "ok" if got == want else "WRONG"
            lines.append(f"{text} -> {got}   (expected {want}) {verdict}")
        return "\n".join(lines)
    lines = []
    for i in range(examples):
        mask = batch.y[i] >= 0
        source = batch.src[i] if batch.src is not None else batch.x[i][~mask]
        got = task.vocab.decode(pred[i][mask].tolist())
        want = task.vocab.decode(batch.y[i][mask].tolist())
        verdict = "ok" if got == want else "WRONG"
        lines.append(f"{task.vocab.decode(source.tolist())} -> {got}   (expected {want}) {verdict}")
    return "\n".join(lines)
