"""The Log dock: what the engine reports (status changes, evaluations, events, its own log
lines and errors) and what the workbench did, one line each, newest at the bottom."""

from __future__ import annotations

import html
import time

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QPlainTextEdit, QWidget

import engine
from workbench.metric_kinds import is_eval_value
from workbench.theme import Theme

MAX_LINES = 5000
BAD_STATUSES = ("failed", "diverged")


def describe(msg: engine.Message) -> tuple[str, str] | None:
    """(level, text) for a log line, or None for messages the log leaves to the plots
    (per-tick training scalars, confusion-matrix cells)."""
    if isinstance(msg, engine.Scalars):
        evals = {k: v for k, v in msg.values.items() if is_eval_value(k)}
        if not evals:
            return None
        values = "  ".join(f"{k} {v:.4f}" for k, v in sorted(evals.items()))
        return "info", f"tick {msg.tick}: {values}"
    if isinstance(msg, engine.Status):
        level = "error" if msg.status in BAD_STATUSES else "info"
        detail = f": {msg.detail}" if msg.detail else ""
        return level, f"{msg.status} at tick {msg.tick}/{msg.steps}{detail}"
    if isinstance(msg, engine.Event):
        detail = ", ".join(f"{k}={v}" for k, v in msg.detail.items())
        return "info", f"tick {msg.tick}: {msg.kind} {detail}".rstrip()
    if isinstance(msg, engine.Log):
        return msg.level, msg.text.rstrip()
    return None


class LogPanel(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("logPanel")
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._colors = {"info": "", "warning": "", "error": ""}

    def apply_theme(self, theme: Theme) -> None:
        self._colors = {"info": theme.text, "warning": "#d29922", "error": theme.error}

    def add(self, level: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        color = self._colors.get(level) or self._colors["info"]
        style = f"white-space:pre-wrap; color:{color}" if color else "white-space:pre-wrap"
        prefix = "" if level == "info" else f"{level}: "
        self.appendHtml(f'<span style="{style}">{stamp}  {html.escape(prefix + text)}</span>')

    def add_messages(self, messages: list[engine.Message]) -> None:
        for msg in messages:
            line = describe(msg)
            if line is not None:
                self.add(*line)

    def lines(self) -> list[str]:
        return self.toPlainText().splitlines()
