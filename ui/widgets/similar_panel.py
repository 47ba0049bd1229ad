"""The similarity panel: drop a sound on it, see the library's nearest sounds, walk on.

The panel never searches. A drop (or Enter on a result) emits the hub's `find_similar`; the
main window runs the search off the GUI thread and calls back `set_query`, then `show_results`
or `show_error`. Results can be auditioned from the keyboard, right-clicked for the shared
sample menu, and dragged out (to a DAW, the blend panel, or back onto the drop zone).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QRect, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QDrag,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHeaderView,
    QLabel,
    QProgressBar,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.actions import SampleActions
from ui.dnd import MIME_TYPE, SampleRef, can_accept, make_mime, samples_from_mime
from ui.widgets import paint_placeholder

DROP_HINT = "Drop a sound here — from your desktop, the table or the map — to find similar samples"
NAME, FOLDER, DISTANCE = range(3)
REF_ROLE = Qt.ItemDataRole.UserRole
BAR_ROLE = Qt.ItemDataRole.UserRole + 1  # distance relative to the farthest result, 0..1
PLACEHOLDER = (
    "The nearest sounds will be listed here.\n\n"
    "↑ ↓ play as you move · Space play / stop · Enter find sounds like this one · "
    "right-click for more · drag results out to your DAW or the blend slots"
)
NOTE_MS = 5000  # how long a "can't drop that" note stays
SAME_KIND_TIP = (
    "List only sounds the model puts in the same class as the one you dropped "
    "(only snares for a snare). Alt+K"
)


def _first_sound(samples: Sequence[SampleRef]) -> SampleRef | None:
    """The first dropped item that is not a folder (folders are scanned, not searched)."""
    return next((s for s in samples if not os.path.isdir(s.path)), None)


def _rejection(mime) -> str:
    """Why a drop that carries no local sound file cannot be used, in a few words."""
    if any(u.isLocalFile() for u in mime.urls()):
        return "That is a folder: drop a single sound file"
    if mime.hasUrls():
        return "Web links can't be searched: download the sound first"
    if mime.hasText():
        return "That is text, not a sound file"
    return "Only sound files can be dropped here"


def _folder_text(path: str) -> str:
    folder = str(Path(path).parent)
    home = str(Path.home())
    if folder == home or folder.startswith(home + os.sep):
        folder = "~" + folder[len(home) :]
    return folder


class DropZone(QFrame):
    """A dashed box that takes sound drops; it lights up while a usable drag hovers."""

    sample_dropped = Signal(object)  # SampleRef: the first sound the drop carried

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("similarDropZone")
        self.setAcceptDrops(True)
        self.setProperty("dragActive", False)
        self.setMinimumHeight(72)
        self.hint = QLabel(DROP_HINT, self)
        self.hint.setObjectName("similarDropHint")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.hint.font()
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.hint.setFont(font)
        self.note = QLabel("", self)
        self.note.setObjectName("similarDropNote")
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addWidget(self.hint)
        layout.addWidget(self.note)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.timeout.connect(self._clear_note)
        self.setStyleSheet(
            "#similarDropZone { border: 2px dashed palette(mid); border-radius: 8px; }"
            '#similarDropZone[dragActive="true"] {'
            " border: 2px solid palette(highlight);"
            " background: rgba(60, 140, 230, 40); }"
            "#similarDropHint { color: palette(text); }"
            "#similarDropNote { color: palette(highlight); font-weight: bold; }"
        )

    def is_highlighted(self) -> bool:
        return bool(self.property("dragActive"))

    def _set_highlight(self, on: bool) -> None:
        if self.is_highlighted() != on:
            self.setProperty("dragActive", on)
            self.style().unpolish(self)
            self.style().polish(self)
            self.update()

    def _show_note(self, text: str, timeout: bool = False) -> None:
        self.note.setText(text)
        self.note.show()
        if timeout:
            self._note_timer.start(NOTE_MS)
        else:
            self._note_timer.stop()

    def _clear_note(self) -> None:
        self._note_timer.stop()
        self.note.clear()
        self.note.hide()

    def _usable(self, mime) -> SampleRef | None:
        return _first_sound(samples_from_mime(mime)) if can_accept(mime) else None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        ref = self._usable(event.mimeData())
        if ref is None:
            self._show_note(_rejection(event.mimeData()))
            event.ignore()
            return
        self._set_highlight(True)
        self._show_note(f"Release to find sounds like {ref.name}")
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.is_highlighted():
            event.setDropAction(Qt.DropAction.CopyAction)  # never let a source move the file
            event.accept()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._set_highlight(False)
        self._clear_note()
        event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_highlight(False)
        mime = event.mimeData()
        ref = self._usable(mime)
        if ref is None:
            self._show_note(_rejection(mime), timeout=True)
            event.ignore()
            return
        self._clear_note()
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.sample_dropped.emit(ref)


class _DistanceDelegate(QStyledItemDelegate):
    """The distance with a small bar: its length is the distance relative to the farthest."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)
        fraction = index.data(BAR_ROLE)
        if fraction is None:
            return
        text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        text_w = option.fontMetrics.horizontalAdvance(text)
        r = option.rect
        room = r.width() - text_w - 20
        if room < 12:
            return
        height = max(4, min(8, r.height() // 3))
        track = QRect(r.left() + 6, r.center().y() - height // 2 + 1, room, height)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        # On a selected row the highlight colour is the background: draw in its text colour.
        palette = option.palette
        color = QColor((palette.highlightedText() if selected else palette.highlight()).color())
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        track_color = QColor(color if selected else palette.mid().color())
        track_color.setAlpha(60)
        painter.setBrush(track_color)
        painter.drawRoundedRect(track, 2, 2)
        color.setAlpha(170)
        painter.setBrush(color)
        painter.drawRoundedRect(
            QRect(track.left(), track.top(), max(2, round(room * fraction)), height), 2, 2
        )
        painter.restore()


class _FolderDelegate(QStyledItemDelegate):
    """Long folders lose their start, not their end (the end is what tells them apart)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideLeft


class _ResultsTree(QTreeWidget):
    """The results, with the app's keys: arrows move and audition, Space plays or stops,
    Enter searches on from the current result. Drags carry file URLs and our own format."""

    play_toggled = Signal(object)  # SampleRef under the cursor: Space
    search_requested = Signal(object)  # SampleRef: Enter
    double_clicked = Signal(object)  # SampleRef

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("similarResults")
        self.setColumnCount(3)
        self.setHeaderLabels(["Name", "Folder", "Distance"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setAllColumnsShowFocus(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setItemDelegateForColumn(FOLDER, _FolderDelegate(self))
        self.setItemDelegateForColumn(DISTANCE, _DistanceDelegate(self))
        header = self.header()
        # The panel is narrow: the name takes what is left after a short folder (its end is
        # shown) and the distance, so all three fit with no horizontal scrolling.
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(40)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(FOLDER, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(DISTANCE, QHeaderView.ResizeMode.Fixed)
        self.setColumnWidth(FOLDER, 80)
        self.setColumnWidth(DISTANCE, 100)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.placeholder = PLACEHOLDER

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.topLevelItemCount() == 0 and self.placeholder:
            paint_placeholder(self, self.placeholder)

    @staticmethod
    def ref_of(item: QTreeWidgetItem | None) -> SampleRef | None:
        return None if item is None else item.data(NAME, REF_ROLE)

    def selected_refs(self) -> list[SampleRef]:
        """Selected results in list order (nearest first)."""
        items = sorted(self.selectedItems(), key=self.indexOfTopLevelItem)
        return [self.ref_of(i) for i in items]

    def mimeTypes(self) -> list[str]:
        return [MIME_TYPE, "text/uri-list"]

    def mimeData(self, items: Sequence[QTreeWidgetItem]):
        items = sorted(items, key=self.indexOfTopLevelItem)
        return make_mime([self.ref_of(i) for i in items])

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def startDrag(self, supported_actions: Qt.DropAction) -> None:
        # Our own drag, offering Copy only: a file manager or DAW must never move the user's
        # sample, and the list must not drop rows after a "move".
        refs = self.selected_refs()
        if not refs:
            return
        drag = QDrag(self)
        drag.setMimeData(make_mime(refs))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        ref = self.ref_of(self.currentItem())
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if ref is not None:
                self.search_requested.emit(ref)
            event.accept()
            return
        if key == Qt.Key.Key_Space and not event.modifiers():
            if ref is not None:
                self.play_toggled.emit(ref)
            event.accept()
            return
        super().keyPressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        if item is not None:
            self.double_clicked.emit(self.ref_of(item))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)


class SimilarPanel(QWidget):
    """Drop zone + status line + the nearest sounds to the current query.

    Args:
        actions: the window's hub; the panel emits its `find_similar`, `audition`, `stop`
            and `selected` signals and opens its menu.
    """

    def __init__(self, actions: SampleActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("similarPanel")
        self.actions = actions
        self._query: SampleRef | None = None  # the search in flight, if any
        self._shown_query: SampleRef | None = None  # the query the list shows results for
        self._results: list[tuple[SampleRef, float]] = []
        self._playing: SampleRef | None = None  # the last sound the hub was told to play
        self._filling = False  # the list is being refilled: no audition, no selection news
        self._quiet_move = False  # a right-click moves the current item without auditioning

        self.drop_zone = DropZone(self)
        self.status = QLabel("", self)
        self.status.setObjectName("similarStatus")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy = QProgressBar(self)
        self.busy.setObjectName("similarBusy")
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(4)
        self.busy.hide()
        self.results_view = _ResultsTree(self)
        self.same_kind_box = QCheckBox("Same &kind only", self)
        self.same_kind_box.setObjectName("similarSameKind")
        self.same_kind_box.setToolTip(SAME_KIND_TIP)
        self.same_kind_box.toggled.connect(self._same_kind_toggled)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.same_kind_box)
        layout.addWidget(self.status)
        layout.addWidget(self.busy)
        layout.addWidget(self.results_view, 1)

        self.drop_zone.sample_dropped.connect(self.actions.find_similar.emit)
        tree = self.results_view
        tree.currentItemChanged.connect(self._current_changed)
        tree.itemSelectionChanged.connect(self._selection_changed)
        tree.play_toggled.connect(self._toggle_play)
        tree.search_requested.connect(self.actions.find_similar.emit)
        tree.double_clicked.connect(self._audition)
        tree.customContextMenuRequested.connect(self._context_menu)
        self.actions.audition.connect(self._heard)
        self.actions.stop.connect(self._stopped)
        self.clear()

    # -- called by the main window ----------------------------------------------------------------

    def set_query(self, ref: SampleRef) -> None:
        """A search for sounds like `ref` has started: show it as busy."""
        self._query = ref
        self._set_status(f"Searching for sounds like {ref.name}...", error=False)
        self.status.setToolTip(ref.path)
        self.busy.show()

    def show_results(
        self,
        ref: SampleRef,
        results: Sequence[tuple[SampleRef, float]],
        kind: str | None = None,
        note: str = "",
    ) -> None:
        """The sounds nearest to `ref`, as (sample, distance); `kind`: the class they were
        kept to ("Same kind only"); `note`: why they were not (the model is unsure of the
        query's class). A late answer to a search that has since been replaced by another is
        ignored."""
        if self._query is not None and ref != self._query:
            return
        self._query = None
        self._shown_query = ref
        self.busy.hide()
        rows = sorted(
            ((r, float(d)) for r, d in results), key=lambda rd: (math.isnan(rd[1]), rd[1])
        )
        self._results = rows
        self._fill(rows)
        n = len(rows)
        sounds = f"{kind} sound{'s' if n != 1 else ''}" if kind else f"sound{'s' if n != 1 else ''}"
        if rows:
            self._set_status(f"{n} {sounds} like {ref.name}" + (f" ({note})" if note else ""),
                             error=False)  # fmt: skip
        elif kind:
            self._set_status(f"No other {kind} sounds in the library.", error=False)
        else:
            self._set_status(
                f"Nothing like {ref.name} in the library yet: scan a sample folder first.",
                error=False,
            )
        self.status.setToolTip(ref.path)

    def show_error(self, message: str) -> None:
        """The search failed: say why (e.g. "kick.wav could not be read: ...")."""
        self._query = None
        self._shown_query = None
        self.busy.hide()
        self._results = []
        self._fill([])
        self._set_status(message, error=True)
        self.status.setToolTip("")

    def clear(self) -> None:
        self._query = None
        self._shown_query = None
        self._results = []
        self.busy.hide()
        self._fill([])
        self._set_status("", error=False)
        self.status.setToolTip("")

    def set_same_kind(self, on: bool, available: bool = True) -> None:
        """Set "Same kind only" (without searching again); unavailable when the model has no
        classifier, which is then said in the tooltip."""
        with QSignalBlocker(self.same_kind_box):
            self.same_kind_box.setChecked(on)
        self.same_kind_box.setEnabled(available)
        self.same_kind_box.setToolTip(
            SAME_KIND_TIP if available else "This model has no classifier, so it cannot tell kinds"
        )

    def same_kind(self) -> bool:
        """Whether searches keep to the query's class (off when the model cannot classify)."""
        return self.same_kind_box.isChecked() and self.same_kind_box.isEnabled()

    # -- for the window and tests ------------------------------------------------------------------

    def results(self) -> list[tuple[SampleRef, float]]:
        """The listed results, nearest first."""
        return list(self._results)

    def query(self) -> SampleRef | None:
        """The sample the listed results are like (None when nothing is listed)."""
        return self._shown_query

    def current_ref(self) -> SampleRef | None:
        return self.results_view.ref_of(self.results_view.currentItem())

    def selected_refs(self) -> list[SampleRef]:
        return self.results_view.selected_refs()

    # -- internals ---------------------------------------------------------------------------------

    def _same_kind_toggled(self) -> None:
        """Search again for what is listed (or being searched for) with the new setting."""
        query = self._query or self._shown_query
        if query is not None:
            self.actions.find_similar.emit(query)

    def _set_status(self, text: str, error: bool) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))
        self.status.setStyleSheet("color: #d9534f; font-weight: bold;" if error else "")
        self.status.setProperty("error", error)

    def _fill(self, rows: list[tuple[SampleRef, float]]) -> None:
        tree = self.results_view
        self._filling = True  # filling the list moves the current item: that is not a choice
        try:
            tree.clear()
            finite = [d for _, d in rows if math.isfinite(d)]
            farthest = max(finite, default=0.0)
            items = []
            for ref, dist in rows:
                ok = math.isfinite(dist)
                item = QTreeWidgetItem(
                    [ref.name, _folder_text(ref.path), f"{dist:.3f}" if ok else "—"]
                )
                item.setData(NAME, REF_ROLE, ref)
                if ok:
                    item.setData(DISTANCE, BAR_ROLE, dist / farthest if farthest > 0 else 0.0)
                item.setTextAlignment(
                    DISTANCE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
                item.setToolTip(NAME, ref.path)
                item.setToolTip(FOLDER, str(Path(ref.path).parent))
                items.append(item)
            tree.addTopLevelItems(items)
            if items:
                tree.setCurrentItem(items[0])
                tree.scrollToTop()
        finally:
            self._filling = False

    def _audition(self, ref: SampleRef | None) -> None:
        if ref is not None:
            self.actions.audition.emit(ref)

    def _current_changed(self, current, previous) -> None:
        # A user move (arrow keys, click) auditions the new result; filling the list does not.
        quiet = self._filling or self._quiet_move
        if not quiet and current is not None and current is not previous:
            self._audition(self.results_view.ref_of(current))

    def _selection_changed(self) -> None:
        if not self._filling:
            self.actions.selected.emit(self.selected_refs())

    def _toggle_play(self, ref: SampleRef) -> None:
        if self._playing == ref:
            self.actions.stop.emit()
        else:
            self.actions.audition.emit(ref)

    def _heard(self, ref: object) -> None:
        self._playing = ref if isinstance(ref, SampleRef) else None

    def _stopped(self) -> None:
        self._playing = None

    def set_playing(self, playing: bool) -> None:
        """The player started or stopped (connect to Player.state_changed), so Space knows
        whether to play or stop even when a sound ended by itself."""
        if not playing:
            self._playing = None

    def _context_menu(self, pos: QPoint) -> None:
        tree = self.results_view
        item = tree.itemAt(pos)
        if item is None:
            return
        if not item.isSelected():
            self._quiet_move = True
            try:
                tree.setCurrentItem(item)
            finally:
                self._quiet_move = False
        clicked = tree.ref_of(item)
        others = [r for r in self.selected_refs() if r != clicked]
        self.actions.show_menu([clicked, *others], tree.viewport().mapToGlobal(pos), self)
