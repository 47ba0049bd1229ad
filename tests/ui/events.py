"""Drag-and-drop events for tests, across PySide6 versions (6.11 builds QDragEnterEvent from a
QPoint, 6.12 from a QPointF)."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent

COPY = Qt.DropAction.CopyAction


def _make(cls, x: float, y: float, actions, mime: QMimeData):
    args = (actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    for pos in (QPointF(x, y), QPoint(int(x), int(y))):
        try:
            return cls(pos, *args)
        except TypeError:
            continue
    raise TypeError(f"cannot build a {cls.__name__} with this PySide6")


def drag_enter_event(x: float, y: float, mime: QMimeData, actions=COPY) -> QDragEnterEvent:
    return _make(QDragEnterEvent, x, y, actions, mime)


def drop_event(x: float, y: float, mime: QMimeData, actions=COPY) -> QDropEvent:
    return _make(QDropEvent, x, y, actions, mime)
