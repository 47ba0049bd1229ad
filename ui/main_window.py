"""The main window: library browser, map, waveform, similarity and blend panels.

The window is shown before torch is imported. Everything the engine does (loading the model,
opening and scanning the library, projections, searches, classification) runs through
`ui.workers.run_task`; widgets never call each other: they emit the `SampleActions` hub's
signals and this window does the work and calls back.

Start-up: model -> library (open, scan in the background, incremental) -> snapshot -> table and
map (PCA at once, UMAP in the background, animated in).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from sampletool.errors import SampleToolError
from ui import APP, ORG, app_settings
from ui.actions import SampleActions
from ui.dnd import SampleRef
from ui.playback import Player
from ui.widgets.blend_panel import BlendPanel
from ui.widgets.class_bars import ClassifyPopup
from ui.widgets.latent_map import LatentMap
from ui.widgets.library_view import LibraryView
from ui.widgets.similar_panel import SimilarPanel
from ui.widgets.waveform_view import WaveformView
from ui.workers import run_task, wait_for_all

NUM_SIMILAR = 30


def demo_library_dir() -> Path:
    from sampletool.paths import user_data_dir

    return user_data_dir() / "Demo Library"


def message_of(error: BaseException) -> str:
    """A sentence for the user: our errors say what happened; others get their type."""
    if isinstance(error, SampleToolError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"


# -- engine work (runs on worker threads; plain functions, no Qt) --------------------------------


def load_tool(model: str | None):
    import gc

    from sampletool.tool import SoundSampleTool

    tool = SoundSampleTool(model)
    # The map's hover lookup needs scipy's KD-tree as soon as a library shows. Importing it
    # there, on the GUI thread, froze the window for ~200 ms; here it costs the window nothing.
    import scipy.spatial  # noqa: F401

    # torch brings a few million long-lived objects; a full garbage collection walks them all
    # (100-500 ms with the global lock held: the window froze). Freeze what exists now so the
    # collector skips it from here on.
    gc.freeze()
    return tool


def open_library(tool, root: str, rebuild: bool = False):
    from sampletool.library.library import Library

    return Library(root, tool, rebuild=rebuild)


@dataclass
class Lookups:
    """What the window looks up in a snapshot, built once per snapshot (off the GUI thread)."""

    row_of: dict[tuple[str, float], int]  # (path, onset) -> row
    row_of_id: dict[int, int]  # entry id -> row
    labels: list[str]  # the map's hover text
    onsets_of: dict[str, list[float]]  # path -> its entries' onsets, sorted

    @classmethod
    def of(cls, snapshot) -> Lookups:
        onsets = snapshot.onsets.tolist()
        onsets_of: dict[str, list[float]] = {}
        for p, o in zip(snapshot.paths, onsets, strict=True):
            onsets_of.setdefault(p, []).append(float(o))
        for v in onsets_of.values():
            v.sort()
        return cls(
            row_of={(p, float(o)): i for i, (p, o) in
                    enumerate(zip(snapshot.paths, onsets, strict=True))},
            row_of_id={int(i): k for k, i in enumerate(snapshot.ids.tolist())},
            labels=[Path(p).name for p in snapshot.paths],
            onsets_of=onsets_of,
        )  # fmt: skip


def scan_library(library, progress=None, cancel=None):
    """Scan, then prepare everything the window shows of the result (the table's columns and
    the lookups), so the GUI thread only swaps it in."""
    from ui.widgets.library_view import table_columns

    report = library.scan(progress=progress, cancel=cancel)
    snapshot = library.snapshot()
    columns = table_columns(snapshot.paths, snapshot.onsets, library.root)
    return report, snapshot, columns, Lookups.of(snapshot)


def close_when_idle(library, done: threading.Event | None) -> None:
    if done is not None:
        done.wait(600)
    library.close()


def read_for_playback(path: str, onset: float):
    from sampletool.waveform import read_excerpt

    return read_excerpt(path, onset, 30.0)


def fast_projection(vectors: np.ndarray) -> np.ndarray:
    from sampletool.projection import pca_2d

    return pca_2d(vectors)


def slow_projection(vectors: np.ndarray, progress=None, cancel=None) -> np.ndarray:
    from sampletool.projection import umap_2d_isolated

    return umap_2d_isolated(vectors, progress=progress, cancel=cancel)


def search(
    library, ref: SampleRef, k: int, same_kind: bool = False
) -> tuple[list[tuple[SampleRef, float]], str | None]:
    """(the k entries nearest to `ref` as (sample, distance), the class they were kept to)."""
    files, onsets, distances = library.find_similar(ref.path, k, ref.onset, same_kind=same_kind)
    kind = library.kind_of(ref.path, ref.onset) if same_kind else None
    return [(SampleRef(f, o), d) for f, o, d in zip(files, onsets, distances, strict=True)], kind


def classify(tool, ref: SampleRef) -> np.ndarray:
    probs, _name = tool.predict(ref.path, ref.onset)
    return probs


class FailuresDialog(QDialog):
    """The files a scan could not read, with the reason for each (non-modal)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("failuresDialog")
        self.setWindowTitle("Files that could not be read")
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setObjectName("failuresText")
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.resize(720, 360)

    def set_failures(self, failures: Sequence[tuple[str, str]]) -> None:
        self.text.setPlainText("\n".join(f"{path}\n    {reason}" for path, reason in failures))


