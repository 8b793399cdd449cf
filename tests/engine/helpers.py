"""Small run specs that train in a second or two on a 2-core CPU."""

from __future__ import annotations

from engine.config import RunSpec
from engine.specs import parse_spec


def tiny_spec(**sections) -> RunSpec:
    """A tiny decoder on the built-in corpus; ``sections`` override whole dict sections."""
    data = {
        "name": "tiny",
        "seed": 7,
        "model": {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "context": 16},
        "data": {"source": "text", "path": "builtin:python-stdlib", "max_chars": 200_000},
        "train": {
            "steps": 30,
            "batch_size": 4,
            "eval_every": 10,
            "eval_batches": 2,
            "checkpoint_every": 10,
            "device": "cpu",
            # one torch thread: with one per core, a tiny model trains several times slower
            # whenever other processes keep the cores busy (and the losses depend on it)
            "threads": 1,
        },
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_spec(data)


def run_ticks_then_stop(spec, runs_dir, ticks: int, timeout: float = 120):
    """Start ``spec`` paused, step exactly ``ticks`` ticks, stop it; returns the handle."""
    import threading

    from engine.messages import Scalars
    from engine.trainer import start_run

    reached = threading.Event()

    def sink(batch):
        if any(isinstance(m, Scalars) and m.tick >= ticks - 1 for m in batch):
            reached.set()

    handle = start_run(spec, runs_dir, sink, paused=True)
    for _ in range(ticks):
        handle.step()
    assert reached.wait(timeout)
    handle.stop()
    assert handle.join(timeout) and handle.status == "stopped", handle.error
    assert handle.tick == ticks
    return handle
