"""Activation statistics: the numbers against numpy, the hooks' lifetime, strength showing up in
them, bit-identical training with them on, and the round trip through the run store."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from engine import activation_histories
from engine.data import build_task
from engine.messages import PERCENTILES, Stats
from engine.model import build_model
from engine.norm import Norm
from engine.runs import RunWriter, open_run
from engine.setup import make_optimizer
from engine.stats import BINS, FINE_PER_BIN, StatsRecorder, subsample_tokens, summarize
from engine.trainer import batch_loss, start_run
from tests.engine.helpers import tiny_spec


def normal_sample(shape=(8, 100, 48), scale=2.0, offset=0.5, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * scale + offset


def per_token(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(μ, variance) per token in fp64."""
    t = x.reshape(-1, x.shape[-1]).double().numpy()
    return t.mean(-1), t.var(-1)


# --- the numbers ---
def test_histogram_and_percentiles_of_a_normal_sample_match_numpy():
    x = normal_sample()
    s = summarize(x)
    v = x.double().numpy().reshape(-1)
    assert s.tokens == 800 and s.counts.sum() == v.size
    assert (s.lo, s.hi) == (v.min(), v.max())
    counts, edges = np.histogram(v, BINS, range=(v.min(), v.max()))
    # fp32 binning against numpy's fp64 edges may move a value lying on an edge by one bin
    assert np.abs(s.counts - counts).sum() <= 2
    assert np.allclose(s.edges, edges)
    want = np.percentile(v, PERCENTILES)
    fine_bin = (v.max() - v.min()) / (BINS * FINE_PER_BIN)
    assert s.percentiles[0] == want[0] and s.percentiles[-1] == want[-1]  # min, max exact
    assert np.all(np.abs(s.percentiles - want) <= fine_bin)
    assert np.all(np.diff(s.percentiles) >= 0)


def test_per_token_mean_and_sigma_summaries_match_numpy():
    # tokens with different offsets and scales, so the spreads are not zero
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 16, 32, generator=gen) * torch.rand(4, 16, 1, generator=gen) * 3
    x = x + torch.randn(4, 16, 1, generator=gen)
    mu, var = per_token(x)
    for norm_kind, sigma in (
        ("layernorm", np.sqrt(var + 1e-5)),
        ("rmsnorm", np.sqrt(var + mu**2 + 1e-5)),  # RMSNorm's σ: sqrt(mean(x²) + eps)
    ):
        s = summarize(x, norm_kind, 1e-5)
        assert s.abs_mu_mean == pytest.approx(np.abs(mu).mean(), rel=1e-5)
        assert s.abs_mu_std == pytest.approx(np.abs(mu).std(), rel=1e-4)
        assert s.sigma_mean == pytest.approx(sigma.mean(), rel=1e-5)
        assert s.sigma_std == pytest.approx(sigma.std(), rel=1e-4)


@pytest.mark.parametrize("norm_kind", ["layernorm", "rmsnorm"])
def test_input_sigma_is_what_calibrate_sets_sigma_bar_to(norm_kind):
    x = normal_sample(offset=3.0)
    norm = Norm(norm_kind, x.shape[-1], eps=1e-3)
    norm.calibrate(x)
    assert summarize(x, norm_kind, 1e-3).sigma_mean == pytest.approx(
        norm.sigma_bar.item(), rel=1e-6
    )


