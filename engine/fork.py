"""Forking: a new run that continues from one of an existing run's checkpoints, with an edited
spec (a different LR tail, another LayerNorm ramp, more steps).

The fork gets a folder of its own holding the edited spec and a copy of the checkpoint, and is
then resumed from it, so it continues exactly as a resume would: same weights, optimizer moments,
RNG streams and tick. The parent is never touched. The fork's curves start at the checkpoint's
tick; its metadata names the parent (``forked_from``, and an entry in ``lineage``).

The edited timeline must agree with the checkpoint about what was in force just before the
fork's first tick (phase, frozen parameters, norm strengths): everything from that tick on may
change.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from engine.checkpoint import checkpoint_path, load_checkpoint
from engine.config import RunSpec
from engine.errors import ConfigError
from engine.handle import RunHandle, Sink
from engine.runs import RunRecord, RunWriter, new_run_dir
from engine.specs import save_spec, spec_from_yaml
from engine.timeline import compile_timeline
from engine.trainer import resume_run

# metadata about the parent's writer and labels, not about the weights the fork inherits
_NOT_INHERITED = (
    "status", "status_tick", "status_detail", "pid", "host", "updated", "heartbeat", "tags",
)  # fmt: skip


def resolve_checkpoint(run_dir: Path, checkpoint: int | str | Path | None) -> Path:
    """A tick, a checkpoint file, or None (the latest) -> the checkpoint file of ``run_dir``."""
    if checkpoint is None:
        found = RunRecord(run_dir).checkpoints()
        if not found:
            raise FileNotFoundError(f"{run_dir} has no checkpoint to fork from")
        return found[-1]
    path = checkpoint_path(run_dir, checkpoint) if isinstance(checkpoint, int) else Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}")
    return path


def fork_run(
    run_dir: str | Path,
    spec: RunSpec,
    checkpoint: int | str | Path | None = None,
    runs_dir: str | Path | None = None,
    sink: Sink | None = None,
    *,
    paused: bool = False,
    origin: dict | None = None,
    revisions: list[tuple[str, int, str, str]] = (),
) -> RunHandle:
    """Start a new run from ``checkpoint`` of ``run_dir`` (a tick, a file, or None for the
    latest) that trains ``spec`` from the checkpoint's tick to ``spec.train.steps``.

    The new folder goes under ``runs_dir`` (default: beside the parent). Raises ConfigError,
    before anything trains and leaving no folder behind, when ``spec`` cannot continue from the
    checkpoint (too few steps, a timeline that disagrees with the weights' past, another model).
    ``origin`` (``{"run", "checkpoint", "tick", ...}``) names the parent in the fork's metadata
    instead of ``run_dir`` (a branch, forked from a replay of its parent: ``engine.branch``).
    ``revisions`` (``(spec YAML, tick, source, what)``, in order) are recorded as applied in
    the fork before it resumes, so it replays them: a steered parent's, for a branch of it.
    """
    parent = RunRecord(run_dir)
    ckpt = resolve_checkpoint(parent.path, checkpoint)
    tick = int(load_checkpoint(ckpt)["tick"])
    steps = spec_from_yaml(revisions[-1][0]).train.steps if revisions else spec.train.steps
    if steps <= tick:
        raise ConfigError(
            "train.steps", f"the fork starts at tick {tick}: it needs more than {tick} steps"
        )
    compile_timeline(spec)  # a bad spec fails here, before a folder is made
    meta = {k: v for k, v in parent.meta.items() if k not in _NOT_INHERITED}
    meta["vocab"] = parent.vocab  # the tokens its weights were trained on
    origin = origin or {"run": str(parent.path), "checkpoint": ckpt.name, "tick": tick}

    def prepare(folder: Path) -> None:  # the fork appears only once it is whole
        save_spec(spec, folder / "spec.yaml")
        writer = RunWriter(folder)
        shutil.copy2(ckpt, checkpoint_path(folder, tick))
        lineage = {"phase": None, "tick": tick, "checkpoint": str(ckpt), "run": origin["run"]}
        meta.update(
            name=spec.name,
            steps=spec.train.steps,
            started=time.time(),
            forked_from=origin,
            lineage=[*meta.get("lineage", []), lineage],
        )
        try:
            writer.set_meta(**meta)
            for text, at, source, what in revisions:
                rev_id = writer.add_revision(text, at, source)
                writer.settle_revision(rev_id, "applied", at, what)
        finally:
            writer.close()

    target = new_run_dir(Path(runs_dir) if runs_dir else parent.path.parent, spec.name, prepare)
    try:
        return resume_run(target, sink, paused=paused)
    except ConfigError as exc:
        shutil.rmtree(target, ignore_errors=True)
        if exc.path == "timeline":  # resume's wording ("fork the run ...") does not fit here
            detail = exc.reason.split("):", 1)[-1].strip()
            raise ConfigError(
                "timeline",
                f"the fork's timeline must match the checkpoint up to tick {tick}: {detail}",
            ) from None
        raise
    except RuntimeError as exc:  # torch: the checkpoint's tensors do not fit the model
        shutil.rmtree(target, ignore_errors=True)
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(
            "model", f"the checkpoint does not fit the fork's model: {first}"
        ) from None
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
