"""Engine overhead: the engine versus a bare PyTorch loop on the identical model and batches.

Both train the same preset from the same seed, on the same batches, with the same optimizer, LR
per tick and validation batches; the bare loop has no thread, no run store, no sink and no
checkpoints. Prints final val loss, wall time and tokens/s of each and the ratio
engine/bare (target >= 0.95).

    .venv/bin/python benchmarks/train_loop.py [presets/baby-gpt.yaml] [--steps N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import build_task  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.plan import plan_timeline  # noqa: E402
from engine.runs import open_run  # noqa: E402
from engine.setup import DEFAULT_THREADS, make_optimizer, resolve_device  # noqa: E402
from engine.specs import load_spec, replace  # noqa: E402
from engine.trainer import batch_loss, start_run  # noqa: E402


def bare_loop(spec) -> dict:
    """The plainest loop that trains what the engine trains: nanoGPT's train.py, minus I/O."""
    t = spec.train
    torch.set_num_threads(t.threads or DEFAULT_THREADS)  # as the engine does
    device = resolve_device(t.device)
    task = build_task(spec.data, spec.model)
    lrs = plan_timeline(spec).lr_curve()  # the engine's own compile, in the data's units
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, task.vocab_size).to(device)
    opt = make_optimizer(model, spec)
    gen = torch.Generator().manual_seed(spec.seed)
    val_loss = float("nan")
    start = time.perf_counter()
    for tick in range(t.steps):
        for group in opt.param_groups:
            group["lr"] = float(lrs[tick])
        loss, _ = batch_loss(model, task.batch("train", t.batch_size, gen).to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        done = tick + 1
        if done == t.steps or (t.eval_every and done % t.eval_every == 0):
            model.eval()
            vgen = torch.Generator().manual_seed(spec.seed + 1)
            with torch.no_grad():
                total = sum(
                    batch_loss(model, task.batch("val", t.batch_size, vgen).to(device))[0].item()
                    for _ in range(t.eval_batches)
                )
            val_loss = total / t.eval_batches
            model.train()
    wall = time.perf_counter() - start
    tokens = t.steps * task.tokens_per_batch(t.batch_size)
    return {"val_loss": val_loss, "wall_s": wall, "tokens_per_s": tokens / wall}


def engine_run(spec, runs_dir: Path) -> dict:
    start = time.perf_counter()
    handle = start_run(spec, runs_dir)
    handle.join()
    wall = time.perf_counter() - start  # includes set-up (data, model) that bare_loop excludes
    assert handle.status == "finished", handle.error
    run = open_run(handle.run_dir)
    task = build_task(spec.data, spec.model)
    tokens = spec.train.steps * task.tokens_per_batch(spec.train.batch_size)
    return {
        "val_loss": run.scalars("val/loss")[1][-1],
        "wall_s": wall,
        "tokens_per_s": tokens / wall,
        "run_dir": str(handle.run_dir),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", nargs="?", default="presets/baby-gpt.yaml")
    p.add_argument("--steps", type=int, default=None, help="override train.steps")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating bare/engine rounds of --round-steps ticks for the ratio",
    )
    p.add_argument("--round-steps", type=int, default=300)
    p.add_argument("--rounds-only", action="store_true", help="skip the two full-length runs")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for both loops (1 makes a loaded machine comparable)",
    )
    args = p.parse_args()
    spec = load_spec(args.spec)
    if args.steps:
        spec = replace(spec, {"train.steps": args.steps})
    if args.threads:
        spec = replace(spec, {"train.threads": args.threads})
    build_task(spec.data, spec.model)  # warm the corpus cache so neither side pays for it
    print(
        f"# {spec.name}: {spec.train.steps} ticks, torch {torch.__version__}, "
        f"{spec.train.threads or torch.get_num_threads()} threads, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        # one-time costs (allocator, oneDNN primitives) would otherwise land on whoever goes first
        bare_loop(replace(spec, {"train.steps": 20, "timeline.lr": []}))
        if not args.rounds_only:
            bare = bare_loop(spec)
            eng = engine_run(spec, Path(tmp))
            print("| loop | final val loss | wall time (s) | tokens/s |")
            print("|---|---|---|---|")
            for name, r in (
                ("bare PyTorch", bare),
                ("engine (thread, run store, checkpoints)", eng),
            ):
                print(
                    f"| {name} | {r['val_loss']:.4f} | {r['wall_s']:.1f} | "
                    f"{r['tokens_per_s']:,.0f} |"
                )
            print(
                f"\nfull runs, engine / bare tokens/s: "
                f"{eng['tokens_per_s'] / bare['tokens_per_s']:.3f}; "
                f"identical val loss: {eng['val_loss'] == bare['val_loss']}"
            )
        # Side by side in alternating rounds, so load from elsewhere hits both alike.
        short = replace(spec, {"train.steps": args.round_steps, "timeline.lr": []})
        ratios = []
        for i in range(args.rounds):
            if i % 2:  # alternate who goes first
                e, b = engine_run(short, Path(tmp)), bare_loop(short)
            else:
                b, e = bare_loop(short), engine_run(short, Path(tmp))
            ratios.append(e["tokens_per_s"] / b["tokens_per_s"])
    if ratios:
        print(
            f"alternating rounds of {args.round_steps} ticks, engine / bare tokens/s: "
            f"{', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f} "
            "(target >= 0.95)"
        )


if __name__ == "__main__":
    main()
