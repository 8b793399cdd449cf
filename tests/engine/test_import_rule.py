"""The one dependency rule: engine never imports Qt, pyqtgraph or workbench."""

import json
import subprocess
import sys

FORBIDDEN = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "workbench")


def test_engine_imports_no_qt():
    # every module of the package, so a new one cannot slip past the rule
    code = (
        "import importlib, json, pkgutil, sys, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == [], f"engine pulled in GUI modules: {bad}"
    assert {"engine.trainer", "engine.stats", "engine.export_tensorboard"} <= set(loaded)
