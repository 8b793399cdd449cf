"""engine.kernels.layer_norm: Triton kernels (through the interpreter when there is no GPU)
against torch.nn.functional.layer_norm and an independent fp64 reference of the agreed formula

    y = (x - c * mu) / (s * sigma + (1 - s) * sigma_bar) * w + b,   c = s unless given.

Tolerances are described in conftest.py (fp64 1e-9, fp32 1e-5, fp16 2e-3, bf16 1.6e-2,
relative, doubled against torch's own half-precision result); the large-mean test widens the
fp32 tolerance by the conditioning |mean| / sigma of the input, which bounds torch as well.
"""

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.kernels import HAS_TRITON, _common, layer_norm

ROOT = Path(__file__).resolve().parents[2]
EPS = 1e-5
SIGMA_BAR = 1.7
STRENGTHS = [0.0, 0.3, 1.0]

needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")


def formula64(x, w, b, eps=EPS, strength=1.0, sigma_bar=SIGMA_BAR, center=None):
    """The agreed LayerNorm-with-strength formula, written independently of the engine."""
    center = strength if center is None else center
    mu = x.mean(dim=-1, keepdim=True)
    sigma = ((x - mu) ** 2).mean(dim=-1, keepdim=True).add(eps).sqrt()
    y = (x - center * mu) / (strength * sigma + (1 - strength) * float(sigma_bar))
    y = y if w is None else y * w
    return y if b is None else y + b


def triton_ln(strength=1.0, sigma_bar=SIGMA_BAR, eps=EPS, center=None, backend="triton"):
    return lambda x, w, b: layer_norm(
        x, w, b, eps, strength, sigma_bar, backend=backend, center=center
    )


def ref_ln(strength=1.0, sigma_bar=SIGMA_BAR, eps=EPS, center=None):
    return lambda x, w, b: formula64(x, w, b, eps, strength, sigma_bar, center)


def torch_ln(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, EPS)


def inputs(kt, shape, dtype, wdtype, layout="contiguous", **kw):
    n = shape[-1]
    x = kt.make_x(shape, dtype, layout, **kw)
    return [x, kt.make_param(n, wdtype, 1), kt.make_param(n, wdtype, 2, offset=0.0)]


@needs_triton
@pytest.mark.parametrize("strength", [1.0, 0.3])
def test_shapes_and_dtypes(kt, shape, dtypes, strength):
    dtype, wdtype = dtypes
    args = inputs(kt, shape, dtype, wdtype)
    dy = kt.make_dy(shape, dtype, "contiguous")
    kt.compare(triton_ln(strength), ref_ln(strength), args, dy, kt.rtol[dtype])
    if strength == 1.0:
        kt.compare(triton_ln(), torch_ln, args, dy, 2 * kt.rtol[dtype], ref_fp64=False)


@needs_triton
@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_layouts(kt, x_layout, dy_layout, dtype, strength):
    shape = (2, 3, 33)
    args = inputs(kt, shape, dtype, dtype, x_layout)
    if x_layout != "contiguous":
        assert not args[0].is_contiguous()
    dy = kt.make_dy(shape, dtype, dy_layout)
    kt.compare(triton_ln(strength), ref_ln(strength), args, dy, kt.rtol[dtype])


WIDE_CASES = [
    ((5, 33), torch.float32, torch.float32, "contiguous", "contiguous"),
    ((2, 3, 50), torch.bfloat16, torch.float32, "transposed", "broadcast"),
    ((7, 48), torch.float16, torch.float16, "sliced", "sliced"),
    ((1, 17), torch.float32, torch.float32, "contiguous", "transposed"),
]


@needs_triton
@pytest.mark.parametrize("strength", [1.0, 0.3])
@pytest.mark.parametrize("shape,dtype,wdtype,x_layout,dy_layout", WIDE_CASES)
def test_rows_wider_than_a_block(
    kt, narrow_blocks, shape, dtype, wdtype, x_layout, dy_layout, strength
):
    assert shape[-1] > narrow_blocks  # the chunked kernel path is the one under test
    args = inputs(kt, shape, dtype, wdtype, x_layout)
    dy = kt.make_dy(shape, dtype, dy_layout)
    kt.compare(triton_ln(strength), ref_ln(strength), args, dy, kt.rtol[dtype])


@needs_triton
@pytest.mark.parametrize("strength", [1.0, 0.3])
@pytest.mark.parametrize("has_w,has_b", [(False, False), (True, False), (False, True)])
def test_optional_weight_and_bias(kt, has_w, has_b, strength):
    x, w, b = inputs(kt, (6, 20), torch.float32, torch.float32)
    args = [x, w if has_w else None, b if has_b else None]
    kt.compare(triton_ln(strength), ref_ln(strength), args, None, kt.rtol[torch.float32])


