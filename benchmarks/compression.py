"""The compression study's table (docs/presets.md, "compression"), measured over seeds.

    .venv/bin/python benchmarks/compression.py [--seeds 1337 1 2] [--runs-dir DIR]
        [--jsonl results.jsonl] [--table-only]

Trains presets/compression.yaml once per seed (the study's own ``parallel``), then scores every
run's int8 export again, one run at a time and after the training is over (the report each run
logged at its end timed its forward passes while the study's other run trained beside it):
``engine.quantize.int8_report`` on 1 torch thread. One JSON line per run (appended to
``--jsonl`` as soon as it is measured), then the table: mean ± sample standard deviation over
the seeds of val loss, size in bytes (as ``torch.save`` writes the state dict, and zlib-
compressed) and CPU tokens/s per row. ``--table-only`` prints the table of an existing
``--jsonl`` without training; ``--only V ...`` trains only those variants (a variant added
later, measured into the same ``--jsonl``).

Rows: dense, the three pruned runs and QAT score their own fp32 model (QAT: the fake-quantized
forward the run itself evaluated, then its int8 export); "post-training int8" is the dense run's
int8 export.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.quantize import _score, int8_report, quantize_int8  # noqa: E402
from engine.sample import load_model_from_run  # noqa: E402
from engine.study import load_preset, run_study, variant_runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets" / "compression.yaml"


def measure_seed(seed: int, runs_dir: Path, only: list[str] | None = None) -> list[dict]:
    study = load_preset(PRESET)
    if only:
        study = dataclasses.replace(study, variants=[v for v in study.variants if v[0] in only])
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    folder, _ = run_study(study, runs_dir, overrides={"seed": seed})
    wall = time.perf_counter() - start
    out = []
    for name, run in sorted(variant_runs(study, folder).items()):
        assert run.status == "finished", (name, run.status)
        rep = int8_report(run.path, threads=1)
        val = float(run.scalars("val/loss")[1][-1])
        sparsity = run.scalars("sparsity/blocks")[1]
        out.append(
            {
                "seed": seed,
                "variant": name,
                "val_loss": val,  # the run's own last eval (QAT: fake-quantized forward)
                "sparsity": float(sparsity[-1]) if len(sparsity) else 0.0,
                **{k: v for k, v in rep.__dict__.items()},
                "study_wall_s": wall,
                "load_before": load_before,
                "load_after": os.getloadavg()[0],
                "run": str(run.path),
            }
        )
    return out


def speeds(run_dir: str, rounds: int) -> dict:
    """CPU tokens/s of the run's fp32 model and its int8 copy on 1 thread, alternated ``rounds``
    times on the report's val batches: the median of each, and the median of the rounds'
    int8/fp32 ratios (a load that drifts during the pass moves both sides of a round)."""
    spec, task, _, model = load_model_from_run(run_dir)
    gen = torch.Generator().manual_seed(spec.seed + 1)
    batches = [
        task.batch("val", spec.train.batch_size, gen) for _ in range(spec.train.eval_batches)
    ]
    int8 = quantize_int8(model)
    torch.set_num_threads(1)
    fp32_s, int8_s = [], []
    for _ in range(rounds):
        fp32_s.append(_score(model, batches)[1])
        int8_s.append(_score(int8, batches)[1])
    return {
        "speed_fp32": statistics.median(fp32_s),
        "speed_int8": statistics.median(int8_s),
        "speed_ratio": statistics.median(b / a for a, b in zip(fp32_s, int8_s)),
        "speed_rounds": rounds,
        "speed_load": os.getloadavg()[0],
    }


def rows(results: list[dict]) -> list[tuple[str, list[dict], str]]:
    """(row label, the seeds' results, which side of the report: fp32 or int8)."""
    by = {}
    for r in results:
        by.setdefault(r["variant"], []).append(r)
    return [
        ("dense", by.get("dense", []), "fp32"),
        ("gradual 50%", by.get("gradual-50", []), "fp32"),
        ("gradual 80%", by.get("gradual-80", []), "fp32"),
        ("all at once 50% at tick 299", by.get("once-50", []), "fp32"),
        ("all at once 50% at tick 50", by.get("once-50-early", []), "fp32"),
        ("QAT int8 (fake-quant forward)", by.get("qat", []), "qat"),
        ("QAT int8 (int8 export)", by.get("qat", []), "int8"),
        ("post-training int8 (dense)", by.get("dense", []), "int8"),
    ]


def stat(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:{fmt}} ± {sd:{fmt}}"


def table(results: list[dict]) -> str:
    lines = [
        "| run | val loss | Δ vs dense | size (bytes) | zlib (bytes) | CPU tokens/s | int8 ÷ fp32 "
        "speed | seeds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    dense = {r["seed"]: r["val_loss"] for r in results if r["variant"] == "dense"}
    for label, runs, side in rows(results):
        if not runs:
            continue
        if side == "qat":
            loss = [r["val_loss"] for r in runs]
            side = "int8"
            size = zsize = speed = ratio = []
        else:
            loss = [r["val_loss"] if side == "fp32" else r["val_loss_int8"] for r in runs]
            size = [r[f"bytes_{side}"] for r in runs]
            zsize = [r[f"zlib_bytes_{side}"] for r in runs]
            speed = [r.get(f"speed_{side}", r[f"tokens_per_s_{side}"]) for r in runs]
            ratio = [r["speed_ratio"] for r in runs if "speed_ratio" in r and side == "int8"]
        delta = [v - dense[r["seed"]] for v, r in zip(loss, runs) if r["seed"] in dense]
        lines.append(
            f"| {label} | {stat(loss, '.4f')} | {stat(delta, '+.4f')} | {stat(size, ',.0f')} | "
            f"{stat(zsize, ',.0f')} | {stat(speed, ',.0f')} | {stat(ratio, '.2f')} | {len(runs)} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1337, 1, 2])
    p.add_argument("--runs-dir", type=Path, default=Path("/tmp/compression-runs"))
    p.add_argument("--jsonl", type=Path, default=Path("compression.jsonl"))
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--only", nargs="+", help="train only these variants (added to a --jsonl)")
    p.add_argument(
        "--speed-rounds",
        type=int,
        default=0,
        help="after training, time every run of --jsonl again: fp32 and int8 alternated this "
        "many times (the table then shows those medians)",
    )
    args = p.parse_args()
    if not args.table_only:
        print(
            f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        for seed in args.seeds:
            for result in measure_seed(seed, args.runs_dir, args.only):
                print(json.dumps(result), flush=True)
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(result) + "\n")
    results = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line]
    if args.speed_rounds:
        for r in results:
            r.update(speeds(r["run"], args.speed_rounds))
            print(r["variant"], r["seed"], r["speed_fp32"], r["speed_int8"], flush=True)
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for r in results))
    print(table(results))


if __name__ == "__main__":
    main()
