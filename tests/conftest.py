import math
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


# Triton reads TRITON_INTERPRET when @triton.jit decorates, i.e. when engine.kernels is first
# imported: set it here, before any test module imports the engine, so the kernel tests run
# through the CPU interpreter on machines without a GPU.
if _no_cuda():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session", autouse=True)
def _no_rewind_points():
    """Runs trained in the test process save no rewind points (``engine.rewind``): a point's
    cadence is wall time, so on a loaded machine a test's few ticks could get one and a branch
    would replay from it instead of the checkpoint the test names. Tests of rewind points turn
    them on with ``monkeypatch``; runs in subprocesses keep them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("engine.rewind.FIRST_POINT_SECONDS", math.inf)
        yield
