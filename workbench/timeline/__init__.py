"""The Timeline editor: lanes for phases, LR, LayerNorm and marks over one tick axis.

``TimelineEditor`` is the dock's widget; ``ConfigLink`` keeps it and the Config panel on the
same spec. Modules: units (axis units, snapping), document (edits, undo, validation), geometry
(where items sit, from the engine), edits (pure timeline edits), items / lanes / lr_lanes /
norm_lane (drawing and gestures), properties (the numeric form), sync (the Config link).
"""

from workbench.timeline.editor import TimelineEditor
from workbench.timeline.sync import ConfigLink

__all__ = ["ConfigLink", "TimelineEditor"]
