"""Fused normalisation kernels (Triton) with torch reference paths.

Public API:

* :func:`layer_norm` - LayerNorm with a removal ``strength`` in [0, 1].
* :func:`rms_norm` - RMSNorm with a removal ``strength`` in [0, 1].
* ``BACKENDS`` and :func:`backend_on` - the backend names, and what "auto" picks on a device.
* ``HAS_TRITON`` - whether triton is importable; without it only ``backend="torch"`` (and
  ``"auto"``, which then picks torch) work.

The Triton kernels run on CUDA tensors, or on CPU tensors through the triton interpreter when
``TRITON_INTERPRET=1`` is set before this package is first imported (triton reads it when the
kernels are defined). This package imports nothing else from ``engine``.
"""

from ._common import BACKENDS, HAS_TRITON, backend_on
from .layer_norm import layer_norm
from .rms_norm import rms_norm

__all__ = ["BACKENDS", "HAS_TRITON", "backend_on", "layer_norm", "rms_norm"]
