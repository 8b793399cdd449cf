"""The headless command line: ``python -m engine run|resume|study|list|export|sample|timeline``.

It writes the same run folders as the workbench, so a run started here can be followed live in the
GUI. A bad spec prints the ConfigError on one line to stderr and exits 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import torch
import yaml

from engine.branch import branch_run
from engine.distributed import SINGLE, World, close_world, exit_rank, init_world
from engine.errors import ConfigError
from engine.lora import merge_lora
from engine.messages import Log, Message, Scalars, Status
from engine.plan import plan_timeline, write_timeline_csv
from engine.runs import default_runs_dir, list_runs, mark_interrupted, open_run
from engine.sample import load_model_from_run, sample_run
from engine.specs import replace
from engine.steer import SteerError, steer_run
from engine.study import Study, load_preset, run_study
from engine.trainer import resume_run, start_run


def _fmt_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A sink that prints a progress line at most every ``every`` seconds (and on evals)."""

    def __init__(self, steps: int, stream=sys.stderr, every: float = 2.0):
        self.steps, self.stream, self.every = steps, stream, every
        self.start = time.monotonic()
        self.last_print = 0.0
        self.loss = self.val = None
        self.tps: list[float] = []
        self.final_status: Status | None = None

    def __call__(self, messages: list[Message]) -> None:
        tick = None
        force = False
        for msg in messages:
            if isinstance(msg, Scalars):
                tick = msg.tick
                v = msg.values
                if "train/loss" in v:
                    self.loss = v["train/loss"]
                    self.tps = (self.tps + [v["tokens_per_s"]])[-50:]
                if "val/loss" in v:
                    self.val, force = v["val/loss"], True
            elif isinstance(msg, Status):
                self.final_status = msg
                if msg.status in ("stopped", "interrupted"):  # failures: the `error:` line
                    print(
                        f"status: {msg.status} at tick {msg.tick} {msg.detail}".rstrip(),
                        file=self.stream,
                    )
            elif isinstance(msg, Log) and msg.level != "info":
                if msg.level == "error" and "\n" not in msg.text.strip():
                    continue  # the run's error: said once, as the last line (see _wait)
                print(msg.text.rstrip(), file=self.stream)
        now = time.monotonic()
        if tick is not None and (force or now - self.last_print >= self.every):
            self.last_print = now
            self.print_line(tick + 1)

    def print_line(self, done: int) -> None:
        tps = sorted(self.tps)[len(self.tps) // 2] if self.tps else 0.0  # median: steady
        elapsed = time.monotonic() - self.start
        eta = elapsed / max(done, 1) * (self.steps - done)
        val = f"  val {self.val:.4f}" if self.val is not None else ""
        print(
            f"tick {done}/{self.steps}  loss {self.loss:.4f}{val}  {tps / 1000:.1f}k tok/s  "
            f"ETA {_fmt_duration(eta)}",
            file=self.stream,
            flush=True,
        )


def cmd_run(args) -> int:
    spec = _run_spec(args.spec)
    overrides = {}
    if args.steps is not None:
        overrides["train.steps"] = args.steps
    if args.device:
        overrides["train.device"] = args.device
    if overrides:
        spec = replace(spec, overrides)
    world = init_world()
    _announce(world)
    progress = Progress(spec.train.steps) if world.is_main else None
    preset = Path(args.spec).stem
    handle = start_run(spec, args.runs_dir, progress, name=args.name, world=world, preset=preset)
    return _wait(handle, world)


def cmd_resume(args) -> int:
    world = init_world()
    _announce(world)
    record = open_run(args.run_dir)
    progress = Progress(record.spec.train.steps) if world.is_main else None
    handle = resume_run(args.run_dir, progress, world=world)
    return _wait(handle, world)


def cmd_branch(args) -> int:
    record = open_run(args.run_dir)
    spec = _run_spec(args.spec) if args.spec else None
    steps = (spec or record.spec).train.steps
    handle = branch_run(
        args.run_dir, args.at, spec, name=args.name, runs_dir=args.runs_dir, sink=Progress(steps)
    )
    origin = open_run(handle.run_dir).meta.get("forked_from", {})
    print(
        f"branch {handle.run_dir.name} from tick {args.at} of {record.path.name} "
        f"({origin.get('replayed', 0)} ticks replayed)",
        file=sys.stderr,
        flush=True,
    )
    return _wait(handle, SINGLE)


def cmd_steer(args) -> int:
    """Exit 0 once the run applied the revision; 2 with one line when it was refused or the
    run is not running (or did not answer in time)."""
    spec = _run_spec(args.spec)
    try:
        rev = steer_run(args.run_dir, spec, args.from_tick, timeout=args.timeout)
    except SteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if rev.state == "refused":
        print(f"refused: {rev.detail}", file=sys.stderr)
        return 2
    print(f"rev {rev.number} applies from tick {rev.tick}: {rev.detail}")
    return 0


def _announce(world: World) -> None:
    if world.distributed:
        print(f"rank {world.rank} of {world.size} (pid {os.getpid()})", file=sys.stderr, flush=True)


def _wait(handle, world: World) -> int:
    # Ctrl+C stops cleanly: a checkpoint is written and the run can be resumed.
    signal.signal(signal.SIGINT, lambda *_: handle.stop())

    def terminated(*_):
        # torchrun terminates the other ranks when one fails; say so, leave the folder resumable
        why = "another rank failed: " if world.distributed else ""
        if world.is_main:
            try:
                mark_interrupted(handle.run_dir, handle.tick, f"{why}terminated by a signal")
            except Exception:  # the process ends anyway; the dead writer reads interrupted
                pass
        print(
            f"error: terminated ({why or 'signal'}); {handle.run_dir} stays interrupted and "
            f"resumable: python -m engine resume {handle.run_dir}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)

    signal.signal(signal.SIGTERM, terminated)
    while not handle.join(timeout=0.2):
        pass
    close_world(world)
    if handle.error:
        print(f"error: {handle.error}", file=sys.stderr)
    if world.is_main:
        print(handle.run_dir)
    code = 0 if handle.status in ("finished", "stopped") else 1
    exit_rank(code, world)
    return code


def _print_runs(runs) -> None:
    print(
        f"{'name':<28} {'status':<12} {'ticks':>13} {'best val':>9} {'last val':>9} "
        f"{'tok/s':>9}  folder"
    )
    for r in runs:
        best = f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-"
        last = f"{r.last_val_loss:.4f}" if r.last_val_loss is not None else "-"
        tps = f"{r.tokens_per_s:.0f}" if r.tokens_per_s else "-"
        folder = f"{r.path.parent.name}/{r.path.name}" if r.study else r.path.name
        print(
            f"{r.name[:28]:<28} {r.status:<12} {f'{r.ticks}/{r.steps}':>13} {best:>9} "
            f"{last:>9} {tps:>9}  {folder}"
        )


TASK_METRICS = ("val/accuracy", "val/precision", "val/recall", "val/f1", "train/accuracy")


def _print_task_metrics(runs) -> None:
    """The last evaluation's task metrics of each run that has any (classification, seq2seq)."""
    for r in runs:
        record = open_run(r.path)
        values, tick = [], None
        for name in TASK_METRICS:
            ticks, v = record.scalars(name)
            if len(v):
                values.append(f"{name} {v[-1]:.4f}")
                tick = int(ticks[-1])
        if values:
            print(f"{r.name[:28]:<28} at tick {tick}: " + "  ".join(values))


def cmd_list(args) -> int:
    _print_runs(list_runs(args.runs_dir))
    return 0


def cmd_study(args) -> int:
    study = load_preset(args.study)
    if not isinstance(study, Study):
        raise ConfigError("variants", f"{args.study} is a run spec, not a study: use `run`")
    if args.parallel:
        study = dataclasses.replace(study, parallel=args.parallel)
    overrides = {"train.steps": args.steps} if args.steps else None
    print(
        f"study {study.name}: {len(study.variants)} variants, {study.parallel} at a time",
        file=sys.stderr,
    )
    folder, summaries = run_study(study, args.runs_dir or default_runs_dir(), overrides=overrides)
    _print_runs(summaries)
    _print_task_metrics(summaries)
    print(folder)
    complete = len(summaries) == len(study.variants)
    return 0 if complete and all(s.status == "finished" for s in summaries) else 1


def cmd_export(args) -> int:
    if args.format == "hf":
        out = args.out_dir or args.output
        if not out:
            raise ConfigError("OUT_DIR", "--format hf writes a folder: give it after the options")
        from engine.pretrained.export import export_run_hf

        print(export_run_hf(args.run_dir, out))
        return 0
    if args.format == "weights":
        if not args.output:
            raise ConfigError("--output", "--format weights writes a file: give -o PATH")
        _, _, _, model = load_model_from_run(args.run_dir)
        merge_lora(model)  # adapters folded into their weights: a plain model
        torch.save(model.state_dict(), args.output)
        print(args.output)
        return 0
    record = open_run(args.run_dir)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if args.format == "revisions":
        writer.writerow(["rev", "state", "tick", "from_tick", "source", "sent", "detail", "spec"])
        for r in record.revisions():
            writer.writerow(
                [r.number or "", r.state, r.tick, r.from_tick, r.source, r.sent, r.detail, r.spec]
            )
        return 0
    writer.writerow(["tick", "metric", "value"])
    for tick, metric, value in record.all_scalars():
        writer.writerow([tick, metric, repr(value)])
    return 0


def cmd_sample(args) -> int:
    text = sample_run(
        args.run_dir,
        prompt=args.prompt,
        tokens=args.tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    print(text)
    return 0


def _run_spec(path: Path, variant: str | None = None, can_pick: bool = False):
    """The run spec in ``path``, or one ``variant`` of a study; a study without a variant is a
    ConfigError that says how to train it."""
    preset = load_preset(path)
    if not isinstance(preset, Study):
        if variant:
            raise ConfigError("--variant", f"{path} is a run spec, not a study")
        return preset
    names = [name for name, _ in preset.variants]
    if variant is None:
        raise ConfigError(
            "variants",
            f"{path} is a study of {len(names)} runs ({', '.join(names)}): train it with "
            f"`python -m engine study {path}`"
            + (", or pick one with --variant" if can_pick else ""),
        )
    if variant not in names:
        raise ConfigError("--variant", f"no variant {variant!r}; the study has {names}")
    return dict(preset.variants)[variant]


def cmd_timeline(args) -> int:
    spec = _run_spec(args.spec, args.variant, can_pick=True)
    tl = plan_timeline(spec)  # "ep" and "tok" positions resolve against the data
    if args.at is not None:
        if not 0 <= args.at < tl.steps:
            raise ConfigError("--at", f"tick {args.at} outside 0..{tl.steps - 1}")
        state = dataclasses.asdict(tl.at(args.at))
        state["edges"] = [{k: v for k, v in e.items() if v not in ({}, "")} for e in state["edges"]]
        print(yaml.safe_dump(state, sort_keys=False), end="")
        return 0
    write_timeline_csv(tl, sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a run spec (YAML) headless")
    run.add_argument("spec", type=Path)
    run.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help=f"where run folders go (default {default_runs_dir()})",
    )
    run.add_argument("--steps", type=int, default=None, help="override train.steps")
    run.add_argument("--device", default=None, help="override train.device")
    run.add_argument("--name", default=None, help="run name (default: the spec's name)")
    run.set_defaults(func=cmd_run)

    res = sub.add_parser("resume", help="continue a stopped or interrupted run")
    res.add_argument("run_dir", type=Path)
    res.set_defaults(func=cmd_resume)

    br = sub.add_parser(
        "branch",
        help="a new run from any tick of a run (replayed from its nearest checkpoint), "
        "following the run's spec or an edited one from that tick on",
    )
    br.add_argument("run_dir", type=Path)
    br.add_argument("--at", type=int, required=True, help="the tick the branch starts after")
    br.add_argument(
        "--spec", type=Path, default=None, help="the branch's spec (default: the run's)"
    )
    br.add_argument("--name", default=None, help="the branch's name (default: the spec's)")
    br.add_argument("--runs-dir", type=Path, default=None, help="default: beside the run")
    br.set_defaults(func=cmd_branch)

    steer = sub.add_parser(
        "steer",
        help="send an edited spec to a running run: its timeline changes from a tick on "
        "(a revision, recorded in the run and replayed by a resume)",
    )
    steer.add_argument("run_dir", type=Path)
    steer.add_argument("spec", type=Path, help="the edited spec (the run's spec.yaml, changed)")
    steer.add_argument(
        "--from", dest="from_tick", type=int, default=None,
        help="the tick it applies from (default: the run's next tick)",
    )  # fmt: skip
    steer.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the run to answer"
    )
    steer.set_defaults(func=cmd_steer)

    st = sub.add_parser("study", help="train every variant of a study preset and compare")
    st.add_argument("study", type=Path)
    st.add_argument("--runs-dir", type=Path, default=None)
    st.add_argument("--parallel", type=int, default=None, help="variants at a time")
    st.add_argument("--steps", type=int, default=None, help="override train.steps of each")
    st.set_defaults(func=cmd_study)

    ls = sub.add_parser("list", help="list runs")
    ls.add_argument("--runs-dir", type=Path, default=None)
    ls.set_defaults(func=cmd_list)

    ex = sub.add_parser("export", help="export a run's scalars, weights or model")
    ex.add_argument("run_dir", type=Path)
    ex.add_argument(
        "out_dir", type=Path, nargs="?", default=None, help="--format hf: the folder to write"
    )
    ex.add_argument(
        "--format",
        choices=["csv", "revisions", "weights", "hf"],
        default="csv",
        help="csv: scalars to stdout; revisions: the timeline revisions sent to the run, as "
        "CSV (spec: the whole YAML); weights: the latest model (LoRA merged) to -o; hf: a "
        "GPT-2 folder transformers loads (from_pretrained), tokenizer included",
    )
    ex.add_argument("-o", "--output", type=Path, default=None)
    ex.set_defaults(func=cmd_export)

    sa = sub.add_parser("sample", help="sample from a run's latest checkpoint")
    sa.add_argument("run_dir", type=Path)
    sa.add_argument("--prompt", default="\n")
    sa.add_argument("--tokens", type=int, default=200)
    sa.add_argument("--temperature", type=float, default=0.8)
    sa.add_argument("--top-k", type=int, default=None)
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(func=cmd_sample)
    tl = sub.add_parser("timeline", help="print the compiled timeline of a spec")
    tl.add_argument("spec", type=Path)
    tl.add_argument("--csv", action="store_true", help="one row per tick (the default)")
    tl.add_argument("--at", type=int, default=None, help="print one tick as YAML instead")
    tl.add_argument("--variant", help="a study file: the timeline of this variant")
    tl.set_defaults(func=cmd_timeline)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse fills an optional positional before the options that follow the first one:
    # `export RUN --format hf OUT` leaves OUT over; it is export's folder
    export = getattr(args, "func", None) is cmd_export
    if extra and export and args.out_dir is None and not extra[0].startswith("-"):
        args.out_dir, extra = Path(extra[0]), extra[1:]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
