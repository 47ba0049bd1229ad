"""The main window: library browser, map, waveform, similarity and blend panels.

The window is shown before torch is imported. The model and library lifecycles are the
`LibraryController`'s; what a click starts (playing, searching, classifying, listing models)
runs as a task of the window's own group. Widgets never call each other: they emit the
`SampleActions` hub's signals and this window does the work and calls back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCursor, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from sampletool.audio import READABLE_FORMATS
from ui import messages
from ui.actions import SampleActions
from ui.blend import BlendPanel
from ui.dialogs.failures import FailuresDialog
from ui.dnd import SampleRef
from ui.mainwindow import jobs
from ui.mainwindow.library_controller import LibraryController
from ui.messages import message_of, reason_of
from ui.playback import Player
from ui.settings import APP, app_settings, restore_layout, save_layout
from ui.widgets.class_bars import ClassifyPopup
from ui.widgets.latent_map import LatentMap
from ui.widgets.library_view import LibraryView
from ui.widgets.similar_panel import SimilarPanel
from ui.widgets.waveform_view import WaveformView
from ui.workers import Pool, TaskGroup

NUM_SIMILAR = 30
DEFAULT_SIZE = QSize(1400, 860)
# Under this height the similar results and the blend panel share the right column as tabs
# (a laptop's 1280x720 or 1366x768 gave each too little: 1.7 blend slots, 7 results).
TABS_BELOW_HEIGHT = 820
WAVEFORM_MIN_HEIGHT = 130


def class_note(reading) -> str:
    """The line above the probability bars: what the app makes of them (nothing when the model
    is sure: the bars say it)."""
    sure = not (reading.by_user or reading.unsure or not reading.name)
    return "" if sure else reading.explain()


def count_text(n: int, thing: str = "sample") -> str:
    """'1 sample', '2 samples', '12,345 samples'."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _resolved(path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(path)


def demo_library_dir() -> Path:
    from sampletool.paths import user_data_dir

    return user_data_dir() / "Demo Library"


