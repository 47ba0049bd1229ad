"""The main window's panels."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QAbstractItemView


def paint_placeholder(view: QAbstractItemView, text: str) -> None:
    """Draw `text` dimmed at the top of an empty list's viewport (call from paintEvent)."""
    painter = QPainter(view.viewport())
    color = QColor(view.palette().text().color())
    color.setAlpha(120)
    painter.setPen(color)
    rect = view.viewport().rect().adjusted(16, 16, -16, -16)
    flags = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
    painter.drawText(rect, int(flags), text)
    painter.end()