class MainWindow(QMainWindow):
    engine_ready = Signal(bool)  # start-up work done: True if a model loaded
    library_changed = Signal(str)  # a library folder was chosen
    library_ready = Signal()  # a snapshot is shown (table and map filled)
    map_refined = Signal()  # the non-linear projection has been animated in
    stuck = Signal(str)  # the library could not be opened, indexed or mapped (the message)

    def __init__(
        self,
        model: str | None = None,
        library: str | None = None,
        player: Player | None = None,
        refine_map: bool = True,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP)
        self.settings = app_settings()
        self.tool = None
        self.lib = None  # sampletool.library.library.Library
        self.snapshot = None
        self.model_name = model or self.settings.value("model", None) or None
        self._previous_model = self.model_name
        self.library = library or self.settings.value("library", None) or None
        self._tasks: dict[str, dict] = {}  # name -> {'task': Task}, while running
        self.lookups = Lookups({}, {}, [], {})

        self.refine_map = refine_map  # compute the non-linear (UMAP) map after the PCA one
        self.actions = SampleActions(self)
        self.player = player or Player(self)
        self._build_ui()
        self._connect()
        self._restore_settings()
        self.statusBar().showMessage("Loading the model...")
        # Start once the event loop runs, so the window paints first.
        QTimer.singleShot(0, self._load_model)

    # -- layout ----------------------------------------------------------------------------------

    def _build_ui(self) -> None:
        self.stack = QStackedWidget(self)
        # Welcome page: no library yet.
        welcome = QWidget(self)
        welcome.setObjectName("welcomePage")
        wl = QVBoxLayout(welcome)
        wl.addStretch()
        self.welcome = QLabel(self)
        self.welcome.setObjectName("welcome")
        self.welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.welcome.setWordWrap(True)
        self.welcome.setText(
            "<h2>Sample Tool</h2><p>Open a folder of samples to browse it as a map of sound, "
            "find similar samples and blend them into new ones.</p>"
        )
        wl.addWidget(self.welcome)
        self.first_run = QWidget(self)
        self.first_run.setObjectName("firstRun")
        row = QHBoxLayout(self.first_run)
        row.addStretch()
        self.open_button = QPushButton("Open sample folder...", self)
        self.open_button.setObjectName("openLibraryButton")
        self.open_button.clicked.connect(self._choose_library)
        self.demo_button = QPushButton("Create demo library", self)
        self.demo_button.setObjectName("createDemoButton")
        self.demo_button.setToolTip(f"Synthesise a few hundred samples into {demo_library_dir()}")
        self.demo_button.clicked.connect(lambda: self.create_demo_library())
        self.rebuild_button = QPushButton("&Rebuild catalogue", self)
        self.rebuild_button.setObjectName("rebuildCatalogueButton")
        self.rebuild_button.setToolTip("Start a fresh catalogue and scan the folder again; the "
                                       "damaged one is kept beside it")  # fmt: skip
        self.rebuild_button.clicked.connect(lambda: self._rebuild(self.library))
        self.rebuild_button.hide()
        row.addWidget(self.rebuild_button)
        row.addWidget(self.open_button)
        row.addWidget(self.demo_button)
        row.addStretch()
        wl.addWidget(self.first_run)
        wl.addStretch()
        self.stack.addWidget(welcome)

        # Main page.
        self.library_view = LibraryView(self.actions, self)
        self.latent_map = LatentMap(self, ref_for_id=self.ref_for_id)
        self.waveform = WaveformView(self)
        self.similar = SimilarPanel(self.actions, self)
        self.blend = BlendPanel(self, actions=self.actions)
        self.classify_popup = ClassifyPopup(self)

        self.centre = QSplitter(Qt.Orientation.Vertical, self)
        self.centre.setObjectName("centreSplitter")
        self.centre.addWidget(self.latent_map)
        self.centre.addWidget(self.waveform)
        self.centre.setStretchFactor(0, 3)
        self.centre.setStretchFactor(1, 1)
        self.right = QSplitter(Qt.Orientation.Vertical, self)
        self.right.setObjectName("rightSplitter")
        self.right.addWidget(self.similar)
        self.right.addWidget(self.blend)
        self.right.setSizes([330, 520])
        self.main_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_split.setObjectName("mainSplitter")
        self.main_split.addWidget(self.library_view)
        self.main_split.addWidget(self.centre)
        self.main_split.addWidget(self.right)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 4)
        self.main_split.setStretchFactor(2, 2)
        self.main_split.setSizes([560, 520, 380])
        self.stack.addWidget(self.main_split)
        self.setCentralWidget(self.stack)
        self.stack.setCurrentIndex(1 if self.library else 0)

        # Status bar: message, progress, cancel, failures.
        self.progress = QProgressBar(self)
        self.progress.setObjectName("taskProgress")
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_indexing)
        self.failures_button = QPushButton(self)
        self.failures_button.setObjectName("failuresButton")
        self.failures_button.setFlat(True)
        self.failures_button.hide()
        self.failures_button.clicked.connect(self.show_failures)
        self.failures_dialog = FailuresDialog(self)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("countLabel")
        self.audio_label = QLabel("No audio output", self)
        self.audio_label.setObjectName("audioStatus")
        self.audio_label.hide()
        sb = self.statusBar()
        sb.addPermanentWidget(self.audio_label)
        sb.addPermanentWidget(self.count_label)
        sb.addPermanentWidget(self.failures_button)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

        self._build_menus()
        self.setMinimumSize(900, 560)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        a = file_menu.addAction("&Open sample folder...", self._choose_library)
        a.setShortcut(QKeySequence.StandardKey.Open)
        file_menu.addAction("Create &demo library", lambda: self.create_demo_library())
        self.rescan_action = file_menu.addAction("&Rescan library", self.rescan)
        self.rescan_action.setShortcut("F5")
        file_menu.addSeparator()
        q = file_menu.addAction("&Quit", self.close)
        q.setShortcut(QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        f = edit.addAction("&Find in library", self.library_view.focus_filter)
        f.setShortcut(QKeySequence.StandardKey.Find)
        stop = edit.addAction("&Stop playback", self.player.stop)
        stop.setShortcut("Esc")
        self.model_menu = self.menuBar().addMenu("&Model")
        self.model_group = QActionGroup(self)
        self.model_group.setExclusive(True)
        self.model_menu.aboutToShow.connect(self._fill_model_menu)
        self._fill_model_menu()

    def _fill_model_menu(self) -> None:
        from sampletool.registry import find_bundles

        self.model_menu.clear()
        for action in self.model_group.actions():
            self.model_group.removeAction(action)
        current = self.tool.bundle.path.resolve() if self.tool is not None else None
        try:
            bundles = find_bundles()
        except OSError:
            bundles = []
        for info in bundles:
            path = Path(info.path)
            action = QAction(info.name, self, checkable=True)
            action.setToolTip(str(path))
            action.setChecked(current is not None and path.resolve() == current)
            action.triggered.connect(lambda _=False, p=str(path): self.switch_model(p))
            self.model_group.addAction(action)
            self.model_menu.addAction(action)
        if not bundles:
            self.model_menu.addAction("No models installed").setEnabled(False)
        self.model_menu.addSeparator()
        self.model_menu.addAction("Open model folder...", self._choose_model)

    def _connect(self) -> None:
        a = self.actions
        a.audition.connect(self.audition)
        a.stop.connect(self.player.stop)
        a.find_similar.connect(self.find_similar)
        a.classify.connect(self.classify)
        a.add_to_blend.connect(self.blend.add_sample)
        self.library_view.selection_ids_changed.connect(self.latent_map.select_ids)
        self.library_view.play_toggled.connect(self._toggle_play)
        self.latent_map.clicked.connect(self._map_clicked)
        self.latent_map.selection_changed.connect(self.library_view.select_ids)
        self.latent_map.context_requested.connect(self._map_context)
        self.waveform.play_from.connect(self._play_from)
        self.player.position.connect(self.waveform.set_playhead)
        self.player.state_changed.connect(self.similar.set_playing)
        self.player.unavailable.connect(self._audio_unavailable)
        self.player.error.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.blend.generated.connect(self._play_generated)

    def _audio_unavailable(self, reason: str) -> None:
        self.audio_label.setToolTip(reason)
        self.audio_label.show()
        self.statusBar().showMessage(reason, 10000)

    # -- settings --------------------------------------------------------------------------------

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        for key, widget in (
            ("splitter/main", self.main_split),
            ("splitter/centre", self.centre),
            ("splitter/right", self.right),
            ("splitter/library", self.library_view.splitter),
        ):
            state = s.value(key)
            if isinstance(state, QByteArray | bytes):
                widget.restoreState(state)
        self.similar.set_same_kind(s.value("similar/sameKind", False, type=bool))
        header = s.value("table/header")
        if isinstance(header, QByteArray | bytes):
            self.library_view.table.horizontalHeader().restoreState(header)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("splitter/main", self.main_split.saveState())
        s.setValue("splitter/centre", self.centre.saveState())
        s.setValue("splitter/right", self.right.saveState())
        s.setValue("splitter/library", self.library_view.splitter.saveState())
        s.setValue("table/header", self.library_view.table.horizontalHeader().saveState())
        s.setValue("similar/sameKind", self.similar.same_kind_box.isChecked())
        s.sync()

    def closeEvent(self, event) -> None:
        self._save_settings()
        self.cancel_all()
        self.player.stop()
        super().closeEvent(event)

    def cancel_all(self) -> None:
        """Ask every running task to stop (a scan stops after its batch in flight)."""
        for record in self._tasks.values():
            if record.get("task") is not None:
                record["task"].cancel()

    # -- tasks -----------------------------------------------------------------------------------

    def _run(self, name: str, fn, *args, on_result=None, on_error=None, progress=None, **kw):
        """Run engine work; a newer task of the same name supersedes (cancels) the older one,
        whose result is then ignored."""
        old = self._tasks.pop(name, None)
        if old is not None and old.get("task") is not None:
            old["task"].cancel()
        record: dict = {"task": None}
        self._tasks[name] = record

        def current() -> bool:
            # A result may arrive after the window was closed and deleted: drop it then.
            return isValid(self) and self._tasks.get(name) is record

        def ok(value) -> None:
            if current():
                del self._tasks[name]
                if on_result is not None:
                    on_result(value)

        def failed(error: BaseException) -> None:
            if current():
                del self._tasks[name]
                if on_error is not None:
                    on_error(error)
                else:
                    self.statusBar().showMessage(message_of(error), 10000)

        record["task"] = run_task(
            fn, *args, on_result=ok, on_error=failed, on_progress=progress,
            pass_control=progress is not None, **kw,
        )  # fmt: skip
        return record["task"]

    def _drop_tasks(self, *names: str) -> None:
        """Cancel these tasks and forget them: their results, if any arrive, are ignored."""
        for name in names:
            record = self._tasks.pop(name, None)
            if record is not None and record.get("task") is not None:
                record["task"].cancel()

    def _retire_library(self) -> None:
        """Stop using the current library: cancel its work, close it once its scan (which
        finishes its batch in flight) is over, and clear what was shown of it."""
        scan = self._tasks.get("scan", {}).get("task")
        self._drop_tasks("open", "scan", "pca", "umap", "similar", "classify")
        self._hide_progress()
        lib, self.lib = self.lib, None
        self.snapshot = None
        self.lookups = Lookups({}, {}, [], {})
        self.similar.clear()
        self.latent_map.highlight([])
        self.count_label.clear()
        self.failures_button.hide()
        if lib is not None:
            run_task(close_when_idle, lib, scan.done_event if scan is not None else None)

    def busy(self) -> bool:
        return bool(self._tasks)

    # -- model -----------------------------------------------------------------------------------

    def _load_model(self, model: str | None = None) -> None:
        model = model if model is not None else self.model_name
        self.statusBar().showMessage("Loading the model...")
        self._run("model", load_tool, model, on_result=self._model_loaded,
                  on_error=self._model_failed)  # fmt: skip

    def _model_loaded(self, tool) -> None:
        switching = self.tool is not None
        if switching:
            self._retire_library()
        self.tool = tool
        if self.model_name:
            self.settings.setValue("model", self.model_name)
        b = tool.bundle
        self.blend.set_tool(tool)
        self.similar.set_same_kind(self.similar.same_kind_box.isChecked(), bool(b.class_names))
        self.setWindowTitle(f"{APP} — {b.name}")
        self.statusBar().showMessage(
            f"Model {b.name} loaded ({len(b.class_names)} classes, {tool.device})", 5000
        )
        self.engine_ready.emit(True)
        if self.library:
            self.open_library(self.library)

    def _model_failed(self, error: BaseException) -> None:
        if self.tool is not None:  # a switch failed: keep working with the current model
            self.statusBar().showMessage(
                f"The model could not be loaded: {message_of(error)}", 15000
            )
            self.model_name = self._previous_model
            return
        self.blend.set_tool(None)
        self.welcome.setText(
            f"<h2>Sample Tool</h2><p>The model could not be loaded:</p><p>{message_of(error)}</p>"
        )
        self.stack.setCurrentIndex(0)
        self.statusBar().showMessage("No model loaded")
        self.engine_ready.emit(False)

    def switch_model(self, model: str) -> None:
        """Load another model; the library is re-indexed with it in the background (each
        model's vectors are kept, so switching back is quick)."""
        if self.tool is not None and self.tool.bundle.path is not None:
            try:
                if Path(model).resolve() == self.tool.bundle.path.resolve():
                    return  # already in use
            except OSError:
                pass
        self._previous_model, self.model_name = self.model_name, model
        self._load_model(model)

    def _choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model folder")
        if folder:
            self.switch_model(folder)

    # -- library ---------------------------------------------------------------------------------

    def set_library(self, folder: str) -> None:
        self.library = folder
        self.settings.setValue("library", folder)
        self.stack.setCurrentIndex(1)
        self.library_changed.emit(folder)
        if self.tool is not None:
            self.open_library(folder)

    def _choose_library(self) -> None:
        start = self.library or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open sample folder", start)
        if folder:
            self.set_library(folder)

    def create_demo_library(self, folder: str | None = None) -> None:
        """Synthesise the demo library in the background (progress in the status bar), then
        open it."""
        from sampletool.data.synth import write_demo_library

        target = Path(folder) if folder else demo_library_dir()
        self.demo_button.setEnabled(False)
        self._show_progress(0, 0)
        self.statusBar().showMessage(f"Creating the demo library in {target}...")

        def done(paths) -> None:
            self._hide_progress()
            self.demo_button.setEnabled(True)
            self.set_library(str(target))
            self.statusBar().showMessage(f"Demo library ready: {len(paths)} files", 5000)

        def failed(error: BaseException) -> None:
            self._hide_progress()
            self.demo_button.setEnabled(True)
            self.statusBar().showMessage(
                f"The demo library could not be created: {message_of(error)}"
            )

        self._run("demo", write_demo_library, target, on_result=done, on_error=failed,
                  progress=lambda d, t, _m: self._show_progress(d, t))  # fmt: skip

    def open_library(self, folder: str, rebuild: bool = False) -> None:
        self._retire_library()
        self.rebuild_button.hide()
        self.statusBar().showMessage(f"Opening {folder}...")
        self._run("open", open_library, self.tool, folder, rebuild,
                  on_result=self._library_opened, on_error=self._library_failed)  # fmt: skip

    def _library_opened(self, lib) -> None:
        if lib.tool is not self.tool:  # opened for a model that has since been replaced
            run_task(lib.close)
            return
        self.lib = lib
        self.settings.setValue("library", str(lib.root))
        self.rescan()

    def _library_failed(self, error: BaseException) -> None:
        from sampletool.library.catalogue import CatalogueError

        rebuildable = isinstance(error, CatalogueError) and error.rebuildable
        msg = error.problem if rebuildable else message_of(error)  # no command-line advice
        self.statusBar().showMessage(msg)
        self.rebuild_button.setVisible(rebuildable)
        if rebuildable:
            first = "Update Sample Tool, or rebuild" if error.or_else else "Rebuild"
            self.welcome.setText(
                f"<h2>The library's catalogue cannot be used</h2><p>{msg}.</p>"
                f"<p>{first} the catalogue to scan the folder again (your samples are not "
                "touched), or open another folder.</p>"
            )
        else:
            self.welcome.setText(f"<h2>The library could not be opened</h2><p>{msg}</p>")
        self.stack.setCurrentIndex(0)
        self.stuck.emit(msg)

    def _rebuild(self, folder: str) -> None:
        self.stack.setCurrentIndex(1)
        self.open_library(folder, rebuild=True)

    def rescan(self) -> None:
        if self.lib is None:
            return
        if "scan" in self._tasks:
            self.statusBar().showMessage("Already indexing", 3000)
            return
        self.statusBar().showMessage(f"Indexing {self.lib.root}...")
        self._show_progress(0, 0, cancellable=True)
        self._run("scan", scan_library, self.lib, on_result=self._scanned,
                  on_error=self._scan_failed, progress=self._scan_progress)  # fmt: skip

    def _scan_progress(self, done: int, total: int, message: str) -> None:
        self._show_progress(done, total, cancellable=True)
        if message:
            self.statusBar().showMessage(message)

    def cancel_indexing(self) -> None:
        record = self._tasks.get("scan")
        if record is not None and record.get("task") is not None:
            record["task"].cancel()
            self.statusBar().showMessage("Cancelling the scan...")

    def _scanned(self, result) -> None:
        report, snapshot, columns, lookups = result
        self._hide_progress()
        known = {p for p, _ in snapshot.failures}
        snapshot.failures += [(f["path"], f["reason"]) for f in report.failed
                              if f["path"] not in known]  # fmt: skip
        # The count of samples is in the status bar's corner: say what this scan did.
        done = [f"{n} {what}" for n, what in ((report.indexed, "indexed"), (report.moved, "moved"),
                                              (report.removed, "removed")) if n]  # fmt: skip
        parts = [", ".join(done) if done else "Library up to date"]
        if report.cancelled:
            parts.append("scan cancelled: the next scan carries on")
        self.statusBar().showMessage(" · ".join(parts), 8000)
        self.show_snapshot(snapshot, columns, lookups)

    def _scan_failed(self, error: BaseException) -> None:
        self._hide_progress()
        self.statusBar().showMessage(f"Indexing failed: {message_of(error)}")
        self.stuck.emit(message_of(error))

    def show_snapshot(self, snapshot, columns=None, lookups: Lookups | None = None) -> None:
        self.snapshot = snapshot
        self.lookups = lookups or Lookups.of(snapshot)
        root = self.lib.root if self.lib else ""
        self.library_view.set_snapshot(snapshot, root, columns)
        n_failed = len(snapshot.failures)
        self.count_label.setText(f"{len(snapshot)} samples")
        self.failures_button.setText(f"{n_failed} could not be read")
        self.failures_button.setVisible(n_failed > 0)
        self.failures_dialog.set_failures(snapshot.failures)
        if not len(snapshot):
            self.latent_map.set_points(np.empty(0, np.int64), np.zeros((0, 2), np.float32),
                                       np.empty(0, np.int64), snapshot.class_names, [])  # fmt: skip
            self.library_ready.emit()
            return
        self._run("pca", fast_projection, snapshot.vectors,
                  on_result=lambda xy: self._show_map(snapshot, xy))  # fmt: skip

    def _show_map(self, snapshot, xy: np.ndarray) -> None:
        if snapshot is not self.snapshot:
            return
        labels = self.lookups.labels
        self.latent_map.set_points(snapshot.ids, xy, snapshot.predicted, snapshot.class_names,
                                   labels)  # fmt: skip
        self.library_ready.emit()
        if not self.refine_map:
            return
        self._run("umap", slow_projection, snapshot.vectors,
                  on_result=lambda xy2: self._refine_map(snapshot, xy2),
                  on_error=lambda e: (self.statusBar().showMessage(
                      f"The detailed map could not be computed: {message_of(e)}", 8000),
                      self.stuck.emit(message_of(e))),
                  progress=lambda *_: None)  # fmt: skip

    def _refine_map(self, snapshot, xy: np.ndarray) -> None:
        if snapshot is not self.snapshot:
            return
        self.latent_map.animate_to(xy, 700)  # the view follows unless the user moved it
        QTimer.singleShot(800, self.map_refined.emit)

    def show_failures(self) -> None:
        self.failures_dialog.show()
        self.failures_dialog.raise_()

    def _show_progress(self, done: int, total: int, cancellable: bool = False) -> None:
        self.progress.setRange(0, max(total, 0))
        if total > 0:
            self.progress.setValue(done)
        self.progress.show()
        self.cancel_button.setVisible(cancellable)

    def _hide_progress(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    # -- lookups ---------------------------------------------------------------------------------

    def ref_for_id(self, entry_id: int) -> SampleRef | None:
        row = self.lookups.row_of_id.get(int(entry_id))
        if row is None or self.snapshot is None:
            return None
        return SampleRef(self.snapshot.paths[row], float(self.snapshot.onsets[row]))

    def _row_of(self, ref: SampleRef) -> int | None:
        return self.lookups.row_of.get((ref.path, float(ref.onset)))

    # -- what the actions do ---------------------------------------------------------------------

    def audition(self, ref: SampleRef) -> None:
        row = self._row_of(ref)
        onsets = ()
        if row is not None and self.snapshot is not None:
            same = self.lookups.onsets_of.get(ref.path, [])
            onsets = same if len(same) > 1 else ()
            self.latent_map.select_ids([int(self.snapshot.ids[row])])
        self.waveform.load(ref.path, onsets, ref.name)
        self._playing_ref = ref
        self._play_file(ref.path, ref.onset)

    def _play_file(self, path: str, at: float) -> None:
        """Read the excerpt on a worker (latest request wins), then play it."""
        if not self.player.available:
            return
        self._run("audio", read_for_playback, path, at,
                  on_result=lambda r: self.player.play_excerpt(r[0], r[1], at),
                  on_error=lambda e: self.statusBar().showMessage(
                      f"Cannot play {Path(path).name}: {message_of(e)}", 8000))  # fmt: skip

    def _toggle_play(self) -> None:
        if self.player.is_playing:
            self.player.stop()
            return
        ref = self.library_view.current_ref()
        if ref is not None:
            self.audition(ref)

    def _play_from(self, seconds: float) -> None:
        ref = getattr(self, "_playing_ref", None)
        if ref is not None:
            self._play_file(ref.path, max(0.0, seconds))
        elif getattr(self, "_generated", None) is not None:
            audio, sr = self._generated
            self.player.play(audio, sr, max(0.0, seconds))

    def _play_generated(self, audio: np.ndarray, sample_rate: int) -> None:
        self._playing_ref = None
        self._generated = (audio, sample_rate)
        self.waveform.set_audio(audio, sample_rate, (), "blend")
        self.player.play(audio, sample_rate)

    def _map_clicked(self, entry_id: int) -> None:
        ref = self.ref_for_id(entry_id)
        if ref is not None:
            self.library_view.select_ids([entry_id])
            self.audition(ref)

    def _map_context(self, entry_id: int, pos) -> None:
        ref = self.ref_for_id(entry_id)
        if ref is not None:
            self.actions.show_menu([ref], pos, self)

    def find_similar(self, ref: SampleRef) -> None:
        if self.lib is None:
            self.similar.show_error("Open a sample folder first: similar samples come from it.")
            return
        if not Path(ref.path).is_file():
            self.similar.show_error(f"{ref.path} does not exist (moved or deleted?)")
            return
        self.similar.set_query(ref)

        def done(answer) -> None:
            results, kind = answer
            self.similar.show_results(ref, results, kind)
            ids = [int(self.snapshot.ids[r]) for r in
                   (self._row_of(x) for x, _ in results) if r is not None]  # fmt: skip
            self.latent_map.highlight(ids)
            self.statusBar().showMessage(f"{len(results)} similar to {ref.name}", 5000)

        def failed(error: BaseException) -> None:
            self.similar.show_error(f"{Path(ref.path).name} could not be searched: "
                                    f"{message_of(error)}")  # fmt: skip

        self._run("similar", search, self.lib, ref, NUM_SIMILAR, self.similar.same_kind(),
                  on_result=done, on_error=failed)  # fmt: skip

    def classify(self, ref: SampleRef) -> None:
        from PySide6.QtGui import QCursor

        popup = self.classify_popup
        popup.set_query(ref)
        popup.popup_at(QCursor.pos())
        row = self._row_of(ref)
        self._drop_tasks("classify")  # an older answer must not replace this one
        if self.snapshot is not None and row is not None and self.snapshot.probs is not None:
            popup.show_probabilities(ref, self.snapshot.class_names, self.snapshot.probs[row])
            return
        if self.tool is None:
            popup.show_error("The model is still loading.")
            return
        if not self.tool.class_names:
            popup.show_error("This model has no classifier.")
            return
        names = list(self.tool.class_names)
        self._run("classify", classify, self.tool, ref,
                  on_result=lambda p: popup.show_probabilities(ref, names, p),
                  on_error=lambda e: popup.show_error(message_of(e)))  # fmt: skip


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sampletool-gui", description="Sample Tool desktop app")
    p.add_argument("--library", metavar="DIR", help="sample folder to open")
    p.add_argument("--model", metavar="DIR", help="model bundle folder or installed model name")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a screenshot of the window once loaded, then quit")  # fmt: skip
    p.add_argument("--wait-indexed", action="store_true",
                   help="with --screenshot: wait until the library is indexed and the map "
                        "refined")  # fmt: skip
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    library = str(Path(args.library).expanduser().absolute()) if args.library else None
    window = MainWindow(model=args.model, library=library)
    window.show()
    if args.screenshot:
        out = Path(args.screenshot)
        shot = threading.Event()

        def shoot(*_: object) -> None:
            if not shot.is_set():
                shot.set()
                QTimer.singleShot(300, lambda: (window.grab().save(str(out)), app.quit()))

        if args.wait_indexed and window.library:
            window.map_refined.connect(shoot)
            window.engine_ready.connect(lambda ok: None if ok else shoot())
            window.stuck.connect(shoot)  # the library could not be opened or indexed
            window.library_ready.connect(
                lambda: None if window.refine_map and len(window.snapshot or ()) else shoot()
            )
            QTimer.singleShot(900_000, shoot)  # whatever happens, do not hang
        else:
            window.engine_ready.connect(shoot)
    code = app.exec()
    window.cancel_all()
    # A scan stops within a batch; a map projection cannot be interrupted: give the work a
    # moment, then leave without waiting for it (the catalogue commits batch by batch, so
    # nothing is lost).
    if not wait_for_all(3000):
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
