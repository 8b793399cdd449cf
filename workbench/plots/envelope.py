"""Curves decimated once per zoom level, not once per frame.

A long run's curve has far more points than the plot has pixel columns. ``Pyramid`` keeps a
series' min/max envelope at bucket sizes 2, 4, 8, ... points (levels, as TensorBoard and
Perfetto keep summaries of long traces), each bucket drawn as its minimum and maximum at their own
x, in order, so every spike survives at every level. A level is computed once and, as the series
grows, only its last buckets are.

``Decimated`` feeds a plot item the level that puts at least one bucket in each pixel column of
the visible range, and of that level only a window three views wide around the view. A pan that
stays in the window touches no point (the item draws what it holds, and Qt clips what is off
screen); only leaving the window, a zoom that changes the level, a resize or new data sets the
item's data again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

BASE = 2  # points per bucket double from one level to the next: 1 or 2 buckets a pixel column


class _Level:
    """One bucket size's envelope: two points per whole bucket, grown as the series grows."""

    def __init__(self, size: int):
        self.size = size
        self.x = np.empty(0)
        self.y = np.empty(0)
        self.whole = 0  # buckets computed (the series' partial last bucket is never kept)


def _envelope(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each ``size`` consecutive points as their minimum and maximum, in the order they occur
    (NaN is ignored unless a bucket has nothing else; then it is kept, and draws a gap)."""
    buckets = len(y) // size
    if buckets == 0:
        return x[:0].copy(), y[:0].copy()
    seg = y[: buckets * size].reshape(buckets, size)
    nan = np.isnan(seg)
    lo = np.argmin(np.where(nan, np.inf, seg), axis=1)
    hi = np.argmax(np.where(nan, -np.inf, seg), axis=1)
    first, second = np.minimum(lo, hi), np.maximum(lo, hi)
    start = np.arange(buckets) * size
    idx = np.empty(2 * buckets, dtype=np.int64)
    idx[0::2] = start + first
    idx[1::2] = start + second
    return x[idx], y[idx]


class Pyramid:
    """Min/max envelopes of a growing (x, y) series (x ascending) at bucket sizes BASE**k."""

    def __init__(self):
        self.x = np.empty(0)
        self.y = np.empty(0)
        self._levels: dict[int, _Level] = {}

    def __len__(self) -> int:
        return len(self.x)

    def set(self, x: np.ndarray, y: np.ndarray) -> None:
        """The series is now ``x``, ``y``. When it extends the points held (same prefix), the
        levels keep their buckets; otherwise they are dropped and recomputed on demand."""
        n = len(self.x)
        grown = len(x) >= n and (n == 0 or (x[0] == self.x[0] and x[n - 1] == self.x[n - 1]))
        if not grown:
            self._levels.clear()
        self.x, self.y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def level(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The envelope at ``size`` points per bucket (1: the points themselves); the last,
        partial bucket included."""
        if size <= 1:
            return self.x, self.y
        lv = self._levels.get(size)
        if lv is None:
            lv = self._levels[size] = _Level(size)
        n, whole = len(self.y), len(self.y) // size
        if whole > lv.whole:  # only the buckets completed since the last look
            a = lv.whole * size
            nx, ny = _envelope(self.x[a:], self.y[a:], size)
            lv.x, lv.y = np.concatenate([lv.x, nx]), np.concatenate([lv.y, ny])
            lv.whole = whole
        rest = n - whole * size
        if rest == 0:
            return lv.x, lv.y
        tx, ty = _envelope(self.x[n - rest :], self.y[n - rest :], rest)
        return np.concatenate([lv.x, tx]), np.concatenate([lv.y, ty])

    def size_for(self, x0: float, x1: float, pixels: float) -> int:
        """The largest bucket size that still puts one bucket or more in each of ``pixels``
        columns across [x0, x1] (1 when the points there are fewer than BASE per column)."""
        if len(self.x) == 0 or pixels <= 0:
            return 1
        i0, i1 = np.searchsorted(self.x, [x0, x1])
        per_pixel = (i1 - i0) / pixels
        size = 1
        while size * BASE <= per_pixel:
            size *= BASE
        return size


class Decimated:
    """Feeds a plot item its series through a ``Pyramid``, at the level its view needs.

    The item's own per-frame downsampling and clipping are off: both redo work at every frame.
    """

    def __init__(self, item: pg.PlotDataItem):
        self.item = item
        self.pyramid = Pyramid()
        self.size = 0  # the level on show (0: none yet)
        self.window = (np.inf, -np.inf)  # the x range of the level the item holds
        item.setDownsampling(auto=False)
        item.setClipToView(False)
        item.decimated = self  # see series_of
        # what pyqtgraph's CSV exporter and anything else asking for the item's data reads:
        # the whole series, not the level on show
        item.getOriginalDataset = lambda: (self.pyramid.x, self.pyramid.y)
        self._view: pg.ViewBox | None = None
        self._watch()

    def _watch(self) -> None:
        view = self.item.getViewBox()
        if view is None or view is self._view:
            return
        self._view = view
        view.sigXRangeChanged.connect(self._moved)
        view.sigResized.connect(self._moved)

    def detach(self) -> None:
        """Stop following the view (the item is leaving its plot)."""
        if self._view is not None:
            self._view.sigXRangeChanged.disconnect(self._moved)
            self._view.sigResized.disconnect(self._moved)
            self._view = None

    def set_data(self, x: np.ndarray, y: np.ndarray) -> None:
        self.pyramid.set(x, y)
        self._show(force=True)

    def clear(self) -> None:
        self.set_data(np.empty(0), np.empty(0))

    def _moved(self, *_) -> None:
        self._show(force=False)

    def _show(self, force: bool) -> None:
        self._watch()
        if self._view is None:  # not on a plot yet: everything, undecimated
            self.size, self.window = 1, (-np.inf, np.inf)
            self.item.setData(self.pyramid.x, self.pyramid.y)
            return
        x = self.pyramid.x
        if self._view.state["autoRange"][0] and len(x):
            # the view will fit the data: it needs the whole extent, which its bounds come from
            x0, x1 = x[0], x[-1]
            window = (-np.inf, np.inf)
        else:
            (x0, x1), _ = self._view.viewRange()
            window = (x0 - (x1 - x0), x1 + (x1 - x0))
        size = self.pyramid.size_for(x0, x1, self._view.width())
        inside = self.window[0] <= x0 and x1 <= self.window[1]
        if force or size != self.size or not inside:
            self.size, self.window = size, window
            x, y = self.pyramid.level(size)
            # one point beyond each end, so the line runs on past the window's edges
            i0, i1 = np.searchsorted(x, self.window)
            self.item.setData(x[max(i0 - 1, 0) : i1 + 1], y[max(i0 - 1, 0) : i1 + 1])


def set_series(item: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    """Give ``item`` its whole series: through its pyramid when it has one (``Decimated``)."""
    feed = getattr(item, "decimated", None)
    if feed is not None:
        feed.set_data(x, y)
    else:
        item.setData(x, y)


def detach(item: pg.PlotDataItem) -> None:
    """``item`` leaves its plot: its pyramid, if it has one, stops following the view."""
    feed = getattr(item, "decimated", None)
    if feed is not None:
        feed.detach()


def series_of(item: pg.PlotDataItem) -> tuple[np.ndarray, np.ndarray]:
    """The whole series behind ``item``: what it was given, not the level it draws."""
    return item.getOriginalDataset()
