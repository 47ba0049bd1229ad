"""A confusion matrix as a heat map: which classes the model hears as which.

Rows are the true classes, columns what the model predicted; each cell is shaded by its share
of its row (so a small class reads as clearly as a big one) and shows its count. Hovering a
cell says it in words. Used by the train wizard (refreshed at each validation) and the model
manager.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

MIN_CELL = 14  # pixels: the smallest cell the view asks room for (6 pt labels fit one apart)


class ConfusionMatrixView(QWidget):
    """The heat map. `set_matrix(classes, matrix)` shows one; `clear(text)` shows a note."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confusionMatrix")
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(180, 160)
        self.classes: list[str] = []
        self.matrix = np.zeros((0, 0), np.int64)
        self.caption = ""
        self._note = "No confusion matrix yet"

    def set_matrix(self, classes: Sequence[str], matrix, caption: str = "") -> None:
        """Show `matrix` ([true, predicted] counts) of `classes`, titled `caption`."""
        m = np.asarray(matrix, dtype=np.int64)
        if m.ndim != 2 or m.shape != (len(classes), len(classes)):
            self.clear("The confusion matrix does not match the classes")
            return
        self.classes, self.matrix, self.caption = list(classes), m, caption
        self.updateGeometry()  # its minimum follows the number of classes
        self.update()

    def clear(self, note: str = "No confusion matrix yet") -> None:
        self.classes, self.matrix, self.caption, self._note = (
            [],
            np.zeros((0, 0), np.int64),
            "",
            note,
        )
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, 300)

    def minimumSizeHint(self) -> QSize:
        """Room for cells of MIN_CELL pixels, whose labels fit one to a row and a column."""
        if not self.classes:
            return QSize(180, 160)
        label_w, caption_h, col_h = self._margins()
        side = MIN_CELL * len(self.classes)
        return QSize(max(label_w + 12 + side, 180), max(caption_h + col_h + 8 + side, 160))

    # -- geometry -------------------------------------------------------------------------------

    def _layout(self) -> tuple[QRect, int, int, int]:
        """(the grid's rectangle, cell size, row label width, column label height)."""
        label_w, caption_h, col_h = self._margins()
        k = max(len(self.classes), 1)
        avail_w = self.width() - label_w - 8
        avail_h = self.height() - col_h - caption_h - 8
        cell = max(min(avail_w // k, avail_h // k), 6)
        left = label_w + 4 + max((avail_w - cell * k) // 2, 0)
        grid = QRect(left, caption_h + col_h + 4, cell * k, cell * k)
        return grid, cell, label_w, col_h

    def _margins(self) -> tuple[int, int, int]:
        """(row label width, caption height, column label height) around the grid."""
        fm = QFontMetrics(self._label_font())
        label_w = min(max((fm.horizontalAdvance(c) for c in self.classes), default=0) + 8, 110)
        caption_h = fm.height() + 4 if self.caption else 0
        return label_w, caption_h, min(label_w, 90)  # column labels are drawn at 45 degrees

    def _label_font(self) -> QFont:
        f = QFont(self.font())
        if len(self.classes) > 12:
            f.setPointSizeF(max(f.pointSizeF() * 0.85, 6.0))
        return f

    @staticmethod
    def _fitting_font(font: QFont, cell: int) -> QFont:
        """`font`, made smaller (down to 6 pt) where its lines are taller than a cell: slanted
        column labels sit a cell apart (0.7 of a cell across their lines), and ran into each
        other in a small window."""
        height = QFontMetrics(font).height()
        room = 0.9 * cell  # slanted lines overlap by their accents and descenders only
        if height <= room or font.pointSizeF() <= 6.0:
            return font
        small = QFont(font)
        small.setPointSizeF(max(font.pointSizeF() * room / height, 6.0))
        return small

    def _cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        if not self.classes:
            return None
        grid, cell, _, _ = self._layout()
        if not grid.contains(pos):
            return None
        return (pos.y() - grid.top()) // cell, (pos.x() - grid.left()) // cell

    # -- painting -------------------------------------------------------------------------------

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        if not self.classes:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._note)  # fmt: skip
            return
        grid, cell, label_w, col_h = self._layout()
        font = self._label_font()
        p.setFont(font)
        fm = QFontMetrics(font)
        if self.caption:
            p.setPen(text)
            p.drawText(QRect(0, 0, self.width(), fm.height() + 2), Qt.AlignmentFlag.AlignCenter,
                       self.caption)  # fmt: skip
        font = self._fitting_font(font, cell)  # the labels' font: one row or column each
        p.setFont(font)
        fm = QFontMetrics(font)
        rows = self.matrix.sum(1, keepdims=True)
        share = self.matrix / np.maximum(rows, 1)
        base = pal.color(QPalette.ColorRole.Base)
        accent = pal.color(QPalette.ColorRole.Highlight)
        k = len(self.classes)
        show_counts = cell >= fm.horizontalAdvance("000") + 4
        for i in range(k):
            for j in range(k):
                r = QRect(grid.left() + j * cell, grid.top() + i * cell, cell, cell)
                colour = _mix(base, accent, float(share[i, j]))
                p.fillRect(r, colour)
                if show_counts and self.matrix[i, j]:
                    p.setPen(_readable_on(colour))
                    p.drawText(r, Qt.AlignmentFlag.AlignCenter, str(int(self.matrix[i, j])))
        p.setPen(pal.color(QPalette.ColorRole.Mid))
        p.drawRect(grid.adjusted(0, 0, -1, -1))
        p.setPen(text)
        for i, name in enumerate(self.classes):  # true classes, left
            r = QRect(grid.left() - label_w - 4, grid.top() + i * cell, label_w, cell)
            p.drawText(r, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(name, Qt.TextElideMode.ElideRight, label_w - 4))  # fmt: skip
        for j, name in enumerate(self.classes):  # predicted classes, on top, slanted
            p.save()
            p.translate(grid.left() + j * cell + cell / 2 + fm.ascent() / 3, grid.top() - 4)
            p.rotate(-45)
            p.drawText(
                QRectF(0, -fm.height(), col_h * 1.35, fm.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(name, Qt.TextElideMode.ElideRight, int(col_h * 1.35)),
            )
            p.restore()

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ToolTip:
            where = self._cell_at(e.pos())  # type: ignore[attr-defined]
            if where is None:
                QToolTip.hideText()
            else:
                i, j = where
                n, total = int(self.matrix[i, j]), int(self.matrix[i].sum())
                pct = 100 * n / total if total else 0
                what = "heard right" if i == j else f"heard as {self.classes[j]}"
                QToolTip.showText(
                    e.globalPos(),  # type: ignore[attr-defined]
                    f"{self.classes[i]} {what}: {n} of {total} ({pct:.0f} %)",
                    self,
                )
            return True
        return super().event(e)

    def accuracy(self) -> float:
        """The share of the matrix on its diagonal (0 when empty)."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else 0.0


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    t = min(max(t, 0.0), 1.0) ** 0.7  # small shares still show
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def _readable_on(colour: QColor) -> QColor:
    return QColor("#000000") if colour.lightnessF() > 0.55 else QColor("#ffffff")
