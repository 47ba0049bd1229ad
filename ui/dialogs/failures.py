"""The files a scan could not read, with the reason for each."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QPlainTextEdit, QPushButton, QVBoxLayout

from sampletool.paths import display_path


class FailuresDialog(QDialog):
    """The unreadable files and their reasons (non-modal)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("failuresDialog")
        self.setWindowTitle("Files that could not be read")
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setObjectName("failuresText")
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.resize(720, 360)

    def set_failures(self, failures: Sequence[tuple[str, str]]) -> None:
        self.text.setPlainText(
            "\n".join(
                f"{display_path(path)}\n    {display_path(reason)}" for path, reason in failures
            )
        )
