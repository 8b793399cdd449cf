"""Applies the compiled timeline to a live run: data, frozen parameters, weight decay, loaded
weights and every norm's strength / eps / backend / σ̄, tick by tick.

Everything it sets is derived from the tick alone (the timeline is pure), so a resumed run reaches
the same state as an uninterrupted one; ``snapshot`` is what a checkpoint stores to prove it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from engine.checkpoint import load_checkpoint, model_weights
from engine.config import RunSpec
from engine.data import Task, Vocab, build_task
from engine.data.vocabulary import fit_vocab
from engine.errors import ConfigError
from engine.lora import is_adapter, never_trained
from engine.qat import install_qat, quantized_linears
from engine.runs import open_run
from engine.timeline import CompiledTimeline, Edge, Phase, matches


def build_phase_tasks(
    spec: RunSpec, timeline: CompiledTimeline, first: Task, vocab: Vocab | None = None
) -> list[Task]:
    """One task per phase (shared when the data is the same), all in the run's vocabulary.

    The run's vocabulary is ``vocab`` (a resumed run's own), else that of the run its weights
    start from (``train.init_from``, when it is a run folder), else the first data's. Characters
    a phase's text lacks there read as the unknown token (see ``engine.data.vocabulary``). A
    synthetic task in other tokens, or other classes, is a ConfigError: the embedding and the
    head are fixed.
    """
    tasks, fields = [first], ["data"]
    for phase in timeline.phases[1:]:
        prev = timeline.phases[phase.index - 1]
        path = f"timeline.phases[{phase.index}].data"
        if phase.data == prev.data:
            tasks.append(tasks[-1])
            fields.append(fields[-1])
            continue
        try:
            task = build_task(phase.data, spec.model)
        except ConfigError as exc:
            raise ConfigError(f"{path}.{exc.path.removeprefix('data.')}", exc.reason) from None
        if task.n_classes != first.n_classes:
            raise ConfigError(
                path, f"{task.n_classes} classes; the run's head has {first.n_classes}"
            )
        if task.n_classes and task.info.get("classes") != first.info.get("classes"):
            raise ConfigError(
                path,
                f"classes {task.info.get('classes')} differ from the run's "
                f"{first.info.get('classes')}: the head's outputs would change meaning",
            )
        tasks.append(task)
        fields.append(path)
    base = vocab or base_vocab(timeline, _init_field(spec, 0))
    return fit_vocab(tasks, base, fields)


def base_vocab(timeline: CompiledTimeline, field: str) -> Vocab | None:
    """The vocabulary stored with the run the first phase's weights come from (None when they
    do not come from a run folder)."""
    source = timeline.phases[0].init_from
    if not source:
        return None
    run = run_of(resolve_init_from(source, field))
    if run is None or not (run / "spec.yaml").is_file():
        return None  # a bare checkpoint file: the model section has to match on its own
    stored = open_run(run).vocab
    return Vocab.from_dict(stored) if stored else None


def run_of(ckpt: Path) -> Path | None:
    """The run folder a checkpoint file belongs to (``<run>/checkpoints/tick_N.pt``), or None."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None


def resolve_init_from(path: str, field: str) -> Path:
    """A run folder (its latest checkpoint) or a checkpoint file -> the checkpoint file."""
    p = Path(path).expanduser()
    if p.is_dir():
        ckpts = sorted((p / "checkpoints").glob("tick_*.pt"))
        if not ckpts:
            raise ConfigError(field, f"{p} has no checkpoints")
        return ckpts[-1]
    if not p.is_file():
        raise ConfigError(field, f"not found: {p}")
    return p


def _init_field(spec: RunSpec, index: int) -> str:
    phases = spec.timeline.phases
    if index < len(phases) and phases[index].init_from:
        return f"timeline.phases[{index}].init_from"
    return "train.init_from"


VOCAB_ROWS = ("embed.weight", "head.weight")  # parameters with one row per token


def _appended_rows(old: torch.Tensor, new: torch.Tensor) -> bool:
    return old.dim() == 2 and old.shape[1] == new.shape[1] and 0 < len(old) < len(new)


def _shape(value) -> torch.Size | None:
    return getattr(value, "shape", None)  # a module's extra state has none


