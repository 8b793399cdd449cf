"""The dependency rules: engine never imports Qt, pyqtgraph or workbench; the workbench uses only
the engine's public names; the engine's modules import each other without a cycle."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every import statement in ``path``, at any depth, except those
    under ``if TYPE_CHECKING:`` (annotations only: nothing is imported at run time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
    return out


def test_the_workbench_uses_only_engines_public_names():
    """``import engine`` / ``from engine import X`` with X in ``engine.__all__``: never a
    submodule, so the engine can move its insides without breaking the window."""
    import engine

    public = set(engine.__all__)
    submodules = {m.name for m in pkgutil.iter_modules(engine.__path__)}
    deep = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for module, names, line in _imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module.startswith("engine."):
                deep.append(f"{where}: {module}")
            elif module == "engine":
                deep += [f"{where}: engine.{n}" for n in names if n not in public]
        tree = ast.parse(text)
        for node in ast.walk(tree):  # engine.config.X written out in code
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "engine"
                and (node.attr in submodules or node.attr not in public)
            ):
                deep.append(f"{path.relative_to(ROOT)}:{node.lineno}: engine.{node.attr}")
    assert deep == []


def test_engine_modules_import_each_other_without_a_cycle():
    graph = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        if path.name == "__init__.py" and path.parent.name == "engine":
            continue  # the package's front door imports everything
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        graph[name] = {m for m, _, _ in _imports(path) if m.startswith("engine.") and m != name}
    seen, cycles = {}, []

    def visit(node, stack):
        seen[node] = "open"
        for nxt in graph.get(node, ()):
            if seen.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in seen:
                visit(nxt, stack + [nxt])
        seen[node] = "done"

    for node in graph:
        if node not in seen:
            visit(node, [node])
    assert cycles == []
