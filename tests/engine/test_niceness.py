"""set_training_niceness: a GUI's process trains below its GUI thread's priority (Linux)."""

import os
import sys
import threading

import pytest

import engine
from engine.trainer import _lower_priority, start_run

from .helpers import tiny_spec

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice: Linux")


def nice_of(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@linux
def test_the_training_thread_runs_below_the_thread_that_started_it(tmp_path):
    base = nice_of(threading.get_native_id())
    engine.set_training_niceness(3)
    try:
        handle = start_run(tiny_spec(), tmp_path, paused=True)
        thread = handle._trainer.thread
        try:
            # the thread lowers itself first thing; a paused run then waits for resume()
            for _ in range(200):
                if handle.status == "paused":
                    break
                thread.join(0.01)
            assert nice_of(thread.native_id) == min(base + 3, 19)
            assert nice_of(threading.get_native_id()) == base  # the caller keeps its own
        finally:
            handle.stop()
            assert handle.join(60)
    finally:
        engine.set_training_niceness(0)


@linux
def test_niceness_zero_leaves_the_priority_alone_and_never_exceeds_19():
    seen = {}

    def probe(n):
        before = nice_of(threading.get_native_id())
        _lower_priority(n)
        seen[n] = (before, nice_of(threading.get_native_id()))

    for n in (0, 40):
        t = threading.Thread(target=probe, args=(n,))
        t.start()
        t.join(10)
    assert seen[0][1] == seen[0][0]
    assert seen[40][1] == 19
