"""A run's scalars with the wall-clock time each one was recorded, read incrementally.

``RunRecord.scalars`` answers (ticks, values). Plotting against wall time and writing TensorBoard
events (each carries its wall time) also need when a value was recorded, and a reader that
follows a run being written wants only the rows it has not seen yet. Both read through the
store's own read-only queries, so this is safe while another process writes the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.runs import RunRecord, metric_names_in, rows_of


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class ScalarRows:
    """One metric's rows, ordered by tick."""

    ticks: np.ndarray  # (n,) int64
    values: np.ndarray  # (n,) float64
    walls: np.ndarray  # (n,) float64: seconds since the epoch when the value was recorded

    def __len__(self) -> int:
        return len(self.ticks)


def read_scalars(
    record: RunRecord, since: Mapping[str, int] | None = None, metrics: list[str] | None = None
) -> dict[str, ScalarRows]:
    """Rows of every metric (or of ``metrics``) at or after ``since[metric]`` (0 when absent).

    Metrics with no new rows are left out, so an empty dict means nothing changed.
    """
    since = since or {}

    def work(con) -> dict[str, ScalarRows]:  # one connection for every metric
        out = {}
        for metric in metric_names_in(con) if metrics is None else metrics:
            # one indexed range scan per metric: the primary key is (metric, tick)
            rows = rows_of(
                con,
                "SELECT tick, value, wall FROM scalars WHERE metric = ? AND tick >= ? "
                "ORDER BY tick",
                (metric, since.get(metric, 0)),
            )
            if rows:
                arr = np.array(rows, dtype=np.float64)
                out[metric] = ScalarRows(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2])
        return out

    return record.read(work)
