"""Presets (start page and menu), File ▸ Open / Save spec as / Save as preset, broken files."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

import engine
from tests.workbench.helpers import dialog
from workbench.settings import recent_files
from workbench.spec.presets import DEFAULT_PRESETS_DIR, list_presets

PRESETS = list_presets(DEFAULT_PRESETS_DIR)


def _double_click_row(qtbot, preset_list, row: int) -> None:
    item = preset_list.item(row)
    preset_list.scrollToItem(item)
    center = preset_list.visualItemRect(item).center()
    viewport = preset_list.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=center)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=center)


def test_start_page_lists_every_preset_with_its_description(make_main_window):
    window = make_main_window()
    preset_list = window.start_page.presets
    assert preset_list.objectName() == "presetList"
    assert preset_list.count() == len(PRESETS) >= 2
    assert preset_list.item(0).text() == "baby-gpt"  # the default preset comes first
    for row, preset in enumerate(PRESETS):
        assert preset_list.item(row).text() == preset.name
        shown = preset_list.item(row).data(Qt.ItemDataRole.UserRole + 1)
        assert shown == preset.summary
        if preset.error is None:
            assert preset.description and preset.description in shown
        else:  # listed all the same, with the reason it does not load
            assert shown == f"does not load: {preset.error}"
    menu_names = [a.text() for a in window.commands.presets_menu.actions() if a.text()]
    assert menu_names[: len(PRESETS)] == [p.name for p in PRESETS]
    assert window.commands.presets_menu.actions()[0].toolTip() == PRESETS[0].description


@pytest.mark.parametrize("row", range(len(PRESETS)), ids=[p.name for p in PRESETS])
def test_each_preset_loads_from_the_list(qtbot, make_main_window, tiny_spec_file, row):
    window = make_main_window()
    window.files.load(tiny_spec_file)  # start from something else than any preset
    preset = PRESETS[row]
    _double_click_row(qtbot, window.start_page.presets, row)
    if preset.variants or preset.error:  # a study (offered to run), or a preset with an error
        box = dialog(qtbot, window, "runStudyDialog" if preset.variants else "specErrorDialog")
        expected = (
            f"Run study {preset.name}: {preset.variants} runs?" if preset.variants else preset.error
        )
        assert expected in box.text()
        box.button(
            QMessageBox.StandardButton.Cancel if preset.variants else QMessageBox.StandardButton.Ok
        ).click()
        assert not window.studies.active
        assert window.config.spec.name == "tiny"  # nothing changed
        return
    qtbot.waitUntil(lambda: window.files.path == preset.path)
    assert window.config.spec == engine.load_spec(preset.path)
    assert window.commands.spec_label.text() == f"spec: {preset.name}"
    assert window.config.is_valid


def test_preset_menu_loads_a_preset(qtbot, make_main_window):
    window = make_main_window()
    preset = next(p for p in reversed(PRESETS) if not (p.error or p.variants))
    action = next(a for a in window.commands.presets_menu.actions() if a.text() == preset.name)
    action.trigger()
    assert window.config.spec == engine.load_spec(preset.path)


def test_broken_yaml_shows_its_error_and_changes_nothing(qtbot, make_main_window, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nmodel: {n_layer: [1, 2\n", encoding="utf-8")
    window = make_main_window()
    before = window.config.spec
    title = window.windowTitle()

    window.commands.open_spec.trigger()
    picker = dialog(qtbot, window, "openSpecDialog")
    picker.selectFile(str(broken))
    picker.accept()
    box = dialog(qtbot, window, "specErrorDialog")
    assert "spec: not valid YAML at line" in box.text()
    assert str(broken) in box.text()
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not box.isVisible())

    assert window.config.spec == before
    assert window.windowTitle() == title
    assert str(broken.resolve()) not in recent_files(window.settings)


def test_invalid_spec_file_names_the_field(qtbot, make_main_window, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {n_head: 3}\n", encoding="utf-8")
    window = make_main_window()
    window.files.open_file(str(bad))
    box = dialog(qtbot, window, "specErrorDialog")
    assert "model.d_model: 128 is not divisible by n_head=3" in box.text()
    box.close()


def test_open_then_save_spec_as_round_trips_and_is_remembered(
    qtbot, make_main_window, tiny_spec_file, tmp_path
):
    window = make_main_window()
    window.commands.open_spec.trigger()
    picker = dialog(qtbot, window, "openSpecDialog")
    picker.selectFile(str(tiny_spec_file))
    picker.accept()
    qtbot.waitUntil(lambda: window.config.spec.name == "tiny")

    target = tmp_path / "saved" / "copy"
    target.parent.mkdir()
    window.commands.save_spec.trigger()
    saver = dialog(qtbot, window, "saveSpecDialog")
    saver.selectFile(str(target))
    saver.accept()
    saved = target.with_suffix(".yaml")  # the dialog adds the suffix
    qtbot.waitUntil(saved.exists)
    assert engine.load_spec(saved) == window.config.spec == engine.load_spec(tiny_spec_file)
    assert recent_files(window.settings)[:2] == [str(saved), str(tiny_spec_file.resolve())]


def test_save_as_preset_adds_it_to_the_list_and_menu(qtbot, make_main_window, tmp_path):
    presets = tmp_path / "presets"
    shutil.copytree(DEFAULT_PRESETS_DIR, presets)
    window = make_main_window(presets_dir=presets)
    count = window.start_page.presets.count()

    window.commands.save_preset.trigger()
    ask = dialog(qtbot, window, "presetNameDialog")
    ask.setTextValue("my small gpt")
    ask.accept()
    path = presets / "my-small-gpt.yaml"
    qtbot.waitUntil(path.exists)
    assert engine.load_spec(path).name == "my small gpt"
    assert window.start_page.presets.count() == count + 1
    names = [window.start_page.presets.item(i).text() for i in range(count + 1)]
    assert "my small gpt" in names
    assert any(a.text() == "my small gpt" for a in window.commands.presets_menu.actions())

    window.commands.save_preset.trigger()  # the same name again: asks before replacing
    ask = dialog(qtbot, window, "presetNameDialog")
    ask.setTextValue("my small gpt")
    ask.accept()
    confirm = dialog(qtbot, window, "replacePresetDialog")
    assert "my-small-gpt.yaml already exists" in confirm.text()
    confirm.button(QMessageBox.StandardButton.Cancel).click()
    assert window.start_page.presets.count() == count + 1


def test_studies_are_listed_with_how_to_run_them(tmp_path):
    (tmp_path / "cmp.yaml").write_text(
        "study: cmp\ndescription: two norms\nbase: {}\n"
        "variants: [{name: a, set: {model.norm: layernorm}}, {name: b, set: {model.norm: none}}]\n",
        encoding="utf-8",
    )
    (tmp_path / "broken.yaml").write_text("model: {n_head: 3}\n", encoding="utf-8")
    broken, study = list_presets(tmp_path)
    assert (study.name, study.variants) == ("cmp", 2)
    assert study.summary == "Study of 2 runs: load it to train them all and compare them. two norms"
    assert broken.variants == 0 and broken.summary.startswith("does not load: model.d_model")
