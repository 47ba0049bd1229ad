"""The model manager (Tools > Models...): every installed model and every training run.

Lists the built-in model, the user's models, those on SAMPLETOOL_MODEL_PATH and the runs in
the user's models folder (a run is a bundle once it has validated), with kind, date, dataset,
classes, validation figures, size and confusion matrix. Use, Resume (a run cut short), Rename,
Delete (asked first; never the built-in model), Import (a folder or an archive, checked by
loading it), Export (a zip). Every file operation runs off the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sampletool.models.neighbours import NeighbourSpec
from ui import messages
from ui.actions import show_in_folder
from ui.messages import message_of
from ui.settings import app_settings
from ui.training import jobs
from ui.widgets.confusion import ConfusionMatrixView
from ui.workers import Pool, TaskGroup

if TYPE_CHECKING:
    from sampletool.models.store import ModelEntry
    from sampletool.training.runs import RunState

COLUMNS = ("Name", "Status", "Kind", "Classes", "Validation", "Size", "Trained", "Dataset")
STATUS, CLASSES, VALIDATION, SIZE = 1, 3, 4, 5
ERROR = "color: #d03030;"


@dataclass
class Row:
    """One line of the list: an installed bundle, a run, or both (a run that has validated)."""

    path: Path
    entry: ModelEntry | None
    run: RunState | None

    @property
    def name(self) -> str:
        return self.entry.info.name if self.entry is not None else self.path.name

    @property
    def builtin(self) -> bool:
        return bool(self.entry is not None and self.entry.builtin)

    @property
    def live(self) -> bool:
        training = self.entry is not None and self.entry.training
        return bool(training or (self.run is not None and self.run.live))

    @property
    def resumable(self) -> bool:
        return self.run is not None and self.run.incomplete and not self.live


def _rows(installed) -> list[Row]:
    rows: dict[str, Row] = {}
    for entry in installed.models:
        rows[str(entry.info.path.resolve())] = Row(entry.info.path, entry, None)
    for run in installed.runs:
        key = str(run.logdir.resolve())
        if key in rows:
            rows[key].run = run
        else:
            rows[key] = Row(run.logdir, None, run)
    return list(rows.values())


def _in_use(row: Row, active: str | None) -> bool:
    if not active:
        return False
    return row.path.resolve() == Path(active).resolve()


def _status(row: Row, active: str | None) -> str:
    parts = []
    if row.builtin:
        parts.append("Built-in")
    if _in_use(row, active):
        parts.append("In use")
    run = row.run
    if row.live:
        step = run.step if run is not None else 0
        parts.append(f"Training now (step {step:,})")
    elif row.resumable:
        what = {"interrupted": "Cut short", "stopped": "Stopped", "failed": "Failed"}
        parts.append(f"{what.get(run.status, 'Incomplete')} at step {run.step:,} of "
                     f"{run.max_steps:,}")  # fmt: skip
    return " · ".join(parts)


class ModelManager(QDialog):
    """Tools > Models... (see the module docstring).

    Args:
        active: returns the folder of the model in use (or None).
        pool: where background tasks run (tests pass a synchronous pool).

    Signals:
        activate(str): use this bundle.
        resume(str): resume the run in this folder.
        changed(): models were added, renamed or deleted.
        renamed(str, str): a bundle's old folder and its new one.
    """

    activate = Signal(str)
    resume = Signal(str)
    changed = Signal()
    renamed = Signal(str, str)

    def __init__(
        self,
        parent: QWidget | None = None,
        active: Callable[[], str | None] = lambda: None,
        pool: Pool | None = None,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("modelManager")
        self.setWindowTitle("Models")
        self.active = active
        self.settings = settings or app_settings()
        self.tasks = TaskGroup(self, pool, on_error=self._error)
        self.rows: list[Row] = []

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("modelTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column, width in ((0, 170), (STATUS, 190)):  # long names and states: elided
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.doubleClicked.connect(lambda _i: self._use())

        self.details = QLabel(self)
        self.details.setObjectName("modelDetails")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.confusion = ConfusionMatrixView(self)
        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        details = QScrollArea(side)  # a long description scrolls instead of being cut off
        details.setWidget(self.details)
        details.setWidgetResizable(True)
        details.setFrameShape(QFrame.Shape.NoFrame)
        side_layout.addWidget(details, 1)
        side_layout.addWidget(self.confusion, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.table)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 380])

        def button(text: str, name: str, slot) -> QPushButton:
            b = QPushButton(text, self)
            b.setObjectName(name)
            b.clicked.connect(slot)
            return b

        self.use_button = button("&Use", "modelUseButton", self._use)
        self.resume_button = button("&Resume training", "modelResumeButton", self._resume)
        self.rename_button = button("Re&name...", "modelRenameButton", self._rename)
        self.delete_button = button("&Delete...", "modelDeleteButton", self._delete)
        self.export_button = button("&Export...", "modelExportButton", self._export)
        self.folder_button = button("Show &folder", "modelFolderButton", self._show_folder)
        import_folder = button("Import &folder...", "modelImportFolderButton",
                               self._choose_import_folder)  # fmt: skip
        import_archive = button("Import &archive...", "modelImportArchiveButton",
                                self._choose_import_archive)  # fmt: skip
        close = button("Close", "modelCloseButton", self.close)
        self.message = QLabel(self)
        self.message.setObjectName("modelMessage")
        self.message.setWordWrap(True)

        row1 = QHBoxLayout()
        for b in (self.use_button, self.resume_button, self.rename_button, self.delete_button,
                  self.export_button, self.folder_button):  # fmt: skip
            row1.addWidget(b)
        row1.addStretch()
        row2 = QHBoxLayout()
        row2.addWidget(import_folder)
        row2.addWidget(import_archive)
        row2.addWidget(self.message, 1)
        row2.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(row1)
        layout.addLayout(row2)
        self.resize(1040, 640)  # room for a nine-class confusion matrix under the details
        self._selected()

    # -- listing --------------------------------------------------------------------------------

    def refresh(self, select: str | Path | None = None) -> None:
        """List again (in the background), then select `select` (a folder) or the same row."""
        keep = str(select) if select is not None else self._current_path()
        self.tasks.run("list", jobs.installed, on_result=lambda inst: self._listed(inst, keep))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def _listed(self, installed, keep: str | None) -> None:
        self.rows = sorted(_rows(installed), key=lambda r: (not r.builtin, r.name.casefold()))
        active = self.active()
        self.table.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            for j, text in enumerate(self._cells(row, active)):
                item = QTableWidgetItem(text)
                if j in (CLASSES, VALIDATION, SIZE):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(i, j, item)
            if row.entry is not None:
                info = row.entry.info
                self.table.item(i, 0).setToolTip(f"{info.description}\n{info.path}")
                self.table.item(i, CLASSES).setToolTip(", ".join(info.class_names))
            self.table.item(i, STATUS).setToolTip(self.table.item(i, STATUS).text())
        index = next((i for i, r in enumerate(self.rows) if str(r.path) == keep), 0)
        if self.rows:
            self.table.selectRow(index)
        self._selected()

    @staticmethod
    def _cells(row: Row, active: str | None) -> list[str]:
        e = row.entry
        if e is None:
            run = row.run
            kind = str(run.config.get("model", {}).get("kind", "?"))
            return [row.name, _status(row, active), kind, "", "", "", run.updated[:16], ""]
        info = e.info
        m = e.metrics
        if "val_accuracy" in m:
            val = f"{m['val_accuracy']:.0%}"
        elif "val_loss" in m:
            val = f"loss {m['val_loss']:.3g}"
        else:
            val = ""
        size = e.size / 1e6
        classes = str(len(info.class_names)) if info.class_names else "none"
        return [info.name, _status(row, active), info.kind, classes, val, f"{size:.1f} MB",
                e.created, e.dataset]  # fmt: skip

    def _current(self) -> Row | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def _current_path(self) -> str | None:
        row = self._current()
        return str(row.path) if row is not None else None

    def select(self, path: str | Path) -> None:
        for i, row in enumerate(self.rows):
            if row.path == Path(path):
                self.table.selectRow(i)
                return

    def _selected(self) -> None:
        row = self._current()
        has_model = row is not None and row.entry is not None
        changeable = row is not None and not row.builtin and not row.live
        in_use = row is not None and _in_use(row, self.active())
        self.use_button.setEnabled(has_model and not row.live and not in_use)
        self.resume_button.setEnabled(row is not None and row.resumable)
        self.rename_button.setEnabled(has_model and changeable)
        self.delete_button.setEnabled(changeable)
        self.export_button.setEnabled(has_model)
        self.folder_button.setEnabled(row is not None)
        self._show_details(row)

    def _show_details(self, row: Row | None) -> None:
        if row is None:
            self.details.setText("No models")
            self.confusion.clear("")
            return
        lines = [f"<b>{row.name}</b>"]
        if row.entry is not None:
            e = row.entry
            info = e.info
            if info.description:
                lines.append(info.description)
            if info.class_names:
                lines.append("Classes: " + ", ".join(info.class_names))
            try:  # a hand-placed bundle's entry is a stranger's text until it loads
                voters = NeighbourSpec.from_doc(info.doc)
            except ValueError:
                voters = None
            if voters is not None:
                share = voters.head_share
                lines.append(f"Reads a class from the votes of its {voters.k} nearest of "
                             f"{voters.count:,} training sounds"
                             + (f", {share:.0%} from its classifier" if share else ""))  # fmt: skip
            m = e.metrics
            figures = []
            if "val_accuracy" in m:
                figures.append(f"{m['val_accuracy']:.1%} right")
            if "val_balanced_accuracy" in m:
                figures.append(f"balanced over the classes {m['val_balanced_accuracy']:.1%}")
            if "val_loss" in m:
                figures.append(f"loss {m['val_loss']:.4g}")
            if "step" in m:
                figures.append(f"at step {int(m['step']):,}")
            if figures:
                lines.append("Validation: " + ", ".join(figures))
        if row.run is not None:
            run = row.run
            lines.append(f"Training run: {run.status} at step {run.step:,} of {run.max_steps:,}")
            if run.message:
                lines.append(f"<span style='{ERROR}'>{run.message}</span>")
        lines.append(f"<small>{row.path}</small>")
        self.details.setText("<br>".join(lines))
        doc = row.entry.confusion if row.entry is not None else None
        if doc:
            self.confusion.set_matrix(
                doc.get("classes", []),
                doc["matrix"],
                f"Validation confusion at step {doc.get('step', '?')}",
            )
        else:
            self.confusion.clear("No confusion matrix: this model has no classes"
                                 if row.entry is not None else "Not validated yet")  # fmt: skip

    # -- actions --------------------------------------------------------------------------------

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet(ERROR if error else "")
        self.message.setText(text)

    def _error(self, error: BaseException) -> None:
        self._say(message_of(error), error=True)

    def _use(self) -> None:
        row = self._current()
        if row is not None and row.entry is not None and not row.live:
            if _in_use(row, self.active()):
                return  # a double-click on the model in use: nothing to switch
            self.activate.emit(str(row.path))
            self._say(f"Using {row.name}: your library is indexed with it in the background.")

    def _resume(self) -> None:
        row = self._current()
        if row is not None and row.resumable:
            self.resume.emit(str(row.path))

    def _rename(self) -> None:
        row = self._current()
        if row is None or row.entry is None:
            return
        name = messages.ask_text(self, "Rename model", "New name:", row.name)
        if name and name.strip() != row.name:
            self.rename_to(row.path, name.strip())

    def rename_to(self, path: Path, name: str) -> None:
        from sampletool.models.store import rename_bundle

        def done(new: Path) -> None:
            self._say(f"Renamed to {new.name}.")
            self.renamed.emit(str(path), str(new))
            self.changed.emit()
            self.refresh(new)

        self.tasks.run("change", rename_bundle, path, name, on_result=done)

    def _delete(self) -> None:
        row = self._current()
        if row is None or row.builtin or row.live:
            return
        what = "model" if row.entry is not None else "training run"
        if not messages.confirm(self, "Delete model",
                                f"Delete the {what} {row.name!r}? Its folder is removed:\n"
                                f"{row.path}\n\nThis cannot be undone.", "Delete"):  # fmt: skip
            return
        from sampletool.models.store import delete_bundle

        def done(_none) -> None:
            self._say(f"Deleted {row.name}.")
            self.changed.emit()
            self.refresh()

        self.tasks.run("change", delete_bundle, row.path, on_result=done)

    def _export(self) -> None:
        row = self._current()
        if row is None or row.entry is None:
            return
        start = str(Path(str(self.settings.value("models/exportDir", str(Path.home()))))
                    / f"{row.name}.zip")  # fmt: skip
        target, _ = QFileDialog.getSaveFileName(self, "Export model", start, "Zip archive (*.zip)")
        if target:
            self.settings.setValue("models/exportDir", str(Path(target).parent))
            self.export_to(row.path, target)

    def export_to(self, path: Path, archive: str | Path) -> None:
        from sampletool.models.store import export_bundle

        self._say("Exporting...")
        self.tasks.run("export", export_bundle, path, archive,
                       on_result=lambda out: self._say(f"Exported to {out}"))  # fmt: skip

    def _choose_import_folder(self) -> None:
        start = str(self.settings.value("models/importDir", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Import a model folder", start)
        if folder:
            self.settings.setValue("models/importDir", str(Path(folder).parent))
            self.import_from(folder)

    def _choose_import_archive(self) -> None:
        start = str(self.settings.value("models/importDir", str(Path.home())))
        archive, _ = QFileDialog.getOpenFileName(self, "Import a model archive", start,
                                                 "Model archives (*.zip *.tar *.tar.gz *.tgz "
                                                 "*.tar.xz *.tar.bz2)")  # fmt: skip
        if archive:
            self.settings.setValue("models/importDir", str(Path(archive).parent))
            self.import_from(archive)

    def import_from(self, source: str | Path) -> None:
        """Import a bundle folder or archive (checked by loading it; refused with the reason)."""
        from sampletool.models.store import import_bundle

        def done(info) -> None:
            self._say(f"Imported {info.name}.")
            self.changed.emit()
            self.refresh(info.path)

        self._say(f"Checking {Path(source).name}...")
        self.tasks.run(
            "import",
            import_bundle,
            source,
            on_result=done,
            on_error=lambda e: self._say(f"Not imported: {message_of(e)}", True),
        )

    def _show_folder(self) -> None:
        row = self._current()
        if row is not None:
            said = show_in_folder(str(row.path), folder=True)
            if said:
                self._say(said, True)
