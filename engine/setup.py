"""Everything a run needs before its first tick, built from the spec without touching a file.

``set_up(spec, world)`` resolves the device, builds the data, compiles the timeline against the
data's real units (the rule ``plan_timeline`` follows), checks the device, the norm backends and
the memory, and builds the model, the optimizer and the steering. Whatever a bad spec can break
fails here with a ConfigError, before a run folder exists. It returns plain ``Parts``; the
trainer's loop (``engine.trainer``) only trains them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel

from engine.batch_schedule import peak_field
from engine.config import RunSpec
from engine.data import Task, Vocab, build_task
from engine.data.vocabulary import unknown_report
from engine.distributed import World
from engine.errors import ConfigError
from engine.estimate import available_memory, check_memory
from engine.lora import apply_lora
from engine.model import build_model
from engine.plan import units_of
from engine.pruning import Pruner
from engine.stats import StatsRecorder
from engine.steering import Steering, build_phase_tasks
from engine.timeline import CompiledTimeline

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice for this machine, at import


@dataclass
class Parts:
    """What a run trains with. ``net`` is what the forward goes through (``model`` itself, or
    its DistributedDataParallel wrapper); ``kept_ticks``: checkpoints never pruned."""

    spec: RunSpec
    world: World
    device: torch.device
    timeline: CompiledTimeline
    tokens_per_tick: int
    tasks: list[Task]
    unknown: list[str]
    model: torch.nn.Module
    net: torch.nn.Module
    compiled: torch.nn.Module | None  # ``net`` through torch.compile (train.compile), or None
    optimizer: torch.optim.Optimizer
    steering: Steering
    stats: StatsRecorder
    batches: torch.Generator
    kept_ticks: set[int]
    pruner: Pruner  # timeline.prune: the masks, applied after each optimizer step


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU (the spec has checked the name's form)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_device(device: torch.device, name: str) -> None:
    """A ConfigError when ``device`` (the spec said ``name``) is not usable here."""
    if device.type != "cuda":
        return
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else "no visible GPU"
        raise ConfigError(
            "train.device", f"{name}: this torch ({torch.__version__}) has {build}; use auto"
        )
    if (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            "train.device", f"{name}: only {torch.cuda.device_count()} CUDA device(s)"
        )


def check_backends(timeline: CompiledTimeline, model_backend: str, device: torch.device) -> None:
    """A Triton norm needs a CUDA device, or Triton's CPU interpreter (TRITON_INTERPRET=1):
    read from the compiled timeline (the backend every norm has at any tick)."""
    if device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1":
        return
    if model_backend == "triton":
        raise ConfigError(
            "model.norm_backend", "triton needs a CUDA device (this run is on the CPU); use auto"
        )
    for edge in timeline.edges():
        if edge.detail.get("action") == "backend" and edge.detail.get("backend") == "triton":
            raise ConfigError(
                f"{edge.source}.backend", "triton needs a CUDA device; this run is on the CPU"
            )


def freezes_anything(timeline: CompiledTimeline) -> bool:
    """Whether some tick trains with frozen parameters (a phase's patterns, a norm frozen):
    DistributedDataParallel must then expect parameters without a gradient."""
    return any(p.frozen for p in timeline.phases) or any(
        e.kind == "norm" and e.detail.get("action") == "freeze" for e in timeline.edges()
    )


def make_optimizer(model: torch.nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    """AdamW/Adam/SGD with weight decay on matrices only (biases and norm gains are exempt)."""
    t = spec.train
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": t.weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=t.lr, betas=t.betas)


def set_up(spec: RunSpec, world: World, stored: dict | None = None) -> Parts:
    """The parts of a run of ``spec`` on ``world`` (``stored``: a resumed run's metadata, its
    vocabulary and where it was forked from). Raises ConfigError; writes nothing."""
    t = spec.train
    # Always set it: the count is process-wide, and a run must not inherit the previous
    # run's setting (float sums, hence losses, depend on it).
    torch.set_num_threads(t.threads or DEFAULT_THREADS)
    device = resolve_device(t.device)
    check_device(device, t.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    first = build_task(spec.data, spec.model)
    units = units_of(spec, first, world.size)
    timeline = CompiledTimeline(spec, units)
    check_backends(timeline, spec.model.norm_backend, device)
    # a resumed run reads its data in its own stored vocabulary, whatever its base became
    stored = stored or {}
    vocab = stored.get("vocab")
    tasks = build_phase_tasks(spec, timeline, first, Vocab.from_dict(vocab) if vocab else None)
    first = tasks[0]  # in the run's vocabulary (a finetune's is its base model's)
    # refused before anything is allocated: the largest batch one forward pass holds
    peak, field = peak_field(spec, timeline.batch_curve())
    rows = min(peak, t.micro_batch) if t.micro_batch else peak
    check_memory(spec.model, first.vocab_size, rows, t.optimizer, available_memory(device), field)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, first.vocab_size, first.n_classes, first.pad_id)
    if spec.model.from_pretrained and not stored:  # a resumed run's checkpoint has its weights
        from engine.pretrained.weights import load_pretrained_into

        load_pretrained_into(model, spec.model.from_pretrained)
    model = model.to(device)
    apply_lora(model, t.lora)
    optimizer = make_optimizer(model, spec)
    kept = {p.start for p in timeline.phases} | {
        e.tick + 1
        for e in timeline.edges()
        if e.kind == "mark" and e.detail.get("action") == "checkpoint"
    }
    if isinstance(stored.get("forked_from"), dict):
        kept.add(stored["forked_from"].get("tick"))
    net = model
    if world.distributed:
        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=freezes_anything(timeline),
        )
    return Parts(
        spec=spec,
        world=world,
        device=device,
        timeline=timeline,
        tokens_per_tick=units.tokens_per_tick,
        tasks=tasks,
        unknown=unknown_report(tasks),  # characters read as the unknown token, per data
        model=model,
        net=net,
        compiled=torch.compile(net) if t.compile else None,  # compiles at its first call
        optimizer=optimizer,
        steering=Steering(spec, timeline, model, optimizer, tasks),
        # rank 0 alone records activation statistics (of its slice of the batch)
        stats=StatsRecorder(model, t.stats_every if world.is_main else 0),
        batches=torch.Generator().manual_seed(spec.seed),
        kept_ticks=kept,
        pruner=Pruner(spec, timeline.units, model),  # its token positions count the batch lane
    )
