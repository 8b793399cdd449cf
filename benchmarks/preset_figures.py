"""Every figure in docs/presets.md and the presets' descriptions, re-measured at given seeds.

    .venv/bin/python benchmarks/preset_figures.py [PRESET ...] [--seeds 1337 1 2 3]
        [--threads 1] [--jsonl results.jsonl]

Trains each named preset (all of them by default) once per seed, with ``train.threads`` set to
``--threads`` (1 by default: the figures are stated for one torch thread, where a run on the same
machine and torch is bit-for-bit repeatable), one run at a time. ``--seeds`` replaces the preset's
own seed (a study's ``seed`` applies to every variant); without it each preset runs at its own
seed. Each result is printed (and appended to ``--jsonl``) as soon as it is measured, with its
wall time and the process CPU time it took; then a table of mean ± sample standard deviation
over the seeds per figure, with every seed's value.

ln-warm-in and ln-removal-finetune are trained together with their controls (the same spec with
no ``layernorm`` events), as in benchmarks/timeline_presets.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import open_run, start_run  # noqa: E402
from engine.runs import RunRecord  # noqa: E402
from engine.specs import replace  # noqa: E402
from engine.study import Study, load_preset, run_study, variant_runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "presets"


def scalars(run: RunRecord, metric: str) -> dict[int, float]:
    ticks, values = run.scalars(metric)
    return dict(zip(ticks.tolist(), values.tolist()))


def last(run: RunRecord, metric: str) -> float:
    return float(run.scalars(metric)[1][-1])


def first_tick(run: RunRecord, metric: str, at_least: float) -> float:
    """First tick where ``metric`` >= ``at_least`` (NaN if never)."""
    for tick, value in scalars(run, metric).items():
        if value >= at_least:
            return float(tick)
    return float("nan")


def holds_from(run: RunRecord, metric: str, at_least: float) -> float:
    """First tick from which ``metric`` stays >= ``at_least`` to the end (NaN if it ends below)."""
    since = float("nan")
    for tick, value in scalars(run, metric).items():
        if value < at_least:
            since = float("nan")
        elif since != since:
            since = float(tick)
    return since


def train(spec, runs_dir: Path) -> RunRecord:
    handle = start_run(spec, runs_dir)
    handle.join()
    if handle.status != "finished":
        raise SystemExit(f"{spec.name}: {handle.status} {handle.error}")
    return open_run(handle.run_dir)


def without_norm_events(spec):
    timeline = dataclasses.replace(spec.timeline, layernorm=[])
    return dataclasses.replace(spec, name=spec.name + "-control", timeline=timeline)


def study_runs(study: Study, runs_dir: Path, overrides: dict) -> dict[str, RunRecord]:
    folder, summaries = run_study(study, runs_dir, overrides=overrides)
    if any(s.status != "finished" for s in summaries):
        raise SystemExit(f"{study.name}: {[s.status for s in summaries]}")
    return variant_runs(study, folder)


def measure_run(name: str, spec, runs_dir: Path) -> dict[str, float]:
    run = train(spec, runs_dir)
    if name == "baby-gpt":
        return {"val loss at the end": last(run, "val/loss")}
    if name == "sort-seq2seq":
        acc = scalars(run, "val/accuracy")
        return {
            "exact match at tick 99": acc[99],
            "exact match at the end": last(run, "val/accuracy"),
            "exact match >= 0.99 from tick": holds_from(run, "val/accuracy", 0.99),
            "exact match 1.000 from tick": holds_from(run, "val/accuracy", 1.0),
        }
    if name == "grokking-mini":
        val = scalars(run, "val/accuracy")
        return {
            "train accuracy >= 0.99 from tick": first_tick(run, "train/accuracy", 0.99),
            "held-out accuracy at tick 524": val[524],
            "held-out accuracy first >= 0.9 at tick": first_tick(run, "val/accuracy", 0.9),
            "held-out accuracy at the end": last(run, "val/accuracy"),
        }
    if name == "pretrain-finetune":
        val = scalars(run, "val/loss")
        first_ft = min(t for t in val if t >= int(0.75 * spec.train.steps))
        return {
            f"finetune-corpus val loss at tick {first_ft}": val[first_ft],
            "finetune-corpus val loss at the end": last(run, "val/loss"),
        }
    control = train(without_norm_events(spec), runs_dir)
    val, ctl = scalars(run, "val/loss"), scalars(control, "val/loss")
    if name == "ln-warm-in":
        return {
            "val loss at tick 399": val[399],
            "val loss at the end": last(run, "val/loss"),
            "control: val loss at tick 399": ctl[399],
            "control: val loss at the end": last(control, "val/loss"),
            "warm-in minus control at the end": last(run, "val/loss") - last(control, "val/loss"),
        }
    if name == "ln-removal-finetune":
        before = int(0.5 * spec.train.steps) - 1
        return {
            f"val loss at tick {before} (before removal)": val[before],
            "val loss at the end (no LayerNorm)": last(run, "val/loss"),
            "control (keeps LayerNorm): val loss at the end": last(control, "val/loss"),
            "removal cost (end minus control)": last(run, "val/loss") - last(control, "val/loss"),
        }
    raise SystemExit(f"no figures defined for run preset {name}")


def measure_study(name: str, study: Study, runs_dir: Path, overrides: dict) -> dict[str, float]:
    runs = study_runs(study, runs_dir, overrides)
    if name == "brackets-finetune":
        ft, sc = runs["finetune"], runs["scratch"]
        return {
            "finetune F1": last(ft, "val/f1"),
            "scratch F1": last(sc, "val/f1"),
            "finetune accuracy": last(ft, "val/accuracy"),
            "scratch accuracy": last(sc, "val/accuracy"),
            "finetune minus scratch F1": last(ft, "val/f1") - last(sc, "val/f1"),
        }
    if name == "lora-vs-full-finetune":
        full, lora = runs["full"], runs["lora"]
        return {
            "full F1": last(full, "val/f1"),
            "LoRA F1": last(lora, "val/f1"),
            "full minus LoRA F1": last(full, "val/f1") - last(lora, "val/f1"),
            "full trainable params": float(full.meta["trainable_params"]),
            "LoRA trainable params": float(lora.meta["trainable_params"]),
        }
    out = {f"{v} val loss": last(run, "val/loss") for v, run in runs.items()}
    if name == "pre-vs-post-ln":
        out["pre: no-warmup minus warmup"] = (
            out["pre-no-warmup val loss"] - out["pre-warmup val loss"]
        )
        out["post: no-warmup minus warmup"] = (
            out["post-no-warmup val loss"] - out["post-warmup val loss"]
        )
    if name == "gpt2-ln-removal-cpu":
        keep, stag = out["keep-ln val loss"], out["staggered val loss"]
        out["staggered minus keep-ln"] = stag - keep
        out["all-at-once minus staggered"] = out["all-at-once val loss"] - stag
        out["stale-sigma minus staggered"] = out["stale-sigma val loss"] - stag
    if name == "layernorm-vs-rmsnorm-vs-none":
        out["none minus layernorm"] = out["none val loss"] - out["layernorm val loss"]
        out["rmsnorm minus layernorm"] = out["rmsnorm val loss"] - out["layernorm val loss"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="*", help="preset names (default: every preset)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: each preset's own)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    p.add_argument("--jsonl", type=Path, help="append one JSON line per measurement here")
    args = p.parse_args()
    names = args.presets or sorted(path.stem for path in PRESETS.glob("*.yaml"))
    machine = f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__}"
    print(f"# {machine}, threads {args.threads}", flush=True)
    table: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    times: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name in names:
        preset = load_preset(PRESETS / f"{name}.yaml")
        own_seed = preset.base.seed if isinstance(preset, Study) else preset.seed
        for seed in args.seeds or [own_seed]:
            overrides = {"seed": seed, "train.threads": args.threads}
            wall0, cpu0 = time.perf_counter(), time.process_time()
            with tempfile.TemporaryDirectory() as tmp:
                if isinstance(preset, Study):
                    figures = measure_study(name, preset, Path(tmp), overrides)
                else:
                    figures = measure_run(name, replace(preset, overrides), Path(tmp))
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            times[name].append((wall, cpu))
            record = {
                "preset": name,
                "seed": seed,
                "threads": args.threads,
                "wall_s": wall,
                "cpu_s": cpu,
                "torch": torch.__version__,
                "figures": figures,
            }
            print(json.dumps(record), flush=True)
            if args.jsonl:
                with args.jsonl.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            for key, value in figures.items():
                table[(name, key)].append((seed, value))
    print("\n| preset | figure | mean ± sd | seed: value |")
    print("|---|---|---|---|")
    for (name, key), values in table.items():
        vs = [v for _, v in values]
        sd = statistics.stdev(vs) if len(vs) > 1 else 0.0
        each = ", ".join(f"{s}: {v:.4f}" for s, v in values)
        print(f"| {name} | {key} | {statistics.fmean(vs):.4f} ± {sd:.4f} | {each} |")
    for name, ts in times.items():
        walls = ", ".join(f"{w:.0f}" for w, _ in ts)
        cpus = ", ".join(f"{c:.0f}" for _, c in ts)
        print(f"# {name}: wall s per seed {walls}; process CPU s {cpus}")


if __name__ == "__main__":
    main()