class Steering:
    """Holds what the timeline has set so far and applies each tick's changes."""

    def __init__(
        self,
        spec: RunSpec,
        timeline: CompiledTimeline,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        tasks: list[Task],
    ):
        self.timeline = timeline
        self.model = model
        self.optimizer = optimizer
        self.tasks = tasks
        self.norms = dict(model.norm_sites())
        assert list(self.norms) == timeline.sites, (list(self.norms), timeline.sites)
        self.params = dict(model.named_parameters())
        lora = any(is_adapter(n) for n in self.params)
        self.never_trained = never_trained(self.params, lora, getattr(model, "classify", False))
        module_names = {id(m): name for name, m in model.named_modules()}
        self.norm_params = {
            site: [f"{module_names[id(n)]}.{p}" for p, _ in n.named_parameters()]
            for site, n in self.norms.items()
        }
        self.phase: Phase | None = None
        self.task: Task = tasks[0]
        self.frozen: frozenset[str] = frozenset()
        self._norm_frozen: dict[str, bool] = {}
        # QAT from this tick on (the timeline's quantize edge; engine.qat), else None
        self.qat_from = next((e.tick for e in timeline.edges() if e.kind == "quantize"), None)
        self._qat_on = False  # install_qat is idempotent: a revision's new steering may repeat it
        self._check_patterns(spec)
        self._init_fields = {
            p.index: _init_field(spec, p.index) for p in timeline.phases if p.init_from
        }
        self._init_files = {
            i: resolve_init_from(timeline.phases[i].init_from, field)
            for i, field in self._init_fields.items()
        }
        for index, ckpt in self._init_files.items():  # a file that cannot load fails now
            self._fitted_weights(ckpt, index)

    def lineage(self) -> list[dict]:
        """Where this run's weights come from: one entry per phase that loads a checkpoint."""
        out = []
        for index, ckpt in sorted(self._init_files.items()):
            phase = self.timeline.phases[index]
            run = run_of(ckpt)
            out.append(
                {
                    "phase": phase.name,
                    "tick": phase.start,
                    "checkpoint": str(ckpt),
                    "run": str(run) if run else None,
                }
            )
        return out

    def _check_patterns(self, spec: RunSpec) -> None:
        for i, p in enumerate(spec.timeline.phases):
            for key in ("freeze", "unfreeze"):
                for j, pattern in enumerate(getattr(p, key)):
                    if not any(matches(name, pattern) for name in self.params):
                        raise ConfigError(
                            f"timeline.phases[{i}].{key}[{j}]",
                            f"{pattern!r} matches no parameter (names look like "
                            f"{next(iter(self.params))}, blocks.0.attn.q.weight)",
                        )

    def frozen_names(self, phase: Phase, norm_frozen: dict[str, bool]) -> frozenset[str]:
        """Parameters frozen by the phase's patterns or by a norm ``freeze`` event."""
        names = {n for n in self.params if any(matches(n, pat) for pat in phase.frozen)}
        names |= self.never_trained
        for site, frozen in norm_frozen.items():
            if frozen:
                names.update(self.norm_params[site])
        return frozenset(names)

    def begin_tick(self, tick: int) -> list[Edge]:
        """Apply everything in force during ``tick``; returns the edges firing at it."""
        tl = self.timeline
        phase = tl.phase_at(tick)
        refreeze = False
        # a new phase, or a revision from this tick on (its weight decay, data, patterns)
        if self.phase is None or phase.index != self.phase.index or tl.revised_at(tick):
            self.task = self.tasks[phase.index]
            for group in self.optimizer.param_groups:
                if group.get("name") == "decay":
                    group["weight_decay"] = phase.weight_decay
            if tick == phase.start and phase.index in self._init_files:
                self._load_weights(self._init_files[phase.index], phase.index)
            self.phase = phase
            refreeze = True
        state = tl.norm_state(tick)
        for site, (strength, frozen, eps, backend) in state.items():
            norm = self.norms[site]
            norm.strength, norm.eps, norm.backend = strength, eps, backend
            if self._norm_frozen.get(site) != frozen:
                self._norm_frozen[site] = frozen
                refreeze = True
        if refreeze:
            self.frozen = self.frozen_names(phase, self._norm_frozen)
            for name, p in self.params.items():
                p.requires_grad_(name not in self.frozen)
        for site, sigma in tl.sigma_at(tick).items():
            self.norms[site].sigma_bar.fill_(sigma)
        for site in tl.calibrate_at(tick):  # after a same-tick sigma: the measured one wins
            self.norms[site].calibrate_next = True
        if self._quantized(tick) and not self._qat_on:
            install_qat(self.model)  # at its tick, or at a resumed run's first tick after it
            self._qat_on = True
        return tl.edges_at(tick)

    def _quantized(self, tick: int) -> bool:
        return self.qat_from is not None and tick >= self.qat_from

    def _load_weights(self, ckpt: Path, index: int) -> None:
        """Load a checkpoint's model weights. Adapters and a classification head, absent from a
        base model (or, for the head, sized for other classes), keep their initial values.
        Embedding rows of tokens appended to the base vocabulary (unknown, padding) start as the
        mean of the base rows."""
        self.model.load_state_dict(self._fitted_weights(ckpt, index), strict=False)

    def _fitted_weights(self, ckpt: Path, index: int) -> dict:
        """``ckpt``'s weights made to fit this model (see ``_load_weights``); a ConfigError
        naming the spec field when the file is no checkpoint or does not fit."""
        field = self._init_fields[index]
        try:
            state = dict(model_weights(load_checkpoint(ckpt, map_location="cpu")))
        except ValueError as exc:
            said = str(exc) if str(ckpt) in str(exc) else f"{ckpt} {exc}"
            raise ConfigError(field, said) from None
        own = self.model.state_dict()
        for key in [k for k in state if k.startswith("classifier.")]:
            if key not in own or state[key].shape != own[key].shape:
                del state[key]  # a head for other classes: this task's head starts fresh
        for key in VOCAB_ROWS:
            if key in state and key in own and _appended_rows(state[key], own[key]):
                old = state[key]
                extra = old.mean(dim=0, keepdim=True).expand(len(own[key]) - len(old), -1)
                state[key] = torch.cat([old, extra.to(old.dtype)])
        missing = [k for k in own if k not in state]
        missing = [k for k in missing if not (is_adapter(k) or k.startswith("classifier."))]
        unexpected = [k for k in state if k not in own]
        shapes = [k for k in state if k in own and _shape(state[k]) != _shape(own[k])]
        wrong = {"missing": missing, "unexpected": unexpected, "other shapes": shapes}
        if any(wrong.values()):
            said = ", ".join(f"{what} {keys[:3]}" for what, keys in wrong.items() if keys)
            raise ConfigError(
                field,
                f"{ckpt} does not fit this model ({said}): the model section must match the "
                "run it comes from",
            )
        return state

    def trainable_params(self, tick: int) -> int:
        """Parameters (elements) that train during ``tick``."""
        frozen = set(self.expected_snapshot(tick)["frozen"])
        return sum(p.numel() for n, p in self.params.items() if n not in frozen)

    def snapshot(self) -> dict:
        """The discrete state in force (stored in checkpoints, compared on resume)."""
        return {
            "phase": self.phase.index if self.phase else -1,
            "frozen": sorted(self.frozen),
            "strength": {s: n.strength for s, n in self.norms.items()},
            "quantized": bool(quantized_linears(self.model)),
        }

    def expected_snapshot(self, tick: int) -> dict:
        """What ``snapshot`` must be after ``begin_tick(tick)``, derived from the timeline."""
        phase = self.timeline.phase_at(tick)
        state = self.timeline.norm_state(tick)
        frozen = self.frozen_names(phase, {s: v[1] for s, v in state.items()})
        return {
            "phase": phase.index,
            "frozen": sorted(frozen),
            "strength": {s: v[0] for s, v in state.items()},
            "quantized": self._quantized(tick),
        }


def diff_snapshots(saved: dict, expected: dict) -> list[str]:
    """Human-readable differences between a checkpoint's state and the timeline's."""
    out = []
    if saved["phase"] != expected["phase"]:
        out.append(f"phase: checkpoint {saved['phase']}, timeline {expected['phase']}")
    if saved["frozen"] != expected["frozen"]:
        a, b = set(saved["frozen"]), set(expected["frozen"])
        out.append(f"frozen: only in checkpoint {sorted(a - b)}, only in timeline {sorted(b - a)}")
    if saved.get("quantized", False) != expected.get("quantized", False):  # older: no QAT
        out.append(
            f"QAT: checkpoint {saved.get('quantized', False)}, timeline {expected['quantized']}"
        )
    for site, s in expected["strength"].items():
        if saved["strength"].get(site) != s:
            was = saved["strength"].get(site)
            out.append(f"strength of {site}: checkpoint {was}, timeline {s}")
    return out
