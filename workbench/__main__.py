"""``python -m workbench``: open the Tickbench window, optionally driven by a script.

    python -m workbench [--preset PATH] [--runs-dir D] [--run] [--quit-after-run]
                        [--screenshot PNG] [--screenshot-at-tick N] [--steps N] [...]
    python -m workbench --preset PATH [--variant NAME] --dump-timeline OUT.csv

Without a display, or without a system library Qt's X11 (xcb) plugin needs, it prints one line
saying so (what to install, how to train headless) instead of letting Qt abort. See
docs/automation.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.display_check import display_problem, library_problem


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workbench",
        description="Open the Tickbench window; optionally run a spec, screenshot it and quit.",
        epilog="Scriptable mode and object names: docs/automation.md",
    )
    p.add_argument("--preset", type=Path, help="run spec (YAML) to load into the Config panel")
    p.add_argument("--runs-dir", type=Path, help="where run folders go (default: the engine's)")
    p.add_argument(
        "--presets-dir", type=Path, help="folder of preset YAML files (default: presets/)"
    )
    p.add_argument("--steps", type=int, help="override train.steps of the loaded spec")
    p.add_argument(
        "--variant", help="a study preset: load this variant into the Config panel and editor"
    )
    p.add_argument(
        "--dump-timeline",
        type=Path,
        metavar="CSV",
        help="write the timeline the editor draws (the columns of `python -m engine timeline "
        "SPEC --csv`) and exit: 0, or 2 with the error the editor shows",
    )
    p.add_argument("--run", action="store_true", help="start the run once the window is up")
    p.add_argument(
        "--quit-after-run",
        action="store_true",
        help="exit when the run ends: 0 if it finished (or was stopped), 1 if it failed",
    )
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="save the whole window when the run ends (without --run: once it is ready, then exit)",
    )
    p.add_argument(
        "--screenshot-at-tick",
        type=int,
        metavar="N",
        help="take the screenshot when tick N is reached instead (then stop, if quitting)",
    )
    p.add_argument("--size", type=_size, metavar="WxH", help="window size, e.g. 1280x800")
    p.add_argument(
        "--show-dock",
        metavar="NAME",
        help="give the bottom dock area to one dock (timeline, log, runs, sample, diff) or to "
        "none (the plots take the height): for screenshots",
    )
    p.add_argument("--theme", choices=("dark", "light"), help="colour theme")
    p.add_argument(
        "--settings", type=Path, help="INI file for layout and recent files (default: yours)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = display_problem() or library_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from workbench.training.threads import configure_process

    configure_process()  # before torch starts (the window's imports start it)
    from workbench.app import run_app  # the window and the engine only once it can open

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
