"""Quantization-aware training (``timeline.quantize: [{at, mode: qat}]``).

From tick ``at`` on, every ``nn.Linear`` of the model computes ``F.linear(x, fq(W), b)``, where
``fq`` is ``torch.ao.quantization.FakeQuantize`` with the per-channel symmetric int8 observer
that ``engine.quantize.quantize_int8`` uses for the int8 export (``PerChannelMinMaxObserver``,
qint8, one scale per output row, zero point 0): the forward sees the weights the int8 export
will hold, the backward passes the gradient straight through (``fake_quantize_per_channel_affine``:
identity inside the int8 range). This is what ``torch.ao.nn.qat.Linear`` computes; the weights
themselves stay fp32 and keep training. Embeddings stay fp32, as in the export. A head tied to
the embedding sees fake-quantized weights in the head only (the export's int8 head holds its own
copy of the matrix). Activations are not fake-quantized: the export quantizes them per batch at
run time (dynamic quantization), which is the one difference between the QAT forward and the
int8 model.

The observer is reset before every forward, so the scales are the current weights' own
(``max |W[row]| / 127.5``) and hold no state from earlier ticks: nothing to checkpoint, and a
resumed run recomputes exactly what an uninterrupted one had. Whether QAT is on is a function of
the tick alone (the timeline's ``quantize`` edge); ``engine.steering`` installs it at the first
``begin_tick`` at or after ``at`` and records it in its snapshot, which checkpoints store and a
resume checks.

Why not ``torch.ao.quantization.prepare_qat``: its module swap adds the fake-quant modules' buffers
to the state dict (``weight_fake_quant.scale`` ...), so checkpoints after ``at`` would no longer
load into the plain model that ``init_from``, sampling, ``int8_report`` and the Hugging Face
export build, and a checkpoint from before ``at`` would not load into the swapped model. Here
each Linear keeps its class, its parameters and its state-dict keys; the fake-quant module sits
in the instance's ``__dict__``, beside ``nn.Module``'s registries.

``torch.ao.quantization`` is PyTorch's own path, announced as moving to torchao (not a
dependency here); its deprecation warnings are silenced where it is called.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

FAKE_QUANT = "weight_fake_quant"  # the attribute each quantized Linear holds (not registered)


def weight_fake_quant() -> nn.Module:
    """A FakeQuantize for one weight matrix: int8, per output channel, symmetric."""
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        from torch.ao.quantization import FakeQuantize, PerChannelMinMaxObserver

        return FakeQuantize(
            observer=PerChannelMinMaxObserver,
            quant_min=-128,
            quant_max=127,
            dtype=torch.qint8,
            qscheme=torch.per_channel_symmetric,
            ch_axis=0,
        )


def _qat_forward(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    fq = module.__dict__[FAKE_QUANT]
    fq.activation_post_process.reset_min_max_vals()  # this forward's weights, no history
    return F.linear(x, fq(module.weight), module.bias)


def quantized_linears(model: nn.Module) -> list[str]:
    """Names of the Linear modules that train fake-quantized (empty before QAT)."""
    return [n for n, m in model.named_modules() if FAKE_QUANT in m.__dict__]


def install_qat(model: nn.Module) -> list[str]:
    """Fake-quantize every ``nn.Linear`` of ``model`` from now on (idempotent); the names."""
    for module in model.modules():
        if type(module) is nn.Linear and FAKE_QUANT not in module.__dict__:
            fq = weight_fake_quant().to(module.weight.device)
            module.__dict__[FAKE_QUANT] = fq
            module.forward = _qat_forward.__get__(module)  # an instance attribute: this one only
    return quantized_linears(model)


def remove_qat(model: nn.Module) -> None:
    """Back to plain fp32 Linear layers (a copy scored in fp32, a test)."""
    for module in model.modules():
        if module.__dict__.pop(FAKE_QUANT, None) is not None:
            del module.forward
