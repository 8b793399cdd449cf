"""Not a benchmark: makes docs/screenshots/gallery-<preset>.png, one comparison per gallery preset,
as the Runs browser shows it once the preset has trained:

- ``brackets-finetune``: the Metrics tab, val macro F1 of the classification head finetuned from
  the pretrained language model versus trained from scratch (the ``pretrain`` variant, a language
  model with no F1, is not selected);
- ``lora-vs-full-finetune``: the Metrics tab, val F1 of full finetuning versus LoRA adapters
  (``pretrain`` not selected);
- ``grokking-mini``: the Metrics tab, train and held-out accuracy of the one run (held-out
  accuracy rises hundreds of ticks after train accuracy saturates);
- ``pre-vs-post-ln``, ``layernorm-vs-rmsnorm-vs-none`` and ``compression``: the Loss tab, every
  variant's train and val loss overlaid, smoothed at 0.95 (their batches of 12 make the raw train
  loss noisy) and zoomed to the range where the variants part (the first ticks' loss runs off the
  top).

On the Metrics tab only the curves named above stay visible (the runs' other task metrics are
hidden and left out of the legend), so the comparison reads at a glance. The Runs table is
filtered to the preset's runs.

Each preset trains headless with the engine API (``train.threads: 1``; about 6-8 minutes for the
first five on a laptop CPU, compression's six runs 8 to 20 minutes more on a shared 2-core one),
into a fresh temporary folder or the first ``--runs-dir``. With ``--reuse``, runs already trained in
the ``--runs-dir`` folders are used instead (the newest finished ones of each preset; a preset with
none there is trained into the first folder). The real window then opens offscreen at 1280x800 on
the folder holding each preset's runs, selects them in the Runs browser and raises the tab. Run from
the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gallery_screenshots.py [--out DIR]
        [--runs-dir DIR ...] [--reuse] [--only PRESET ...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PRESETS_DIR = ROOT / "presets"
OVERRIDES = {"train.threads": 1}  # a shared laptop: one core per run
LM_SMOOTHING = 0.95
SETTLE_EVENTS = 40  # event-loop passes for the docks to lay out and the plots to draw


@dataclass(frozen=True)
class Shot:
    preset: str  # the file name in presets/, without .yaml
    tab: str  # "loss" or "metrics"
    variants: tuple[str, ...] = ()  # a study's variants to select (empty: all; a run spec: it)
    metrics: tuple[str, ...] = ()  # on the Metrics tab: the curves kept visible
    smoothing: float | None = None  # the loss plot's smoothing slider (None: its default)
    y_range: tuple[float, float] | None = None  # the plot zoomed to these values (None: all)


SHOTS = (
    Shot("brackets-finetune", "metrics", ("finetune", "scratch"), ("val/f1",)),
    Shot("lora-vs-full-finetune", "metrics", ("full", "lora"), ("val/f1",)),
    Shot("grokking-mini", "metrics", (), ("train/accuracy", "val/accuracy")),
    # batches of 12: the raw train loss is too noisy for a difference of 0.05 nats to show
    # and zoomed in below the first ticks' 4.5 nats, where the variants part
    Shot("pre-vs-post-ln", "loss", smoothing=LM_SMOOTHING, y_range=(1.8, 3.3)),
    Shot("layernorm-vs-rmsnorm-vs-none", "loss", smoothing=LM_SMOOTHING, y_range=(1.9, 3.4)),
    # the six runs part by a few hundredths: zoomed to the last 300 ticks' range
    Shot("compression", "loss", smoothing=LM_SMOOTHING, y_range=(2.15, 2.9)),
)


def _load(shot: Shot):
    from engine.study import load_preset

    return load_preset(PRESETS_DIR / f"{shot.preset}.yaml")


def _run_names(shot: Shot) -> list[str]:
    """The names of the runs to select: ``<study>-<variant>``, or the run spec's name."""
    from engine.study import Study

    preset = _load(shot)
    if isinstance(preset, Study):
        wanted = shot.variants or tuple(name for name, _ in preset.variants)
        return [f"{preset.name}-{v}" for v in wanted]
    return [preset.name]


def train(shot: Shot, runs_dir: Path) -> None:
    import engine
    from engine.specs import replace
    from engine.study import Study, run_study

    preset = _load(shot)
    if isinstance(preset, Study):
        folder, summaries = run_study(preset, runs_dir, overrides=OVERRIDES)
        for s in summaries:
            print(f"  {s.name:<40} {s.status:<9} last val loss {s.last_val_loss:.4f}")
        print(f"{shot.preset}: trained into {folder}")
        return
    handle = engine.start_run(replace(preset, OVERRIDES), runs_dir)
    assert handle.join(1800) and handle.status == "finished", handle.error
    print(f"{shot.preset}: trained into {handle.run_dir}")


