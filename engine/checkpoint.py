"""Checkpoints: model, optimizer, every RNG state and the tick, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = 1


def checkpoint_path(run_dir: Path, tick: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"tick_{tick:07d}.pt"


def save_checkpoint(
    run_dir: Path,
    tick: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_generator: torch.Generator,
    steering: dict,
) -> Path:
    """Save the state after ``tick`` ticks (the next tick to run is ``tick``)."""
    state = {
        "format": FORMAT,
        "tick": tick,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "steering": steering,  # phase, frozen parameters, norm strengths: checked on resume
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "batches": batch_generator.get_state(),
        },
    }
    path = checkpoint_path(run_dir, tick)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoints intact
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint saved by ``save_checkpoint`` (``weights_only=True``: no pickled code)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def restore_rng(state: dict, batch_generator: torch.Generator) -> None:
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    batch_generator.set_state(state["rng"]["batches"])
