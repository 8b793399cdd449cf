"""Classification evaluations as the engine logs them: for feeding the window and writing stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import engine
from engine.runs import RunWriter
from tests.engine.helpers import tiny_spec


def eval_values(confusion, **metrics: float) -> dict[str, float]:
    """The scalars of one evaluation: ``val/<metric>`` and ``val/confusion/<true>/<pred>``."""
    values = {f"val/{name}": float(v) for name, v in metrics.items()}
    m = np.asarray(confusion)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            values[f"val/confusion/{i}/{j}"] = float(m[i, j])
    return values


def write_classify_run(
    folder: Path,
    name: str,
    evals: dict[int, dict[str, float]],
    classes: list[str] | None,
    steps: int = 30,
) -> Path:
    """A finished run folder written with the engine's RunWriter: a train loss per tick and
    the evaluations ``evals`` (tick -> scalars); ``classes`` in its metadata (None: none)."""
    folder.mkdir(parents=True)
    engine.save_spec(tiny_spec(name=name, train={"steps": steps}), folder / "spec.yaml")
    writer = RunWriter(folder)
    data = {"source": "brackets"}
    if classes is not None:
        data["classes"] = classes
    writer.set_meta(name=name, steps=steps, started=1.0, data=data)
    for tick in range(steps):
        writer.scalars(tick, {"train/loss": 2.0 - tick / steps, **evals.get(tick, {})})
    writer.set_status("finished", steps)
    writer.close()
    return folder
