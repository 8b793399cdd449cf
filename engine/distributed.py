"""Running under ``torchrun``: the process group, who writes, and the few collectives a tick needs.

``torchrun --nproc_per_node=N -m engine run SPEC.yaml`` starts N copies of the CLI; each finds
its rank in the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...).
Every rank builds the same model, data and compiled timeline from the same spec and seed; every
rank draws the same global batch of ``batch_size x world_size`` sequences from the shared batch
generator and trains on its own slice of it, so a run on N ranks sees exactly the batches a
single process with the global batch would see. Only rank 0 writes the run store and checkpoints.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the job (``size == 1``: a plain single-process run)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def init_world() -> World:
    """Join the process group torchrun described in the environment (gloo on CPU, NCCL on
    CUDA); a single process when WORLD_SIZE is unset or 1."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local)


CLOSE_DEADLINE = timedelta(seconds=300)


def close_world(world: World, deadline: timedelta = CLOSE_DEADLINE) -> None:
    """Leave the job together: wait (at most ``deadline``) until every rank is done, rank 0's
    last evaluation and checkpoint included, then tear the process group down. A rank that left
    early used to close its gloo connections while rank 0 still held them, and now and then died
    with SIGABRT at exit. A peer that already died ends the wait at once."""
    if not (world.distributed and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=deadline)
        else:
            dist.barrier()
    except Exception:  # a dead or late peer: the run's status already says what happened
        pass
    finally:
        dist.destroy_process_group()


def exit_rank(code: int, world: World) -> None:
    """End a torchrun rank without the interpreter's teardown. Everything the run wrote is
    closed by now; what is left are C++ threads of the collective library whose destructors
    can abort (SIGABRT, "terminate called without an active exception") when Python frees
    them in an arbitrary order at exit."""
    if not world.distributed:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def broadcast_object(value, world: World):
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_tick(
    loss: torch.Tensor, stop: bool, world: World, announce: bool = False
) -> tuple[float, bool, bool]:
    """(mean loss over ranks, whether any rank asked to stop, whether any announced something):
    one small all-reduce per tick, so every rank stops after the same tick, logs the global
    batch's loss, and learns that rank 0 has timeline revisions to broadcast."""
    if not world.distributed:
        return loss.item(), stop, announce
    flags = torch.tensor([float(stop), float(announce)], device=loss.device)
    buf = torch.cat([loss.detach().float().reshape(1), flags])
    dist.all_reduce(buf)
    mean_loss, stops, announced = buf.tolist()
    return mean_loss / world.size, stops > 0, announced > 0


def average_(tensors: list[torch.Tensor], world: World) -> None:
    """Average tensors in place across ranks (σ̄ after a calibration tick)."""
    if world.distributed:
        for t in tensors:
            dist.all_reduce(t)
            t.div_(world.size)


def lost_a_peer(exc: BaseException, world: World) -> bool:
    """Whether ``exc`` is a collective failing because another rank died (the run is then
    ``interrupted`` and resumable, not ``failed``)."""
    if not world.distributed:
        return False
    text = str(exc).lower()
    return isinstance(exc, dist.DistError) or any(
        word in text for word in ("gloo", "nccl", "connection reset", "connection closed")
    )
