"""Tickbench workbench: the PySide6 + pyqtgraph desktop app on top of ``engine``.

``python -m workbench`` (or ``make run``) opens the window; docs/automation.md describes the
scriptable mode and the objectNames tests and scripts use. The package talks to the engine only
through ``engine``'s public names: the engine's pump thread hands messages to ``bridge``, which
the GUI thread drains at a fixed frame rate.
"""
