"""What the window remembers between sessions (QSettings): layout, geometry, recent files,
theme. Tests and screenshots pass their own INI file so the user's settings are never touched."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "tickbench"
APPLICATION = "workbench"
MAX_RECENT = 8

GEOMETRY = "window/geometry"
STATE = "window/state"
RECENT = "files/recent"
THEME = "view/theme"


def open_settings(path: str | Path | None = None) -> QSettings:
    """The user's settings, or the INI file at ``path``."""
    if path is not None:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value(RECENT, [])
    if isinstance(value, str):  # QSettings returns a one-item list as a plain string
        value = [value]
    return [str(v) for v in value or []]


def add_recent(settings: QSettings, path: str | Path) -> None:
    path = str(Path(path).resolve())
    files = [path] + [f for f in recent_files(settings) if f != path]
    settings.setValue(RECENT, files[:MAX_RECENT])
