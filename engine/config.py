"""The run spec: one YAML document mapped 1:1 onto nested dataclasses.

Every field carries its help text and range as metadata, so the loader, the validator and (later)
the GUI form are generated from one place. Any invalid input raises ``ConfigError`` naming the
field path (``model.n_head``) and the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from engine.errors import ConfigError, join_path, show

# A timeline position: an int is a tick; a string is "25%", "2ep", "1.5Mtok" (resolved by the
# timeline compiler, which knows the run length and the data).
Position = Union[int, str]

LARGEST_INT = 2**63 - 1  # no integer field takes more (torch seeds, int64 tensors, ...)
LONGEST_NAME = 200  # characters in a run or phase name


def spec_field(
    default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None, **limits
):
    """A dataclass field with help text and limits (min, max, gt, lt) kept as metadata."""
    meta = {"help": help, **limits}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    from_pretrained: str = spec_field(
        "",
        "start from a GPT-2-family checkpoint: a Hugging Face model folder, a nanoGPT ckpt.pt "
        "or a hub name such as gpt2; its architecture fills the fields below",
    )
    arch: Literal["decoder", "encoder_decoder"] = spec_field(
        "decoder", "decoder: GPT-style causal LM; encoder_decoder: seq2seq with cross-attention"
    )
    n_layer: int = spec_field(
        4, "Transformer blocks (per stack for encoder_decoder)", min=1, max=48
    )
    n_head: int = spec_field(4, "attention heads; must divide d_model", min=1, max=64)
    d_model: int = spec_field(128, "width of the residual stream", min=1, max=8192)
    d_ff: int = spec_field(512, "hidden width of the MLP", min=1, max=32768)
    context: int = spec_field(64, "longest sequence the model sees, in tokens", min=2, max=8192)
    dropout: float = spec_field(0.0, "dropout probability (0 = off)", min=0.0, lt=1.0)
    activation: Literal["gelu", "gelu_tanh", "relu", "tanh", "sigmoid", "swiglu"] = spec_field(
        "gelu", "MLP non-linearity (gelu_tanh: GPT-2's tanh approximation of gelu)"
    )
    norm: Literal["layernorm", "rmsnorm", "none"] = spec_field("layernorm", "normalisation layer")
    norm_position: Literal["pre", "post"] = spec_field(
        "pre", "pre: norm before each sublayer (GPT-2); post: after the residual add (2017)"
    )
    norm_eps: float = spec_field(1e-5, "epsilon added to the variance", gt=0.0, max=1.0)
    norm_center: Literal["strength", "always"] = spec_field(
        "strength",
        "LayerNorm below full strength: strength: subtract s·mean (nothing per token is left "
        "at s = 0); always: keep subtracting the mean (the papers' FakeLN, exportable to "
        "transformers)",
    )
    norm_backend: Literal["auto", "triton", "torch"] = spec_field(
        "auto", "auto: Triton kernels on a CUDA device, PyTorch elsewhere"
    )
    bias: bool = spec_field(True, "biases in linear layers and norms")
    tie_weights: bool = spec_field(True, "share the token embedding with the output head")
    head: Literal["lm", "classify"] = spec_field(
        "lm",
        "lm: next-token logits; classify: a linear classifier on the pooled final hidden state "
        "(decoder only; for tasks with classes: brackets, csv)",
    )
    pooling: Literal["last", "mean"] = spec_field(
        "last", "classify: read the last token's hidden state, or the mean over the tokens"
    )


# The model fields a pretrained checkpoint fixes (``engine.pretrained.apply_pretrained``).
PRETRAINED_FIELDS = (
    "arch", "n_layer", "n_head", "d_model", "d_ff", "context", "activation", "norm",
    "norm_position", "norm_eps", "bias", "tie_weights",
)  # fmt: skip


@dataclass
class DataConfig:
    source: Literal["text", "copy", "reverse", "sort", "add", "modadd", "brackets", "csv"] = (
        spec_field("text", "text corpus, a built-in synthetic task, or a CSV of text,label rows")
    )
    path: str = spec_field(
        "builtin:python-stdlib",
        "text: builtin:python-stdlib or a path to a text file; csv: a path to a text,label CSV",
    )
    objective: Literal["task", "lm"] = spec_field(
        "task",
        "task: the task's own targets; lm: next-token prediction on the task's inputs alone, "
        "without labels or answers (pretraining)",
    )
    train_examples: int = spec_field(
        0,
        "train on a fixed pool of this many examples, the same for every seed (0 = all)",
        min=0,
    )
    tokenizer: Literal["char", "bpe"] = spec_field(
        "char",
        "char: one token per character; bpe: byte-level BPE, the pretrained model's own or "
        "one trained on the text with bpe_vocab tokens",
    )
    bpe_vocab: int = spec_field(
        2048, "bpe without a pretrained model: tokens in the BPE trained on the text",
        min=260, max=65536,
    )  # fmt: skip
    val_fraction: float = spec_field(
        0.1, "share of the data held out for validation", gt=0.0, lt=1.0
    )
    seq_len: int = spec_field(
        8, "synthetic tasks: items per sequence (digits for add)", min=1, max=512
    )
    vocab: int = spec_field(10, "synthetic tasks: alphabet size", min=2, max=64)
    modulus: int = spec_field(97, "modadd: the modulus p", min=2, max=1000)
    max_chars: int = spec_field(
        2_000_000, "text: cap on characters read (the built-in corpus is cut here)", min=1000
    )


@dataclass
class LoRAConfig:
    rank: int = spec_field(
        0, "adapter rank r (0 = off: train the weights themselves)", min=0, max=1024
    )
    alpha: float = spec_field(
        16.0, "update scale: the adapter output is multiplied by alpha/r", gt=0.0
    )
    targets: list[str] = spec_field(
        help="projections to adapt, by name suffix: attn.q, attn.kv, attn.proj, mlp.fc, ...",
        factory=lambda: ["attn.q", "attn.kv"],
    )


@dataclass
class TrainConfig:
    steps: int = spec_field(2000, "optimizer steps (ticks) in the run", gt=0, max=1_000_000)
    batch_size: int = spec_field(12, "sequences per step", min=1, max=65536)
    micro_batch: int = spec_field(
        0,
        "sequences per forward pass: the step's batch is split and its gradients accumulated, "
        "with the same loss and gradients (0 = the whole batch at once)",
        min=0,
        max=65536,
    )
    optimizer: Literal["adamw", "adam", "sgd"] = spec_field("adamw", "optimizer")
    lr: float = spec_field(1e-3, "learning rate when the timeline has no lr segments", min=0.0)
    betas: tuple[float, float] = spec_field((0.9, 0.99), "Adam/AdamW betas")
    momentum: float = spec_field(0.9, "SGD momentum", min=0.0, lt=1.0)
    weight_decay: float = spec_field(0.1, "decoupled weight decay (matrices only)", min=0.0)
    grad_clip: float = spec_field(1.0, "clip the global grad norm to this (0 = off)", min=0.0)
    device: str = spec_field("auto", "auto (CUDA when present), cpu, cuda, cuda:N")
    threads: int = spec_field(0, "torch CPU threads (0 = torch's default)", min=0, max=1024)
    compile: bool = spec_field(
        False,
        "compile the model with torch.compile: a minute or more of compiling at the start, "
        "then faster ticks (a ramp does not recompile; ticks that record activation statistics "
        "or calibrate sigma-bar run uncompiled)",
    )
    eval_every: int = spec_field(
        100, "ticks between validation passes (0 = only at the end)", min=0
    )
    eval_batches: int = spec_field(20, "batches per validation pass", min=1, max=100_000)
    checkpoint_every: int = spec_field(
        500, "ticks between checkpoints (0 = only at the end)", min=0
    )
    keep_checkpoints: int = spec_field(
        3,
        "keep the last N periodic checkpoints (phase boundaries and marked checkpoints are "
        "always kept; 0 keeps all)",
        min=0,
    )
    stats_every: int = spec_field(25, "ticks between activation-statistics captures", min=0)
    init_from: str | None = spec_field(
        None, "run folder or checkpoint whose weights start this run (a finetune)"
    )
    int8_report: bool = spec_field(
        False,
        "at the end, score the run's int8 export (dynamic int8 Linear layers) against fp32 on "
        "the val batches: int8/... and fp32/... scalars (always on with timeline.quantize)",
    )
    eval_train: bool = spec_field(
        False, "also score eval_batches train batches at each eval (train/accuracy, ...)"
    )
    lora: LoRAConfig = spec_field(
        help="LoRA adapters instead of full finetuning", factory=LoRAConfig
    )


@dataclass
class LRSegment:
    start: Position = spec_field(0, "first tick of the segment")
    end: Position = spec_field("100%", "one past the last tick")
    shape: Literal["constant", "linear", "cosine", "exp", "step", "points"] = spec_field(
        "constant", "curve between start and end"
    )
    from_: float | None = spec_field(None, "value at the start (YAML key: from)", min=0.0)
    to: float | None = spec_field(None, "value reached at the last tick", min=0.0)
    milestones: list[Position] = spec_field(
        help="step: ticks where the LR is multiplied", factory=list
    )
    gamma: float = spec_field(0.1, "step: factor applied at each milestone", gt=0.0)
    points: list[list[float]] = spec_field(
        help="points: [[u, value], ...], u in [0, 1]", factory=list
    )
    log: bool = spec_field(False, "points: interpolate log-values")


@dataclass
class PruneSpec:
    start: Position = spec_field(0, "first tick of the schedule")
    end: Position = spec_field("100%", "one past the last tick; the last tick reaches to")
    every: int = spec_field(
        10, "ticks between pruning steps (the last tick of the span always prunes)", min=1
    )
    from_: float = spec_field(
        0.0, "sparsity the cubic starts from, just before start (YAML key: from)", min=0.0, lt=1.0
    )
    to: float = spec_field(0.5, "sparsity reached at the last tick", min=0.0, lt=1.0)
    params: list[str] = spec_field(
        help="weight matrices to prune, by name pattern (blocks.0-1, *.mlp.fc.weight); biases "
        "and norm gains are never pruned",
        factory=list,
    )
    name: str = spec_field(
        "",
        "the group's name: its sparsity is logged as sparsity/<name> (default: the patterns "
        "joined with +)",
    )


@dataclass
class QuantizeSpec:
    at: Position = spec_field(0, "tick from which the run trains with fake-quantized weights")
    mode: Literal["qat"] = spec_field(
        "qat",
        "qat: quantization-aware training, every Linear weight fake-quantized to int8 per "
        "output channel in the forward pass (torch.ao.quantization.FakeQuantize)",
    )


@dataclass
class PhaseSpec:
    name: str = spec_field("phase", "shown on every plot")
    start: Position = spec_field(0, "first tick of the phase; the first phase starts at 0")
    data: DataConfig | None = spec_field(
        None, "a complete data section for this phase (unset keys take their defaults)"
    )
    freeze: list[str] = spec_field(
        help="parameter names, globs or layer ranges to freeze from here on (embed, blocks.0-1, "
        "*.ln_*)",
        factory=list,
    )
    unfreeze: list[str] = spec_field(help="parameter names or globs to train again", factory=list)
    lr_scale: float = spec_field(1.0, "multiplies the LR segments during this phase", min=0.0)
    weight_decay: float | None = spec_field(
        None, "weight decay during this phase (unset: train.weight_decay)", min=0.0
    )
    init_from: str | None = spec_field(
        None, "run folder or checkpoint whose weights are loaded at the phase's first tick"
    )
    lr_batch_scaling: Literal["none", "linear", "sqrt"] = spec_field(
        "none",
        "during this phase, multiply the LR by (batch / train.batch_size) (linear) or its "
        "square root (sqrt), the batch being timeline.batch's at that tick",
    )


@dataclass
class NormEvent:
    at: Position = spec_field(0, "tick where the event applies (the first layer, with stagger)")
    action: Literal["set", "ramp", "freeze", "unfreeze", "eps", "backend", "calibrate", "sigma"] = (
        spec_field("set", "what happens to the selected norms")
    )
    layers: Literal["all", "final"] | list[int] = spec_field(
        "all", "all, final, or a list of block indices"
    )
    stagger: int = spec_field(0, "ticks between consecutive layers (layer-by-layer)", min=0)
    sites: Literal["all", "attn", "mlp", "cross"] = spec_field(
        "all",
        "which norms of each selected block: all (the final norm too, when selected), or only "
        "the one before attention, the MLP or cross-attention",
    )
    strength: float | None = spec_field(None, "set: the strength, 0..1", min=0.0, max=1.0)
    to: float | None = spec_field(None, "ramp: the strength reached", min=0.0, max=1.0)
    over: int | None = spec_field(None, "ramp: ticks the ramp takes", min=1)
    shape: Literal["linear", "cosine"] = spec_field("linear", "ramp: curve")
    eps: float | None = spec_field(None, "eps: the new epsilon", gt=0.0)
    backend: Literal["auto", "triton", "torch"] | None = spec_field(None, "backend: the new one")
    sigma: float | None = spec_field(
        None, "sigma: set σ̄ to this value (it then counts as calibrated: none is automatic)", gt=0.0
    )


@dataclass
class Mark:
    action: Literal["checkpoint", "eval", "note"] = spec_field("note", "what the mark does")
    at: Position | None = spec_field(None, "tick of the mark")
    every: int | None = spec_field(None, "repeat every this many ticks (instead of at)", min=1)
    text: str = spec_field("", "note: the label drawn on the plots")


@dataclass
class TimelineConfig:
    phases: list[PhaseSpec] = spec_field(help="contiguous phases, in order", factory=list)
    lr: list[LRSegment] = spec_field(help="learning-rate segments, in order", factory=list)
    batch: list[LRSegment] = spec_field(
        help="batch-size segments (sequences per tick, whole numbers >= 1; the LR segment's "
        "fields and shapes; ticks or % positions); outside them train.batch_size",
        factory=list,
    )
    layernorm: list[NormEvent] = spec_field(help="events on the norms", factory=list)
    marks: list[Mark] = spec_field(help="checkpoints, evals and notes", factory=list)
    prune: list[PruneSpec] = spec_field(
        help="gradual magnitude pruning of weight groups (Zhu & Gupta 2017)", factory=list
    )
    quantize: list[QuantizeSpec] = spec_field(
        help="quantization events: QAT int8 from a tick (the run's int8 export is scored at the "
        "end)",
        factory=list,
    )


@dataclass
class RunSpec:
    name: str = spec_field("run", "run name (becomes a safe folder name)")
    description: str = spec_field("", "what this run is for; presets state their measured claim")
    seed: int = spec_field(1337, "seed for weights, batches and dropout", min=0)
    model: ModelConfig = spec_field(factory=ModelConfig)
    data: DataConfig = spec_field(factory=DataConfig)
    train: TrainConfig = spec_field(factory=TrainConfig)
    timeline: TimelineConfig = spec_field(factory=TimelineConfig)


# --- YAML <-> dataclasses -------------------------------------------------------------------

SYNTHETIC_SOURCES = ("copy", "reverse", "sort", "add", "modadd", "brackets")


def _key(name: str) -> str:
    """Python field name -> YAML key (``from_`` is ``from`` in YAML)."""
    return name.rstrip("_")


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in the dataclass's form."""
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own error, with its own (deeper) path
            return _convert(options[0], value, path)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(exc.reason)
        too_large = [e for e in errors if e.startswith("must be within")]  # right type
        if too_large:
            raise ConfigError(path, too_large[0])
        got = f", got {show(value)}"
        if all(e.startswith("expected ") and e.endswith(got) for e in errors):
            wanted = " or ".join(e.removeprefix("expected ").removesuffix(got) for e in errors)
            raise ConfigError(path, f"expected {wanted}{got}")
        raise ConfigError(path, " or ".join(errors))
    if origin is Literal:
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise ConfigError(path, f"must be one of {choices}; got {show(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_type_name(value)}")
        return [_convert(args[0], v, join_path(path, i)) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(path, f"expected a list of {len(args)} numbers, got {show(value)}")
        return tuple(
            _convert(a, v, join_path(path, i)) for i, (a, v) in enumerate(zip(args, value))
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {show(value)}")
        if abs(value) > LARGEST_INT:
            raise ConfigError(path, f"must be within ±{LARGEST_INT}, got {show(value)}")
        return value
    if tp is float:
        # YAML 1.1 reads "1e-3" (no dot) as a string; accept what any user means by it.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(path, f"expected a number, got {show(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"expected a number, got {show(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int past the largest float
            number = math.inf
        if not math.isfinite(number):
            raise ConfigError(path, f"must be a finite number, got {show(value)}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {show(value)}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a bug in this module


def _check_limits(meta: dict, value: Any, path: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if "min" in meta and value < meta["min"]:
        raise ConfigError(path, f"must be >= {meta['min']}, got {value}")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(path, f"must be > {meta['gt']}, got {value}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(path, f"must be <= {meta['max']}, got {value}")
    if "lt" in meta and value >= meta["lt"]:
        raise ConfigError(path, f"must be < {meta['lt']}, got {value}")


@functools.cache
def _fields_of(cls: type) -> tuple[dict, dict]:
    """(type hints by field name, fields by YAML key) of dataclass ``cls``, worked out once:
    ``typing.get_type_hints`` evaluates every annotation, and took a third of a spec's load."""
    hints = typing.get_type_hints(cls)
    return hints, {_key(f.name): f for f in dataclasses.fields(cls)}


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain YAML data, checking keys, types and limits."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path or "spec", f"expected a mapping, got {_type_name(data)}")
    hints, fields = _fields_of(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(join_path(path, key), "unknown key")
    kwargs = {}
    for key, value in data.items():
        f = fields[key]
        sub = join_path(path, key)
        converted = _convert(hints[f.name], value, sub)
        for i, item in enumerate(
            converted if isinstance(converted, (list, tuple)) else [converted]
        ):
            _check_limits(f.metadata, item, join_path(sub, i) if converted is not item else sub)
        kwargs[f.name] = converted
    return cls(**kwargs)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def to_dict(obj: Any, compact: bool = False) -> Any:
    """Dataclass -> plain YAML data (tuples become lists, ``from_`` becomes ``from``).

    Items of lists (timeline events) are written compactly: fields left at their default are
    omitted, so a saved timeline reads like the one the user wrote.
    """
    if dataclasses.is_dataclass(obj):
        return {
            _key(f.name): to_dict(getattr(obj, f.name), compact)
            for f in dataclasses.fields(obj)
            if not (compact and getattr(obj, f.name) == _default(f))
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v, compact=True) for v in obj]
    return obj


# --- cross-field rules ----------------------------------------------------------------------

CLASSIFY_SOURCES = ("brackets", "csv")  # the data sources whose examples have class labels


def check_name(name: str, path: str) -> None:
    """A run or phase name: not blank, at most LONGEST_NAME characters, no control characters
    (it becomes a folder name and a label in CSV rows and plots)."""
    if not name.strip():
        raise ConfigError(path, "must not be empty")
    if len(name) > LONGEST_NAME:
        raise ConfigError(path, f"has {len(name)} characters; at most {LONGEST_NAME}")
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cf", "Cs"):
            raise ConfigError(path, f"contains the control character {c!r}")


def _check_device(name: str) -> None:
    import torch  # local: reading a spec needs no torch otherwise

    try:
        ok = name == "auto" or torch.device(name).type in ("cpu", "cuda")
    except (RuntimeError, ValueError, TypeError):  # torch's "Invalid device string"
        ok = False
    if not ok:
        raise ConfigError("train.device", f"must be auto, cpu, cuda or cuda:N; got {show(name)}")


def check_fields(spec: RunSpec) -> RunSpec:
    """Rules that involve more than one field, the timeline aside (``engine.specs.validate``
    adds it). Raises ConfigError; returns the spec."""
    m, d = spec.model, spec.data
    check_name(spec.name, "name")
    for i, phase in enumerate(spec.timeline.phases):
        check_name(phase.name, f"timeline.phases[{i}].name")
    if m.d_model % m.n_head:
        raise ConfigError("model.d_model", f"{m.d_model} is not divisible by n_head={m.n_head}")
    if m.arch == "encoder_decoder" and d.source == "text":
        raise ConfigError(
            "model.arch",
            "encoder_decoder needs a seq2seq task (copy, reverse, sort, add, ...), "
            "not data.source=text",
        )
    if d.source == "text" and not d.path:
        raise ConfigError("data.path", "a text source needs a path (or builtin:python-stdlib)")
    if d.tokenizer == "bpe" and d.source not in ("text", "csv"):
        raise ConfigError(
            "data.tokenizer", f"bpe tokenizes text (data.source: text or csv), not {d.source}"
        )
    if m.head == "classify" and m.arch != "decoder":
        raise ConfigError("model.head", "a classification head sits on a decoder")
    if m.head == "classify" and d.source not in CLASSIFY_SOURCES:
        raise ConfigError(
            "model.head",
            f"a classification head needs a task with classes ({', '.join(CLASSIFY_SOURCES)}), "
            f"not data.source={d.source}",
        )
    if d.source == "csv" and m.head != "classify":
        raise ConfigError("model.head", "a csv of text,label rows needs model.head: classify")
    if m.head == "classify" and d.objective == "lm":
        raise ConfigError("data.objective", "lm pretraining needs model.head: lm")
    if d.objective == "lm" and d.source in ("text", "csv"):
        raise ConfigError("data.objective", f"lm applies to synthetic tasks, not {d.source}")
    if d.objective == "lm" and m.arch != "decoder":
        raise ConfigError("data.objective", "lm pretraining trains a decoder")
    _check_device(spec.train.device)
    if spec.train.lora.rank > m.d_model:  # every adapted projection has d_model on one side
        raise ConfigError(
            "train.lora.rank",
            f"{spec.train.lora.rank} is more than model.d_model={m.d_model} (a rank-r update "
            "needs r <= the smaller side of the matrix)",
        )
    return spec
