import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


# Triton reads TRITON_INTERPRET when @triton.jit decorates, i.e. when engine.kernels is first
# imported: set it here, before any test module imports the engine, so the kernel tests run
# through the CPU interpreter on machines without a GPU.
if _no_cuda():
    os.environ.setdefault("TRITON_INTERPRET", "1")
