"""Files that are not run specs at all (not UTF-8, binary, not a mapping, nested 3000 deep),
opened the ways the window opens a file: each gives the engine's one message, and the window
goes on working."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

import engine
from engine.study import load_preset
from tests.workbench.conftest import write_tiny
from tests.workbench.helpers import dialog, run_to_end, run_workbench
from workbench.__main__ import build_parser
from workbench.app import make_window
from workbench.settings import recent_files

ROOT = Path(__file__).resolve().parents[2]
BAD_FILES = {
    "latin-1": "name: café\ndescription: not UTF-8\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "not-a-mapping": b"- name: a list\n- of things\n",
    "deep": b"name: " + b"[" * 3000 + b"]" * 3000 + b"\n",
}


def _write(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.yaml"
    path.write_bytes(BAD_FILES[kind])
    return path


def _message(load, path: Path) -> str:
    """What the engine says about ``path``: the text the window must show."""
    with pytest.raises(engine.ConfigError) as error:
        load(path)
    return str(error.value)


def _close(qtbot, box) -> None:
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not box.isVisible())


@pytest.mark.parametrize("kind", BAD_FILES)
def test_file_open_shows_the_engines_message_and_keeps_the_form(
    qtbot, make_main_window, tiny_spec_file, tmp_path, kind
):
    bad = _write(tmp_path, kind)
    window = make_main_window()
    before = window.config.spec

    window.files.open_file(str(bad))  # what File ▸ Open and Open recent call
    box = dialog(qtbot, window, "specErrorDialog")
    assert box.text() == f"{bad}\n\n{_message(engine.load_spec, bad)}"
    _close(qtbot, box)
    assert window.config.spec == before
    assert str(bad.resolve()) not in recent_files(window.settings)

    window.files.open_file(str(tiny_spec_file))  # the window still loads a good file
    assert window.config.spec.name == "tiny" and window.config.is_valid


@pytest.mark.parametrize("kind", BAD_FILES)
def test_run_study_shows_the_engines_message(qtbot, make_main_window, tmp_path, kind):
    bad = _write(tmp_path, kind)
    window = make_main_window()
    assert not window.studies.ask_run(bad)  # File ▸ Run study…
    box = dialog(qtbot, window, "studyErrorDialog")
    assert box.text() == f"{bad}\n\n{_message(load_preset, bad)}"
    _close(qtbot, box)
    assert not window.studies.active


def test_a_presets_folder_of_bad_files_lists_them_and_the_window_still_trains(
    qtbot, make_main_window, tmp_path
):
    """Bad files among the presets: listed with their error, each shows it when chosen from
    the Presets menu, and a good preset then loads and trains."""
    presets = tmp_path / "presets"
    presets.mkdir()
    bad = [_write(presets, kind) for kind in BAD_FILES]
    write_tiny(presets, steps=10)
    window = make_main_window(presets_dir=presets)
    shown = {window.start_page.presets.item(row).text() for row in range(len(bad) + 1)}
    assert shown == {"tiny", *(path.stem for path in bad)}

    actions = {a.text(): a for a in window.commands.presets_menu.actions()}
    for path in bad:
        actions[path.stem].trigger()
        box = dialog(qtbot, window, "specErrorDialog")
        assert box.text() == f"{path}\n\n{_message(engine.load_spec, path)}"
        _close(qtbot, box)

    actions["tiny"].trigger()
    assert window.config.spec.name == "tiny"
    assert run_to_end(qtbot, window) == "finished"


@pytest.mark.parametrize("kind", BAD_FILES)
def test_preset_argument_gives_the_engines_message(tmp_path, kind):
    bad = _write(tmp_path, kind)
    assert make_window(build_parser().parse_args(["--preset", str(bad)])) == (
        f"{bad}: {_message(load_preset, bad)}"
    )


def test_preset_argument_that_is_not_utf8_exits_2_with_one_line(tmp_path):
    bad = _write(tmp_path, "latin-1")
    result = run_workbench("--preset", bad, "--settings", tmp_path / "s.ini", "--run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"tickbench: {bad}: {_message(load_preset, bad)}"]