def find_runs(shot: Shot, runs_dirs: list[Path]) -> tuple[Path, list[Path]] | None:
    """(runs folder, run folders in selection order) of the newest finished runs of ``shot``
    under one of ``runs_dirs`` (a study's runs all from one study folder), or None."""
    import engine

    names = _run_names(shot)
    stamp = r"-\d{8}-\d{6}(-\d+)?$"  # new_run_dir's suffix
    for runs_dir in runs_dirs:
        by_group: dict[Path, dict[str, Path]] = {}
        newest: dict[Path, float] = {}
        for s in engine.list_runs(runs_dir):  # newest first: the first found of a name wins
            if s.status != "finished" or s.name not in names:
                continue
            if not re.fullmatch(re.escape(s.name) + stamp, s.path.name):
                continue
            by_group.setdefault(s.path.parent, {}).setdefault(s.name, s.path)
            newest[s.path.parent] = max(newest.get(s.path.parent, 0.0), s.started or 0.0)
        complete = [g for g, runs in by_group.items() if set(runs) == set(names)]
        if complete:
            group = max(complete, key=newest.__getitem__)
            return runs_dir, [by_group[group][n] for n in names]
    return None


def screenshot(shot: Shot, runs_dir: Path, paths: list[Path], out: Path) -> Path:
    from PySide6.QtCore import Qt

    from benchmarks.shot_window import comparison_layout, open_window, save
    from workbench.plots.loss import SLIDER_STEPS
    from workbench.runs.model import COLUMNS

    app, window = open_window(runs_dir)
    # the Diff beside the Runs table only when there is something to diff
    comparison_layout(window, diff=len(paths) > 1, height=215, widths=(620, 650))
    # oldest first: the variants in the preset's order, the first the diff's reference
    window.runs.table.sortByColumn(COLUMNS.index("started"), Qt.SortOrder.AscendingOrder)
    window.runs.filter.setText(shot.preset)  # the table lists this preset's runs only
    plots = window.plots
    if shot.smoothing is not None:
        plots.loss.slider.setValue(round(shot.smoothing * SLIDER_STEPS))
    window.tabs.setCurrentWidget(plots.loss if shot.tab == "loss" else plots.metrics_tab)
    window.runs.select(paths)
    while window.tasks.busy or window.config.estimate_pending:  # the parameter count's text
        app.processEvents()
    for _ in range(SETTLE_EVENTS):
        app.processEvents()
    if shot.metrics:  # only the compared curves on the Metrics plot, and in its legend
        task = plots.task
        for (_, metric), item in window.runs.overlay.curves(task).items():
            if metric not in shot.metrics:
                item.hide()
                task.legend.removeItem(item)
        task.getPlotItem().enableAutoRange()
    if shot.y_range is not None:
        shown = plots.loss.plot if shot.tab == "loss" else plots.task
        shown.getPlotItem().setYRange(*shot.y_range, padding=0)
    for _ in range(SETTLE_EVENTS):
        app.processEvents()
    path = out / f"gallery-{shot.preset}.png"
    save(window, path)
    window.deleteLater()
    return path


def _describe(shot: Shot, paths: list[Path]) -> str:
    """The final values the screenshot shows, for the log."""
    import engine

    parts = []
    for p in paths:
        record = engine.open_run(p)
        metrics = shot.metrics or ("train/loss", "val/loss")
        values = []
        for m in metrics:
            _, y = record.scalars(m)
            if len(y):
                values.append(f"{m} {y[-1]:.4f}")
        parts.append(f"{record.meta.get('name', p.name)}: {', '.join(values)}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        action="append",
        default=[],
        help="where to train (the first), or with --reuse where to look for runs (repeatable)",
    )
    parser.add_argument("--reuse", action="store_true", help="use runs already in --runs-dir")
    parser.add_argument(
        "--only",
        action="append",
        choices=[s.preset for s in SHOTS],
        help="just this preset (repeatable)",
    )
    args = parser.parse_args()
    if args.reuse and not args.runs_dir:
        parser.error("--reuse needs --runs-dir")
    runs_dirs = args.runs_dir or [Path(tempfile.mkdtemp(prefix="tickbench-gallery-"))]
    for shot in SHOTS:
        if args.only and shot.preset not in args.only:
            continue
        found = find_runs(shot, runs_dirs) if args.reuse else None
        if found is None:
            if args.reuse:
                print(f"{shot.preset}: no finished runs found, training them")
            train(shot, runs_dirs[0])
            found = find_runs(shot, runs_dirs[:1])
            assert found is not None, f"{shot.preset}: runs not found after training"
        runs_dir, paths = found
        path = screenshot(shot, runs_dir, paths, args.out)
        print(f"wrote {path.name}: {_describe(shot, paths)}")


if __name__ == "__main__":
    main()
