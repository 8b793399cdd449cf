"""TensorBoard event files for runs: scalars, activation histograms, timeline events as text, so
``tensorboard --logdir OUT`` shows the same runs as the workbench.

Optional: it needs the ``tensorboard`` package (``pip install -e '.[tensorboard]'``);
``HAS_TENSORBOARD`` says whether it is installed, and without it ``export_tensorboard`` raises
ImportError naming the extra. Events are written by tensorboard's own writer, through
``torch.utils.tensorboard.SummaryWriter``.

Under OUT each run gets the sub-folder named like its run folder (``<study>/<run>`` for a
study's runs), so TensorBoard's run names are the folder names. In it:

- every scalar under its metric name (``train/loss``, ``val/loss``, ``lr`` ...) at its tick, with
  the wall time it was recorded (TensorBoard stores scalars as float32);
- activation histograms as ``activations/<site>/<in|out>`` (bucket edges from the stored range,
  min and max from the stored 0th/100th percentiles; sum and sum of squares from bucket centres,
  which is all a histogram keeps);
- the timeline events applied (phases, norm events, marks, checkpoints, resumes) as the text
  ``timeline`` at their ticks, and the run spec as the text ``spec`` at tick 0.

Exporting a run again replaces its earlier export.

    python -m engine.export_tensorboard RUN_DIR [RUN_DIR ...] --logdir OUT
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from engine.run_rows import read_scalars
from engine.runs import RunRecord
from engine.specs import dump_spec

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
EVENT_FILES = "events.out.tfevents.*"


def run_logdir_name(record: RunRecord) -> str:
    """The sub-folder (TensorBoard's run name) of a run: its folder name, under its study's."""
    if record.summary().study:
        return f"{record.path.parent.name}/{record.path.name}"
    return record.path.name


def _summary_writer(logdir: Path):
    if not HAS_TENSORBOARD:
        raise ImportError(
            "the TensorBoard export needs the tensorboard package: "
            "pip install -e '.[tensorboard]' (or pip install tensorboard)"
        )
    from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: slow, so only here

    return SummaryWriter(log_dir=str(logdir), flush_secs=3600)


def _event_text(kind: str, detail: dict) -> str:
    label = detail.get("label") or detail.get("phase") or detail.get("path") or ""
    rest = {k: v for k, v in detail.items() if k != "label"}
    parts = [f"**{kind}**", str(label), f"`{json.dumps(rest, sort_keys=True)}`"]
    return " ".join(p for p in parts if p)


def _write_histograms(writer, record: RunRecord, walls: dict[int, float]) -> int:
    written = 0
    for (site, kind), h in record.activation_stats().items():
        edges = h.edges
        for i, tick in enumerate(h.ticks.tolist()):
            counts = h.counts[i]
            num = int(counts.sum())
            if num == 0 or not (np.isfinite(h.lo[i]) and np.isfinite(h.hi[i])):
                continue  # nothing captured, or a capture of non-finite values: no buckets
            centres = (edges[i][:-1] + edges[i][1:]) / 2
            writer.add_histogram_raw(
                f"activations/{site}/{kind}",
                min=float(h.percentiles[i, 0]),
                max=float(h.percentiles[i, -1]),
                num=num,
                sum=float(np.dot(counts, centres)),
                sum_squares=float(np.dot(counts, centres**2)),
                bucket_limits=edges[i][1:].tolist(),  # right edges, as TensorBoard's buckets
                bucket_counts=counts.tolist(),
                global_step=tick,
                walltime=walls.get(tick),
            )
            written += 1
    return written


def export_run(run_dir: str | Path, logdir: str | Path) -> Path:
    """Write one run's events under ``logdir``; returns the run's sub-folder."""
    record = RunRecord(run_dir)
    target = Path(logdir) / run_logdir_name(record)
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob(EVENT_FILES):  # a second export replaces the first, not doubles it
        old.unlink()
    writer = _summary_writer(target)
    try:
        rows = read_scalars(record)
        for metric, r in rows.items():
            for tick, value, wall in zip(r.ticks.tolist(), r.values.tolist(), r.walls.tolist()):
                writer.add_scalar(metric, value, tick, walltime=wall)
        loss = rows.get("train/loss")
        walls = dict(zip(loss.ticks.tolist(), loss.walls.tolist())) if loss else {}
        _write_histograms(writer, record, walls)
        started = record.meta.get("started")
        writer.add_text("spec", f"```yaml\n{dump_spec(record.spec)}```", 0, walltime=started)
        for rev in record.revisions():  # the spec each applied revision steered the run with
            if rev.state == "applied":
                text = (
                    f"rev {rev.number} from tick {rev.tick}: {rev.detail}\n```yaml\n{rev.spec}```"
                )
                writer.add_text("revisions", text, rev.tick, walltime=rev.sent)
        by_tick: dict[int, list[str]] = {}
        wall_of: dict[int, float] = {}
        for ev in record.events():
            by_tick.setdefault(ev.tick, []).append(_event_text(ev.kind, ev.detail))
            wall_of.setdefault(ev.tick, ev.wall)
        for tick, lines in by_tick.items():
            writer.add_text("timeline", "  \n".join(lines), tick, walltime=wall_of[tick])
    finally:
        writer.close()
    return target


def export_tensorboard(run_dirs: list[str | Path], logdir: str | Path) -> list[Path]:
    """Export each run in ``run_dirs`` under ``logdir``; returns their sub-folders."""
    return [export_run(run_dir, logdir) for run_dir in run_dirs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.export_tensorboard", description=__doc__.splitlines()[0]
    )
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--logdir", type=Path, required=True, help="where the event files go")
    args = parser.parse_args(argv)
    try:
        for path in export_tensorboard(args.run_dirs, args.logdir):
            print(path)
    except (ImportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
