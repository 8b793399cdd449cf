"""Dark and light themes: a Fusion palette for the widgets and matching plot colours."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    alternate: str
    text: str
    muted: str  # secondary text: descriptions, hints
    button: str
    highlight: str
    error: str
    plot_background: str
    plot_foreground: str


THEMES = {
    "dark": Theme(
        name="dark",
        window="#2b2d31",
        base="#1e1f22",
        alternate="#26282c",
        text="#e6e6e6",
        muted="#a0a4ab",
        button="#35373c",
        highlight="#3d7fd9",
        error="#ff7b72",
        plot_background="#1e1f22",
        plot_foreground="#c8cbd0",
    ),
    "light": Theme(
        name="light",
        window="#f3f3f3",
        base="#ffffff",
        alternate="#f6f7f9",
        text="#1f2328",
        muted="#59636e",
        button="#e9e9ea",
        highlight="#2f6fd0",
        error="#c4281c",
        plot_background="#ffffff",
        plot_foreground="#3b4149",
    ),
}
DEFAULT_THEME = "dark"

# Curve colours read well on both backgrounds.
COLORS = {
    "train": "#4c8dff",
    "val": "#ff8c1a",
    "lr": "#2fb67c",
    "planned": "#8a8f98",
    "grad_norm": "#b36bff",
    "tokens_per_s": "#1eb8d4",
}
EXTRA_COLORS = ("#e5484d", "#f5d90a", "#46a758", "#d6409f", "#12a594", "#978365")


def apply_palette(app: QApplication, theme: Theme) -> None:
    app.setStyle("Fusion")
    pal = QPalette()
    roles = QPalette.ColorRole
    for role, color in (
        (roles.Window, theme.window),
        (roles.WindowText, theme.text),
        (roles.Base, theme.base),
        (roles.AlternateBase, theme.alternate),
        (roles.Text, theme.text),
        (roles.PlaceholderText, theme.muted),
        (roles.Button, theme.button),
        (roles.ButtonText, theme.text),
        (roles.ToolTipBase, theme.base),
        (roles.ToolTipText, theme.text),
        (roles.Highlight, theme.highlight),
        (roles.HighlightedText, "#ffffff"),
        (roles.Link, theme.highlight),
    ):
        pal.setColor(role, QColor(color))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        pal.setColor(disabled, role, QColor(theme.muted))
    app.setPalette(pal)
