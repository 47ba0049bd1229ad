"""The main window's panels, and two small things they share."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QResizeEvent
from PySide6.QtWidgets import QAbstractItemView, QLabel, QSizePolicy, QWidget


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


class ElidedLabel(QLabel):
    """A one-line label that shortens its text in the middle (a file's extension and the start
    of its name stay visible) instead of widening its panel.

    Args:
        tooltip: show the full text as the tooltip.
    """

    def __init__(self, parent: QWidget | None = None, tooltip: bool = False) -> None:
        super().__init__(parent)
        self._full = ""
        self._tooltip = tooltip
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        if self._tooltip:
            self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        mode = Qt.TextElideMode.ElideMiddle
        self.setText(self.fontMetrics().elidedText(self._full, mode, max(self.width(), 40)))


class StatusLine(QWidget):
    """A status text that changes often (every second) without laying its window out again:
    a fixed number of wrapped lines, painted in place. A QLabel's setText asks its layout to
    recompute the whole page (charts included) each time.
    """

    def __init__(self, parent: QWidget | None = None, lines: int = 2) -> None:
        super().__init__(parent)
        self._text = ""
        self._colour: QColor | None = None
        self.setFixedHeight(lines * self.fontMetrics().lineSpacing() + 4)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.setToolTip(text if len(text) > 120 else "")
            self.update()

    def clear(self) -> None:
        self.setText("")

    def set_colour(self, colour: str | None) -> None:
        """Draw the text in `colour` (a CSS colour), or in the palette's text colour."""
        self._colour = QColor(colour) if colour else None
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setPen(self._colour or self.palette().text().color())
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        p.drawText(self.rect().adjusted(0, 2, 0, 0), int(flags), self._text)
