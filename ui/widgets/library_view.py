"""The library browser: a folder tree and a sortable, filterable table of every entry.

The table's model keeps the entries as numpy columns and does its own filtering and sorting
(vectorised), so 100k rows filter and sort at once; Qt only ever asks for the visible cells.

Keys in the table: Up/Down move and audition, Space plays or stops, Enter finds similar.
Right-click: the shared sample menu (Class > sets the user's own class). Rows drag out as files
(DAW, desktop) or onto our panels.

The Class column shows the user's class where they set one (in bold; Conf. then says "you"),
else the model's: greyed as "? snare / tom" (the runner-up after the slash) when the model is
unsure of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QKeyEvent, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QSplitter,
    QTableView,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sampletool.paths import display_path
from ui.actions import SampleActions
from ui.dnd import MIME_TYPE, SampleRef, make_mime
from ui.widgets import paint_placeholder

COLUMNS = ("Name", "Class", "Conf.", "Length", "Folder")
COLUMN_WIDTHS = (160, 104, 46, 58, 110)  # "? snare / tom" fits the class
FOLDER = 4
NAME_MIN = 140  # under this much room for names, the Folder column (the tree says it) goes
ALL_CLASSES = "All classes"


@dataclass
class TableColumns:
    """The table's text columns for a snapshot. Building them is a Python loop over every
    entry (half a second at 100k), so the window builds them on a worker with `table_columns`."""

    names: np.ndarray  # object [n], as displayed
    names_lower: np.ndarray  # str [n], for the filter
    folders: np.ndarray  # object [n], relative to the library root ("" at the top)
    folders_lower: np.ndarray  # str [n]
    words: np.ndarray  # str [n]: the name's words, " bd haus " (whole-word matches rank first)
    name_classes: np.ndarray  # str [n]: the drum class the name says ("kick" for bd_haus), or ""


def table_columns(paths: Sequence[str], onsets: np.ndarray, root) -> TableColumns:
    """Plain Python and numpy (no Qt): safe to run off the GUI thread."""
    from sampletool.data.labels import drum_class, normalise_name

    root = Path(root)
    names, folders, words, said = [], [], [], []
    for p, onset in zip(paths, np.asarray(onsets, np.float64).tolist(), strict=True):
        path = Path(p)
        name = display_path(path.name)  # a name that is not UTF-8 shows its bad bytes as U+FFFD
        names.append(f"{name} @ {onset:.2f} s" if onset else name)
        try:
            folder = path.parent.relative_to(root).as_posix()
        except ValueError:
            folder = str(path.parent)
        folders.append("" if folder == "." else display_path(folder))
        words.append(f" {normalise_name(path.name)} ")
        said.append(drum_class(path.name) or "")
    return TableColumns(
        names=np.array(names, dtype=object),
        names_lower=np.array([n.lower() for n in names], dtype=str).reshape(-1),
        folders=np.array(folders, dtype=object),
        folders_lower=np.array([f.lower() for f in folders], dtype=str).reshape(-1),
        words=np.array(words, dtype=str).reshape(-1),
        name_classes=np.array(said, dtype=str).reshape(-1),
    )


def word_class(word: str, class_names: Sequence[str]) -> str | None:
    """The class a filter word names: one of the model's classes ("tonal"), or one the drum
    vocabulary knows ("bd", "kicks", "hh"); None when it names none."""
    from sampletool.data.labels import folder_class, normalise_name

    if word in class_names:
        return word
    if " " in normalise_name(word):  # "bd_haus" is a name, not a class
        return None
    return folder_class(word)


class LibraryTableModel(QAbstractTableModel):
    """Rows of a library snapshot; `rows` maps view rows to entries (filtered and sorted)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.ids = np.empty(0, np.int64)
        self.paths: list[str] = []
        self.onsets = np.empty(0)
        self.names = np.empty(0, object)
        self.names_lower = np.empty(0, str)
        self.folders = np.empty(0, object)
        self.folders_lower = np.empty(0, str)
        self.words = np.empty(0, str)
        self.name_classes = np.empty(0, str)
        self.match_rank = np.empty(0, np.int64)  # per entry, for the text filter: 0 is best
        self.durations = np.empty(0)
        self.classes = np.empty(0, np.int64)  # shown: the user's, else the model's likeliest
        self.confidence = np.empty(0)
        self.unsure = np.empty(0, bool)  # the model is unsure and the user set nothing
        self.user_set = np.empty(0, bool)
        self.runner_up = np.empty(0, np.int64)
        self.labels: list[str | None] = []
        self.class_names: list[str] = []
        self._snapshot = None
        self.rows = np.empty(0, np.int64)
        self._sort: tuple[int, Qt.SortOrder] = (0, Qt.SortOrder.AscendingOrder)
        self._filter: tuple[str, int, str] = ("", -1, "")

    def set_entries(
        self, snapshot, root: str | os.PathLike[str], columns: TableColumns | None = None
    ) -> None:
        if columns is None:
            columns = table_columns(snapshot.paths, snapshot.onsets, root)
        self.beginResetModel()
        self.ids = snapshot.ids
        self.paths = list(snapshot.paths)
        self.onsets = np.asarray(snapshot.onsets, np.float64)
        self.names = columns.names
        self.names_lower = columns.names_lower
        self.folders = columns.folders
        self.folders_lower = columns.folders_lower
        self.words = columns.words
        self.name_classes = columns.name_classes
        self.durations = np.asarray(snapshot.durations, np.float64)
        self._read_classes(snapshot)
        self._apply()
        self.endResetModel()

    def _read_classes(self, snapshot) -> None:
        n = len(snapshot.ids)
        self._snapshot = snapshot
        self.class_names = list(snapshot.class_names)
        self.classes = np.asarray(snapshot.classes, np.int64)
        self.user_set = np.asarray(snapshot.user_set, bool)
        self.labels = list(snapshot.labels) if len(snapshot.labels) == n else [None] * n
        if snapshot.probs is not None and n:
            self.confidence = snapshot.probs.max(1).astype(np.float64)
            ranked = np.argsort(-snapshot.probs, axis=1, kind="stable")
            self.runner_up = ranked[:, 1] if snapshot.probs.shape[1] > 1 else ranked[:, 0]
            self.unsure = (np.asarray(snapshot.kinds) < 0) & ~self.user_set
        else:
            self.confidence = np.full(n, np.nan)
            self.runner_up = np.full(n, -1, np.int64)
            self.unsure = np.zeros(n, bool)

    def update_classes(self, snapshot) -> None:
        """The classes changed (the user set some): show them, keeping rows where they are
        unless the table is filtered or sorted by class."""
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        entries = [int(self.rows[ix.row()]) if ix.isValid() else -1 for ix in old]
        self._read_classes(snapshot)
        self._apply()
        where = {int(e): r for r, e in enumerate(self.rows.tolist())}
        new = [self.index(where[e], ix.column()) if e in where else QModelIndex()
               for e, ix in zip(entries, old, strict=True)]  # fmt: skip
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    # -- filtering and sorting (numpy) ----------------------------------------------------------

    def set_filter(self, text: str = "", class_index: int = -1, folder: str = "") -> None:
        self._filter = (text.strip().lower(), class_index, folder)
        self.beginResetModel()
        self._apply()
        self.endResetModel()

    def _apply(self) -> None:
        n = len(self.ids)
        mask = np.ones(n, bool)
        text, cls, folder = self._filter
        self.match_rank = np.zeros(n, np.int64)
        for word in text.split():
            hits, rank = self._match(word)
            mask &= hits
            self.match_rank += rank
        if cls >= 0:
            mask &= self.classes == cls
        if folder:
            f = self.folders.astype(str)
            mask &= (f == folder) | np.char.startswith(f, folder + "/")
        idx = np.flatnonzero(mask)
        column, order = self._sort
        key = self._sort_key(column)[idx]
        o = np.argsort(key, kind="stable")
        if order == Qt.SortOrder.DescendingOrder:
            o = o[::-1]
        if text and column == 0:  # by name: the best matches first, each group by name
            o = o[np.argsort(self.match_rank[idx][o], kind="stable")]
        self.rows = idx[o]

    def _match(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        """Which entries a filter word finds, Bool [n], and how well, Int [n]: 0 the name says
        it (a whole word, or the drum its vocabulary names: "kick" finds bd_haus), 1 the class
        is it (the user's, or the model's when it is sure), 2 the name or folder merely
        contains it ("kickass_pad"). A word with a digit is part of a file's name ("kick02",
        "rave_bass02"), not a word of the vocabulary: it finds only the names and folders that
        contain it, not every kick or every rave bass."""
        contains = np.char.find(self.names_lower, word) >= 0
        contains |= np.char.find(self.folders_lower, word) >= 0
        if any(ch.isdigit() for ch in word):
            return contains, np.where(contains, 0, 2)
        from sampletool.data.labels import normalise_name

        spoken = normalise_name(word)
        says = (
            np.char.find(self.words, f" {spoken} ") >= 0
            if spoken
            else np.zeros(len(self.ids), bool)
        )
        named = word_class(word, self.class_names)
        is_class = np.zeros(len(self.ids), bool)
        if named is not None:
            says |= self.name_classes == named
            if named in self.class_names:
                k = self.class_names.index(named)
                is_class = (self.classes == k) & ~self.unsure
        rank = np.where(says, 0, np.where(is_class, 1, 2))
        return contains | says | is_class, rank

    def shown_ids(self) -> np.ndarray | None:
        """The entry ids the filters let through, or None when nothing is filtered."""
        if len(self.rows) == len(self.ids):
            return None
        return self.ids[self.rows]

    def _sort_key(self, column: int) -> np.ndarray:
        if column == 0:
            return self.names_lower
        if column == 1:
            names = np.array([*self.class_names, "~"], dtype=str)
            return np.char.add(names[self.classes], np.where(self.unsure, "~", ""))  # -1 last
        if column == 2:
            return np.nan_to_num(self.confidence, nan=-1.0)
        if column == 3:
            return np.nan_to_num(self.durations, nan=-1.0)
        return np.char.add(self.folders.astype(str), np.array(["/"], str)).astype(str)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        entries = [int(self.rows[ix.row()]) if ix.isValid() else -1 for ix in old]
        self._sort = (column, order)
        self._apply()
        # The selection and current row follow their entries, not their old row numbers.
        where = {int(e): r for r, e in enumerate(self.rows.tolist())}
        new = [self.index(where[e], ix.column()) if e in where else QModelIndex()
               for e, ix in zip(entries, old, strict=True)]  # fmt: skip
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    # -- Qt model API ----------------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i = int(self.rows[index.row()])
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return self.names[i]
            if col == 1:
                return self.class_text(i)
            if col == 2:
                if self.user_set[i]:
                    return "you"
                v = self.confidence[i]
                return "" if np.isnan(v) else f"{100 * v:.0f}%"
            if col == 3:
                v = self.durations[i]
                return "" if np.isnan(v) else f"{v:.2f} s"
            return self.folders[i]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.class_tip(i) if col in (1, 2) else self.paths[i]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and col in (1, 2) and self.unsure[i]:
            return QColor(150, 150, 150)
        if role == Qt.ItemDataRole.FontRole and col in (1, 2) and self.user_set[i]:
            font = QFont()
            font.setBold(True)
            return font
        return None

    def class_text(self, i: int) -> str:
        """Entry i's Class cell: "kick", or "? snare / tom" when the model is unsure."""
        label = self.labels[i] if i < len(self.labels) else None
        if label is not None:
            return label
        c = int(self.classes[i])
        if c < 0:
            return "?" if self.unsure[i] else ""  # "?": silent, nothing heard
        if self.unsure[i]:
            second = int(self.runner_up[i])
            other = f" / {self.class_names[second]}" if 0 <= second != c else ""
            return f"? {self.class_names[c]}{other}"
        return self.class_names[c]

    def class_tip(self, i: int) -> str:
        """What the class cell means, said in full."""
        if self._snapshot is None or not self.class_names:
            return ""
        r = self._snapshot.reading(i)
        return r.explain() + (". Right-click > Class to say what it is." if r.unsure else "")

    def flags(self, index: QModelIndex):
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", MIME_TYPE]

    def mimeData(self, indexes):
        rows = sorted({ix.row() for ix in indexes})
        return make_mime([self.ref(r) for r in rows])

    def supportedDragActions(self):
        return Qt.DropAction.CopyAction

    # -- lookups ---------------------------------------------------------------------------------

    def ref(self, row: int) -> SampleRef:
        i = int(self.rows[row])
        return SampleRef(self.paths[i], float(self.onsets[i]))

    def entry_id(self, row: int) -> int:
        return int(self.ids[self.rows[row]])

    def rows_of_ids(self, ids: Sequence[int]) -> np.ndarray:
        """View rows showing these entry ids (those filtered out are left out)."""
        entries = np.flatnonzero(np.isin(self.ids, np.asarray(list(ids), np.int64)))
        return np.flatnonzero(np.isin(self.rows, entries))


class _FilterEdit(QLineEdit):
    """The filter box: Down, Enter or Return go on to the table (its first row, when none is
    current); Esc clears the text (with none, Esc is the window's: stop playback)."""

    def __init__(self, owner: LibraryView) -> None:
        super().__init__(owner)
        self.owner = owner

    def event(self, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and self.text()
                and isinstance(event, QKeyEvent) and event.key() == Qt.Key.Key_Escape):  # fmt: skip
            event.accept()  # the key press comes here, not to the window's Esc
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        if key in (Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.owner.focus_table()
            return
        super().keyPressEvent(event)


class _Table(QTableView):
    """The table with the app's keys: Space plays or stops, Enter finds similar."""

    def __init__(self, owner: LibraryView) -> None:
        super().__init__(owner)
        self.owner = owner
        self.setTabKeyNavigation(False)  # Tab goes on to the next panel; arrows move in here

    def placeholder(self) -> str:
        """What the empty table says: the view's note (opening, indexing, an empty folder)
        while it shows no library, or that the filters hide every sample."""
        model = self.owner.model
        if not len(model.ids):
            return self.owner.note
        return "No samples match the filters" if not model.rowCount() else ""

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.owner.fit_columns()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        text = self.placeholder()
        if text:
            paint_placeholder(self, text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space:
            self.owner.play_toggled.emit()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            refs = self.owner.selected_refs()
            if refs:
                self.owner.actions.find_similar.emit(refs[0])
            return
        super().keyPressEvent(event)


class LibraryView(QWidget):
    """Folder tree + filter box + class filter + table."""

    selection_ids_changed = Signal(list)  # entry ids selected in the table (for the map)
    play_toggled = Signal()  # Space: the window plays the current row or stops
    # The entry ids the filters show (Int64 [k]), or None when nothing is filtered: the map
    # and the status bar follow the table.
    filtered = Signal(object)

    def __init__(self, actions: SampleActions, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryView")
        self.actions = actions
        self._syncing = False
        self.root = ""
        self.note = ""  # what the empty table says (see `clear`)

        self.tree = QTreeWidget(self)
        self.tree.setObjectName("folderTree")
        self.tree.setHeaderHidden(True)
        # Long folder names scroll instead of being cut ("basslo..."); the tip says them whole.
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.tree.itemSelectionChanged.connect(self._refilter)

        self.filter_edit = _FilterEdit(self)
        self.filter_edit.setObjectName("libraryFilter")
        self.filter_edit.setPlaceholderText("Filter by name or folder (Ctrl+F)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._refilter)
        self.class_combo = QComboBox(self)
        self.class_combo.setObjectName("classFilter")
        self.class_combo.addItem(ALL_CLASSES)
        self.class_combo.currentIndexChanged.connect(self._refilter)

        self.model = LibraryTableModel(self)
        self.table = _Table(self)
        self.table.setObjectName("libraryTable")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setDragEnabled(True)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        self.header_modes()
        header.setMinimumSectionSize(36)
        for col, width in enumerate(COLUMN_WIDTHS):
            if col:
                header.resizeSection(col, width)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.doubleClicked.connect(
            lambda ix: self.actions.audition.emit(self.model.ref(ix.row()))
        )

        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(self.filter_edit, 1)
        filters.addWidget(self.class_combo)
        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addLayout(filters)
        rl.addWidget(self.table, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("librarySplitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([125, 475])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    # -- data ------------------------------------------------------------------------------------

    def set_snapshot(
        self, snapshot, root: str | os.PathLike[str], columns: TableColumns | None = None
    ) -> None:
        """Show a library snapshot (keeps the filter, sort and, where possible, selection);
        `columns` from `table_columns`, if built off the GUI thread."""
        selected = [self.model.entry_id(r) for r in self._selected_rows()]
        self.root = str(root)
        self.model.set_entries(snapshot, root, columns)
        current = self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem(ALL_CLASSES)
        self.class_combo.addItems(snapshot.class_names)
        i = self.class_combo.findText(current)
        self.class_combo.setCurrentIndex(max(i, 0))
        self.class_combo.blockSignals(False)
        self._build_tree()
        self._refilter()
        if selected:
            self.select_ids(selected)

    def header_modes(self) -> None:
        """The name takes the width the other columns leave (set again after a header state
        saved by an older version is restored, which would bring back its own modes)."""
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def fit_columns(self) -> None:
        """Every column fits without scrolling sideways: Name takes what is left, and the
        Folder column steps aside when the names would get too little."""
        others = sum(self.table.columnWidth(c) for c in range(1, FOLDER))
        folder = self.table.columnWidth(FOLDER) or COLUMN_WIDTHS[FOLDER]
        self.table.setColumnHidden(FOLDER, self.table.width() - others - folder < NAME_MIN)

    def clear(self, note: str = "") -> None:
        """Show no library (the previous one is gone), with `note` in the empty table."""
        from sampletool.library import Snapshot

        empty = Snapshot(ids=np.zeros(0, np.int64), paths=[], onsets=np.zeros(0),
                         durations=np.zeros(0), vectors=np.zeros((0, 1), np.float32), probs=None,
                         class_names=[], failures=[])  # fmt: skip
        self.set_snapshot(empty, self.root or ".")
        self.set_note(note)

    def set_note(self, note: str) -> None:
        self.note = note
        self.table.viewport().update()

    def update_classes(self, snapshot) -> None:
        """The user changed some classes in `snapshot` (the one shown): show them."""
        self.model.update_classes(snapshot)
        self.filtered.emit(self.model.shown_ids())

    def _build_tree(self) -> None:
        previous = self.current_folder()
        self.tree.blockSignals(True)
        self.tree.clear()
        top = QTreeWidgetItem([Path(self.root).name or self.root])
        top.setData(0, Qt.ItemDataRole.UserRole, "")
        self.tree.addTopLevelItem(top)
        nodes: dict[str, QTreeWidgetItem] = {"": top}
        for folder in sorted(set(self.model.folders.tolist())):
            if not folder:
                continue
            parts = folder.split("/")
            for depth in range(1, len(parts) + 1):
                key = "/".join(parts[:depth])
                if key not in nodes:
                    item = QTreeWidgetItem([parts[depth - 1]])
                    item.setData(0, Qt.ItemDataRole.UserRole, key)
                    nodes["/".join(parts[: depth - 1])].addChild(item)
                    nodes[key] = item
        top.setExpanded(True)
        self.tree.setCurrentItem(nodes.get(previous, top))
        self.tree.blockSignals(False)

    def current_folder(self) -> str:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else ""

    def _refilter(self) -> None:
        cls = self.class_combo.currentIndex() - 1
        self.model.set_filter(self.filter_edit.text(), cls, self.current_folder())
        self.filtered.emit(self.model.shown_ids())

    # -- selection -------------------------------------------------------------------------------

    def _selected_rows(self) -> list[int]:
        return sorted({ix.row() for ix in self.table.selectionModel().selectedRows()})

    def selected_refs(self) -> list[SampleRef]:
        rows = self._selected_rows()
        if not rows and self.table.currentIndex().isValid():
            rows = [self.table.currentIndex().row()]
        return [self.model.ref(r) for r in rows]

    def current_ref(self) -> SampleRef | None:
        ix = self.table.currentIndex()
        return self.model.ref(ix.row()) if ix.isValid() else None

    def select_ids(self, ids: Sequence[int]) -> None:
        """Select the rows of these entries (from the map); emits nothing back."""
        rows = self.model.rows_of_ids(ids)
        self._syncing = True
        try:
            sm = self.table.selectionModel()
            selection = QItemSelection()
            last = self.model.columnCount() - 1
            for r in rows.tolist():
                selection.select(self.model.index(r, 0), self.model.index(r, last))
            sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if len(rows):
                sm.setCurrentIndex(self.model.index(int(rows[0]), 0),
                                   QItemSelectionModel.SelectionFlag.NoUpdate)  # fmt: skip
                self.table.scrollTo(self.model.index(int(rows[0]), 0))
        finally:
            self._syncing = False

    def _selection_changed(self, *_: object) -> None:
        if not self._syncing:
            ids = [self.model.entry_id(r) for r in self._selected_rows()]
            self.selection_ids_changed.emit(ids)
            self.actions.selected.emit([self.model.ref(r) for r in self._selected_rows()])

    def _current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        # Moving with the keyboard (or a click) auditions the new row; map syncing does not.
        if not self._syncing and current.isValid() and current.row() != previous.row():
            self.actions.audition.emit(self.model.ref(current.row()))

    def _context_menu(self, pos: QPoint) -> None:
        ix = self.table.indexAt(pos)
        if not ix.isValid():
            return
        if ix.row() not in self._selected_rows():
            self.table.selectRow(ix.row())
        self.actions.show_menu(self.selected_refs(), self.table.viewport().mapToGlobal(pos), self)

    def focus_filter(self) -> None:
        self.filter_edit.setFocus()
        self.filter_edit.selectAll()

    def focus_table(self) -> None:
        """Keyboard focus to the table, on its first row when none is current (which plays
        it, as moving there with the arrows does)."""
        self.table.setFocus()
        if not self.table.currentIndex().isValid() and self.model.rowCount():
            self.table.selectRow(0)
