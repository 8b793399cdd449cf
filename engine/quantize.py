"""Post-training int8 quantization of a trained run, measured against the run's own fp32 model.

``int8_report(run_dir)`` loads the run's latest checkpoint on the CPU, makes an int8 copy with
PyTorch's dynamic quantization of every ``nn.Linear`` (``torch.ao.quantization.quantize_dynamic``
with ``per_channel_dynamic_qconfig``: int8 weights with one symmetric scale per output row, as
QAT fake-quantizes them (``engine.qat``); activations quantized per batch at run time; the
embeddings stay fp32), and scores both on the same validation batches the trainer scores
(``train.eval_batches`` of ``train.batch_size``, drawn with the generator seeded ``seed + 1``):
val loss, the size of the state dict as ``torch.save`` writes it (and zlib-compressed, where a
pruned model's zeros show), and CPU tokens per second of the forward pass.

A run with ``timeline.quantize`` (or ``train.int8_report: true``) is scored this way when it
finishes, and logs the report as scalars at its last tick (``int8_scalars``).

A tied embedding and head: the int8 head keeps its own int8 copy of the shared matrix, so the
int8 size counts the fp32 embedding and the int8 head both (what a deployed int8 model holds).
LoRA adapters are merged into their weights first.

``torch.ao.quantization`` is PyTorch's own, now-deprecated path (its successor, torchao, is not a
dependency here); its deprecation warnings are silenced where it is called.
"""

from __future__ import annotations

import copy
import io
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.config import RunSpec
from engine.lora import merge_lora
from engine.sample import load_model_from_run


@dataclass(frozen=True)
class Int8Report:
    """fp32 against int8 on one run's validation batches. Loss: mean cross-entropy (nats per
    token, as ``val/loss``); bytes: the state dict as ``torch.save`` writes it; tokens/s: CPU
    forward passes on ``threads`` torch threads."""

    val_loss_fp32: float
    val_loss_int8: float
    bytes_fp32: int
    bytes_int8: int
    zlib_bytes_fp32: int
    zlib_bytes_int8: int
    tokens_per_s_fp32: float
    tokens_per_s_int8: float
    threads: int


def quantize_int8(model: nn.Module) -> nn.Module:
    """An int8 copy of ``model`` (CPU, eval mode): every ``nn.Linear`` dynamically quantized,
    its weights per output channel."""
    fp32 = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        q = torch.ao.quantization
        per_channel = {nn.Linear: q.per_channel_dynamic_qconfig}
        return q.quantize_dynamic(fp32, per_channel, dtype=torch.qint8)


def _saved(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def state_bytes(model: nn.Module) -> int:
    """Bytes ``torch.save(model.state_dict())`` writes."""
    return len(_saved(model))


def zlib_bytes(model: nn.Module) -> int:
    """Those bytes compressed by zlib (level 6): a pruned model's zeros show here."""
    return len(zlib.compress(_saved(model), 6))


@torch.no_grad()
def _score(model: nn.Module, batches: list) -> tuple[float, float]:
    """(mean loss, tokens/s) of ``model`` over ``batches``; the first batch also warms up."""
    from engine.loss import batch_loss  # the trainer's own loss: the same val/loss

    batch_loss(model, batches[0])
    total, tokens = 0.0, 0
    start = time.perf_counter()
    for batch in batches:
        loss, _ = batch_loss(model, batch)
        total += loss.item()
        tokens += batch.x.numel() + (batch.src.numel() if batch.src is not None else 0)
    elapsed = time.perf_counter() - start
    return total / len(batches), tokens / elapsed


def int8_report(run_dir: str | Path, threads: int = 1) -> Int8Report:
    """Quantize the run's latest checkpoint to int8 and measure it against fp32 (on the CPU,
    with ``threads`` torch threads, restored afterwards)."""
    spec, task, _, model = load_model_from_run(run_dir)
    merge_lora(model)
    gen = torch.Generator().manual_seed(spec.seed + 1)  # the trainer's val batches
    t = spec.train
    batches = [task.batch("val", t.batch_size, gen) for _ in range(t.eval_batches)]
    int8 = quantize_int8(model)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        loss_fp32, speed_fp32 = _score(model, batches)
        loss_int8, speed_int8 = _score(int8, batches)
    finally:
        torch.set_num_threads(before)
    return Int8Report(
        val_loss_fp32=loss_fp32,
        val_loss_int8=loss_int8,
        bytes_fp32=state_bytes(model),
        bytes_int8=state_bytes(int8),
        zlib_bytes_fp32=zlib_bytes(model),
        zlib_bytes_int8=zlib_bytes(int8),
        tokens_per_s_fp32=speed_fp32,
        tokens_per_s_int8=speed_int8,
        threads=threads,
    )


def wants_int8_report(spec: RunSpec) -> bool:
    """Whether a run scores its int8 export when it finishes: with ``timeline.quantize`` or
    ``train.int8_report`` (other runs skip the few seconds it takes)."""
    return bool(spec.timeline.quantize) or spec.train.int8_report


def int8_scalars(report: Int8Report) -> dict[str, float]:
    """The report as a run's scalars: ``int8/val_loss``, ``int8/bytes``, ``int8/zlib_bytes``,
    ``int8/tokens_per_s`` and the same under ``fp32/`` (losses in nats per token, sizes in
    bytes, speeds in tokens per second on ``report.threads`` CPU threads)."""
    out = {}
    for prefix in ("fp32", "int8"):
        out[f"{prefix}/val_loss"] = getattr(report, f"val_loss_{prefix}")
        out[f"{prefix}/bytes"] = float(getattr(report, f"bytes_{prefix}"))
        out[f"{prefix}/zlib_bytes"] = float(getattr(report, f"zlib_bytes_{prefix}"))
        out[f"{prefix}/tokens_per_s"] = getattr(report, f"tokens_per_s_{prefix}")
    return out
