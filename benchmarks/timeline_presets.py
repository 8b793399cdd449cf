"""The timeline presets' claims, measured: each preset and its control, side by side.

    .venv/bin/python benchmarks/timeline_presets.py [--threads 1]

- ln-warm-in versus the same run with LayerNorm throughout (no layernorm events);
- ln-removal-finetune versus the same run keeping LayerNorm (val loss before removal, at the end);
- pretrain-finetune: val loss on the finetune corpus one tick into the finetune, and at the end.

Prints a markdown table (the figures quoted in the presets and docs/timeline.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import load_spec, open_run, start_run  # noqa: E402
from engine.specs import replace  # noqa: E402


def train(spec, runs_dir: Path) -> tuple[dict[int, float], float]:
    start = time.perf_counter()
    handle = start_run(spec, runs_dir)
    handle.join()
    if handle.status != "finished":
        raise SystemExit(f"{spec.name}: {handle.status} {handle.error}")
    ticks, values = open_run(handle.run_dir).scalars("val/loss")
    return dict(zip(ticks.tolist(), values.tolist())), time.perf_counter() - start


def without_norm_events(spec):
    timeline = dataclasses.replace(spec.timeline, layernorm=[])
    return dataclasses.replace(spec, name=spec.name + "-control", timeline=timeline)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for name in ("ln-warm-in", "ln-removal-finetune", "pretrain-finetune"):
            spec = replace(load_spec(f"presets/{name}.yaml"), {"train.threads": args.threads})
            val, wall = train(spec, runs)
            last = max(val)
            if name == "pretrain-finetune":
                first_ft = min(t for t in val if t >= int(0.75 * spec.train.steps))
                rows.append(
                    (
                        name,
                        f"finetune-corpus val loss {val[first_ft]:.4f} at tick "
                        f"{first_ft} -> {val[last]:.4f} at tick {last}",
                        wall,
                    )
                )
                continue
            control, cwall = train(without_norm_events(spec), runs)
            if name == "ln-warm-in":
                mid = 399
                rows.append(
                    (
                        name,
                        f"val loss {val[mid]:.4f} at tick {mid}, {val[last]:.4f} at "
                        f"the end; LayerNorm throughout: {control[mid]:.4f}, "
                        f"{control[last]:.4f}",
                        wall + cwall,
                    )
                )
            else:
                before = int(0.5 * spec.train.steps) - 1
                rows.append(
                    (
                        name,
                        f"val loss {val[before]:.4f} before removal (tick {before}), "
                        f"{val[last]:.4f} at the end with no LayerNorm; keeping it: "
                        f"{control[last]:.4f} (cost {val[last] - control[last]:+.4f})",
                        wall + cwall,
                    )
                )
    print("| preset | measured | wall (s) |")
    print("|---|---|---|")
    for name, text, wall in rows:
        print(f"| {name} | {text} | {wall:.0f} |")


if __name__ == "__main__":
    main()