@needs_triton
@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_constant_rows(kt, dtype, strength):
    # sigma = 0: the rows are constant (dyadic values, so the mean is exact in any precision)
    x, w, b = inputs(kt, (5, 40), dtype, dtype)
    const = torch.tensor([0.5, -3.0, 0.0, 1024.0], device=kt.device, dtype=dtype)
    x = torch.cat([const[:, None].expand(4, 40), x[:1].detach()]).requires_grad_()
    y, got = kt.compare(triton_ln(strength), ref_ln(strength), [x, w, b], None, kt.rtol[dtype])
    if strength == 1.0:  # constant rows normalise to the bias
        torch.testing.assert_close(y[:4], b.detach().expand(4, 40), rtol=0, atol=0)


@needs_triton
@pytest.mark.parametrize("strength", STRENGTHS)
def test_large_means(kt, strength):
    # x = 1e4 + randn: fp32 keeps only ~1e-3 absolute precision of each value's offset from the
    # mean, so any fp32 implementation (torch included) is off by about eps32 * |mean| / sigma.
    shape = (6, 64)
    args = inputs(kt, shape, torch.float32, torch.float32, offset=1e4)
    x64 = args[0].detach().double()
    kappa = (x64.abs().amax(-1) / x64.std(-1, unbiased=False)).max().item()
    rtol = max(kt.rtol[torch.float32], 8 * torch.finfo(torch.float32).eps * kappa)
    assert rtol < 2e-2  # still a meaningful bound
    dy = kt.make_dy(shape, torch.float32, "contiguous")
    kt.compare(triton_ln(strength), ref_ln(strength), args, dy, rtol)
    if strength == 1.0:  # torch itself is within the same bound
        kt.compare(torch_ln, ref_ln(), args, dy, rtol)


@needs_triton
@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_gradcheck_fp64(kt, backend, strength):
    x, w, b = inputs(kt, (2, 6), torch.float64, torch.float64)
    sigma_bar = torch.tensor(1.3, dtype=torch.float64) if strength == 0.3 else 0.8

    def fn(x, w, b):
        return layer_norm(x, w, b, EPS, strength, sigma_bar, backend=backend)

    assert torch.autograd.gradcheck(fn, (x, w, b))


@needs_triton
def test_gradcheck_fp64_chunked_rows(kt, monkeypatch):
    monkeypatch.setattr(_common, "MAX_BLOCK_N", 4)
    x, w, b = inputs(kt, (2, 9), torch.float64, torch.float64)
    assert torch.autograd.gradcheck(triton_ln(0.6, sigma_bar=1.1), (x, w, b))


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_repeat_runs_are_identical(kt, dtype):
    args = inputs(kt, (11, 64), dtype, torch.float32)
    dy = kt.make_dy((11, 64), dtype, "contiguous")
    runs = []
    for _ in range(2):
        y = triton_ln(0.3)(*args)
        runs.append([y, *kt.grads(y, args, dy)])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


@needs_triton
@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"]
)
def test_triton_and_torch_backends_agree(kt, dtype, strength):
    args = inputs(kt, (2, 5, 24), dtype, torch.float32)
    dy = kt.make_dy((2, 5, 24), dtype, "contiguous")

    def torch_backend(x, w, b):
        return layer_norm(x, w, b, EPS, strength, SIGMA_BAR, backend="torch")

    kt.compare(triton_ln(strength), torch_backend, args, dy, 2 * kt.rtol[dtype], ref_fp64=False)


@needs_triton
def test_sigma_bar_tensor_is_a_constant(kt):
    x, w, b = inputs(kt, (4, 9), torch.float64, torch.float64)
    sigma_bar = torch.tensor(0.9, dtype=torch.float64, device=kt.device, requires_grad=True)
    for backend in ("triton", "torch"):
        y = layer_norm(x, w, b, EPS, 0.4, sigma_bar, backend=backend)
        kt.assert_close(y, formula64(x, w, b, EPS, 0.4, 0.9), kt.rtol[torch.float64])
        y.sum().backward()
    assert sigma_bar.grad is None


def test_torch_backend_is_exactly_functional_layer_norm(kt):
    args = inputs(kt, (3, 4, 10), torch.float32, torch.float32, "transposed")
    dy = kt.make_dy((3, 4, 10), torch.float32, "contiguous")
    y = layer_norm(*args, EPS, backend="torch")
    y_ref = torch_ln(*args)
    assert torch.equal(y, y_ref)
    for got, want in zip(kt.grads(y, args, dy), kt.grads(y_ref, args, dy)):
        assert torch.equal(got, want)


