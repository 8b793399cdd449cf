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
    load_yaml,
    parse_spec,
    read_yaml,
    save_spec,
    spec_from_yaml,
)
from engine.errors import ConfigError
from engine.handle import RunHandle
from engine.messages import Event, Log, Message, Scalars, Status
from engine.model import count_params, estimate_memory
from engine.runs import RunRecord, RunSummary, default_runs_dir, list_runs, open_run, run_dirs
from engine.sample import sample_run
from engine.timeline import CompiledTimeline, compile_timeline
from engine.trainer import resume_run, start_run

__all__ = [
    "CompiledTimeline",
    "ConfigError",
    "Event",
    "Log",
    "Message",
    "RunHandle",
    "RunRecord",
    "RunSummary",
    "Scalars",
    "Status",
    "compile_timeline",
    "count_params",
    "default_runs_dir",
    "estimate_memory",
    "list_runs",
    "open_run",
    "resume_run",
    "run_dirs",
    "sample_run",
    "start_run",
    "DataConfig",
    "LRSegment",
    "ModelConfig",
    "RunSpec",
    "TimelineConfig",
    "TrainConfig",
    "dump_spec",
    "load_spec",
    "load_yaml",
    "parse_spec",
    "read_yaml",
    "save_spec",
    "spec_from_yaml",
]
