"""Tickbench engine: run specs, the tick timeline, the model, training and the run store.

Pure Python + PyTorch (+ Triton). Never imports Qt: the workbench talks to it through the names
exported here, with plain data crossing the boundary.
"""

from engine.activation_history import ActivationHistory, activation_histories
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
from engine.kernels import backend_on
from engine.lr_schedule import tick_of_u, u_of_tick
from engine.messages import Event, Log, Message, Scalars, SiteStats, Stats, Status
from engine.model import count_params, estimate_memory
from engine.plan import STRENGTH_PREFIX, plan_timeline, timeline_columns, write_timeline_csv
from engine.positions import Units, resolve_position, units_for
from engine.runs import RunRecord, RunSummary, default_runs_dir, list_runs, open_run, run_dirs
from engine.sample import sample_run
from engine.timeline import CompiledTimeline, Edge, Span, compile_timeline, layer_groups
from engine.trainer import resume_run, start_run

__all__ = [
    "ActivationHistory",
    "CompiledTimeline",
    "Edge",
    "STRENGTH_PREFIX",
    "Span",
    "ConfigError",
    "Event",
    "Log",
    "Message",
    "RunHandle",
    "RunRecord",
    "RunSummary",
    "Scalars",
    "SiteStats",
    "Stats",
    "Status",
    "activation_histories",
    "backend_on",
    "compile_timeline",
    "layer_groups",
    "plan_timeline",
    "timeline_columns",
    "write_timeline_csv",
    "count_params",
    "default_runs_dir",
    "estimate_memory",
    "list_runs",
    "open_run",
    "resume_run",
    "run_dirs",
    "sample_run",
    "tick_of_u",
    "Units",
    "resolve_position",
    "units_for",
    "u_of_tick",
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
