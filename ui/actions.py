"""What can be done to a sample from anywhere in the window: one hub of signals, one menu.

Widgets never call each other. They hold the window's `SampleActions` and emit its signals
(`audition`, `find_similar`, ...) or call `show_menu(samples, pos)` on a right-click; the main
window connects the signals to the work. So the table, the map, the similarity results and
the blend slots all offer the same right-click menu.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMenu, QWidget

from ui.dnd import SampleRef


class SampleActions(QObject):
    """Signals carry a SampleRef (or a list of them for selections)."""

    audition = Signal(object)  # SampleRef: play it (and show it in the waveform view)
    stop = Signal()
    classify = Signal(object)  # SampleRef: show the class probabilities
    find_similar = Signal(object)  # SampleRef
    add_to_blend = Signal(object)  # SampleRef
    selected = Signal(object)  # list[SampleRef]: the selection changed somewhere

    def build_menu(self, samples: list[SampleRef], parent: QWidget | None = None) -> QMenu:
        """The right-click menu for one sample (or the first of a selection)."""
        menu = QMenu(parent)
        menu.setObjectName("sampleMenu")
        if not samples:
            return menu
        s = samples[0]

        def add(text: str, slot, shortcut: str | None = None) -> QAction:
            a = menu.addAction(text)
            a.triggered.connect(slot)
            if shortcut:
                a.setShortcut(shortcut)
            return a

        add("Play", lambda: self.audition.emit(s), "Space")
        add("Classify", lambda: self.classify.emit(s))
        add("Find similar", lambda: self.find_similar.emit(s), "Return")
        if len(samples) > 1:
            add(f"Add {min(len(samples), 8)} to blend",
                lambda: [self.add_to_blend.emit(x) for x in samples[:8]])  # fmt: skip
        else:
            add("Add to blend", lambda: self.add_to_blend.emit(s))
        menu.addSeparator()
        add("Show in folder", lambda: show_in_folder(s.path))
        add("Copy path", lambda: copy_paths([x.path for x in samples]))
        return menu

    def show_menu(self, samples: list[SampleRef], global_pos: QPoint, parent=None) -> None:
        if samples:
            self._menu = self.build_menu(samples, parent)  # keep a reference while it is open
            self._menu.popup(global_pos)


def show_in_folder(path: str) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).parent)))


def copy_paths(paths: list[str]) -> None:
    QGuiApplication.clipboard().setText("\n".join(paths))
