"""Benchmark the Triton LayerNorm (or RMSNorm) kernels against torch on a CUDA device.

    python benchmarks/layer_norm.py [--op layer_norm|rms_norm] [--m 4096] [--n 512 1000 ...]
                                    [--dtypes fp32 bf16] [--write docs/benchmarks.md]

For every dtype and row width N it times the forward, the backward (dx, dW, dB) and
forward + backward of ``engine.kernels`` (backend="triton") and of ``torch.nn.functional``
(autocast off) with ``triton.testing.do_bench`` (median of the timed runs), on x of shape (M, N)
with weights of x's dtype. Effective bandwidth counts the bytes the pass must move at least, with
s the element size in bytes:

    forward 2 * M * N * s (read x, write y)
    backward 3 * M * N * s (read x and dy, write dx)
    forward + backward 5 * M * N * s

and the practical ceiling is a device-to-device ``copy_`` moving the same number of bytes. The
result is printed as a markdown table; ``--write PATH`` also replaces the "LayerNorm and RMSNorm
kernels" section of that markdown file (appending it when absent). Without CUDA the script says so
and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION_TITLE = "## LayerNorm and RMSNorm kernels"
DEFAULT_NS = [512, 1000, 1024, 2048, 3000, 4096, 5120, 8192, 12288, 16384]
PASSES = {"forward": 2, "backward": 3, "forward+backward": 5}  # bytes per M * N * s
COMMAND = "python benchmarks/layer_norm.py --write docs/benchmarks.md"

SECTION_INTRO = f"""{SECTION_TITLE}

Triton kernels in `engine/kernels/` (`layer_norm`, `rms_norm`, with removal strength) against
`torch.nn.functional` (autocast off), timed with `triton.testing.do_bench` (median), x of shape
(M, N) with weights of x's dtype. Effective bandwidth counts the bytes each pass must move at
least, with s the element size in bytes:

- forward: 2 · M · N · s (read x, write y)
- backward: 3 · M · N · s (read x and dy, write dx; dW/dB partials are not counted)
- forward + backward: 5 · M · N · s

The ceiling column is a device-to-device `copy_` of the same number of bytes. Regenerate with

    {COMMAND}

(`--op rms_norm` benchmarks RMSNorm against `torch.nn.functional.rms_norm` instead).
"""


def replace_section(doc: str, section: str) -> str:
    """Return ``doc`` with the block starting at SECTION_TITLE (up to the next ``## `` heading or
    the end) replaced by ``section``; the section is appended when absent."""
    section = section.rstrip("\n") + "\n"
    lines = doc.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == SECTION_TITLE]
    if not starts:
        return doc.rstrip("\n") + "\n\n" + section if doc.strip() else section
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def _impls(op: str, x, w, b) -> tuple[dict, list]:
    """{"triton": fn, "torch": fn} computing the op on (x, w, b), and the tensors needing grads."""
    import torch.nn.functional as F

    from engine.kernels import layer_norm, rms_norm

    n = x.shape[-1]
    if op == "rms_norm":
        return {
            "triton": lambda: rms_norm(x, w, backend="triton"),
            "torch": lambda: F.rms_norm(x, (n,), w, 1e-6),
        }, [x, w]
    return {
        "triton": lambda: layer_norm(x, w, b, backend="triton"),
        "torch": lambda: F.layer_norm(x, (n,), w, b, 1e-5),
    }, [x, w, b]


def _bench(op: str, m: int, ns: list[int], dtype_names: list[str]) -> list[dict]:
    import torch
    from triton.testing import do_bench

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    rows = []
    for name in dtype_names:
        for n in ns:
            x, w, b, dy = (
                torch.randn(shape, device="cuda", dtype=dtypes[name])
                for shape in ((m, n), (n,), (n,), (m, n))
            )
            impls, params = _impls(op, x.requires_grad_(), w.requires_grad_(), b.requires_grad_())
            with torch.no_grad():  # do not time a broken kernel
                torch.testing.assert_close(
                    impls["triton"](), impls["torch"](), rtol=2e-2, atol=2e-2
                )
            for pass_name, factor in PASSES.items():
                nbytes = factor * m * n * x.element_size()
                ms = {
                    impl: _time_pass(do_bench, pass_name, fn, dy, params)
                    for impl, fn in impls.items()
                }
                src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
                copy_ms = do_bench(
                    functools.partial(torch.empty_like(src).copy_, src), return_mode="median"
                )
                rows.append(
                    dict(
                        dtype=name,
                        n=n,
                        pass_name=pass_name,
                        ms=ms["triton"],
                        gbps=nbytes / ms["triton"] / 1e6,
                        torch_gbps=nbytes / ms["torch"] / 1e6,
                        copy_gbps=nbytes / copy_ms / 1e6,
                    )
                )
    return rows


def _time_pass(do_bench, pass_name, fn, dy, params):
    import torch

    with torch.autocast("cuda", enabled=False):
        if pass_name == "forward":
            with torch.no_grad():
                return do_bench(fn, return_mode="median")
        if pass_name == "backward":
            y = fn()
            return do_bench(
                lambda: y.backward(dy, retain_graph=True), grad_to_none=params, return_mode="median"
            )
        return do_bench(lambda: fn().backward(dy), grad_to_none=params, return_mode="median")


def format_table(rows: list[dict]) -> str:
    """Markdown table of benchmark rows."""
    out = [
        "| dtype | N | pass | Triton ms | Triton GB/s | torch GB/s | Triton / torch "
        "| copy GB/s | Triton / copy |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['dtype']} | {r['n']} | {r['pass_name']} | {r['ms']:.4f} "
            f"| {r['gbps']:.0f} | {r['torch_gbps']:.0f} "
            f"| {r['gbps'] / r['torch_gbps']:.2f} | {r['copy_gbps']:.0f} "
            f"| {r['gbps'] / r['copy_gbps']:.0%} |"
        )
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--op", choices=["layer_norm", "rms_norm"], default="layer_norm")
    parser.add_argument("--m", type=int, default=4096, help="rows (default 4096)")
    parser.add_argument("--n", type=int, nargs="+", default=DEFAULT_NS, help="row widths")
    parser.add_argument(
        "--dtypes", nargs="+", choices=["fp32", "bf16", "fp16"], default=["fp32", "bf16"]
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="PATH",
        help="replace the benchmark section of this markdown file",
    )
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("benchmarks/layer_norm.py needs CUDA: no CUDA device is available, nothing measured.")
        return 0
    sys.path.insert(0, str(ROOT))
    from engine.kernels import HAS_TRITON

    if not HAS_TRITON:
        print("benchmarks/layer_norm.py needs triton: it is not installed, nothing measured.")
        return 0

    rows = _bench(args.op, args.m, args.n, args.dtypes)
    device = torch.cuda.get_device_name()
    table = (
        f"`{args.op}`, M = {args.m}, on {device} (torch {torch.__version__}):\n\n"
        + format_table(rows)
    )
    print(table)
    if args.write is not None:
        doc = args.write.read_text() if args.write.exists() else ""
        args.write.write_text(replace_section(doc, SECTION_INTRO + "\n" + table))
        print(f"updated {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
