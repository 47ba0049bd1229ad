"""What can be done to a sample from anywhere in the window: one hub of signals, one menu.

Widgets never call each other. They hold the window's `SampleActions` and emit its signals
(`audition`, `find_similar`, ...) or call `show_menu(samples, pos)` on a right-click; the main
window connects the signals to the work. So the table, the map, the similarity results and
the blend slots all offer the same right-click menu.
"""

from __future__ import annotations

from collections.abc import Callable
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
    set_class = Signal(object, object)  # list[SampleRef], a class name or None (the model's)
    message = Signal(str)  # something the window should say (an action could not be done)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # What the Class submenu offers: the model's classes, and the class the user gave a
        # sample (None: none given). The window keeps both up to date.
        self.class_names: list[str] = []
        self.user_class: Callable[[SampleRef], str | None] = lambda _ref: None

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
        if self.class_names:
            self._class_menu(menu, samples)
        menu.addSeparator()
        add("Show in folder", lambda: self._show_folder(s.path))
        add("Copy path", lambda: copy_paths([x.path for x in samples]))
        return menu

    def _class_menu(self, menu: QMenu, samples: list[SampleRef]) -> None:
        """Class > (every class): the user's correction of the model, for the whole selection;
        "Use the model's class" takes it back."""
        sub = menu.addMenu("C&lass")
        sub.setObjectName("classMenu")
        given = {self.user_class(x) for x in samples}
        for name in self.class_names:
            a = sub.addAction(name)
            a.setCheckable(True)
            a.setChecked(given == {name})
            a.triggered.connect(lambda _=False, n=name: self.set_class.emit(list(samples), n))
        sub.addSeparator()
        back = sub.addAction("Use the model's class")
        back.setEnabled(given != {None})
        back.triggered.connect(lambda: self.set_class.emit(list(samples), None))

    def _show_folder(self, path: str) -> None:
        said = show_in_folder(path)
        if said:
            self.message.emit(said)

    def show_menu(self, samples: list[SampleRef], global_pos: QPoint, parent=None) -> None:
        if samples:
            self._menu = self.build_menu(samples, parent)  # keep a reference while it is open
            self._menu.popup(global_pos)


def show_in_folder(path: str, folder: bool = False) -> str:
    """Open the file manager on the folder of `path` (or on `path` itself with `folder`).
    Returns "" or, when no file manager could be started, what to tell the user (the folder's
    path is then on the clipboard instead)."""
    target = Path(path) if folder else Path(path).parent
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(target))):
        return ""
    QGuiApplication.clipboard().setText(str(target))
    return f"No file manager could be opened: the folder's path is on the clipboard ({target})"


def copy_paths(paths: list[str]) -> None:
    QGuiApplication.clipboard().setText("\n".join(paths))
