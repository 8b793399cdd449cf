"""Pretrained GPT-2-family checkpoints in, Hugging Face GPT-2 folders out.

``model.from_pretrained`` names a Hugging Face model folder (``config.json`` with
``model.safetensors``, a sharded ``model.safetensors.index.json`` or ``pytorch_model.bin``), a
nanoGPT ``ckpt.pt`` (a dict with ``model_args`` and ``model``), or a hub name such as ``gpt2``
(the local Hugging Face cache first, then one download attempt with short timeouts). Only
GPT-2-family models load: learned positions, pre-LN LayerNorm blocks, biases, fused ``c_attn``.

- :func:`resolve_pretrained`: the local folder or file a source means.
- :func:`pretrained_arch`: the ``ModelConfig`` fields the checkpoint fixes, and its vocab size.
- :func:`apply_pretrained`: a spec's model section with those fields filled in; a field the spec
  sets (to something other than its default) that disagrees is a ConfigError naming it. A field
  left at its default counts as unset: a dataclass cannot tell the two apart.
- :func:`pretrained_tokenizer`: the checkpoint's own byte-level BPE (``tokenizer.json``, or
  ``vocab.json`` + ``merges.txt``; beside a nanoGPT ``ckpt.pt`` a ``tokenizer.json``).
- :func:`load_pretrained_into` / :func:`load_pretrained`: the weights in an engine Transformer.
  Every Norm keeps its strength (1 in a fresh model) and its σ̄, so the model computes what the
  checkpoint does.
- :func:`export_hf`: a folder ``transformers.GPT2LMHeadModel.from_pretrained`` loads.

Name mapping (HF GPT-2 stores ``Conv1D`` weights as (in, out), transposed here; nanoGPT stores
``nn.Linear`` weights as (out, in), and ``torch.compile`` prefixes them with ``_orig_mod.``)::

    transformer.wte / wpe             embed / pos
    transformer.h.{i}.ln_1 / ln_2     blocks.{i}.ln_attn / ln_mlp
    transformer.h.{i}.attn.c_attn     blocks.{i}.attn.q (first C outputs), attn.kv (keys, values)
    transformer.h.{i}.attn.c_proj     blocks.{i}.attn.proj
    transformer.h.{i}.mlp.c_fc/c_proj blocks.{i}.mlp.fc / mlp.proj
    transformer.ln_f                  ln_final
    lm_head                           head (absent or ignored when tied to wte)

HF's ``transformer.`` prefix is optional (the hub's ``gpt2`` stores ``GPT2Model`` names), and the
causal-mask buffers ``h.{i}.attn.bias`` / ``attn.masked_bias`` are skipped.

Export. GPT-2 has one global ``layer_norm_epsilon`` and LayerNorms that always centre, so the
norms decide what can be written:

- every norm at strength 1 (sharing one eps): an ordinary, exact export.
- every norm at strength 0 with ``center == "always"`` (FakeLN: ``y = (x - μ)/σ̄·w + b``): written
  with ``layer_norm_epsilon = E = 1e12`` and each norm's weight scaled by ``sqrt(E)/σ̄``. HF then
  computes ``(x - μ)/sqrt(var + E)·w·sqrt(E)/σ̄ + b``, which is the FakeLN up to a relative error
  of ``var/(2E)``, below fp32 rounding for any realistic variance (in fp32, ``var + 1e12`` rounds
  to ``1e12`` for var < 32768). This is the trick of the published LayerNorm-free GPT-2 exports.
  The scaled weights are about 1e6: load such a folder in fp32 or bf16, not fp16.
- anything else (a mix of strengths, strengths strictly between 0 and 1, strength 0 with
  ``center == "strength"``, whose missing centring a GPT-2 LayerNorm cannot undo) is refused, with
  what would make it exportable.

Also refused: encoder-decoder models, RMSNorm / no norm / post-norm, activations other than gelu
and gelu_tanh, unmerged LoRA adapters (merge them first: ``engine.lora.merge_lora``), and a
classification head (``GPT2LMHeadModel`` has no place for the classifier, and the LM head of a
classifier run is untrained). A model without biases is written with zero biases, which is exact.
Everything is written in fp32. ``tokenizer.json`` (with a small ``tokenizer_config.json``) is
written when the vocabulary is a BPE; a character vocabulary has no transformers tokenizer.
"""

from engine.pretrained.arch import apply_pretrained, pretrained_arch
from engine.pretrained.export import export_hf, export_run_hf
from engine.pretrained.source import resolve_pretrained
from engine.pretrained.tokenizer import pretrained_tokenizer
from engine.pretrained.weights import load_pretrained, load_pretrained_into

__all__ = [
    "apply_pretrained",
    "export_hf",
    "export_run_hf",
    "load_pretrained",
    "load_pretrained_into",
    "pretrained_arch",
    "pretrained_tokenizer",
    "resolve_pretrained",
]
