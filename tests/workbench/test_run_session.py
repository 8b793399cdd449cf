"""What a GUI-started run trains with: thread policy, device and norm backend shown."""

from __future__ import annotations

import engine
from engine.specs import replace
from workbench.log_panel import describe
from workbench.spec.presets import DEFAULT_PRESETS_DIR
from workbench.training.session import limit_threads, target_of

BABY = engine.load_spec(DEFAULT_PRESETS_DIR / "baby-gpt.yaml")


def test_small_cpu_runs_get_one_torch_thread_unless_the_spec_says_otherwise():
    assert limit_threads(BABY, cores=2).train.threads == 1
    assert limit_threads(BABY, cores=1).train.threads == 1
    assert limit_threads(BABY, cores=8) == BABY
    four = replace(BABY, {"train.threads": 4})
    assert limit_threads(four, cores=2) == four
    gpu = replace(BABY, {"train.device": "cuda"})
    assert limit_threads(gpu, cores=2) == gpu


def test_target_names_device_and_layernorm_backend():
    cpu = replace(BABY, {"train.device": "cpu"})
    assert target_of(cpu) == ("cpu", "torch")
    assert target_of(replace(BABY, {"train.device": "cuda"})) == ("cuda", "triton")
    assert target_of(replace(cpu, {"model.norm_backend": "triton"})) == ("cpu", "triton")
    assert target_of(replace(cpu, {"model.norm": "none"})) == ("cpu", "none")


def test_log_lines_for_engine_messages():
    assert describe(engine.Scalars(5, {"train/loss": 2.0}, 0.0)) is None  # the plots show it
    assert describe(engine.Scalars(99, {"val/loss": 1.23456, "val/accuracy": 0.5}, 0.0)) == (
        "info",
        "tick 99: val/accuracy 0.5000  val/loss 1.2346",
    )
    assert describe(engine.Status("failed", 7, 30, "RuntimeError: boom")) == (
        "error",
        "failed at tick 7/30: RuntimeError: boom",
    )
    assert describe(engine.Event(9, "checkpoint", {"path": "tick_0000010.pt"})) == (
        "info",
        "tick 9: checkpoint path=tick_0000010.pt",
    )
    assert describe(engine.Log("warning", "slow disk\n")) == ("warning", "slow disk")


def test_throttle_calls_at_once_then_once_per_interval_with_the_last_request(qtbot):
    from workbench.bridge import Throttle

    calls = []
    throttle = Throttle(100, lambda: calls.append(len(calls)))
    throttle.request()
    assert calls == [0]  # after a quiet spell: at once
    throttle.request()
    throttle.request()
    assert calls == [0]  # within the interval: one call, when it is over
    qtbot.waitUntil(lambda: calls == [0, 1], timeout=2000)
    qtbot.wait(250)
    assert calls == [0, 1]  # nothing asked meanwhile: nothing more
    throttle.request()
    assert calls == [0, 1, 2]
    throttle.request()
    throttle.flush()  # a run that ended: its last request now
    assert calls == [0, 1, 2, 3]
    throttle.request()
    throttle.cancel()
    qtbot.wait(250)
    assert calls == [0, 1, 2, 3]
