"""Dialogs that never block: each opens with ``open()`` and calls back when answered.

A blocking ``exec()`` would run a nested event loop in the middle of a slot; opening instead keeps
the frame timer (and the run's plots) going while a dialog is up, and lets tests find the dialog
among the window's children by its objectName and answer it as a user would.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMessageBox, QWidget


def _open(dialog: QDialog, object_name: str) -> QDialog:
    dialog.setObjectName(object_name)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def _ask_path(
    parent: QWidget,
    title: str,
    name_filter: str,
    on_path: Callable[[str], None],
    object_name: str,
    save: bool,
) -> QDialog:
    dialog = QFileDialog(parent, title, "", name_filter)
    if save:
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        # a bare name gets the suffix of the filter's first pattern
        dialog.setDefaultSuffix(name_filter.split("*.", 1)[1].split()[0].rstrip(")"))
    else:
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    dialog.fileSelected.connect(on_path)
    return _open(dialog, object_name)


def ask_open_path(
    parent: QWidget, title: str, name_filter: str, on_path: Callable[[str], None], object_name: str
) -> QDialog:
    return _ask_path(parent, title, name_filter, on_path, object_name, save=False)


def ask_save_path(
    parent: QWidget, title: str, name_filter: str, on_path: Callable[[str], None], object_name: str
) -> QDialog:
    return _ask_path(parent, title, name_filter, on_path, object_name, save=True)


def ask_text(
    parent: QWidget,
    title: str,
    label: str,
    text: str,
    on_text: Callable[[str], None],
    object_name: str,
) -> QDialog:
    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setLabelText(label)
    dialog.setTextValue(text)
    dialog.textValueSelected.connect(on_text)
    return _open(dialog, object_name)


def ask_confirm(
    parent: QWidget,
    title: str,
    text: str,
    accept_label: str,
    on_accept: Callable[[], None],
    object_name: str,
) -> QDialog:
    box = QMessageBox(
        QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent
    )
    accept = box.addButton(accept_label, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(accept)
    box.buttonClicked.connect(lambda button: on_accept() if button == accept else None)
    return _open(box, object_name)


def _message(parent: QWidget, icon, title: str, text: str, object_name: str) -> QDialog:
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    return _open(box, object_name)


def show_error(parent: QWidget, title: str, text: str, object_name: str = "errorDialog") -> QDialog:
    return _message(parent, QMessageBox.Icon.Warning, title, text, object_name)


def show_info(parent: QWidget, title: str, text: str, object_name: str = "infoDialog") -> QDialog:
    return _message(parent, QMessageBox.Icon.Information, title, text, object_name)
