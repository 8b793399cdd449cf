"""Status-bar arithmetic: rate, ETA, throughput and the way numbers are written."""

from __future__ import annotations

import pytest

from workbench.training.progress import (
    RunProgress,
    format_bytes,
    format_count,
    format_duration,
    format_rate,
)


def test_eta_follows_the_recent_rate_and_throughput_is_a_median():
    p = RunProgress(steps=1000)
    assert p.eta_seconds is None and p.tokens_per_s is None
    for tick in range(100):
        p.update(tick, wall=100.0 + tick * 0.5, tokens_per_s=1000.0 if tick != 50 else 1.0)
    assert p.done == 100 and p.fraction == 0.1
    assert p.eta_seconds == pytest.approx(900 * 0.5)
    assert p.tokens_per_s == 1000.0  # one slow tick does not show


@pytest.mark.parametrize(
    "seconds, text",
    [(None, "--:--"), (0, "0:00"), (75.4, "1:15"), (3599, "59:59"), (7500, "2h 05m")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_numbers():
    assert format_rate(None) == "-- tok/s"
    assert format_rate(950) == "950 tok/s"
    assert format_rate(14_230) == "14.2k tok/s"
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024 * 1024) == "3.0 MB"
    assert format_bytes(5 * 1024**3) == "5.0 GB"
    assert format_count(813_824) == "0.81M"
    assert format_count(12_160) == "12.2K"
    assert format_count(999) == "999"
