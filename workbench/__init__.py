"""Tickbench workbench: the PySide6 + pyqtgraph desktop app on top of ``engine``.

Not built yet (see the workbench issues); ``make run`` trains the default preset headless until
then.
"""
