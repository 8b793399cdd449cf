"""Where a pretrained checkpoint is: a local Hugging Face folder, a nanoGPT ``ckpt.pt``, or a
hub name looked up in the local cache and then, with short timeouts, downloaded; and reading
its files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from engine.errors import ConfigError

FIELD = "model.from_pretrained"
HUB_TIMEOUT = 5  # seconds for each network step of the hub look-up (connect, read)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
HUB_FILES = ["config.json", "tokenizer.json", "vocab.json", "merges.txt"]

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def one_line(exc: BaseException, limit: int = 160) -> str:
    """``exc`` as one line of at most ``limit`` characters, for a ConfigError."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 4] + " ..."


# --- where the checkpoint is -----------------------------------------------------------------


def _hf_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / f).is_file() for f in WEIGHT_FILES)


def _local(path: Path) -> Path:
    path = path.resolve()
    if path.is_file():
        if path.name in ("config.json", *WEIGHT_FILES) and _hf_folder(path.parent):
            return path.parent
        return path  # a nanoGPT ckpt.pt (read and checked by pretrained_arch)
    if _hf_folder(path):
        return path
    if (path / "ckpt.pt").is_file():  # nanoGPT's out_dir
        return path / "ckpt.pt"
    raise ConfigError(
        FIELD,
        f"{path} holds no GPT-2 checkpoint: expected config.json with model.safetensors (or "
        "pytorch_model.bin), or a nanoGPT ckpt.pt",
    )


def _from_hub(name: str) -> Path:
    local = name.rsplit("/", 1)[-1]
    how = (
        f"on a machine with network run `hf download {name} --local-dir {local}` "
        "(`huggingface-cli download` with huggingface_hub < 1.0), copy that folder here and "
        "point model.from_pretrained at it"
    )
    # Read when huggingface_hub is first imported; the look-up below passes its own timeout too.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(HUB_TIMEOUT))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(HUB_TIMEOUT))
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        raise ConfigError(
            FIELD, f"{name!r} is not a local path and huggingface_hub is not installed; {how}"
        ) from None
    try:  # the local cache: no network
        folder = Path(snapshot_download(name, local_files_only=True))
        if _hf_folder(folder):
            return folder
    except Exception:  # not cached (LocalEntryNotFoundError, or an invalid name)
        pass
    try:
        # An explicit timeout: snapshot_download's own repo look-up has none, and a network that
        # drops packets would hang it. Offline, this fails at once (no name resolution).
        info = HfApi().model_info(name, timeout=HUB_TIMEOUT)
        files = {s.rfilename for s in info.siblings or []}
        weights = next((f for f in WEIGHT_FILES if f in files), "pytorch_model.bin")
        patterns = [*HUB_FILES, weights]
        if weights.endswith(".index.json"):
            patterns.append("model-*.safetensors")
        folder = Path(snapshot_download(name, allow_patterns=patterns, etag_timeout=HUB_TIMEOUT))
    except Exception as exc:
        raise ConfigError(
            FIELD,
            f"{name!r} is neither a local folder or file nor downloadable here "
            f"({type(exc).__name__}: {one_line(exc)}); {how}",
        ) from None
    if not _hf_folder(folder):
        raise ConfigError(FIELD, f"the hub's {name} has no config.json with GPT-2 weights")
    return folder


def resolve_pretrained(source: str) -> Path:
    """The local checkpoint ``source`` names: an HF model folder, or a nanoGPT checkpoint file.

    An existing path is used as it is (a nanoGPT out_dir means its ``ckpt.pt``). Anything else
    that could be a hub name (``gpt2``, ``openai-community/gpt2``) is looked up in the local
    Hugging Face cache, then downloaded (config, weights and tokenizer files only) with
    ``HUB_TIMEOUT``-second timeouts. Raises a one-line ConfigError on ``model.from_pretrained``
    saying how to fetch the model elsewhere when neither works.
    """
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(FIELD, "expected a model folder, a nanoGPT ckpt.pt or a hub name")
    path = Path(source).expanduser()
    if path.exists():
        return _local(path)
    looks_local = source.startswith((".", "/", "~")) or source.endswith((".pt", ".bin"))
    if looks_local or ".." in source or not _REPO_ID.fullmatch(source):
        raise ConfigError(
            FIELD,
            f"{source} does not exist (expected a Hugging Face model folder, a nanoGPT ckpt.pt "
            "or a hub name such as gpt2)",
        )
    return _from_hub(source)


def file_stamp(path: Path) -> int:
    return (path / "config.json" if path.is_dir() else path).stat().st_mtime_ns


def torch_load(path: Path) -> Any:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # the legacy (non-zip) format cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            FIELD, f"cannot read {path} as a PyTorch checkpoint ({one_line(exc)})"
        ) from None


def read_nanogpt(path: Path) -> dict:
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model_args"), dict):
        raise ConfigError(
            FIELD,
            f"{path} is not a nanoGPT checkpoint (a dict with model_args and model); for a "
            "Tickbench run use train.init_from",
        )
    if not isinstance(ckpt.get("model"), dict):
        raise ConfigError(FIELD, f"{path} has model_args but no model state dict")
    return ckpt