def test_torch_backend_formula_below_full_strength(kt):
    args = inputs(kt, (4, 12), torch.bfloat16, torch.float32)
    for strength in (0.0, 0.3):
        y = layer_norm(*args, EPS, strength, SIGMA_BAR, backend="torch")
        assert y.dtype == torch.bfloat16
        kt.compare(
            lambda x, w, b, s=strength: layer_norm(x, w, b, EPS, s, SIGMA_BAR, backend="torch"),
            ref_ln(strength),
            args,
            None,
            kt.rtol[torch.bfloat16],
        )


def test_strength_zero_is_a_fixed_affine_map(kt):
    x, w, b = inputs(kt, (3, 8), torch.float64, torch.float64)
    y = layer_norm(x, w, b, EPS, 0.0, 2.0, backend="torch")
    kt.assert_close(y, x / 2.0 * w + b, 1e-12)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU behaviour")
def test_auto_backend_on_cpu_uses_torch(kt):
    args = inputs(kt, (3, 10), torch.float32, torch.float32)
    y = layer_norm(*args, EPS, backend="auto")
    assert "NativeLayerNorm" in type(y.grad_fn).__name__
    y = layer_norm(*args, EPS, 0.5, backend="auto")
    assert "LayerNormFunction" not in type(y.grad_fn).__name__


@needs_triton
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_backend_on_cuda_uses_triton(kt):
    y = layer_norm(*inputs(kt, (3, 10), torch.float32, torch.float32), EPS, backend="auto")
    assert "LayerNormFunction" in type(y.grad_fn).__name__


@needs_triton
def test_triton_backend_on_cpu_without_interpreter_is_a_clear_error(kt, monkeypatch):
    monkeypatch.setattr(_common, "INTERPRETED", False)
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        layer_norm(x, None, None, backend="triton")


# --- separate centring coefficient c (center): y = (x - c * mu) / d * w + b ---------------------
# Tolerance: fp32 against the fp64 autograd reference of the formula, kt.rtol[float32] = 1e-5
# relative with an absolute floor of 1e-5 * max(1, max|expected|) (conftest.py), for y and for
# the gradients of x, weight and bias; fp64 gradcheck for the backward formula itself.
CENTERS = [None, 0.0, 0.3, 1.0]
CENTER_STRENGTHS = [0.0, 0.5, 1.0]


@needs_triton
@pytest.mark.parametrize("chunked", [False, True], ids=["one_pass", "chunked"])
@pytest.mark.parametrize("strength", CENTER_STRENGTHS)
@pytest.mark.parametrize("center", CENTERS)
def test_center_matches_fp64_formula(kt, monkeypatch, center, strength, chunked):
    if chunked:  # rows of 20 in blocks of 8: the chunked kernel path
        monkeypatch.setattr(_common, "MAX_BLOCK_N", 8)
    shape = (5, 20)
    args = inputs(kt, shape, torch.float32, torch.float32, offset=0.7)  # a non-zero mean
    dy = kt.make_dy(shape, torch.float32, "contiguous")
    fn = triton_ln(strength, center=center)
    kt.compare(fn, ref_ln(strength, center=center), args, dy, kt.rtol[torch.float32])


@pytest.mark.parametrize("strength", CENTER_STRENGTHS)
@pytest.mark.parametrize("center", CENTERS)
def test_center_torch_backend_matches_fp64_formula(kt, center, strength):
    shape = (5, 20)
    args = inputs(kt, shape, torch.float32, torch.float32, offset=0.7)
    dy = kt.make_dy(shape, torch.float32, "contiguous")
    fn = triton_ln(strength, center=center, backend="torch")
    kt.compare(fn, ref_ln(strength, center=center), args, dy, kt.rtol[torch.float32])


GRADCHECK_CENTER_CASES = [
    # (strength, center, backend, chunked)
    *[(s, c, backend, False) for s, c in [(0.5, 0.3), (0.0, 1.0), (1.0, 0.0), (0.3, 0.8)]
      for backend in ("triton", "torch")],
    (0.5, 0.3, "triton", True),
    (0.0, 1.0, "triton", True),
]  # fmt: skip


@needs_triton
@pytest.mark.parametrize("strength,center,backend,chunked", GRADCHECK_CENTER_CASES)
def test_center_gradcheck_fp64(kt, monkeypatch, strength, center, backend, chunked):
    if chunked:  # rows of 6 in blocks of 4
        monkeypatch.setattr(_common, "MAX_BLOCK_N", 4)
    x, w, b = inputs(kt, (2, 6), torch.float64, torch.float64, offset=0.5)
    fn = triton_ln(strength, sigma_bar=1.1, center=center, backend=backend)
    assert torch.autograd.gradcheck(fn, (x, w, b))


