"""Errors from the engine as sentences for the user."""

from __future__ import annotations

from sampletool.errors import FileProblem, SampleToolError


def message_of(error: BaseException) -> str:
    """A sentence: our errors say what happened; others get their type."""
    if isinstance(error, SampleToolError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def reason_of(error: BaseException) -> str:
    """What is wrong, without the file's path (for a line that already names the sound)."""
    if isinstance(error, FileProblem):
        return error.reason
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def confirm(parent, title: str, text: str, yes: str, no: str = "Cancel") -> bool:
    """Ask a yes/no question in a dialog; True for `yes`. (Tests replace this function.)"""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(yes_button)
    box.exec()
    return box.clickedButton() is yes_button


def ask_text(parent, title: str, label: str, text: str = "") -> str | None:
    """Ask for one line of text; None if cancelled. (Tests replace this function.)"""
    from PySide6.QtWidgets import QInputDialog

    value, ok = QInputDialog.getText(parent, title, label, text=text)
    return value if ok else None
