"""The checks before Qt starts: which platform Qt will pick, and the system libraries its xcb
plugin needs, read from ``ldd`` (``make run`` on a desktop without them printed a Qt abort)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import display_check
from workbench.display_check import install_hint, library_problem, not_found, uses_xcb

ROOT = Path(__file__).resolve().parents[2]
QT = "/work/main/.venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/../../lib"

# `ldd .venv/.../PySide6/Qt/plugins/platforms/libqxcb.so` on Debian 12 with libxcb-cursor0 but
# without libxcb-icccm4 and libxcb-keysyms1 (the first 29 of its lines; {QT} shortens a path).
# ldd lists what libQt6XcbQpa.so.6 needs too, so the missing ones come twice.
LDD_QXCB = """\
\tlinux-vdso.so.1 (0x00007f2513a63000)
\tlibQt6XcbQpa.so.6 => {QT}/libQt6XcbQpa.so.6 (0x00007f2513995000)
\tlibQt6Gui.so.6 => {QT}/libQt6Gui.so.6 (0x00007f2512e00000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f2512d79000)
\tlibQt6Core.so.6 => {QT}/libQt6Core.so.6 (0x00007f2512600000)
\tlibxkbcommon.so.0 => /lib/x86_64-linux-gnu/libxkbcommon.so.0 (0x00007f2513946000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f2513939000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f2513932000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f251392a000)
\tlibxcb-image.so.0 => /lib/x86_64-linux-gnu/libxcb-image.so.0 (0x00007f2513924000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f2513911000)
\tlibxcb-render-util.so.0 => /lib/x86_64-linux-gnu/libxcb-render-util.so.0 (0x00007f2512200000)
\tlibxcb-shm.so.0 => /lib/x86_64-linux-gnu/libxcb-shm.so.0 (0x00007f251390c000)
\tlibxcb-sync.so.1 => /lib/x86_64-linux-gnu/libxcb-sync.so.1 (0x00007f2512d71000)
\tlibxcb-xfixes.so.0 => /lib/x86_64-linux-gnu/libxcb-xfixes.so.0 (0x00007f2512d68000)
\tlibxcb-render.so.0 => /lib/x86_64-linux-gnu/libxcb-render.so.0 (0x00007f2512d58000)
\tlibxcb-shape.so.0 => /lib/x86_64-linux-gnu/libxcb-shape.so.0 (0x00007f2512d53000)
\tlibxcb-xkb.so.1 => /lib/x86_64-linux-gnu/libxcb-xkb.so.1 (0x00007f2512d36000)
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f25125d6000)
\tlibX11-xcb.so.1 => /lib/x86_64-linux-gnu/libX11-xcb.so.1 (0x00007f25125d1000)
\tlibX11.so.6 => /lib/x86_64-linux-gnu/libX11.so.6 (0x00007f251248f000)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f2511e00000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f2512120000)
\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f251246d000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2511c1e000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
""".replace("{QT}", QT)


def test_not_found_reads_real_ldd_output():
    assert not_found(LDD_QXCB) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert not_found(LDD_QXCB.replace("=> not found", "=> /lib/x.so (0x1)")) == []
    assert not_found("\tlinux-vdso.so.1 (0x00007f2513a63000)\n") == []


def test_the_hint_names_debian_and_fedora_packages_and_unknown_sonames():
    line = install_hint(not_found(LDD_QXCB))
    assert "\n" not in line
    assert "needs libxcb-icccm.so.4, libxcb-keysyms.so.1," in line
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1;" in line
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms)" in line
    assert "python -m engine run presets/baby-gpt.yaml" in line
    line = install_hint(["libxcb-cursor.so.0", "libwhatever.so.3"])
    assert "needs libxcb-cursor.so.0, libwhatever.so.3," in line
    assert "apt install libxcb-cursor0;" in line and "dnf install xcb-util-cursor)" in line
    assert "needs libwhatever.so.3, missing here; install the packages that provide them" in (
        install_hint(["libwhatever.so.3"])
    )


def test_only_the_xcb_platform_is_checked(monkeypatch):
    assert uses_xcb({"DISPLAY": ":0"}, "linux")
    assert uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb:nograb;offscreen"}, "linux")
    assert not uses_xcb({}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not uses_xcb({"DISPLAY": ":0"}, "darwin")
    monkeypatch.setattr(display_check, "missing_libraries", lambda: pytest.fail("ldd was run"))
    assert library_problem({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux") is None


def test_without_ldd_or_when_it_hangs_nothing_is_reported(monkeypatch, tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert display_check.missing_libraries([plugin]) == []
    monkeypatch.undo()
    slow = _fake_ldd(tmp_path, "exec sleep 5")
    monkeypatch.setattr(shutil, "which", lambda _name: str(slow))
    monkeypatch.setattr(display_check, "LDD_SECONDS", 0.3)
    assert display_check.missing_libraries([plugin]) == []


def _fake_ldd(folder: Path, body: str) -> Path:
    ldd = folder / "ldd"
    ldd.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    ldd.chmod(0o755)
    return ldd


def _python(args: list[str], env: dict[str, str]):
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_the_check_agrees_with_ldd_on_this_venvs_plugin():
    """Whatever this machine has installed: the check reports exactly what ldd says is missing
    for the real libqxcb.so and libQt6XcbQpa.so.6 of this venv."""
    code = (
        "from workbench.display_check import missing_libraries, xcb_plugin_files\n"
        "print(*xcb_plugin_files(), sep='\\n')\n"
        "print('--')\n"
        "print(*missing_libraries(), sep='\\n')\n"
    )
    out = _python(["-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    files, missing = (part.split() for part in out.stdout.split("--\n"))
    assert [Path(f).name for f in files] == ["libqxcb.so", "libQt6XcbQpa.so.6"]
    expected = []
    for file in files:
        ldd = subprocess.run(["ldd", file], capture_output=True, text=True, timeout=60).stdout
        for name in re.findall(r"^\s*(\S+) => not found$", ldd, re.MULTILINE):
            expected += [name] if name not in expected else []
    assert missing == expected


def test_workbench_on_x11_without_a_library_says_what_to_install(tmp_path):
    """``make run`` on an X display where ldd finds the plugin's libraries missing: one line
    naming the packages, exit 1, no Qt abort (134). A fake ldd stands in for the system."""
    _fake_ldd(
        tmp_path, "printf '\\tlibxcb-cursor.so.0 => not found\\n\\tlibfoo.so.3 => not found\\n'"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(DISPLAY=":99", PYTHONPATH=str(ROOT), PATH=f"{tmp_path}{os.pathsep}{env['PATH']}")
    result = _python(["-m", "workbench", "--preset", "presets/baby-gpt.yaml"], env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "tickbench: the window cannot open: Qt's xcb plugin needs libxcb-cursor.so.0, "
        "libfoo.so.3, missing here; install them (Debian/Ubuntu: sudo apt install "
        "libxcb-cursor0; Fedora: sudo dnf install xcb-util-cursor), or train headless: "
    )
