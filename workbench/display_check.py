"""Can the window open here? Checked before a QApplication exists, because Qt aborts the process
(exit 134, a long platform-plugin message) when it has no display or when its xcb plugin cannot
load a system library; these checks say so in one line instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QLibraryInfo  # QtCore alone loads no platform plugin

HEADLESS_HINT = "python -m engine run presets/baby-gpt.yaml"
X11_LIKE = ("linux", "freebsd", "openbsd", "netbsd")
LDD_SECONDS = 10

# soname -> (Debian/Ubuntu package, Fedora package): what Qt's xcb plugin links that a minimal
# desktop or container may lack. Other sonames are named as they are.
XCB_PACKAGES = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
}


def display_problem(environ=os.environ, platform: str = sys.platform) -> str | None:
    """Why no window can open here, or None. Checked before Qt starts: a QApplication without a
    display aborts the process with a long platform-plugin message."""
    if not platform.startswith(X11_LIKE):
        return None  # macOS and Windows always have their own display platform
    if any(environ.get(var) for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return None
    return (
        "tickbench: no display here (DISPLAY and WAYLAND_DISPLAY are unset), so the window "
        f"cannot open; train headless instead: {HEADLESS_HINT}"
    )


def uses_xcb(environ=os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will pick its xcb (X11) platform plugin: QT_QPA_PLATFORM names it first, or
    is unset on an X display without Wayland."""
    if not platform.startswith(X11_LIKE):
        return False
    chosen = environ.get("QT_QPA_PLATFORM")
    if chosen:  # "xcb", "offscreen", "wayland;xcb", "xcb:option=value"
        return chosen.split(";")[0].split(":")[0].strip() == "xcb"
    return bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY")


def not_found(ldd_output: str) -> list[str]:
    """The sonames ``ldd`` printed as ``=> not found``, once each, in order."""
    missing = []
    for line in ldd_output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def xcb_plugin_files() -> list[Path]:
    """Qt's xcb platform plugin and the library it is built on (which ldd may not reach)."""
    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    libraries = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath))
    files = [plugins / "platforms" / "libqxcb.so", libraries / "libQt6XcbQpa.so.6"]
    return [f for f in files if f.is_file()]


def missing_libraries(files: list[Path] | None = None) -> list[str]:
    """System libraries the xcb plugin needs that the dynamic linker cannot find; empty when
    none are missing or when ``ldd`` is not there to ask."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    missing = []
    for file in xcb_plugin_files() if files is None else files:
        try:
            out = subprocess.run(
                [ldd, str(file)], capture_output=True, text=True, timeout=LDD_SECONDS
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        missing += [name for name in not_found(out) if name not in missing]
    return missing


def install_hint(missing: list[str]) -> str:
    """One line naming the missing libraries and the packages that provide them."""
    known = [XCB_PACKAGES[name] for name in missing if name in XCB_PACKAGES]
    debian = " ".join(dict.fromkeys(deb for deb, _ in known))
    fedora = " ".join(dict.fromkeys(fed for _, fed in known))
    install = (
        f"install them (Debian/Ubuntu: sudo apt install {debian}; Fedora: sudo dnf install "
        f"{fedora})"
        if known
        else "install the packages that provide them"
    )
    return (
        f"tickbench: the window cannot open: Qt's xcb plugin needs {', '.join(missing)}, "
        f"missing here; {install}, or train headless: {HEADLESS_HINT}"
    )


def library_problem(environ=os.environ, platform: str = sys.platform) -> str | None:
    """Why Qt's xcb plugin would fail to load here, or None (also when xcb is not the platform)."""
    if not uses_xcb(environ, platform):
        return None
    missing = missing_libraries()
    return install_hint(missing) if missing else None