def test_a_constant_tensor_gets_a_unit_range_centred_on_it():
    s = summarize(torch.full((2, 3, 8), 1.5))
    assert (s.lo, s.hi) == (1.0, 2.0)
    assert s.counts[BINS // 2] == 48 and s.counts.sum() == 48
    assert np.all(s.percentiles == 1.5)
    assert s.abs_mu_mean == 1.5 and s.sigma_std == 0.0


def test_subsample_is_a_stride_coprime_with_the_sequence_length():
    B, T, C = 10, 16, 4
    x = torch.arange(B * T, dtype=torch.float32).view(B, T, 1).expand(B, T, C)
    xs = subsample_tokens(x, 50)
    rows = xs[:, 0].long()
    step = int(rows[1] - rows[0])
    assert xs.shape[0] <= 50 and math.gcd(step, T) == 1 and step > 1
    assert set((rows % T).tolist()) == set(range(T))  # every position is represented
    assert subsample_tokens(x, 1000).shape == (B * T, C)
    assert summarize(x, max_tokens=50).tokens == xs.shape[0]


# --- the recorder on a model ---
def tiny_model(**model):
    spec = tiny_spec(model=model)
    task = build_task(spec.data, spec.model)
    torch.manual_seed(spec.seed)
    return spec, task, build_model(spec.model, task.vocab_size)


def hooks(model) -> int:
    return sum(len(norm._forward_hooks) for _, norm in model.norm_sites())


def test_hooks_exist_only_inside_a_capture_on_a_due_tick():
    spec, task, model = tiny_model()
    rec = StatsRecorder(model, 5)
    batch = task.batch("train", 2, torch.Generator().manual_seed(0))
    with rec.capture(3):  # not due
        assert hooks(model) == 0
        model(batch.x)
    assert rec.collect() is None
    with rec.capture(5):
        assert hooks(model) == 3  # 0.attn, 0.mlp, final
        model(batch.x)
    assert hooks(model) == 0
    stats = rec.collect()
    assert stats.tick == 5 and rec.collect() is None  # handed out once
    assert [(s.site, s.kind) for s in stats.sites] == [
        (site, kind) for site in ("0.attn", "0.mlp", "final") for kind in ("in", "out")
    ]
    with pytest.raises(RuntimeError, match="boom"), rec.capture(10):
        model(batch.x)
        raise RuntimeError("boom")  # a tick that fails: the hooks go all the same
    assert hooks(model) == 0


def test_recorder_is_off_at_zero_and_without_norms():
    for every, norm in ((0, "layernorm"), (1, "none")):
        _, task, model = tiny_model(norm=norm)
        rec = StatsRecorder(model, every)
        with rec.capture(0):
            assert hooks(model) == 0
            model(task.batch("train", 2, torch.Generator().manual_seed(0)).x)
        assert rec.collect() is None


def test_the_hooks_read_nothing_back_from_the_device():
    """On the meta device any read-back (``.item()``, a data-dependent shape) raises, so a
    capture that runs there queues device work only; ``collect`` is the one read-back."""
    spec = tiny_spec()
    with torch.device("meta"):
        model = build_model(spec.model, 40)
    rec = StatsRecorder(model, 1, max_tokens=7)
    with rec.capture(0):
        model(torch.zeros(3, 16, dtype=torch.long, device="meta"))
    with pytest.raises(NotImplementedError):  # "Cannot copy out of meta tensor"
        rec.collect()


def test_strength_shows_in_the_statistics():
    """At strength 1 (init: weight 1, bias 0) the norm output has σ ≈ 1 and μ ≈ 0; at strength 0
    with σ̄ = 1 it is its input, whose σ at init is far below 1."""
    _, task, model = tiny_model()
    batch = task.batch("train", 4, torch.Generator().manual_seed(0))
    got = {}
    for strength in (1.0, 0.0):
        for _, norm in model.norm_sites():
            norm.set_strength(strength)
        rec = StatsRecorder(model, 1)
        with rec.capture(0), torch.no_grad():
            model(batch.x)
        got[strength] = {(s.site, s.kind): s for s in rec.collect().sites}
    for site in ("0.attn", "0.mlp", "final"):
        on, off = got[1.0][site, "out"], got[0.0][site, "out"]
        assert on.strength == 1.0 and off.strength == 0.0 and off.sigma_bar == 1.0
        # sqrt(var / (var + eps) + eps): just under 1 while the input's var (~1e-3 at init)
        # is not much larger than eps (1e-5)
        assert on.sigma_mean == pytest.approx(1.0, abs=0.02) and on.abs_mu_mean < 1e-5
        assert off.sigma_mean == pytest.approx(got[0.0][site, "in"].sigma_mean, rel=1e-6)
        assert off.sigma_mean < 0.2


def train(every: int, steps: int = 9):
    """The trainer's loop on the tiny spec (dropout on, so the global RNG is in play)."""
    spec, task, model = tiny_model(dropout=0.1)
    opt = make_optimizer(model, spec)
    gen = torch.Generator().manual_seed(spec.seed)
    rec = StatsRecorder(model, every)
    losses, captures = [], []
    for t in range(steps):
        with rec.capture(t):
            loss, _ = batch_loss(model, task.batch("train", 4, gen))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        stats = rec.collect()
        if stats is not None:
            captures.append(stats)
    return losses, captures, model


def test_statistics_change_no_loss_value():
    off, none, model_off = train(every=0)
    on, captures, model_on = train(every=2)
    assert none == [] and [c.tick for c in captures] == [0, 2, 4, 6, 8]
    assert on == off  # bit for bit
    for a, b in zip(model_off.parameters(), model_on.parameters()):
        assert torch.equal(a, b)


# --- the run store ---
def test_captures_round_trip_through_the_store(tmp_path):
    _, captures, _ = train(every=3)
    w = RunWriter(tmp_path / "r")
    for stats in captures:
        w.activation_stats(stats)
    w.flush()
    run = open_run(tmp_path / "r")  # a reader beside the open writer
    hist = run.activation_stats()
    assert list(hist) == [(s, k) for s in ("0.attn", "0.mlp", "final") for k in ("in", "out")]
    h = hist["0.mlp", "in"]
    assert h.ticks.tolist() == [0, 3, 6] and h.counts.shape == (3, BINS)
    assert h.edges.shape == (3, BINS + 1) and h.percentiles.shape == (3, len(PERCENTILES))
    for i, stats in enumerate(captures):
        s = next(s for s in stats.sites if (s.site, s.kind) == ("0.mlp", "in"))
        assert np.array_equal(h.counts[i], s.counts)
        assert np.array_equal(h.percentiles[i], s.percentiles)
        assert np.allclose(h.edges[i], s.edges, rtol=0, atol=1e-12)
        assert (h.sigma_mean[i], h.abs_mu_std[i], h.strength[i]) == (
            s.sigma_mean,
            s.abs_mu_std,
            s.strength,
        )
    assert run.activation_stats(since_tick=4)["final", "out"].ticks.tolist() == [6]
    w.truncate_from(3)  # a resume from tick 3 replays the captures from there
    assert run.activation_stats()["0.attn", "in"].ticks.tolist() == [0]
    w.close()


def test_histories_from_messages_equal_the_stored_ones(tmp_path):
    # a live view builds from the Stats messages what a reader of the store gets, NaN included
    _, captures, _ = train(every=3)
    first = captures[0].sites[0]
    captures[0] = Stats(0, (dataclasses.replace(first, lo=math.nan), *captures[0].sites[1:]))
    w = RunWriter(tmp_path / "r")
    for stats in captures:
        w.activation_stats(stats)
    w.close()
    stored = open_run(tmp_path / "r").activation_stats()
    live = activation_histories(captures)
    assert list(live) == list(stored)
    for key, h in stored.items():
        for f in dataclasses.fields(h):
            a, b = getattr(live[key], f.name), getattr(h, f.name)
            if isinstance(b, np.ndarray):
                assert a.dtype == b.dtype and a.shape == b.shape, (key, f.name)
                np.testing.assert_array_equal(a, b, err_msg=f"{key} {f.name}")
            else:
                assert a == b, (key, f.name)
    assert math.isnan(live[first.site, first.kind].lo[0])
    assert activation_histories([]) == {}


def test_nan_statistics_survive_the_store(tmp_path):
    # SQLite keeps NaN as NULL; the reader must hand it back as NaN, not fail
    _, [stats], _ = train(every=100, steps=1)
    first = stats.sites[0]
    broken = dataclasses.replace(first, lo=math.nan, sigma_mean=math.nan)
    w = RunWriter(tmp_path / "r")
    w.activation_stats(Stats(0, (broken, *stats.sites[1:])))
    w.close()
    h = open_run(tmp_path / "r").activation_stats()[first.site, first.kind]
    assert math.isnan(h.lo[0]) and math.isnan(h.sigma_mean[0])
    assert h.hi[0] == first.hi and h.sigma_bar[0] == 1.0


# --- through the trainer ---
def test_a_run_records_statistics_and_trains_identically(tmp_path):
    losses = {}
    for every in (0, 7):
        handle = start_run(tiny_spec(train={"stats_every": every, "steps": 15}), tmp_path)
        assert handle.join(60) and handle.status == "finished", handle.error
        run = open_run(handle.run_dir)
        losses[every] = run.scalars("train/loss")[1].tolist()
        hist = run.activation_stats()
        if every:
            assert hist["final", "out"].ticks.tolist() == [0, 7, 14]
            assert np.all(hist["0.attn", "in"].counts.sum(1) == 4 * 16 * 32)
        else:
            assert hist == {}
    assert losses[0] == losses[7]
