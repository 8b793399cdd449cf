"""Tickbench engine: run specs, the tick timeline, the model, training and the run store.

Pure Python + PyTorch (+ Triton). Never imports Qt: the workbench talks to it through the names
exported here, with plain data crossing the boundary.
"""

from engine.activation_history import ActivationHistory, activation_histories
from engine.branch import Branch, branch_run, prepare_branch, replay_start, spec_at
from engine.config import (
    PRETRAINED_FIELDS,
    DataConfig,
    LRSegment,
    Mark,
    ModelConfig,
    NormEvent,
    PhaseSpec,
    Position,
    PruneSpec,
    QuantizeSpec,
    RunSpec,
    TimelineConfig,
    TrainConfig,
    from_dict,
    to_dict,
)
from engine.data import build_task
from engine.errors import ConfigError
from engine.estimate import count_params, count_trainable, estimate_memory
from engine.export_tensorboard import HAS_TENSORBOARD
from engine.export_tensorboard import export_tensorboard as write_tensorboard
from engine.fork import fork_run
from engine.handle import RunHandle
from engine.kernels import backend_on
from engine.lr_schedule import tick_of_u, u_of_tick
from engine.messages import Event, Log, Message, Scalars, SiteStats, Stats, Status
from engine.plan import (
    STRENGTH_PREFIX,
    plan_of_run,
    plan_timeline,
    timeline_columns,
    write_timeline_csv,
)
from engine.positions import Units, resolve_position, units_for
from engine.pruning import PruneGroup, compile_prune
from engine.revisions import Revision
from engine.run_edit import delete_run, rename_run, run_tags, set_tags
from engine.run_rows import ScalarRows, read_scalars
from engine.runs import (
    RunRecord,
    RunSummary,
    default_runs_dir,
    list_runs,
    open_run,
    run_dirs,
    safe_name,
)
from engine.safe_yaml import load_yaml, read_yaml
from engine.sample import sample_run
from engine.setup import resolve_device
from engine.specs import (
    dump_spec,
    load_spec,
    parse_spec,
    replace,
    save_spec,
    spec_from_yaml,
    validate,
)
from engine.steer import SteerError, steer_run
from engine.study import NOT_STARTED, Study, StudyResult, StudyRun, load_preset
from engine.timeline import CompiledTimeline, Edge, Span, compile_timeline, layer_groups
from engine.trainer import resume_run, set_training_niceness, start_run


def load_pretrained(source: str):
    """``(model, tokenizer)`` of a GPT-2-family checkpoint: a Hugging Face folder, a nanoGPT
    ``ckpt.pt`` or a hub name (``engine.pretrained``; imported on first use, since it brings
    safetensors and huggingface_hub). ``model(idx)`` maps int64 (B, T) to logits (B, T, V)."""
    from engine.pretrained import load_pretrained as load

    return load(source)


def export_run_hf(run_dir, out_dir):
    """The run's latest checkpoint as a GPT-2 folder ``transformers`` loads (``engine.pretrained``:
    what can be exported, and how a model without LayerNorm is written)."""
    from engine.pretrained import export_run_hf as export

    return export(run_dir, out_dir)


__all__ = [
    "compile_prune",
    "HAS_TENSORBOARD",
    "write_tensorboard",
    "ActivationHistory",
    "CompiledTimeline",
    "ConfigError",
    "DataConfig",
    "Edge",
    "Event",
    "LRSegment",
    "Log",
    "Mark",
    "Message",
    "ModelConfig",
    "PRETRAINED_FIELDS",
    "NOT_STARTED",
    "NormEvent",
    "PhaseSpec",
    "Position",
    "PruneGroup",
    "PruneSpec",
    "QuantizeSpec",
    "RunHandle",
    "Revision",
    "SteerError",
    "steer_run",
    "RunRecord",
    "RunSpec",
    "RunSummary",
    "STRENGTH_PREFIX",
    "ScalarRows",
    "Scalars",
    "SiteStats",
    "Span",
    "Stats",
    "Status",
    "Study",
    "StudyResult",
    "StudyRun",
    "TimelineConfig",
    "TrainConfig",
    "Units",
    "activation_histories",
    "backend_on",
    "build_task",
    "compile_timeline",
    "count_params",
    "count_trainable",
    "default_runs_dir",
    "delete_run",
    "dump_spec",
    "estimate_memory",
    "export_run_hf",
    "Branch",
    "branch_run",
    "prepare_branch",
    "replay_start",
    "spec_at",
    "fork_run",
    "from_dict",
    "layer_groups",
    "list_runs",
    "load_preset",
    "load_pretrained",
    "load_spec",
    "load_yaml",
    "open_run",
    "parse_spec",
    "plan_of_run",
    "plan_timeline",
    "read_scalars",
    "read_yaml",
    "rename_run",
    "replace",
    "resolve_device",
    "resolve_position",
    "resume_run",
    "run_dirs",
    "run_tags",
    "safe_name",
    "sample_run",
    "save_spec",
    "set_tags",
    "set_training_niceness",
    "spec_from_yaml",
    "start_run",
    "tick_of_u",
    "timeline_columns",
    "to_dict",
    "u_of_tick",
    "units_for",
    "validate",
    "write_timeline_csv",
]
