"""Class probabilities as horizontal bars, and the small popup that shows them on a right-click.

The widgets only display: the main window runs the classifier off the GUI thread (the hub's
`classify` signal) and calls `show_probabilities` or `show_error`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.dnd import SampleRef

MAX_ROWS = 12  # a model with dozens of classes shows its likeliest; the rest are summed up


def format_percent(p: float) -> str:
    """0.873 -> '87.3%'; tiny but non-zero values do not read as a flat 0."""
    if 0 < p < 0.0005:
        return "<0.1%"
    return f"{p * 100:.1f}%"


class ProbabilityBar(QWidget):
    """One bar: a track with a fill as long as the probability."""

    def __init__(self, value: float, emphasised: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("classBar")
        self.value = min(max(value, 0.0), 1.0)
        self.emphasised = emphasised
        self.setMinimumWidth(80)

    def sizeHint(self) -> QSize:
        return QSize(160, 14)

    def minimumSizeHint(self) -> QSize:
        return QSize(80, 10)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        h = min(self.height(), 14 if self.emphasised else 10)
        track = QRectF(0, (self.height() - h) / 2, self.width(), h)
        track_color = QColor(self.palette().mid().color())
        track_color.setAlpha(70)
        painter.setBrush(track_color)
        painter.drawRoundedRect(track, 3, 3)
        if self.value > 0:
            fill = QColor(self.palette().highlight().color())
            if not self.emphasised:
                fill.setAlpha(140)
            painter.setBrush(fill)
            width = max(2.0, track.width() * self.value)
            painter.drawRoundedRect(QRectF(track.left(), track.top(), width, h), 3, 3)
        painter.end()


class ClassProbabilities(QWidget):
    """The classifier's answer for one sample: one bar per class, likeliest first, the
    likeliest in bold."""

    def __init__(self, parent: QWidget | None = None, show_title: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("classProbabilities")
        self._bars: list[tuple[str, float]] = []
        self._ref: SampleRef | None = None
        self.title = QLabel("", self)
        self.title.setObjectName("classTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setVisible(show_title)
        self.message = QLabel("", self)
        self.message.setObjectName("classMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.hide()
        self.rows = QWidget(self)
        self.grid = QGridLayout(self.rows)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(3)
        self.grid.setColumnStretch(1, 1)
        self.more = QLabel("", self)
        self.more.setObjectName("classMore")
        self.more.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        layout.addWidget(self.rows)
        layout.addWidget(self.more)
        layout.addStretch(1)

    # -- called by the main window ----------------------------------------------------------------

    def set_query(self, ref: SampleRef) -> None:
        """Classification of `ref` has started."""
        self._ref = ref
        self._set_title(ref)
        self._clear_rows()
        self._set_message(f"Classifying {ref.name}...", error=False)

    def show_probabilities(
        self, ref: SampleRef, class_names: Sequence[str], probs: Sequence[float]
    ) -> None:
        """Show one bar per class, sorted by probability (descending)."""
        self._ref = ref
        self._set_title(ref)
        names = [str(n) for n in class_names]
        values = [float(p) for p in probs]
        if not names:
            self.show_error("This model has no classifier: it can't name classes.")
            return
        if len(values) != len(names):
            self.show_error(f"The model gave {len(values)} probabilities for {len(names)} classes.")
            return
        values = [v if math.isfinite(v) else 0.0 for v in values]
        order = sorted(range(len(names)), key=lambda i: -values[i])  # stable: ties keep order
        self._clear_rows()
        self._set_message("", error=False)
        shown = order[:MAX_ROWS]
        self._bars = [(names[i], values[i]) for i in shown]
        for row, (name, value) in enumerate(self._bars):
            self._add_row(row, name, value, emphasised=row == 0)
        hidden = order[MAX_ROWS:]
        if hidden:
            rest = sum(values[i] for i in hidden)
            self.more.setText(f"and {len(hidden)} more classes ({format_percent(rest)} in all)")
            self.more.show()
        self.rows.show()

    def show_error(self, message: str) -> None:
        self._clear_rows()
        self._set_message(message, error=True)

    def clear(self) -> None:
        self._ref = None
        self.title.clear()
        self._clear_rows()
        self._set_message("", error=False)

    # -- for the window and tests ------------------------------------------------------------------

    def bars(self) -> list[tuple[str, float]]:
        """(class name, probability) as displayed, top to bottom."""
        return list(self._bars)

    def row_labels(self) -> list[tuple[QLabel, QLabel]]:
        """(name label, percent label) per displayed row, top to bottom."""
        out = []
        for row in range(len(self._bars)):
            name = self.grid.itemAtPosition(row, 0).widget()
            pct = self.grid.itemAtPosition(row, 2).widget()
            out.append((name, pct))
        return out

    def message_text(self) -> str:
        return self.message.text() if self.message.isVisibleTo(self) else ""

    def sample(self) -> SampleRef | None:
        return self._ref

    # -- internals ---------------------------------------------------------------------------------

    def _set_title(self, ref: SampleRef) -> None:
        self.title.setText(ref.name)
        self.title.setToolTip(ref.path)

    def _set_message(self, text: str, error: bool) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.message.setStyleSheet("color: #d9534f;" if error else "font-style: italic;")
        self.message.setProperty("error", error)

    def _clear_rows(self) -> None:
        self._bars = []
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.setParent(None)
                w.deleteLater()
        self.more.hide()
        self.rows.hide()

    def _add_row(self, row: int, name: str, value: float, emphasised: bool) -> None:
        name_label = QLabel(name, self.rows)
        name_label.setObjectName("className")
        name_label.setTextFormat(Qt.TextFormat.PlainText)
        pct_label = QLabel(format_percent(value), self.rows)
        pct_label.setObjectName("classPercent")
        pct_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        pct_label.setMinimumWidth(pct_label.fontMetrics().horizontalAdvance("100.0%") + 4)
        for label in (name_label, pct_label):
            label.setProperty("emphasised", emphasised)
            if emphasised:
                font = QFont(label.font())
                font.setBold(True)
                label.setFont(font)
        bar = ProbabilityBar(value, emphasised, self.rows)
        bar.setToolTip(f"{name}: {format_percent(value)}")
        self.grid.addWidget(name_label, row, 0)
        self.grid.addWidget(bar, row, 1)
        self.grid.addWidget(pct_label, row, 2)


class ClassifyPopup(QFrame):
    """A small non-modal popup (closes on Esc, a click elsewhere, or its × button) showing a
    sample's class probabilities next to where it was right-clicked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("classifyPopup")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.title = QLabel("", self)
        self.title.setObjectName("classifyTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.close_button = QToolButton(self)
        self.close_button.setObjectName("classifyClose")
        self.close_button.setText("×")
        self.close_button.setToolTip("Close (Esc)")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.close)
        self.probabilities = ClassProbabilities(self, show_title=False)
        self.note = QLabel("", self)  # the class as the app shows it: unsure, or set by the user
        self.note.setObjectName("classifyNote")
        self.note.setWordWrap(True)
        self.note.hide()
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 10)
        layout.addLayout(head)
        layout.addWidget(self.note)
        layout.addWidget(self.probabilities)
        self.setMinimumWidth(300)
        self._anchor: QPoint | None = None

    def set_query(self, ref: SampleRef) -> None:
        self._set_title(ref)
        self.note.hide()
        self.probabilities.set_query(ref)
        self.adjustSize()

    def show_probabilities(
        self, ref: SampleRef, class_names: Sequence[str], probs: Sequence[float], note: str = ""
    ) -> None:
        """The model's probabilities; `note`: what the app makes of them ("Unsure: ...", or
        the class the user set)."""
        self._set_title(ref)
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self.probabilities.show_probabilities(ref, class_names, probs)
        self._refit()

    def show_error(self, message: str) -> None:
        self.probabilities.show_error(message)
        self._refit()

    def popup_at(self, global_pos: QPoint) -> None:
        """Show next to `global_pos` (usually where the user right-clicked), kept on screen."""
        self._anchor = QPoint(global_pos)
        self.adjustSize()
        self.move(self._fit(global_pos, self.size()))
        self.show()
        self.raise_()

    def _set_title(self, ref: SampleRef) -> None:
        self.title.setText(ref.name)
        self.title.setToolTip(ref.path)

    def _refit(self) -> None:
        # The answer arrives after the popup is shown and may make it taller: stay on screen.
        self.adjustSize()
        if self.isVisible() and self._anchor is not None:
            self.move(self._fit(self._anchor, self.size()))

    def _fit(self, pos: QPoint, size: QSize) -> QPoint:
        screen = QGuiApplication.screenAt(pos) or self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return pos
        area: QRect = screen.availableGeometry()
        x, y = pos.x(), pos.y()
        if x + size.width() > area.right() + 1:
            x = area.right() + 1 - size.width()
        if y + size.height() > area.bottom() + 1:
            y = pos.y() - size.height()  # flip above the click, as menus do
            if y < area.top():
                y = area.bottom() + 1 - size.height()
        return QPoint(max(area.left(), x), max(area.top(), y))
