"""Exports of the selected runs: their scalars as one CSV, the overlay as PNG/SVG (the plots'
own exporter), and TensorBoard event files (``engine.export_tensorboard``)."""

from __future__ import annotations

import csv
from pathlib import Path

from engine import open_run, read_scalars

CSV_HEADER = ("run", "folder", "metric", "tick", "value", "wall")


def write_scalars_csv(runs: list[tuple[str, Path]], path: str | Path) -> int:
    """Every scalar of each (name, folder) in ``runs`` to ``path``, one row per value (long
    format: what pandas, R and spreadsheets pivot from). Values are written exactly (repr);
    ``wall`` is seconds since the epoch. Returns the number of rows."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for name, folder in runs:
            for metric, rows in read_scalars(open_run(folder)).items():
                for tick, value, wall in zip(
                    rows.ticks.tolist(), rows.values.tolist(), rows.walls.tolist()
                ):
                    writer.writerow((name, folder.name, metric, tick, repr(value), f"{wall:.3f}"))
                    n += 1
    return n
