"""TensorBoard's scalar smoothing: an exponential moving average with Adam-style debiasing.

``a_n = w·a_{n-1} + (1-w)·y_n`` (``a_0 = 0``) is shown as ``s_n = a_n / (1 - w^k)``, with ``k`` the
number of finite values seen so far; non-finite values are shown as they are and leave
the average alone. The debiasing keeps the first points from being dragged towards zero, so the
smoothed curve starts where the data starts. Weight 0 is no smoothing; TensorBoard caps it at 0.999.
"""

from __future__ import annotations

import math

from workbench.plots.series import Series

MAX_WEIGHT = 0.999


class Ema:
    """Incremental smoothing of one series: ``update`` processes only the points added since the
    last call, so a redraw costs O(new points) however long the run."""

    def __init__(self, weight: float):
        self.weight = min(max(weight, 0.0), MAX_WEIGHT)
        self.out = Series()
        self._average = 0.0
        self._count = 0

    def update(self, source: Series) -> Series:
        w = self.weight
        xs, ys = source.x, source.y
        for i in range(len(self.out), len(source)):
            y = float(ys[i])
            if math.isfinite(y):
                self._average = self._average * w + (1.0 - w) * y
                self._count += 1
                y = self._average / (1.0 - w**self._count)
            self.out.append(xs[i], y)
        return self.out
