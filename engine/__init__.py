"""Tickbench engine: run specs, the tick timeline, the model, training and the run store.

Pure Python + PyTorch (+ Triton). Never imports Qt: the workbench talks to it through the names
exported here, with plain data crossing the boundary.
"""

from engine.config import (
    DataConfig,
    LRSegment,
    ModelConfig,
    RunSpec,
    TimelineConfig,
    TrainConfig,
    dump_spec,
    load_spec,
    parse_spec,
    save_spec,
    spec_from_yaml,
)
from engine.errors import ConfigError

__all__ = [
    "ConfigError",
    "DataConfig",
    "LRSegment",
    "ModelConfig",
    "RunSpec",
    "TimelineConfig",
    "TrainConfig",
    "dump_spec",
    "load_spec",
    "parse_spec",
    "save_spec",
    "spec_from_yaml",
]