@needs_triton
@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_center_none_is_exactly_center_equal_to_strength(kt, dtype, strength, backend):
    shape = (3, 2, 24)
    args = inputs(kt, shape, dtype, torch.float32, offset=0.4)
    dy = kt.make_dy(shape, dtype, "contiguous")
    runs = []
    for center in (None, strength):
        y = triton_ln(strength, center=center, backend=backend)(*args)
        runs.append([y, *kt.grads(y, args, dy)])
    for first, second in zip(*runs):
        assert torch.equal(first, second)


def test_center_one_below_full_strength_is_not_functional_layer_norm(kt):
    # strength 1 with center 0 must not take the F.layer_norm shortcut of the torch path
    x, w, b = inputs(kt, (3, 8), torch.float64, torch.float64, offset=2.0)
    y = layer_norm(x, w, b, EPS, 1.0, backend="torch", center=0.0)
    kt.assert_close(y, formula64(x, w, b, EPS, 1.0, center=0.0), kt.rtol[torch.float64])
    assert (y - F.layer_norm(x, (8,), w, b, EPS)).abs().max() > 0.1


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_norm_center_always_at_strength_zero_is_fake_layer_norm(kt, backend):
    from engine.norm import Norm

    norm = Norm("layernorm", 12, eps=EPS, backend=backend, center="always").double()
    assert norm.center == "always" and "center=always" in repr(norm)
    with torch.no_grad():
        norm.weight.copy_(kt.make_param(12, torch.float64, 1).detach())
        norm.bias.copy_(kt.make_param(12, torch.float64, 2, offset=0.0).detach())
        norm.sigma_bar.fill_(SIGMA_BAR)
    norm.set_strength(0.0)
    x = kt.make_x((4, 12), torch.float64, offset=3.0).detach()
    want = (x - x.mean(-1, keepdim=True)) / SIGMA_BAR * norm.weight + norm.bias
    kt.assert_close(norm(x), want, kt.rtol[torch.float64])
    plain = Norm("layernorm", 12, eps=EPS, backend=backend).double()
    plain.load_state_dict({**norm.state_dict(), "_extra_state": {**norm.get_extra_state()}})
    assert plain.center == "always"
    plain.center = "strength"  # c = s = 0: no centring, the fixed affine map
    kt.assert_close(plain(x), x / SIGMA_BAR * norm.weight + norm.bias, kt.rtol[torch.float64])


def test_norm_center_state_dict_round_trip_and_old_checkpoints():
    from engine.norm import Norm

    always = Norm("layernorm", 6, center="always")
    always.set_strength(0.25)
    state = always.state_dict()
    assert state["_extra_state"]["center"] == "always"
    fresh = Norm("layernorm", 6)
    assert fresh.center == "strength"
    fresh.load_state_dict(state)
    assert (fresh.center, fresh.strength) == ("always", 0.25)
    # the default is stored by omission, so old checkpoints (no "center") read as "strength"
    assert "center" not in Norm("layernorm", 6).get_extra_state()
    old = {**state, "_extra_state": {"strength": 0.5, "eps": 1e-5, "backend": "auto"}}
    loaded = Norm("layernorm", 6, center="always")
    loaded.load_state_dict(old)
    assert (loaded.center, loaded.strength) == ("strength", 0.5)
    with pytest.raises(ValueError, match="center"):
        Norm("layernorm", 6, center="sometimes")
    with pytest.raises(ValueError, match="center"):
        loaded.set_extra_state({**old["_extra_state"], "center": "never"})


def test_make_norm_passes_the_config_center():
    import dataclasses

    from engine.config import ModelConfig
    from engine.model import make_norm

    cfg = dataclasses.replace(ModelConfig(), norm="layernorm", norm_center="always")
    assert make_norm(cfg).center == "always"
    assert make_norm(dataclasses.replace(cfg, norm_center="strength")).center == "strength"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(backend="cuda"), "backend"),
        (dict(backend=None), "backend"),
        (dict(strength=-0.1), "strength"),
        (dict(strength=1.5), "strength"),
        (dict(strength=math.nan), "strength"),
        (dict(strength="0.5"), "strength"),
        (dict(strength=0.5, sigma_bar=0.0), "sigma_bar"),
        (dict(strength=0.5, sigma_bar=math.inf), "sigma_bar"),
        (dict(strength=0.5, sigma_bar=torch.ones(2)), "sigma_bar"),
        (dict(center=-0.1), "center"),
        (dict(center=1.5), "center"),
        (dict(center=math.nan), "center"),
        (dict(center="1"), "center"),
        (dict(center=torch.ones(2)), "center"),  # a 1-element tensor is accepted (compile mode)
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, match):
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match=match):
        layer_norm(x, None, None, **kwargs)


