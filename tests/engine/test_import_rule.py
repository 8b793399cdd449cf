"""The one dependency rule: engine never imports Qt, pyqtgraph or workbench."""

import json
import subprocess
import sys

FORBIDDEN = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "workbench")


def test_engine_imports_no_qt():
    code = (
        "import json, sys, engine, engine.cli, engine.trainer, engine.sample; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == [], f"engine pulled in GUI modules: {bad}"
    assert "engine.trainer" in loaded  # the check saw the real engine
