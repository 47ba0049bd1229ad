"""The session's blend results: each sound with its label and the settings that made it,
newest first; a click brings a result back (its sound and its settings), a drag takes out its
WAV file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from ui.dnd import SampleRef

HISTORY_LIMIT = 100  # at most ~130 kB each (2 s at 16 kHz): the whole history stays small
NAMED_SOURCES = 3  # a blend's file name names this many of its samples, then "+N more"


def blend_file_name(slots: tuple[tuple[SampleRef, float], ...], number: int | None) -> str:
    """A WAV file name for a blend that says what is in it, as a DAW shows it on the clip:
    "kick01+snare_tight blend 3.wav" (its samples with a weight, the first three by slot,
    each name cut to 24 characters; characters no file system takes replaced by "_");
    "blend 3.wav" for a random sound; without the number when `number` is None."""
    import re

    from sampletool.paths import display_path

    stems = [display_path(Path(ref.path).stem)[:24].strip() for ref, weight in slots if weight]
    named = "+".join(stems[:NAMED_SOURCES])
    if len(stems) > NAMED_SOURCES:
        named += f"+{len(stems) - NAMED_SOURCES} more"
    named = re.sub(r'[<>:"/\\|?*\x00-\x1f]', "_", named)
    blend = "blend" if number is None else f"blend {number}"
    return f"{named} {blend}.wav" if named else f"{blend}.wav"


@dataclass
class BlendResult:
    """A generated sound in the session history, and the settings that made it.

    Attributes:
        audio: float32 [n] at `sample_rate` (the model's), its silent tail trimmed.
        wav_path: its WAV file in the session folder, written with it for drags (at
            `wav_rate`, a DAW's rate); None when it could not be written.
        slots: the samples blended, with their weights as set (before normalising).
    """

    number: int
    audio: np.ndarray
    sample_rate: int
    label: str
    key: tuple = field(repr=False)
    wav_path: Path | None = None
    wav_rate: int = 0
    slots: tuple[tuple[SampleRef, float], ...] = ()
    normalize: bool = True
    variance: float = 0.0
    seed: int = 0


class HistoryList(QListWidget):
    """The results as a list, newest first; an item dragged out is its WAV file.

    Args:
        drag_out: called with the result of an item whose drag starts.
    """

    def __init__(self, parent: QWidget, drag_out: Callable[[BlendResult], None]) -> None:
        super().__init__(parent)
        self._drag_out = drag_out
        self._entries: list[BlendResult] = []
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def sizeHint(self) -> QSize:
        return QSize(240, 110)  # the slots get the room first; the history scrolls

    @property
    def entries(self) -> list[BlendResult]:
        """The results, newest first."""
        return list(self._entries)

    def add(self, entry: BlendResult, tooltip: str) -> None:
        """Put `entry` at the top; the oldest beyond HISTORY_LIMIT go."""
        self._entries.insert(0, entry)
        item = QListWidgetItem(entry.label)
        item.setData(Qt.ItemDataRole.UserRole, entry.number)
        item.setToolTip(tooltip)
        self.insertItem(0, item)
        while len(self._entries) > HISTORY_LIMIT:
            self._entries.pop()
            self.takeItem(self.count() - 1)

    def entry(self, item: QListWidgetItem) -> BlendResult | None:
        number = item.data(Qt.ItemDataRole.UserRole)
        return next((e for e in self._entries if e.number == number), None)

    def startDrag(self, supported_actions) -> None:
        item = self.currentItem()
        entry = self.entry(item) if item is not None else None
        if entry is not None:
            self._drag_out(entry)
