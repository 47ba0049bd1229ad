"""The confusion matrix view: room for its labels, and labels that fit their cells."""

from __future__ import annotations

import numpy as np

from PySide6.QtGui import QFontMetrics

from ui.widgets.confusion import MIN_CELL, ConfusionMatrixView


def test_it_asks_for_room_by_its_classes_and_fits_its_labels_to_small_cells(qtbot):
    v = ConfusionMatrixView()
    qtbot.addWidget(v)
    empty = v.minimumSizeHint()
    names = [f"class{i}" for i in range(9)]
    v.set_matrix(names, np.eye(9, dtype=int) * 3, "Validation confusion")
    nine = v.minimumSizeHint()
    assert nine.width() >= 9 * MIN_CELL and nine.height() >= 9 * MIN_CELL
    v.set_matrix(names[:3], np.eye(3, dtype=int), "")
    assert v.minimumSizeHint().height() < nine.height() and empty.height() <= nine.height()
    font = v.font()
    height = QFontMetrics(font).height()
    assert v._fitting_font(font, 2 * height) is font  # room enough: as it is
    small = v._fitting_font(font, height // 2 + 6)  # lines taller than 0.9 of a cell: smaller
    assert 6.0 <= small.pointSizeF() < font.pointSizeF()
    assert QFontMetrics(small).height() < height
