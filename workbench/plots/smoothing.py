"""TensorBoard's scalar smoothing: an exponential moving average with Adam-style debiasing.

``a_n = w·a_{n-1} + (1-w)·y_n`` (``a_0 = 0``) is shown as ``s_n = a_n / (1 - w^k)``, with ``k`` the
number of finite values seen so far; non-finite values are shown as they are and leave
the average alone. The debiasing keeps the first points from being dragged towards zero, so the
smoothed curve starts where the data starts. Weight 0 is no smoothing; TensorBoard caps it at 0.999.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.plots.series import Series

MAX_WEIGHT = 0.999


MAX_SCALE = 1e200  # largest w**-j a block may reach (block sums stay far from overflow)
MAX_BLOCK = 4096


class Ema:
    """Incremental smoothing of one series: ``update`` processes only the points added since the
    last call, so a redraw costs O(new points) however long the run, in numpy.

    Within a block of n finite values f_1..f_n the recursion unrolls to
    ``a_j = w^j·(a_0 + (1-w)·Σ_{i<=j} f_i·w^-i)``: one cumulative sum. Blocks are short enough
    that ``w^-j`` stays below ``MAX_SCALE``.
    """

    def __init__(self, weight: float):
        self.weight = min(max(weight, 0.0), MAX_WEIGHT)
        self.out = Series()
        self._average = 0.0
        self._count = 0
        w = self.weight
        self._block = MAX_BLOCK if w == 0 else max(1, min(MAX_BLOCK, int(200 / -math.log10(w))))

    def update(self, source: Series) -> Series:
        start = len(self.out)
        if start >= len(source):
            return self.out
        xs, ys = source.x[start:], source.y[start:]
        finite = np.isfinite(ys)
        values = ys[finite]
        smoothed = np.empty_like(values)
        w = self.weight
        for b in range(0, len(values), self._block):
            chunk = values[b : b + self._block]
            powers = w ** np.arange(1, len(chunk) + 1)  # w^j
            if w == 0:
                averages = chunk.copy()
            else:
                averages = powers * (self._average + (1.0 - w) * np.cumsum(chunk / powers))
            counts = self._count + np.arange(1, len(chunk) + 1)
            smoothed[b : b + len(chunk)] = averages / (1.0 - w**counts)
            self._average = float(averages[-1])
            self._count += len(chunk)
        out = ys.copy()  # non-finite values are shown as they are
        out[finite] = smoothed
        self.out.extend(xs, out)
        return self.out
