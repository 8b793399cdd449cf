"""The preset library: every ``*.yaml`` in the presets folder, with its name and description.

A preset is a run spec, or a study (a ``base`` spec and ``variants``, trained together by
``python -m engine study``, or by the window: ``workbench.studies.launch``). The window loads
run specs into the Config panel and offers to run studies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import engine

DEFAULT_PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
DEFAULT_PRESET = "baby-gpt.yaml"


@dataclass(frozen=True)
class Preset:
    path: Path
    name: str
    description: str
    error: str | None = None  # a preset that does not load is listed with its error
    variants: int = 0  # a study: how many runs it trains

    @property
    def summary(self) -> str:
        """What the start page says under the name."""
        if self.error:
            return f"does not load: {self.error}"
        if self.variants:
            return (
                f"Study of {self.variants} runs: load it to train them all and compare them. "
                f"{self.description}"
            )
        return self.description or "(no description)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def read_study(path: Path) -> Preset | None:
    """The study in ``path``, read for listing only (the engine validates it when it runs),
    or None when the file is not a study."""
    try:
        data = engine.read_yaml(path)
    except (OSError, engine.ConfigError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("variants"), list)):
        return None
    name = str(data.get("study") or Path(path).stem)
    description = _one_line(str(data.get("description", "")))
    return Preset(Path(path), name, description, variants=len(data["variants"]))


def list_presets(folder: Path = DEFAULT_PRESETS_DIR) -> list[Preset]:
    """Presets in ``folder`` sorted by file name, the default one first."""
    paths = sorted(Path(folder).glob("*.yaml"), key=lambda p: (p.name != DEFAULT_PRESET, p.name))
    out = []
    for path in paths:
        try:
            spec = engine.load_spec(path)
        except engine.ConfigError as exc:
            out.append(read_study(path) or Preset(path, path.stem, "", error=str(exc)))
            continue
        out.append(Preset(path, spec.name, _one_line(spec.description)))
    return out


def preset_file_name(name: str) -> str:
    """A preset name -> its file name (letters, digits, ``._-``; anything else becomes ``-``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not stem:
        raise ValueError("a preset name needs at least one letter or digit")
    return f"{stem}.yaml"