class MainWindow(QMainWindow):
    """The app's window.

    Args:
        model: the model to use (None: the one remembered, else the built-in default).
        library: the sample folder to open (None: the one remembered, else the welcome page).
        player: the audio player (tests pass one with a fake output).
        refine_map: compute the non-linear map after the quick one.
        pool: where all background work runs (tests pass a synchronous pool).
        demo_when_empty: with no library to open (none given, none remembered), make the demo
            library and open it once the model is loaded, so a first start shows something to
            browse (the app's entry point asks for this; the welcome page offers it otherwise).
    """

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
        pool: Pool | None = None,
        demo_when_empty: bool = False,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self._demo_when_empty = demo_when_empty
        self.setWindowTitle(APP)
        self.settings = app_settings()
        self.pool = pool
        self.tasks = TaskGroup(self, pool, on_error=lambda e: self._status(message_of(e), 10000))
        self.controller = LibraryController(
            self, model or self.settings.value("model", None) or None, refine_map, pool
        )
        self.controller.folder = library or self.settings.value("library", None) or None
        self._bundles: list = []  # the Model menu's entries, as last listed
        self._wizard = None  # ui.training.TrainWizard, made on first use
        self._manager = None  # ui.models.ModelManager, made on first use
        self._runs_checked_once = False
        self._playing_ref: SampleRef | None = None
        self._generated: tuple[np.ndarray, int] | None = None
        self._class_undo: list[dict[str, str | None]] = []  # each change's previous classes
        self._class_writes: list[tuple] = []  # class changes to write, in order (first: now)
        self.actions = SampleActions(self)
        self.player = player or Player(self)
        self._build_ui()
        self._connect()
        restore_layout(self.settings, self, self._layout_states(), DEFAULT_SIZE)
        self.library_view.header_modes()
        self.similar.set_same_kind(self.settings.value("similar/sameKind", False, type=bool))
        self._status("Loading the model...")
        # Start once the event loop runs, so the window paints first.
        QTimer.singleShot(0, self.controller.load_model)

    # -- what the controller holds ---------------------------------------------------------------

    @property
    def runtime(self):
        """The model runtime in use (None until one is loaded)."""
        return self.controller.runtime

    @property
    def lib(self):
        """The open library (None while none is open)."""
        return self.controller.lib

    @property
    def snapshot(self):
        return self.controller.snapshot

    @property
    def lookups(self) -> jobs.Lookups:
        return self.controller.lookups

    @property
    def library(self) -> str | None:
        """The library folder in use or asked for."""
        return self.controller.folder

    def busy(self) -> bool:
        return self.controller.busy() or self.tasks.running()

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
        self.latent_map = LatentMap(self, ref_for_id=self.ref_for_id, pool=self.pool)
        self.waveform = WaveformView(self, pool=self.pool)
        self.similar = SimilarPanel(self.actions, self)
        self.blend = BlendPanel(self, actions=self.actions, pool=self.pool)
        self.classify_popup = ClassifyPopup(self)

        self.centre = QSplitter(Qt.Orientation.Vertical, self)
        self.centre.setObjectName("centreSplitter")
        self.centre.addWidget(self.latent_map)
        self.centre.addWidget(self.waveform)
        self.centre.setStretchFactor(0, 3)
        self.centre.setStretchFactor(1, 1)
        self.centre.setCollapsible(1, False)
        self.waveform.setMinimumHeight(WAVEFORM_MIN_HEIGHT)
        self.right = QSplitter(Qt.Orientation.Vertical, self)
        self.right.setObjectName("rightSplitter")
        self.right.addWidget(self.similar)
        self.right.addWidget(self.blend)
        self.right.setSizes([330, 520])
        self.right_tabs = QTabWidget(self)
        self.right_tabs.setObjectName("rightTabs")
        self.right_tabs.setDocumentMode(True)
        self.right_tabs.tabBar().setChangeCurrentOnDrag(True)  # drag a result onto "Blend"
        self.right_tabs.tabBar().setAcceptDrops(True)
        self.right_stack = QStackedWidget(self)
        self.right_stack.setObjectName("rightColumn")
        self.right_stack.addWidget(self.right)
        self.right_stack.addWidget(self.right_tabs)
        self.compact = False
        self.main_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.main_split.setObjectName("mainSplitter")
        self.main_split.addWidget(self.library_view)
        self.main_split.addWidget(self.centre)
        self.main_split.addWidget(self.right_stack)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 4)
        self.main_split.setStretchFactor(2, 2)
        self.main_split.setSizes([600, 480, 320])  # the table is the main browser: its columns fit
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
        self.training_button = QPushButton(self)
        self.training_button.setObjectName("trainingStatusButton")
        self.training_button.setFlat(True)
        self.training_button.setToolTip("A model is training: click to see it")
        self.training_button.hide()
        self.training_button.clicked.connect(self.open_train_wizard)
        sb = self.statusBar()
        sb.addPermanentWidget(self.training_button)
        sb.addPermanentWidget(self.audio_label)
        sb.addPermanentWidget(self.count_label)
        sb.addPermanentWidget(self.failures_button)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

        self._build_menus()
        self.setMinimumSize(900, 560)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.set_compact(self.height() < TABS_BELOW_HEIGHT)

    def set_compact(self, compact: bool) -> None:
        """Similar results and blend panel as tabs (compact) or one above the other."""
        if compact == self.compact:
            return
        self.compact = compact
        if compact:  # the tabs show their current page only, and hide the other
            self.right_tabs.addTab(self.similar, "Similar")
            self.right_tabs.addTab(self.blend, "Blend")
            self.right_stack.setCurrentWidget(self.right_tabs)
        else:
            self.right_tabs.clear()
            self.right.insertWidget(0, self.similar)
            self.right.insertWidget(1, self.blend)
            self.right_stack.setCurrentWidget(self.right)
            self.similar.show()  # the page the tabs had hidden
            self.blend.show()

    def show_panel(self, panel: QWidget) -> None:
        """Bring the similar results or the blend panel forward (a tab, when compact)."""
        if self.compact:
            self.right_tabs.setCurrentWidget(panel)

    def _layout_states(self) -> dict:
        return {
            "splitter/main": self.main_split,
            "splitter/centre": self.centre,
            "splitter/right": self.right,
            "splitter/library": self.library_view.splitter,
            "table/header": self.library_view.table.horizontalHeader(),
        }

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
        edit.addSeparator()
        self.undo_class_action = edit.addAction("&Undo class change", self.undo_class)
        self.undo_class_action.setObjectName("undoClassAction")
        self.undo_class_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.undo_class_action.setEnabled(False)
        self.model_menu = self.menuBar().addMenu("&Model")
        self.model_group = QActionGroup(self)
        self.model_group.setExclusive(True)
        # Listing the bundles reads folders: it runs in the background each time the menu
        # opens, and the menu shows the last list meanwhile.
        self.model_menu.aboutToShow.connect(self._list_models)
        self._fill_model_menu()
        tools = self.menuBar().addMenu("&Tools")
        self.train_action = tools.addAction("&Train model...", self.open_train_wizard)
        self.train_action.setObjectName("trainModelAction")
        self.train_action.setShortcut("Ctrl+T")
        self.improve_action = tools.addAction("&Improve the model with my corrections...",
                                              self.open_improve_wizard)  # fmt: skip
        self.improve_action.setObjectName("improveModelAction")
        self.improve_action.setToolTip("Fine-tune the model in use on the classes you set "
                                       "(right-click > Class), then switch to it")  # fmt: skip
        self.models_action = tools.addAction("&Models...", self.open_model_manager)
        self.models_action.setObjectName("modelsAction")
        self.models_action.setShortcut("Ctrl+M")

    def _list_models(self) -> None:
        self.tasks.run("models", jobs.find_models, on_result=self._models_listed,
                       on_error=lambda _e: None)  # fmt: skip

    def _models_listed(self, bundles: list) -> None:
        self._bundles = bundles
        self._fill_model_menu()

    def _fill_model_menu(self) -> None:
        self.model_menu.clear()
        for action in self.model_group.actions():
            self.model_group.removeAction(action)
        entries = [(info.name, info.path) for info in self._bundles]
        current = _resolved(self.runtime.path) if self.runtime is not None else None
        if current is not None and current not in {_resolved(p) for _n, p in entries}:
            entries.insert(0, (self.runtime.name, self.runtime.path))  # opened from a folder
        names = [n for n, _p in entries]
        for name, path in entries:
            # Two bundles of one name (a copy of the built-in "default") are told apart by
            # where they are.
            label = f"{name} ({Path(path).parent})" if names.count(name) > 1 else name
            action = QAction(label, self, checkable=True)
            action.setToolTip(str(path))
            action.setChecked(_resolved(path) == current)
            action.triggered.connect(lambda _=False, p=str(path): self.switch_model(p))
            self.model_group.addAction(action)
            self.model_menu.addAction(action)
        if not entries:
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
        a.add_to_blend.connect(lambda _ref: self.show_panel(self.blend))
        a.set_class.connect(self.set_class)
        a.message.connect(lambda text: self._status(text, 10000))
        a.user_class = self._user_class
        self.library_view.selection_ids_changed.connect(self.latent_map.select_ids)
        self.library_view.filtered.connect(self._filtered)
        self.library_view.play_toggled.connect(self._toggle_play)
        self.latent_map.clicked.connect(self._map_clicked)
        self.latent_map.selection_changed.connect(self.library_view.select_ids)
        self.latent_map.context_requested.connect(self._map_context)
        self.waveform.play_from.connect(self._play_from)
        self.player.position.connect(self.waveform.set_playhead)
        self.player.state_changed.connect(self.similar.set_playing)
        self.player.unavailable.connect(self._audio_unavailable)
        self.player.error.connect(lambda msg: self._status(msg, 8000))
        self.blend.generated.connect(self._play_generated)
        c = self.controller
        c.message.connect(self._status)
        c.model_loading.connect(lambda: self._status("Loading the model..."))
        c.model_ready.connect(self._model_ready)
        c.model_failed.connect(self._model_failed)
        c.library_opening.connect(self._library_opening)
        c.library_failed.connect(self._library_failed)
        c.scan_started.connect(self._scan_started)
        c.scan_progress.connect(self._scan_progress)
        c.scanned.connect(self._scanned)
        c.scan_failed.connect(self._scan_failed)
        c.map_ready.connect(self._show_map)
        c.map_refined.connect(self._refine_map)
        c.map_failed.connect(self._map_failed)
        c.demo_progress.connect(lambda d, t: self._show_progress(d, t))
        c.demo_ready.connect(self._demo_ready)
        c.demo_failed.connect(self._demo_failed)

    def _status(self, text: str, msecs: int = 0) -> None:
        self.statusBar().showMessage(text, msecs)

    def _audio_unavailable(self, reason: str) -> None:
        self.audio_label.setToolTip(reason)
        self.audio_label.show()
        self._status(reason, 10000)

    # -- closing ---------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        wizard = self._wizard
        if wizard is not None and wizard.training:
            if not messages.confirm(self, "Quit while training?",
                                    "A model is training. Quit and stop it? It is saved, and "
                                    "Tools > Models can resume it where it stopped.",
                                    "Stop training and quit"):  # fmt: skip
                event.ignore()
                return
            self._status("Stopping the training and saving it...")
            wizard.stop_and_wait()
        self._flush_class_writes()
        save_layout(self.settings, self, self._layout_states())
        self.settings.setValue("similar/sameKind", self.similar.same_kind_box.isChecked())
        self.settings.sync()
        self.cancel_all()
        self.player.stop()
        super().closeEvent(event)

    def cancel_all(self) -> None:
        """Ask every running task to stop (a scan stops after its batch in flight)."""
        self.controller.cancel_all()
        self.tasks.cancel()

    # -- model -----------------------------------------------------------------------------------

    def switch_model(self, model: str) -> None:
        """Load another model; the library is re-indexed with it in the background."""
        self.controller.switch_model(model)

    # -- training and models ---------------------------------------------------------------------

    def train_wizard(self):
        """The train wizard (made on first use)."""
        if self._wizard is None:
            from ui.training import TrainWizard

            self._wizard = TrainWizard(self, pool=self.pool, settings=self.settings,
                                       corrections_source=self._corrections_source)  # fmt: skip
            self._wizard.use_model.connect(self.switch_model)
            self._wizard.models_changed.connect(self._list_models)
            self._wizard.training_changed.connect(self._training_status)
        return self._wizard

    def _corrections_source(self):
        """(library, snapshot, runtime) for the wizard's "Improve the active model with my
        corrections"; None while no library is shown."""
        if self.lib is None or self.snapshot is None or self.runtime is None:
            return None
        return self.lib, self.snapshot, self.runtime

    def open_train_wizard(self) -> None:
        self.train_wizard().start_new()

    def open_improve_wizard(self) -> None:
        """The train wizard, on "Improve the active model with my corrections"."""
        from ui.training.wizard import CORRECTIONS, DATA

        wizard = self.train_wizard()
        wizard.start_new()
        if wizard.currentId() == DATA:
            wizard.data_page.set_labels(CORRECTIONS)

    def model_manager(self):
        """The model manager (made on first use)."""
        if self._manager is None:
            from ui.models import ModelManager

            m = ModelManager(self, active=lambda: str(self.runtime.path) if self.runtime else None,
                             pool=self.pool, settings=self.settings)  # fmt: skip
            m.activate.connect(self.switch_model)
            m.resume.connect(self.resume_training)
            m.changed.connect(self._list_models)
            m.renamed.connect(self._model_renamed)
            self._manager = m
        return self._manager

    def open_model_manager(self) -> None:
        m = self.model_manager()
        m.show()
        m.raise_()
        m.activateWindow()

    def resume_training(self, logdir: str) -> None:
        if not self.train_wizard().resume(logdir):
            self._status("Another model is training: stop it first (one run at a time)", 8000)
            self.train_wizard().start_new()

    def _model_renamed(self, old: str, new: str) -> None:
        if self.runtime is not None and Path(old) == Path(self.runtime.path):
            self.switch_model(new)

    def _training_status(self, text: str) -> None:
        if text == self.training_button.text() and bool(text) == self.training_button.isVisible():
            return  # said every second: change the status bar only when there is news
        self.training_button.setText(text)
        self.training_button.setVisible(bool(text))
        if not text and self._manager is not None and self._manager.isVisible():
            self._manager.refresh()

    def _check_runs(self) -> None:
        """Say once, at start-up, when a training run was cut short (Tools > Models resumes)."""
        self.tasks.run("runs", jobs.interrupted_runs, on_result=self._runs_checked,
                       on_error=lambda _e: None)  # fmt: skip

    def _runs_checked(self, runs: list) -> None:
        if runs and not (self._wizard is not None and self._wizard.training):
            names = ", ".join(r.name for r in runs[:3])
            self._status(f"Training of {names} did not finish: Tools > Models... resumes it",
                         15000)  # fmt: skip

    def _choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model folder")
        if folder:
            self.switch_model(folder)

    def _model_ready(self, runtime) -> None:
        self._class_undo.clear()  # the classes undone would be another model's
        self.undo_class_action.setEnabled(False)
        if self.controller.model_name:
            self.settings.setValue("model", self.controller.model_name)
        self.blend.set_model(runtime)
        self.actions.class_names = list(runtime.class_names)
        self.similar.set_same_kind(self.similar.same_kind_box.isChecked(),
                                   bool(runtime.class_names))  # fmt: skip
        self._show_title()
        self._status(f"Model {runtime.name} loaded ({len(runtime.class_names)} classes, "
                     f"{runtime.device})", 5000)  # fmt: skip
        self._fill_model_menu()
        self._list_models()
        if self._manager is not None and self._manager.isVisible():
            self._manager.refresh()  # "In use" moves to this model
        if self._demo_when_empty and not self.library:
            self._demo_when_empty = False  # once: a failure stays on the welcome page
            self.create_demo_library()
        if not self._runs_checked_once:
            self._runs_checked_once = True
            QTimer.singleShot(5000, self._check_runs)  # after the model's own status line
        self.engine_ready.emit(True)

    def _show_title(self) -> None:
        """The library's folder name first (what a user switches between), then the model."""
        parts = [Path(self.library).name or self.library] if self.library else []
        if self.runtime is not None:
            parts.append(f"model {self.runtime.name}")
        self.setWindowTitle(" — ".join([*parts, APP]))

    def _model_failed(self, message: str, kept: bool) -> None:
        if kept:  # a switch failed: keep working with the current model
            self._status(f"The model could not be loaded: {message}", 15000)
            return
        self.blend.set_model(None)
        self.welcome.setText(
            f"<h2>Sample Tool</h2><p>The model could not be loaded:</p><p>{message}</p>"
        )
        self.stack.setCurrentIndex(0)
        self._status("No model loaded")
        self.engine_ready.emit(False)

    # -- library ---------------------------------------------------------------------------------

    def set_library(self, folder: str) -> None:
        self.settings.setValue("library", folder)
        self.stack.setCurrentIndex(1)
        self.library_changed.emit(folder)
        self.controller.set_library(folder)

    def _choose_library(self) -> None:
        start = self.library or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open sample folder", start)
        if folder:
            self.set_library(folder)

    def create_demo_library(self, folder: str | None = None) -> None:
        """Synthesise the demo library in the background (progress in the status bar), then
        open it."""
        target = Path(folder) if folder else demo_library_dir()
        self.demo_button.setEnabled(False)
        self._show_progress(0, 0)
        self._status(f"Creating the demo library in {target}...")
        self.controller.create_demo_library(target)

    def _demo_ready(self, folder: str, files: int) -> None:
        self._hide_progress()
        self.demo_button.setEnabled(True)
        self.set_library(folder)
        self._status(f"Demo library ready: {files} files", 5000)

    def _demo_failed(self, message: str) -> None:
        self._hide_progress()
        self.demo_button.setEnabled(True)
        text = f"The demo library could not be created: {message}"
        self._status(text)
        self.welcome.setText(f"<h2>Sample Tool</h2><p>{text}</p>")  # stays while you choose

    def open_library(self, folder: str, rebuild: bool = False) -> None:
        self.controller.open_library(folder, rebuild)

    def _library_opening(self, folder: str) -> None:
        # The previous library is retired: nothing of it stays on screen or in flight.
        self.tasks.drop("similar", "classify")
        self._class_undo.clear()  # its paths are the old library's
        self.undo_class_action.setEnabled(False)
        self.blend.set_library(None)
        self._hide_progress()
        self.similar.clear()
        self.waveform.clear()
        self._playing_ref = None
        self.library_view.clear(f"Opening {folder}...")
        self.latent_map.set_points(np.zeros(0, np.int64), np.zeros((0, 2), np.float32),
                                   np.zeros(0, np.int64), [], [])  # fmt: skip
        self.latent_map.set_note(f"Opening {folder}...")
        self.count_label.clear()
        self.failures_button.hide()
        self.rebuild_button.hide()
        self._show_title()
        self._status(f"Opening {folder}...")

    def _library_failed(self, error: BaseException) -> None:
        from sampletool.library.catalogue import CatalogueError

        rebuildable = isinstance(error, CatalogueError) and error.rebuildable
        msg = error.problem if rebuildable else message_of(error)  # no command-line advice
        self._status(msg)
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

    def _rebuild(self, folder: str | None) -> None:
        if folder:
            self.stack.setCurrentIndex(1)
            self.open_library(folder, rebuild=True)

    def rescan(self) -> None:
        self.controller.rescan()

    def cancel_indexing(self) -> None:
        if self.controller.cancel_scan():
            self._status("Cancelling the scan...")

    def _scan_started(self) -> None:
        lib = self.controller.lib
        self.blend.set_library(lib)
        self.settings.setValue("library", str(lib.root))
        self._status(f"Indexing {lib.root}...")
        self._show_progress(0, 0, cancellable=True)
        self._show_title()
        if self.snapshot is None:  # a first scan: say what the empty panels wait for
            self._waiting_note(f"Indexing {lib.root}...")

    def _waiting_note(self, text: str) -> None:
        self.library_view.set_note(text)
        self.latent_map.set_note(text)

    def _scan_progress(self, done: int, total: int, message: str) -> None:
        self._show_progress(done, total, cancellable=True)
        if message:
            self._status(message)
        if self.snapshot is None and total > 0:
            self._waiting_note(f"Indexing {self.library}: {done:,} of {count_text(total, 'file')}"
                               "\n\nThe samples appear here when the scan ends.")  # fmt: skip

    def _scanned(self, result: jobs.Scanned) -> None:
        report = result.report
        self._hide_progress()
        # The count of samples is in the status bar's corner: say what this scan did.
        done = [f"{n} {what}" for n, what in ((report.indexed, "indexed"), (report.moved, "moved"),
                                              (report.removed, "removed")) if n]  # fmt: skip
        parts = [", ".join(done) if done else "Library up to date"]
        if report.cancelled:
            parts.append("scan cancelled: the next scan carries on")
        self._status(" · ".join(parts), 8000)
        snapshot = result.snapshot
        root = self.lib.root if self.lib else ""
        self.library_view.set_snapshot(snapshot, root, result.columns)
        n_failed = len(snapshot.failures)
        empty = ""
        if not len(snapshot) and n_failed:
            empty = (f"None of the {count_text(n_failed, 'audio file')} in {root} could be "
                     "read: the list at the bottom right says why.")  # fmt: skip
        elif not len(snapshot) and not report.cancelled:
            empty = (f"No audio files in {root}.\n\nSample Tool reads {READABLE_FORMATS} "
                     "files in the folder and its sub-folders. Open another folder "
                     "(Ctrl+O), or add samples and press F5.")  # fmt: skip
        if empty:
            self._status(empty.split("\n")[0], 15000)
        self._waiting_note(empty)
        self._show_count()
        self.failures_button.setText(f"{n_failed} could not be read")
        self.failures_button.setVisible(n_failed > 0)
        self.failures_dialog.set_failures(snapshot.failures)

    def _filtered(self, ids) -> None:
        """The table's filters changed: the map and the count follow."""
        self.latent_map.set_filter(ids)
        self._show_count()

    def _show_count(self) -> None:
        snapshot = self.snapshot
        if snapshot is None:
            self.count_label.clear()
            return
        shown = self.library_view.model.shown_ids()
        total = len(snapshot)
        self.count_label.setText(count_text(total) if shown is None
                                 else f"{len(shown):,} of {count_text(total)}")  # fmt: skip

    def _scan_failed(self, message: str) -> None:
        self._hide_progress()
        self._status(f"Indexing failed: {message}")
        if self.snapshot is None:  # nothing of this library to show: say so where it shows
            self._waiting_note(f"{self.library} could not be indexed: {message}")
        self.stuck.emit(message)

    def _show_map(self, snapshot, xy: np.ndarray) -> None:
        m = self.latent_map
        if np.array_equal(m.ids(), snapshot.ids) and np.array_equal(m.positions(), xy):
            # The same layout again (a rescan that changed nothing): keep the view, the
            # selection and the similar results where they are.
            m.set_classes(snapshot.classes)
        else:
            m.set_points(snapshot.ids, xy, snapshot.classes, snapshot.class_names,
                         self.lookups.labels)  # fmt: skip
        self.library_ready.emit()

    def _refine_map(self, snapshot, xy: np.ndarray) -> None:
        self.latent_map.animate_to(xy, 700)  # the view follows unless the user moved it
        QTimer.singleShot(800, self.map_refined.emit)

    def _map_failed(self, message: str) -> None:
        self._status(f"The detailed map could not be computed: {message}", 8000)
        self.stuck.emit(message)

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

    # -- the user's classes ----------------------------------------------------------------------

    def _user_class(self, ref: SampleRef) -> str | None:
        """The class the user gave a sample's file (None: none, or not in the library)."""
        row = self._row_of(ref)
        snap = self.snapshot
        if snap is None or row is None or len(snap.labels) != len(snap):
            return None
        return snap.labels[row]

    def set_class(self, refs: list[SampleRef], cls: str | None, undoable: bool = True) -> None:
        """Give these samples' files the user's class (None: the model's again). Shown at once
        (table, map, search); written to the catalogue off the GUI thread, one change after
        another in order; Ctrl+Z undoes. A write that fails puts the shown classes back."""
        snapshot, lib = self.snapshot, self.lib
        if lib is None or snapshot is None or not refs:
            return
        paths = sorted({r.path for r in refs})
        rows = [i for i, p in enumerate(snapshot.paths) if p in set(paths)]
        if len(snapshot.labels) != len(snapshot):
            snapshot.labels = [None] * len(snapshot)
        before = {snapshot.paths[i]: snapshot.labels[i] for i in rows}
        self._show_labels(snapshot, rows, cls)
        if undoable:
            self._class_undo.append(before)
            self.undo_class_action.setEnabled(True)
        what = f"{len(paths)} sample{'s' if len(paths) != 1 else ''}"
        said = f"set to {cls}" if cls else "back to the model's class"
        self._status(f"{what} {said}" + (" · Ctrl+Z undoes" if undoable else ""), 6000)
        self._class_writes.append((lib, snapshot, paths, cls, before))
        if len(self._class_writes) == 1:
            self._write_next_class()

    def _write_next_class(self) -> None:
        if not self._class_writes:
            return
        entry = self._class_writes[0]
        lib, snapshot, paths, cls, before = entry

        def next_one(_result=None) -> None:
            if self._class_writes and self._class_writes[0] is entry:  # not flushed meanwhile
                self._class_writes.pop(0)
                self._write_next_class()

        def failed(error: BaseException) -> None:
            if snapshot is self.snapshot:  # put back what the write could not keep
                for old in set(before.values()):
                    rows = [i for i, p in enumerate(snapshot.paths) if before.get(p, 0) == old]
                    self._show_labels(snapshot, rows, old)
            self._status(f"The class could not be set: {message_of(error)}", 10000)
            next_one()

        self.tasks.run(("class", id(entry)), jobs.set_class, lib, paths, cls,
                       on_result=next_one, on_error=failed)  # fmt: skip

    def _flush_class_writes(self) -> None:
        """Quitting: write the class changes still queued now (a few rows each; writing one
        that is in flight again does no harm), so none is lost."""
        pending, self._class_writes = self._class_writes, []
        for lib, _snapshot, paths, cls, _before in pending:
            try:
                lib.set_class(paths, cls)
            except Exception:  # quitting: say nothing, lose nothing else
                pass

    def _show_labels(self, snapshot, rows: list[int], cls: str | None) -> None:
        """Show `cls` as the user's class of these entries, where `snapshot` is shown."""
        for i in rows:
            snapshot.labels[i] = cls
        if snapshot is not self.snapshot:
            return
        self.library_view.update_classes(snapshot)
        if np.array_equal(self.latent_map.ids(), snapshot.ids):  # else its points are coming
            self.latent_map.set_classes(snapshot.classes)

    def undo_class(self) -> None:
        """Put back the classes the last change replaced."""
        if not self._class_undo:
            return
        before = self._class_undo.pop()
        self.undo_class_action.setEnabled(bool(self._class_undo))
        for cls in set(before.values()):
            refs = [SampleRef(p, 0.0) for p, c in before.items() if c == cls]
            self.set_class(refs, cls, undoable=False)

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
        onsets: list[float] | tuple = ()
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
        self.tasks.run("audio", jobs.read_for_playback, path, at,
                       on_result=lambda r: self.player.play_excerpt(r[0], r[1], at),
                       on_error=lambda e: self._status(
                           f"Cannot play {Path(path).name}: {reason_of(e)}", 8000))  # fmt: skip

    def _toggle_play(self) -> None:
        if self.player.is_playing:
            self.player.stop()
            return
        ref = self.library_view.current_ref()
        if ref is not None:
            self.audition(ref)

    def _play_from(self, seconds: float) -> None:
        if self._playing_ref is not None:
            self._play_file(self._playing_ref.path, max(0.0, seconds))
        elif self._generated is not None:
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
        self.similar.set_query(ref)
        self.show_panel(self.similar)

        def done(answer) -> None:
            results, kind, note = answer
            self.similar.show_results(ref, results, kind, note)
            ids = [int(self.snapshot.ids[r]) for r in
                   (self._row_of(x) for x, _ in results) if r is not None]  # fmt: skip
            self.latent_map.highlight(ids)
            self._status(f"{len(results)} similar to {ref.name}", 5000)

        def failed(error: BaseException) -> None:
            self.similar.show_error(f"{Path(ref.path).name} could not be searched: "
                                    f"{message_of(error)}")  # fmt: skip

        self.tasks.run("similar", jobs.search, self.lib, ref, NUM_SIMILAR,
                       self.similar.same_kind(), on_result=done, on_error=failed)  # fmt: skip

    def classify(self, ref: SampleRef) -> None:
        popup = self.classify_popup
        popup.set_query(ref)
        popup.popup_at(QCursor.pos())
        row = self._row_of(ref)
        self.tasks.drop("classify")  # an older answer must not replace this one
        if self.snapshot is not None and row is not None and self.snapshot.probs is not None:
            popup.show_probabilities(ref, self.snapshot.class_names, self.snapshot.probs[row],
                                     class_note(self.snapshot.reading(row)))  # fmt: skip
            return
        if self.runtime is None:
            popup.show_error("The model is still loading.")
            return
        if not self.runtime.class_names:
            popup.show_error("This model has no classifier.")
            return
        names = list(self.runtime.class_names)
        runtime = self.runtime
        self.tasks.run("classify", jobs.classify, runtime, ref,
                       on_result=lambda p: popup.show_probabilities(
                           ref, names, p, class_note(runtime.read_class(p))),
                       on_error=lambda e: popup.show_error(message_of(e)))  # fmt: skip
