"""Checkpoints: model, optimizer, every RNG state and the tick, written atomically."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from engine.runs import StoreError, disk_full

FORMAT = 1
NEARLY_FULL = 1 << 20  # bytes free under which a failed write is put down to a full disk


def checkpoint_path(run_dir: Path, tick: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"tick_{tick:07d}.pt"


def save_checkpoint(
    run_dir: Path,
    tick: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_generator: torch.Generator,
    steering: dict,
    pruning: dict | None = None,
) -> Path:
    """Save the state after ``tick`` ticks (the next tick to run is ``tick``); ``pruning``:
    the pruning masks (``engine.pruning.Pruner.state_dict``), kept under ``pruning``."""
    state = {
        "format": FORMAT,
        "tick": tick,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "steering": steering,  # phase, frozen parameters, norm strengths: checked on resume
        **({"pruning": pruning} if pruning is not None else {}),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "batches": batch_generator.get_state(),
        },
    }
    path = checkpoint_path(run_dir, tick)
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:  # closed on failure too, so unlinking frees the space
            torch.save(state, f)
        os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoints intact
    except BaseException as exc:
        # torch reports a full disk as an opaque stream error: the free space tells
        full = disk_full(exc) or shutil.disk_usage(tmp.parent).free < NEARLY_FULL
        tmp.unlink(missing_ok=True)  # never leave half a file behind
        if full:
            raise StoreError(
                f"disk full: cannot write {path}; the last complete checkpoint is "
                f"{_last_name(run_dir)} (free some space, then resume the run)"
            ) from exc
        raise
    return path


def _last_name(run_dir: Path) -> str:
    done = sorted((Path(run_dir) / "checkpoints").glob("tick_*.pt"))
    return done[-1].name if done else "none"


def checkpoint_tick(path: Path) -> int:
    return int(path.stem.split("_", 1)[1])


def prune_checkpoints(run_dir: Path, keep: int, kept_ticks: set[int]) -> list[Path]:
    """Delete periodic checkpoints beyond the newest ``keep`` (0 keeps every one); those at
    ``kept_ticks`` are never deleted. Returns what was deleted."""
    if keep <= 0:
        return []
    done = sorted((Path(run_dir) / "checkpoints").glob("tick_*.pt"))
    periodic = [p for p in done if checkpoint_tick(p) not in kept_ticks]
    gone = periodic[:-keep]
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint saved by ``save_checkpoint`` (``weights_only=True``: no pickled code).
    A file torch cannot read (not a checkpoint, truncated) raises ``ValueError`` in one line."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise  # missing, unreadable: the OS's own message says it
    except Exception as exc:  # garbage makes the unpickler raise anything (IndexError, ...)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} is not a readable checkpoint ({why[:120]})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a checkpoint (it holds a {type(state).__name__})")
    return state


def model_weights(state: dict) -> dict:
    """The model's weights in a loaded file: a checkpoint's ``model``, or the whole file when it
    is a bare state dict (what ``python -m engine export --format weights`` writes)."""
    if isinstance(state.get("model"), dict):
        return state["model"]
    tensors = [isinstance(v, torch.Tensor) for v in state.values()]
    if any(tensors) and "tick" not in state:  # a state dict (some entries may be extra state)
        return state
    raise ValueError("holds neither a checkpoint nor model weights")


def restore_rng(state: dict, batch_generator: torch.Generator) -> None:
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    batch_generator.set_state(state["rng"]["batches"])
