"""Norm under torch.compile: no graph break, no recompile when the strength (or the centring)
changes tick by tick, compiled results equal to eager ones, and an unchanged eager path.

Without a GPU the Triton kernels run through the interpreter (TRITON_INTERPRET=1, set by
conftest.py before engine.kernels is imported), so the Triton cases use a few small rows.
Dynamo-level checks use backend="aot_eager" (graph capture and autograd tracing, no code
generation); one case compiles with inductor. Tolerance against eager, fp32: 1e-5 relative with
an absolute floor of 1e-5 times the tensor's scale (``kt.assert_close``); the compiled Triton
path runs the same kernels as the eager one and is checked bit for bit.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
import torch.nn.functional as F
from torch._dynamo.utils import counters

from engine.config import ModelConfig
from engine.kernels import HAS_TRITON, _common, layer_norm, rms_norm
from engine.model import build_model
from engine.norm import Norm

RTOL = 1e-5
SIGMA_BAR = 1.7
CASES = [(s, c) for s in (1.0, 0.5, 0.0) for c in ("strength", "always")]


def _triton_usable() -> bool:
    return HAS_TRITON and (torch.cuda.is_available() or _common.INTERPRETED)


triton_param = pytest.param(
    "triton",
    marks=pytest.mark.skipif(
        not _triton_usable(), reason="needs triton, and CUDA or TRITON_INTERPRET=1"
    ),
)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def small_model(backend: str, device) -> torch.nn.Module:
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=32, d_ff=64, context=16)
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(cfg, norm_backend=backend), vocab_size=50)
    return model.to(device)


def loss_of(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


def batch(device, rows=2, seq=16):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, 50, (2, rows, seq), generator=g).to(device)
    return x, y


def graph_targets(gm: torch.fx.GraphModule) -> set:
    return {node.target for node in gm.graph.nodes if node.op == "call_function"}


# --- graph breaks -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", triton_param])
def test_model_forward_and_loss_trace_without_a_graph_break(kt, backend):
    model = small_model(backend, kt.device)
    for i, (_, norm) in enumerate(model.norm_sites()):
        norm.set_strength((0.2, 1.0, 0.6)[i % 3])  # below 1 somewhere: the blended formula
    x, y = batch(kt.device, rows=1, seq=4)
    explained = torch._dynamo.explain(loss_of)(model, x, y)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1
    targets = graph_targets(explained.graphs[0])
    if backend == "triton":  # the kernels are reached through the custom op, not traced into
        assert torch.ops.tickbench.layer_norm_fwd.default in targets
    else:
        assert F.layer_norm not in targets  # tensor strength: the formula, not the shortcut


# --- recompiles -------------------------------------------------------------------------------


def test_strength_ramp_and_center_toggle_do_not_recompile():
    model = small_model("torch", "cpu")
    norms = [norm for _, norm in model.norm_sites()]
    x, y = batch("cpu")
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(loss_of, backend=counter)
    for tick in range(30):
        for norm in norms:
            norm.strength = 1.0 - tick / 29  # as the trainer's steering assigns it
            norm.center = "always" if tick % 2 else "strength"
        loss = compiled(model, x, y)
        loss.backward()
        with torch.no_grad():
            want = loss_of(model, x, y)  # eager, with the floats
        torch.testing.assert_close(loss, want, rtol=RTOL, atol=RTOL)
    # One compile, stricter than it needs to be: dynamo makes a float attribute that changes a
    # symbolic input after one recompile, so float strengths compiled 3 graphs on this ramp (one
    # more for the toggled center); counters["recompiles"] stayed empty then, unique_graphs not.
    assert counter.frame_count == 1
    assert counters["stats"]["unique_graphs"] == 1
    compiles = counter.frame_count
    # the counter does see recompiles: eps is a guarded constant, so changing it recompiles
    norms[0].eps = 1e-3
    compiled(model, x, y)
    assert counter.frame_count == compiles + 1


# --- compiled equals eager --------------------------------------------------------------------


def make_norm(kind, backend, device):
    torch.manual_seed(2)
    norm = Norm(kind, 32, backend=backend).to(device)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.3 * torch.randn(32))
        if norm.bias is not None:
            norm.bias.copy_(0.3 * torch.randn(32))
        norm.sigma_bar.fill_(SIGMA_BAR)
    return norm


def forward_and_grads(fn, norm, x, dy):
    x = x.detach().clone().requires_grad_()
    out = fn(x)
    params = [p for p in (norm.weight, norm.bias) if p is not None]
    return [out, *torch.autograd.grad(out, [x, *params], dy)]


def check_compiled_against_eager(norm, compiled, x, dy, exact):
    for strength, center in CASES:
        if norm.kind == "rmsnorm" and center == "always":
            continue  # RMSNorm never centres
        norm.set_strength(strength)
        norm.center = center
        got = forward_and_grads(compiled, norm, x, dy)
        want = forward_and_grads(norm, norm, x, dy)
        for i, (g, w) in enumerate(zip(got, want)):
            name = f"s={strength} center={center} {'output' if i == 0 else f'grad {i}'}"
            if exact:
                assert torch.equal(g, w), name
            else:
                torch.testing.assert_close(
                    g, w, rtol=RTOL, atol=RTOL * max(1.0, w.abs().max().item()), msg=name
                )


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
@pytest.mark.parametrize("backend", ["torch", triton_param])
def test_aot_eager_matches_eager(kt, kind, backend):
    norm = make_norm(kind, backend, kt.device)
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 3, 32, generator=g) * 2 + 0.5).to(kt.device)
    dy = torch.randn(2, 3, 32, generator=g).to(kt.device)
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(norm, backend=counter)
    # Triton: the custom ops launch the very kernels the eager autograd.Function does, with the
    # same fp32 values (loaded from the buffers instead of passed as launch arguments)
    check_compiled_against_eager(norm, compiled, x, dy, exact=backend == "triton")
    assert counter.frame_count == 1


def test_inductor_matches_eager():
    norm = make_norm("layernorm", "torch", "cpu")
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 5, 32, generator=g) * 2 + 0.5
    dy = torch.randn(4, 5, 32, generator=g)
    counter = torch._dynamo.testing.CompileCounterWithBackend("inductor")
    compiled = torch.compile(norm, backend=counter)
    check_compiled_against_eager(norm, compiled, x, dy, exact=False)
    assert counter.frame_count == 1


# --- the eager path and the buffers -----------------------------------------------------------


def test_eager_norm_is_unchanged():
    x = torch.randn(3, 7, 16)
    ln = Norm("layernorm", 16, backend="torch")
    with torch.no_grad():
        ln.weight.copy_(torch.randn(16))
        ln.bias.copy_(torch.randn(16))
    ln.set_strength(0.3)
    ln.set_strength(1.0)  # back to full strength: bit for bit F.layer_norm again
    assert torch.equal(ln(x), F.layer_norm(x, (16,), ln.weight, ln.bias, ln.eps))
    rms = Norm("rmsnorm", 16, backend="torch")
    assert torch.equal(rms(x), F.rms_norm(x, (16,), rms.weight, rms.eps))


def test_eager_forward_passes_floats_to_the_kernels(monkeypatch):
    import engine.kernels

    seen = {}
    monkeypatch.setattr(engine.kernels, "layer_norm", lambda x, w, b, **kw: seen.update(kw) or x)
    norm = Norm("layernorm", 4, backend="torch", center="always")
    norm.set_strength(0.25)
    norm(torch.randn(2, 4))
    assert type(seen["strength"]) is float and type(seen["center"]) is float


def test_buffers_mirror_strength_and_center():
    norm = Norm("layernorm", 4)
    assert (norm.strength_tensor.item(), norm.center_tensor.item()) == (1.0, 1.0)
    assert norm.strength_tensor.dtype == norm.center_tensor.dtype == torch.float32
    norm.strength = 0.25  # plain assignment, as engine.steering does
    assert (norm.strength_tensor.item(), norm.center_tensor.item()) == (0.25, 0.25)
    norm.center = "always"
    assert (norm.strength_tensor.item(), norm.center_tensor.item()) == (0.25, 1.0)
    norm.set_strength(0.5)
    assert (norm.strength_tensor.item(), norm.center_tensor.item()) == (0.5, 1.0)
    state = norm.state_dict()
    assert "strength_tensor" not in state and "center_tensor" not in state  # not persistent
    fresh = Norm("layernorm", 4)
    fresh.load_state_dict(state)  # the extra state sets strength and center, and so the buffers
    assert (fresh.strength_tensor.item(), fresh.center_tensor.item()) == (0.5, 1.0)
    clone = copy.deepcopy(norm)
    clone.center = "strength"
    assert clone.center_tensor.item() == 0.5 and norm.center_tensor.item() == 1.0
    with pytest.raises(ValueError, match="strength"):
        norm.strength = 1.5
    with pytest.raises(ValueError, match="center"):
        norm.center = "sometimes"
    assert (norm.strength, norm.center, norm.strength_tensor.item()) == (0.5, "always", 0.5)


# --- the kernels with tensor scalars ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", triton_param])
def test_kernels_take_tensor_scalars(kt, backend):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 32, generator=g).to(kt.device)
    w, b = (torch.randn(32, generator=g).to(kt.device) for _ in range(2))
    sb = torch.tensor(SIGMA_BAR, device=kt.device)
    for s, c in [(1.0, None), (0.5, None), (0.0, 1.0), (0.3, 0.6)]:
        st = torch.tensor(s, device=kt.device)
        ct = None if c is None else torch.tensor(c, device=kt.device)
        got = layer_norm(x, w, b, 1e-5, st, sb, backend=backend, center=ct)
        want = layer_norm(x, w, b, 1e-5, s, sb, backend=backend, center=c)
        got_rms = rms_norm(x, w, 1e-6, st, sb, backend=backend)
        want_rms = rms_norm(x, w, 1e-6, s, sb, backend=backend)
        if backend == "triton":  # the custom op against the autograd.Function: same kernels
            assert torch.equal(got, want) and torch.equal(got_rms, want_rms)
        else:  # at s = 1 the float path is F.layer_norm, the tensor path the general formula
            kt.assert_close(got, want, RTOL, f"layer_norm s={s} c={c}")
            kt.assert_close(got_rms, want_rms, RTOL, f"rms_norm s={s}")
    for bad in (torch.ones(2), torch.tensor(1)):  # two elements; an integer tensor
        with pytest.raises(ValueError, match="strength"):
            layer_norm(x, w, b, strength=bad, backend=backend)
        with pytest.raises(ValueError, match="center"):
            layer_norm(x, w, b, center=bad, backend=backend)


@pytest.mark.skipif(not _triton_usable(), reason="needs triton, and CUDA or TRITON_INTERPRET=1")
def test_custom_ops_pass_opcheck(kt):
    # schema, fake (meta) results and the autograd registration, checked by torch itself
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 16, generator=g).to(kt.device).requires_grad_()
    w = torch.randn(16, generator=g).to(kt.device).requires_grad_()
    b = torch.randn(16, generator=g).to(kt.device).requires_grad_()
    s, c, sb = (torch.tensor(v, device=kt.device) for v in (0.4, 1.0, SIGMA_BAR))
    torch.library.opcheck(torch.ops.tickbench.layer_norm_fwd.default, (x, w, b, 1e-5, s, c, sb))
    torch.library.opcheck(torch.ops.tickbench.rms_norm_fwd.default, (x, w, 1e-6, s, sb))