def test_parameter_shape_mismatch_raises_value_error():
    with pytest.raises(ValueError, match="weight"):
        layer_norm(torch.randn(2, 4), torch.ones(5), None)
    with pytest.raises(ValueError, match="bias"):
        layer_norm(torch.randn(2, 4), None, torch.ones(3))


def test_package_works_without_triton():
    code = """
import sys
sys.modules["triton"] = None  # any "import triton" now raises ImportError
import torch
import torch.nn.functional as F
from engine import kernels
assert not kernels.HAS_TRITON
x = torch.randn(3, 6)
assert torch.equal(kernels.layer_norm(x, None, None), F.layer_norm(x, (6,)))
assert torch.equal(kernels.rms_norm(x, None, backend="torch"), F.rms_norm(x, (6,), eps=1e-6))
kernels.layer_norm(x, None, None, strength=0.5, backend="auto")
for fn in (lambda: kernels.layer_norm(x, None, None, backend="triton"),
           lambda: kernels.rms_norm(x, None, backend="triton")):
    try:
        fn()
    except ValueError as e:
        assert "not installed" in str(e), e
    else:
        raise SystemExit("backend='triton' without triton did not raise")
print("ok")
"""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


SM90_COMPILE_CHECK = """
import sys
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import engine.kernels  # noqa: F401
mods = [sys.modules["engine.kernels.layer_norm"], sys.modules["engine.kernels.rms_norm"]]
kernels = [getattr(m, k) for m in mods for k in dir(m) if k.endswith("_kernel")]
assert len(kernels) == 4 and all(isinstance(k, triton.runtime.JITFunction) for k in kernels)
ptr = {"Y": "*bf16", "X": "*bf16", "DX": "*bf16", "DY": "*bf16", "W": "*fp32", "B": "*fp32",
       "Stats": "*fp32", "Partials": "*fp32", "SigmaBar": "*fp32", "Strength": "*fp32",
       "Center": "*fp32"}
floats = {"eps": "fp64", "strength": "fp64", "sigma_bar": "fp64", "center": "fp64"}
for fn in kernels:
    for one_pass, present in ((True, True), (False, False)):
        flags = dict(HAS_WEIGHT=present, HAS_BIAS=present, SIGMA_BAR_PTR=present,
                     SCALAR_PTRS=present, COMPUTE=tl.float32, BLOCK_N=1024, ONE_PASS=one_pass)
        consts = {k: v for k, v in flags.items() if k in fn.arg_names}
        if not present:
            consts.update({k: None for k in ("W", "B", "SigmaBar", "Strength", "Center")
                           if k in fn.arg_names})
        sig = {a: "constexpr" if a in consts else ptr.get(a) or floats.get(a, "i32")
               for a in fn.arg_names}
        triton.compile(ASTSource(fn, sig, consts), target=GPUTarget("cuda", 90, 32),
                       options={"num_warps": 8})
print("ok")
"""


@needs_triton
def test_kernels_compile_for_sm90_without_a_gpu():
    # The interpreter does not run Triton's compiler front end (scoping and typing rules), so
    # compile every kernel, one-pass and chunked, for an H100-class target with ptxas.
    pytest.importorskip("triton.compiler", reason="needs triton's compiler API")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    done = subprocess.run(
        [sys.executable, "-c", SM90_COMPILE_CHECK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == "ok"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "bench_layer_norm", ROOT / "benchmarks" / "layer_norm.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU behaviour")
def test_benchmark_exits_cleanly_without_cuda():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "layer_norm.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "needs CUDA" in done.stdout


def test_benchmark_replaces_only_its_docs_section():
    bench = _load_benchmark()
    doc = "# Benchmarks\n\nintro\n\n## Other\nkeep me\n\n## LayerNorm and RMSNorm kernels\nold\n"
    new = bench.replace_section(
        doc + "\n## Later\nkeep too\n", "## LayerNorm and RMSNorm kernels\nnew table\n"
    )
    assert "old" not in new and "new table" in new
    assert "keep me" in new and "keep too" in new and new.startswith("# Benchmarks")
    appended = bench.replace_section("# Benchmarks\n", "## LayerNorm and RMSNorm kernels\nt\n")
    assert appended.endswith("## LayerNorm and RMSNorm kernels\nt\n")
