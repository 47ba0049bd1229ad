"""The train wizard (Tools > Train model...): a custom model from the user's own folders.

1. Data: folders, classes from sub-folders / drum words in names / none; what was found is
   shown before anything runs (`survey_folders`, in the background). Or "Improve the active
   model with my corrections": the library's files whose class the user set, with the files
   the model is sure of (`sampletool.training.corrections`); the run fine-tunes the active
   model and the app switches to the result when it ends.
2. Setup: name, where to start (a fresh model or a bundle to fine-tune), kind and size (each
   with a training time measured by a few real steps in a separate process), validation
   share, noise augmentation, and the run's limits.
3. Training: the same Trainer as `sampletool train`, in its own process; live loss, accuracy
   and confusion matrix; Pause, Resume, Stop. Closing the wizard leaves it training.
4. Finish: the model's validation figures, and "Use it now".

Runs live in the user's models folder, so a finished (or stopped) run is an installed model.
A run cut short (the app closed, a crash) is listed by the model manager with Resume, which
opens this wizard at page 3 (`resume`).
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from ui.dialogs.failures import FailuresDialog
from ui.messages import message_of
from ui.settings import app_settings
from ui.training import jobs
from ui.training.charts import TrainingCharts
from ui.training.session import NICE, TrainingSession, plugin_args
from ui.widgets import StatusLine
from ui.workers import EngineProcess, Pool, TaskGroup

DATA, SETUP, TRAINING, FINISH = range(4)
LABELS = ("subfolders", "names", "none")
CORRECTIONS = "corrections"  # the Data page's fourth choice: the library's corrections
MODES = (*LABELS, CORRECTIONS)
AUGMENT_MODES = (("none", "None"), ("additive", "Additive noise"),
                 ("multiplicative", "Multiplicative noise"), ("both", "Both"))  # fmt: skip
NOISES = (("gaussian", "Gaussian"), ("laplace", "Laplace"), ("gmm", "Gaussian mixture"))
FINE_TUNE_LR = 3e-4
ERROR_COLOUR = "#d03030"
WARN = "color: #d08000;"
ERROR = f"color: {ERROR_COLOUR};"


def duration_text(seconds: float) -> str:
    """'about 40 s', 'about 12 min', 'about 2 h 10 min'."""
    if seconds < 90:
        return f"about {max(round(seconds / 5) * 5, 5):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 100:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


class DataPage(QWizardPage):
    """Folders in, a survey out: classes and counts, unreadable files, problems."""

    def __init__(self, wizard: TrainWizard) -> None:
        super().__init__(wizard)
        self.w = wizard
        self.setObjectName("trainDataPage")
        self.setTitle("Your samples")
        self.setSubTitle("Choose the folders to learn from. Nothing is copied or moved.")
        self.survey = None  # sampletool.data.dataset.Survey, once checked
        self.folders = QListWidget(self)
        self.folders.setObjectName("trainFolders")
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.folders.setAcceptDrops(True)
        self.folders.viewport().setAcceptDrops(True)
        self.folders.setMaximumHeight(110)
        self.folders.setToolTip("Drop folders here from your file manager")
        self.folders.installEventFilter(self)
        self.folders.viewport().installEventFilter(self)
        add = QPushButton("&Add folder...", self)
        add.setObjectName("addFolderButton")
        add.clicked.connect(self._choose_folder)
        self.remove = QPushButton("&Remove", self)
        self.remove.setObjectName("removeFolderButton")
        self.remove.clicked.connect(self._remove_selected)
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(self.remove)
        buttons.addStretch()
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folders, 1)
        folder_row.addLayout(buttons)

        self.label_group = QButtonGroup(self)
        texts = ("Classes from &sub-folders (Kicks/, Snares/...)",
                 "Classes from &file names (the drum words: Kick_01.wav, SD Tight 3.aif)",
                 "&No classes: a model for search and blending only",
                 "&Improve the active model with my corrections (right-click > Class in the "
                 "library)")  # fmt: skip
        self.corrections = None  # sampletool.training.corrections.Corrections, once found
        labels_box = QVBoxLayout()
        for i, (key, text) in enumerate(zip(MODES, texts, strict=True)):
            b = QRadioButton(text, self)
            b.setObjectName(f"trainLabels_{key}")
            self.label_group.addButton(b, i)
            labels_box.addWidget(b)
        self.label_group.idClicked.connect(lambda _i: self._schedule())

        self.progress = QProgressBar(self)
        self.progress.setObjectName("surveyProgress")
        self.progress.hide()
        self.summary = QLabel(self)
        self.summary.setObjectName("surveySummary")
        self.summary.setWordWrap(True)
        self.failures_button = QPushButton(self)
        self.failures_button.setObjectName("surveyFailuresButton")
        self.failures_button.setFlat(True)
        self.failures_button.hide()
        self.failures_dialog = FailuresDialog(self)
        self.failures_button.clicked.connect(self.failures_dialog.show)
        self.table = QTableWidget(0, 2, self)
        self.table.setObjectName("trainClassTable")
        self.table.setHorizontalHeaderLabels(["Class", "Files"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents
        )
        self.warnings = QLabel(self)
        self.warnings.setObjectName("surveyWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet(WARN)
        self.problem = QLabel(self)
        self.problem.setObjectName("surveyProblem")
        self.problem.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(folder_row)
        layout.addLayout(labels_box)
        layout.addWidget(self.progress)
        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.failures_button)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.warnings)
        layout.addWidget(self.problem)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self._survey)

        self.folder_widgets = (self.folders, add, self.remove)
        s = wizard.settings
        remembered = str(s.value("train/labels", "subfolders"))
        self.label_group.button(MODES.index(remembered) if remembered in MODES else 0).setChecked(
            True
        )
        for folder in s.value("train/folders", [], type=list) or []:
            self._add(str(folder))
        self._schedule()

    # -- folders --------------------------------------------------------------------------------

    @property
    def labels(self) -> str:
        """How classes are found: one of `LABELS`, or `CORRECTIONS`."""
        return MODES[max(self.label_group.checkedId(), 0)]

    def set_labels(self, labels: str) -> None:
        self.label_group.button(MODES.index(labels)).setChecked(True)
        self._schedule()

    def folder_list(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    def add_folders(self, folders: list[str]) -> None:
        for f in folders:
            self._add(f)
        self._schedule()

    def _add(self, folder: str) -> None:
        folder = str(Path(folder).expanduser())
        if folder and folder not in self.folder_list():
            self.folders.addItem(folder)

    def _choose_folder(self) -> None:
        """Ask for a folder, starting beside the last one added, else in the open library."""
        source = self.w.corrections_source() if self.w.corrections_source else None
        library = str(source[0].root) if source is not None else str(Path.home())
        start = self.folder_list()[-1] if self.folders.count() else library
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of samples", start)
        if folder:
            self.add_folders([folder])

    def _remove_selected(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))
        self._schedule()

    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if t in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and event.mimeData().hasUrls():
            event.acceptProposedAction()
            return True
        if t == QEvent.Type.Drop and event.mimeData().hasUrls():
            dirs = [u.toLocalFile() for u in event.mimeData().urls()
                    if u.isLocalFile() and Path(u.toLocalFile()).is_dir()]  # fmt: skip
            self.add_folders(dirs)
            event.acceptProposedAction()
            return True
        if (t == QEvent.Type.KeyPress and obj is self.folders
                and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)):  # fmt: skip
            self._remove_selected()
            return True
        return super().eventFilter(obj, event)

    # -- the survey -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        self.survey = None
        self.corrections = None
        self.completeChanged.emit()
        improving = self.labels == CORRECTIONS
        for widget in self.folder_widgets:
            widget.setEnabled(not improving)
        self.remove.setEnabled(not improving and self.folders.count() > 0)
        self._timer.start()

    def _survey(self) -> None:
        folders = self.folder_list()
        self.w.settings.setValue("train/folders", folders)
        self.w.settings.setValue("train/labels", self.labels)
        self.table.setRowCount(0)
        self.warnings.clear()
        self.failures_button.hide()
        if self.labels == CORRECTIONS:
            self._find_corrections()
            return
        if not folders:
            self.w.tasks.drop("survey")
            self.progress.hide()
            self.summary.setText("Add a folder of samples, or drop one here.")
            self.problem.clear()
            return
        self.summary.setText("Checking the files...")
        self.problem.clear()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.w.tasks.run("survey", jobs.survey, folders, self.labels, pass_control=True,
                         on_progress=self._progress, on_result=self._surveyed,
                         on_error=self._survey_failed)  # fmt: skip

    def _find_corrections(self) -> None:
        source = self.w.corrections_source() if self.w.corrections_source else None
        self.problem.setStyleSheet(ERROR)
        if source is None:
            self.w.tasks.drop("survey")
            self.progress.hide()
            self.summary.clear()
            self.problem.setText("✖ Open a sample library in the main window first: the "
                                 "corrections are the classes you set there.")  # fmt: skip
            return
        library, snapshot, runtime = source
        if not runtime.class_names:
            self.w.tasks.drop("survey")
            self.progress.hide()
            self.summary.clear()
            self.problem.setText(f"✖ {runtime.name} has no classifier: there is nothing to "
                                 "correct.")  # fmt: skip
            return
        self.summary.setText(f"Finding your corrections in {library.root.name}...")
        self.problem.clear()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.w.tasks.run("survey", jobs.corrections, library, snapshot,
                         on_result=self._corrections_found,
                         on_error=self._survey_failed)  # fmt: skip

    def _corrections_found(self, found) -> None:
        self.corrections = found
        self._surveyed(found.survey)
        model = self.w.active_model()
        if model is not None:
            self.summary.setText(f"Fine-tunes {model.name} on {len(found.survey.items):,} files "
                                 "of your library")  # fmt: skip

    def _progress(self, done: int, total: int, _message: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)
        self.summary.setText(f"Checking the files: {done:,} of {total:,}...")

    def _survey_failed(self, error: BaseException) -> None:
        self.progress.hide()
        self.summary.clear()
        self.problem.setStyleSheet(ERROR)
        self.problem.setText(message_of(error))

    def _surveyed(self, survey) -> None:
        self.progress.hide()
        self.survey = survey
        counts = survey.counts
        n = sum(counts.values())
        parts = [f"{n:,} files" + (f" in {len(counts)} classes" if survey.class_names else "")]
        if survey.failed:
            parts.append(f"{len(survey.failed):,} cannot be read")
        if survey.repeated:
            parts.append(f"{survey.repeated:,} found in more than one folder, counted once")
        self.summary.setText(" · ".join(parts) if n or survey.failed else "")
        if survey.failed:
            self.failures_button.setText("Show the files that cannot be read")
            self.failures_button.show()
            self.failures_dialog.set_failures(survey.failed)
        if survey.class_names:
            self.table.setRowCount(len(counts))
            for row, (cls, k) in enumerate(counts.items()):
                self.table.setItem(row, 0, QTableWidgetItem(cls))
                item = QTableWidgetItem(f"{k:,}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, 1, item)
        self.table.setVisible(bool(survey.class_names))
        self.warnings.setText("\n".join(f"⚠ {w}" for w in survey.warnings))
        self.problem.setStyleSheet(ERROR)
        self.problem.setText("" if survey.ok else f"✖ {survey.problem[0].upper()}"
                             f"{survey.problem[1:]}.")  # fmt: skip
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.survey is not None and self.survey.ok


class SetupPage(QWizardPage):
    """How to train: name, start, kind and size (with measured times), split, augmentation."""

    def __init__(self, wizard: TrainWizard) -> None:
        super().__init__(wizard)
        self.w = wizard
        self.setObjectName("trainSetupPage")
        self.setTitle("How to train")
        self.setSubTitle("Times are measured on this machine with a few real training steps. "
                         "Training stops sooner once the model stops improving.")  # fmt: skip
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "&Train")
        self.installed = None  # jobs.Installed
        self._bundles: dict = {}  # bundle folder -> BundleInfo, as listed
        self.measurements: dict[str, dict] = {}  # size ("" when fine-tuning) -> measurement
        self._estimator: EngineProcess | None = None
        self._lr_edited = False
        self._timer = QTimer(self)  # measuring waits for the choices to settle
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self._measure)

        self.name = QLineEdit(self)
        self.name.setObjectName("trainName")
        self.name.textChanged.connect(self._check_name)
        self.name.textEdited.connect(lambda _t: setattr(self, "_name_edited", True))
        self._name_edited = False
        self.name_note = QLabel(self)
        self.name_note.setObjectName("trainNameNote")
        self.name_note.setStyleSheet(ERROR)
        self.start_from = QComboBox(self)
        self.start_from.setObjectName("trainStartFrom")
        self.start_from.currentIndexChanged.connect(self._start_changed)
        self.start_note = QLabel(self)
        self.start_note.setWordWrap(True)
        self.kind = QComboBox(self)
        self.kind.setObjectName("trainKind")
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.kind_problem: str | None = None
        self.kind_note = QLabel(self)
        self.kind_note.setWordWrap(True)

        self.size_group = QButtonGroup(self)
        self.size_buttons: dict[str, QRadioButton] = {}
        self.size_notes: dict[str, QLabel] = {}
        sizes = QGridLayout()
        for i, size in enumerate(("small", "medium", "large")):
            b = QRadioButton(size.capitalize(), self)
            b.setObjectName(f"trainSize_{size}")
            self.size_group.addButton(b, i)
            note = QLabel(self)
            note.setObjectName(f"trainEstimate_{size}")
            self.size_buttons[size], self.size_notes[size] = b, note
            sizes.addWidget(b, i, 0)
            sizes.addWidget(note, i, 1)
        self.size_group.idClicked.connect(lambda _i: self._changed(measure=False))
        self.fine_tune_note = QLabel(self)
        self.fine_tune_note.setObjectName("trainEstimate_")
        sizes.addWidget(self.fine_tune_note, 3, 0, 1, 2)
        sizes.setColumnStretch(1, 1)

        self.val_split = QSpinBox(self)
        self.val_split.setObjectName("trainValSplit")
        self.val_split.setRange(5, 50)
        self.val_split.setSuffix(" %")
        self.val_split.setToolTip("The share of each class held out to measure the model")
        self.val_split.valueChanged.connect(lambda _v: self._changed(measure=False))
        self.augment = QComboBox(self)
        self.augment.setObjectName("trainAugment")
        for key, text in AUGMENT_MODES:
            self.augment.addItem(text, key)
        self.noise = QComboBox(self)
        self.noise.setObjectName("trainNoise")
        for key, text in NOISES:
            self.noise.addItem(text, key)
        self.snr_min, self.snr_max = QSpinBox(self), QSpinBox(self)
        for box, name in ((self.snr_min, "trainSnrMin"), (self.snr_max, "trainSnrMax")):
            box.setObjectName(name)
            box.setRange(-10, 60)
            box.setSuffix(" dB")
        self.snr_min.valueChanged.connect(lambda v: self.snr_max.setMinimum(v))
        aug_row = QHBoxLayout()
        aug_row.addWidget(self.augment)
        aug_row.addWidget(self.noise)
        aug_row.addWidget(QLabel("signal-to-noise", self))
        aug_row.addWidget(self.snr_min)
        aug_row.addWidget(QLabel("to", self))
        aug_row.addWidget(self.snr_max)
        aug_row.addStretch()
        self.augment.currentIndexChanged.connect(self._augment_changed)
        self.noise.currentIndexChanged.connect(lambda _i: self._changed())

        self.advanced_toggle = QToolButton(self)
        self.advanced_toggle.setObjectName("trainAdvancedToggle")
        self.advanced_toggle.setText("&Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced = QWidget(self)
        self.advanced.setObjectName("trainAdvanced")
        self.batch = QSpinBox(self)
        self.batch.setObjectName("trainBatchSize")
        self.batch.setRange(2, 1024)
        self.lr = QDoubleSpinBox(self)
        self.lr.setObjectName("trainLearningRate")
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 0.1)
        self.lr.setSingleStep(1e-4)
        self.lr.valueChanged.connect(lambda _v: setattr(self, "_lr_edited", True))
        self.max_steps = QSpinBox(self)
        self.max_steps.setObjectName("trainMaxSteps")
        self.max_steps.setRange(0, 10_000_000)
        self.max_steps.setSpecialValueText("automatic")
        self.eval_every = QSpinBox(self)
        self.eval_every.setObjectName("trainEvalEvery")
        self.eval_every.setRange(0, 100_000)
        self.eval_every.setSpecialValueText("automatic")
        adv = QHBoxLayout(self.advanced)
        adv.setContentsMargins(16, 0, 0, 0)
        for text, field in (("Batch size", self.batch), ("Learning rate", self.lr),
                            ("At most", self.max_steps), ("steps, validating every",
                                                          self.eval_every)):  # fmt: skip
            adv.addWidget(QLabel(text, self))
            adv.addWidget(field)
        adv.addWidget(QLabel("steps", self))
        adv.addStretch()
        self.advanced_toggle.toggled.connect(self._show_advanced)
        self.batch.valueChanged.connect(lambda _v: self._changed())
        self.max_steps.valueChanged.connect(lambda _v: self._changed(measure=False))
        self.eval_every.valueChanged.connect(lambda _v: self._changed(measure=False))

        self.command_button = QPushButton("Copy &command...", self)
        self.command_button.setObjectName("copyCommandButton")
        self.command_button.setToolTip("The same training from a terminal, or on a bigger "
                                       "machine with torchrun")  # fmt: skip
        self.command_button.clicked.connect(lambda: self.w.show_command())
        self.plan = QLabel(self)
        self.plan.setObjectName("trainPlan")
        self.plan.setWordWrap(True)

        form = QFormLayout()

        def row(text: str, buddy: QWidget, *below: QWidget | QGridLayout) -> None:
            label = QLabel(text, self)
            label.setBuddy(buddy)
            if not below:
                form.addRow(label, buddy)
                return
            box = QVBoxLayout()
            box.setSpacing(2)
            for part in (buddy, *below):
                if isinstance(part, QWidget):
                    box.addWidget(part)
                else:
                    box.addLayout(part)
            form.addRow(label, box)

        row("&Name", self.name, self.name_note)
        row("&Start from", self.start_from, self.start_note)
        row("Model &kind", self.kind, self.kind_note)
        size_label = QLabel("Size", self)
        form.addRow(size_label, sizes)
        self.val_split.setMaximumWidth(90)
        val_row = QHBoxLayout()
        val_row.addWidget(self.val_split)
        val_row.addWidget(QLabel("of each class is held out to measure the model", self), 1)
        val_label = QLabel("&Validation", self)
        val_label.setBuddy(self.val_split)
        form.addRow(val_label, val_row)
        aug_label = QLabel("Noise &augmentation", self)
        aug_label.setBuddy(self.augment)
        form.addRow(aug_label, aug_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced)
        bottom = QHBoxLayout()
        bottom.addWidget(self.plan, 1)
        bottom.addWidget(self.command_button)
        layout.addLayout(bottom)
        layout.addStretch()

        s = wizard.settings
        self.val_split.setValue(int(s.value("train/valSplit", 10)))
        self._select(self.augment, str(s.value("train/augment", "none")))
        self._select(self.noise, str(s.value("train/noise", "gaussian")))
        self.snr_min.setValue(int(s.value("train/snrMin", 10)))
        self.snr_max.setValue(int(s.value("train/snrMax", 30)))
        self.size_buttons.get(str(s.value("train/size", "medium")),
                              self.size_buttons["medium"]).setChecked(True)  # fmt: skip
        self.batch.setValue(64)
        self.lr.setValue(1e-3)
        self._lr_edited = False
        self._show_advanced(False)
        self._augment_changed()

    def _show_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    @staticmethod
    def _select(combo: QComboBox, key: str) -> None:
        i = combo.findData(key)
        combo.setCurrentIndex(max(i, 0))

    # -- filling in -----------------------------------------------------------------------------

    def initializePage(self) -> None:
        self.measurements.clear()
        if not self._name_edited:
            self.name.setText(self._free_name(set()))
        self.w.tasks.run("installed", jobs.installed, on_result=self._installed,
                         on_error=lambda e: self.start_note.setText(message_of(e)))  # fmt: skip
        self._changed()

    def _free_name(self, taken: set[str]) -> str:
        """The first folder's name, numbered if a model has it already."""
        from sampletool.models.store import free_name

        survey = self.w.survey
        base = Path(survey.data_dirs[0]).name if survey and survey.data_dirs else "my-model"
        active = self.w.active_model() if self.w.improving() else None
        if active is not None:
            base = f"{active.name}-corrected"
        return free_name(base, taken, "my-model")

    def _installed(self, installed) -> None:
        self.installed = installed
        self._bundles = {str(e.info.path): e.info for e in installed.models}
        if not self._name_edited:
            self.name.setText(self._free_name(installed.taken))
        survey = self.w.survey
        classes = survey.class_names if survey is not None else []
        from sampletool.data.labels import names_drums

        kinds_before = self.kind.currentData()
        self.kind.blockSignals(True)
        self.kind.clear()
        for name, description, sizes in installed.kinds:
            self.kind.addItem(name, (name, description, sizes))
        self._select_kind(kinds_before or "vae")
        self.kind.blockSignals(False)
        self.start_from.blockSignals(True)
        self.start_from.clear()
        self.start_from.addItem("A fresh model", None)
        default_index = 0
        for entry in installed.models:
            info = entry.info
            n = len(info.class_names)
            label = f"{info.name} ({info.kind}, {n} classes)" if n else f"{info.name} ({info.kind})"
            self.start_from.addItem(f"Fine-tune {label}", str(info.path))
            # The built-in model knows these sounds: drums (a kit's "Kicks", "Hats"...) or its
            # own classes (a folder of "fx" or "percussion" beside the drums).
            own = bool(classes) and set(classes) <= set(info.class_names)
            knows = own or names_drums(classes)
            if entry.builtin and info.name == "default" and knows:
                default_index = self.start_from.count() - 1
        active = self.w.active_model() if self.w.improving() else None
        if active is not None:  # corrections fine-tune the model in use, nothing else
            found = self.start_from.findData(str(active.path))
            if found < 0:
                self.start_from.addItem(f"Fine-tune {active.name} ({active.kind})",
                                        str(active.path))  # fmt: skip
                self._bundles[str(active.path)] = active
                found = self.start_from.count() - 1
            default_index = found
        self.start_from.setEnabled(active is None)
        self.start_from.setCurrentIndex(default_index)
        self.start_from.blockSignals(False)
        self._start_changed()
        self._check_name()

    def _select_kind(self, name: str) -> None:
        for i in range(self.kind.count()):
            if self.kind.itemData(i)[0] == name:
                self.kind.setCurrentIndex(i)
                return

    def _start_changed(self) -> None:
        source = self.start_from.currentData()
        fine = source is not None
        self.kind.setEnabled(not fine)
        for b in self.size_buttons.values():
            b.setEnabled(not fine)
        if fine:
            model, _audio, classes = jobs.bundle_settings(self._bundles[source])
            self._select_kind(str(model.get("kind", "vae")))
            survey = self.w.survey
            same = survey is not None and list(classes) == survey.class_names
            self.start_note.setText(
                "Keeps what this model knows and learns your "
                + ("classes again." if same else "classes (its classifier starts afresh).")
            )
            if not self._lr_edited:
                self.lr.setValue(FINE_TUNE_LR)
        else:
            self.start_note.setText("Learns everything from your samples.")
            if not self._lr_edited:
                self.lr.setValue(1e-3)
        self._lr_edited = False
        self._kind_changed()

    def _kind_changed(self) -> None:
        data = self.kind.currentData()
        if data is None:
            return
        name, description, sizes = data
        for size, b in self.size_buttons.items():
            b.setVisible(size in sizes or not sizes)
            self.size_notes[size].setVisible(b.isVisible())
        self.kind_problem = self._kind_problem(name)
        self.kind_note.setText(f"✖ {self.kind_problem}" if self.kind_problem else description)
        self.kind_note.setStyleSheet(ERROR if self.kind_problem else "")
        self.completeChanged.emit()
        self._changed()

    def _kind_problem(self, name: str) -> str | None:
        """Why the chosen model cannot train on the data found (a kind that needs classes,
        on folders without any), or None."""
        from sampletool.models.kinds import config_from_dict, get_kind

        survey = self.w.survey
        if survey is None:
            return None
        source = self.start_from.currentData()
        try:
            if source is not None:
                model = jobs.bundle_settings(self._bundles[source])[0]
            else:
                model = get_kind(name).preset(self.size)
            config_from_dict(dict(model) | {"num_classes": len(survey.class_names)})
        except ValueError as e:
            return str(e)[0].upper() + str(e)[1:]
        return None

    def _augment_changed(self) -> None:
        on = self.augment.currentData() != "none"
        for widget in (self.noise, self.snr_min, self.snr_max):
            widget.setEnabled(on)
        self._changed()

    def _check_name(self) -> None:
        from sampletool.models.store import name_problem

        taken = self.installed.taken if self.installed is not None else set()
        problem = name_problem(self.name.text(), taken)
        self.name_note.setText(problem or "")
        self.name_note.setVisible(bool(problem))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return (
            self.installed is not None
            and not self.name_note.text()
            and (self.kind.currentData() is not None)
            and self.kind_problem is None
        )

    # -- the run's settings ---------------------------------------------------------------------

    @property
    def size(self) -> str:
        b = self.size_group.checkedButton()
        return b.objectName().removeprefix("trainSize_") if b is not None else "medium"

    def _counts(self) -> tuple[int, int, int]:
        """(files, training files, validation files) as the split will make them."""
        survey = self.w.survey
        if survey is None:
            return 0, 0, 0
        share = self.val_split.value() / 100
        val = 0
        for k in survey.counts.values():
            v = round(k * share)
            val += min(max(v, 1), k - 1) if k >= 2 else 0
        files = len(survey.items)
        return files, files - val, val

    def schedule(self) -> tuple[int, int]:
        """(max steps, steps between validations): the advanced values, else the plan."""
        from sampletool.training.estimate import plan_steps

        if self.w.improving() and self.start_from.currentData() is not None:
            # The corrections' own schedule, which `config` runs and the page says.
            from sampletool.training.corrections import improve_schedule

            return improve_schedule(self.max_steps.value(), self.eval_every.value())
        _, n_train, _ = self._counts()
        planned = plan_steps(n_train, self.batch.value(), self.start_from.currentData() is not None)
        return self.max_steps.value() or planned[0], self.eval_every.value() or planned[1]

    def config(self) -> dict:
        """The run's TrainConfig as a dict (its dataset is filled in when it starts)."""
        from sampletool.data.augment import AugmentConfig

        source = self.start_from.currentData()
        audio: dict | None = None
        if source is not None:
            model, audio, _ = jobs.bundle_settings(self._bundles[source])
        else:
            name = self.kind.currentData()[0]
            from sampletool.models.kinds import get_kind

            model = get_kind(name).preset(self.size)
        aug = AugmentConfig(
            mode=self.augment.currentData(),
            noise=self.noise.currentData(),
            snr_db=(float(self.snr_min.value()), float(self.snr_max.value())),
        )
        if self.w.improving() and source is not None and audio is not None:
            from sampletool.training.corrections import improve_config

            cfg = improve_config(model, audio, source, self.w.data_page.corrections)
            cfg["augment"] = aug.to_dict()
            cfg["max_steps"], cfg["eval_every"] = self.schedule()
            return cfg
        max_steps, eval_every = self.schedule()
        cfg = {"dataset": "", "model": model, "augment": aug.to_dict(),
               "batch_size": self.batch.value(), "lr": round(self.lr.value(), 6),
               "max_steps": max_steps, "eval_every": eval_every,
               "init_from": source}  # fmt: skip
        if audio is not None:
            cfg["audio"] = audio
        return cfg

    def remember(self) -> None:
        s = self.w.settings
        s.setValue("train/valSplit", self.val_split.value())
        s.setValue("train/augment", self.augment.currentData())
        s.setValue("train/noise", self.noise.currentData())
        s.setValue("train/snrMin", self.snr_min.value())
        s.setValue("train/snrMax", self.snr_max.value())
        s.setValue("train/size", self.size)

    # -- estimates ------------------------------------------------------------------------------

    def _changed(self, measure: bool = True) -> None:
        if measure:
            self.measurements.clear()
            self._timer.start()
        self._show_estimates()

    def _measure(self) -> None:
        survey = self.w.survey
        if survey is None or not survey.ok or self.kind.currentData() is None:
            return
        self._drop_estimator()
        if self.kind_problem:  # said beside the kind: no time to measure
            return
        fine = self.start_from.currentData() is not None
        sizes = "" if fine else ",".join(s for s, b in self.size_buttons.items() if b.isVisible())
        try:
            cfg = self.config()
        except Exception as e:
            self.plan.setText(message_of(e))
            return
        cfg["dataset"] = "-"
        files = jobs.sample_files(survey.items, self.batch.value())
        args = ["estimate", "--config", json.dumps(cfg), "--classes",
                str(len(survey.class_names)), "--sizes", sizes, "--nice", str(NICE),
                *plugin_args(), *files]  # fmt: skip
        self._estimator = EngineProcess("sampletool.training.worker", args, self)
        self._estimator.event.connect(self._estimated)
        self._estimator.start()
        self._show_estimates()

    def _estimated(self, e: dict) -> None:
        if e.get("event") != "estimate":
            return
        self.measurements[str(e.get("size", ""))] = e
        self._show_estimates()

    def estimate_seconds(self, size: str) -> float | None:
        from sampletool.training.estimate import Measurement, estimate_seconds

        e = self.measurements.get(size)
        if e is None or "measurement" not in e:
            return None
        files, _, val = self._counts()
        max_steps, eval_every = self.schedule()
        return estimate_seconds(Measurement(**e["measurement"]), files, val, max_steps, eval_every)

    def _show_estimates(self) -> None:
        fine = self.start_from.currentData() is not None
        self.fine_tune_note.setVisible(fine)
        keys = [""] if fine else list(self.size_buttons)
        for key in keys:
            label = self.fine_tune_note if key == "" else self.size_notes[key]
            e = self.measurements.get(key)
            seconds = self.estimate_seconds(key)
            if seconds is not None:
                m = e["measurement"]  # type: ignore[index]
                params = m["parameters"]
                label.setText(f"{duration_text(seconds)} · {params / 1e6:.1f} M parameters"
                              if params >= 1e5 else f"{duration_text(seconds)}")  # fmt: skip
                if fine:
                    label.setText(f"Fine-tuning: {label.text()}")
            elif self.kind_problem:
                label.setText("")
            elif e is not None and "error" in e:
                label.setText(f"cannot train: {e['error']}")
            else:
                label.setText("measuring the time..." if self.w.survey is not None else "")
        max_steps, eval_every = self.schedule()
        self.plan.setText(f"At most {max_steps:,} steps of {self.batch.value()} samples, "
                          f"validating every {eval_every:,}.")  # fmt: skip

    def cleanupPage(self) -> None:
        self.stop_measuring()

    def stop_measuring(self) -> None:
        self._timer.stop()
        self._drop_estimator()

    def _drop_estimator(self) -> None:
        """Kill the measuring process, if any, and forget it once it has ended (waiting for a
        process to die would stall the window)."""
        old, self._estimator = self._estimator, None
        if old is None:
            return
        old.event.disconnect()
        if old.running:
            old.finished.connect(old.deleteLater)
            old.kill()
        else:
            old.deleteLater()


class TrainingPage(QWizardPage):
    """The run: live figures, Pause/Resume and Stop."""

    def __init__(self, wizard: TrainWizard) -> None:
        super().__init__(wizard)
        self.w = wizard
        self.setObjectName("trainTrainingPage")
        self.setTitle("Training")
        self.setSubTitle("In its own process, with the same trainer as the command line. "
                         "Closing this window leaves it training.")  # fmt: skip
        self.status = StatusLine(self)  # says something new every second
        self.status.setObjectName("trainStatus")
        self.progress = QProgressBar(self)
        self.progress.setObjectName("trainProgress")
        self.charts = TrainingCharts(self)
        self.pause_button = QPushButton("&Pause", self)
        self.pause_button.setObjectName("trainPauseButton")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button = QPushButton("&Stop", self)
        self.stop_button.setObjectName("trainStopButton")
        self.stop_button.setToolTip("Stop now: the best model so far is kept, and the run can "
                                    "be resumed later from Tools > Models")  # fmt: skip
        self.stop_button.clicked.connect(self._stop)
        self.retry_button = QPushButton("&Try again", self)
        self.retry_button.setObjectName("trainRetryButton")
        self.retry_button.clicked.connect(lambda: self.w.start_session(resume=True))
        self.retry_button.hide()
        command = QPushButton("Copy &command...", self)
        command.clicked.connect(lambda: self.w.show_command())
        self.log_button = QPushButton("&Details", self)
        self.log_button.setCheckable(True)
        self.log = QPlainTextEdit(self)
        self.log.setObjectName("trainLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setMaximumHeight(90)
        self.log.hide()
        self.log_button.toggled.connect(self.log.setVisible)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.retry_button)
        buttons.addStretch()
        buttons.addWidget(self.log_button)
        buttons.addWidget(command)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.charts, 1)
        layout.addWidget(self.log)
        layout.addLayout(buttons)
        self._tick = QTimer(self)  # the time left changes even when nothing is reported
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._show)
        # Everything a report changes is shown in one frame, at most five times a second:
        # while training takes every core, each repaint of the window costs tens of ms.
        self._frame = QTimer(self)
        self._frame.setSingleShot(True)
        self._frame.setInterval(200)
        self._frame.timeout.connect(self._show)
        self._cached: tuple[int, int] | None = None  # the feature cache's progress
        self._phase = ""

    def initializePage(self) -> None:
        self.w.start_session(resume=self.w.resume_dir is not None)

    # -- the session ----------------------------------------------------------------------------

    def attach(self, session: TrainingSession, classes: bool) -> None:
        """Show `session` (its history at once, then live)."""
        self.charts.reset(classes)
        self.charts.load(session.history.train, session.history.validations)
        self.charts.set_confusion(session.history.confusion)
        self.charts.flush()
        self.log.clear()
        session.started.connect(self._started)
        session.cache.connect(self._cache)
        session.step.connect(self._step)
        session.validated.connect(self._validated)
        session.confusion.connect(self._confusion)
        session.log.connect(self.log.appendPlainText)
        session.paused.connect(self._paused)
        session.ended.connect(self._ended)
        session.failed.connect(self._failed)
        self.setTitle(f"Training {session.logdir.name}")
        self._phase = "Starting the training process..."
        self.pause_button.setEnabled(False)
        self.pause_button.setText("&Pause")
        self.stop_button.setEnabled(True)
        self.retry_button.hide()
        self.status.set_colour(None)
        self._tick.start()
        self._show_status()
        self.completeChanged.emit()

    def _started(self, e: dict) -> None:
        session = self.w.session
        if session is None:
            return
        self.charts.reset(bool(session.class_names))
        self.charts.load(session.history.train, session.history.validations)
        self.charts.set_confusion(session.history.confusion)
        self.charts.flush()
        self._phase = (f"Resuming at step {e.get('step', 0):,}..." if e.get("resuming")
                       else "Reading your samples...")  # fmt: skip
        self.pause_button.setEnabled(True)
        self._show_status()

    def _cache(self, done: int, total: int) -> None:
        self._phase = f"Reading your samples: {done:,} of {total:,}"
        self._cached = (done, total)
        self._frame.start()

    def _step(self, step: int, m: dict) -> None:
        self._phase = ""
        if "train_loss" in m:
            self.charts.add_train(step, float(m["train_loss"]))
        if not self._frame.isActive():
            self._frame.start()

    def _validated(self, step: int, m: dict) -> None:
        self.charts.add_validation(step, m)
        if not self._frame.isActive():
            self._frame.start()

    def _confusion(self, doc: dict) -> None:
        self.charts.set_confusion(doc)
        if not self._frame.isActive():
            self._frame.start()

    def _show(self) -> None:
        """Bring the page up to date in one frame: charts, status and progress."""
        self.charts.flush()
        self._show_status()

    def _paused(self, paused: bool) -> None:
        self.pause_button.setText("&Resume" if paused else "&Pause")
        self._show_status()

    def _toggle_pause(self) -> None:
        session = self.w.session
        if session is None:
            return
        if session.is_paused:
            session.resume()
        else:
            session.pause()

    def _stop(self) -> None:
        session = self.w.session
        if session is not None:
            self._phase = "Stopping: saving the best model and a checkpoint..."
            self.stop_button.setEnabled(False)
            self.pause_button.setEnabled(False)
            session.stop()
            self._show_status()

    def _ended(self, reason: str, metrics: dict) -> None:
        self._tick.stop()
        self._frame.stop()
        self.charts.flush()
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        session = self.w.session
        step = session.current_step if session is not None else 0
        said = {"converged": "it stopped improving", "max_steps": "it reached its last step",
                "stopped": "stopped"}.get(reason, reason)  # fmt: skip
        has_model = (self.w.run_dir() / "weights.safetensors").is_file()
        self.status.setText(f"Done at step {step:,}: {said}." if has_model else
                            "Stopped before the first validation: no model yet. Resume it from "
                            "Tools > Models.")  # fmt: skip
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.w.models_changed.emit()
        self.completeChanged.emit()
        if has_model and self.w.currentId() == TRAINING:
            self.w.next()

    def _failed(self, message: str) -> None:
        self._tick.stop()
        self._frame.stop()
        self.charts.flush()
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        self.retry_button.setVisible(self.w.run_dir().is_dir())
        self.status.set_colour(ERROR_COLOUR)
        self.status.setText(f"Training stopped with an error: {message}")
        self.completeChanged.emit()

    def _show_status(self) -> None:
        session = self.w.session
        if session is None:
            return
        if self._phase:
            self.status.setText(self._phase)
            if self._phase.startswith("Reading") and self._cached is not None:
                done, total = self._cached
                self.progress.setRange(0, max(total, 1))
                self.progress.setValue(done)
            else:
                self.progress.setRange(0, 0)
            return
        step, total = session.current_step, session.max_steps
        parts = [f"Step {step:,} of {total:,}" if total else f"Step {step:,}"]
        rate = session.steps_per_second
        if session.is_paused:
            parts.append("paused")
        elif rate:
            parts.append(f"{rate:.2f} steps/s" if rate < 10 else f"{rate:.0f} steps/s")
            left = session.seconds_left
            if left is not None:
                parts.append(f"{duration_text(left).replace('about ', 'at most about ')} left")
        if session.lr is not None:
            parts.append(f"learning rate {session.lr:.1e}")
        vals = session.history.validations
        if vals and "val_accuracy" in vals[-1]:
            parts.append(f"validation accuracy {vals[-1]['val_accuracy']:.0%}")
        self.status.setText(" · ".join(parts))
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(step, total or step))

    def isComplete(self) -> bool:
        session = self.w.session
        return (session is not None and session.outcome is not None and not session.running
                and (self.w.run_dir() / "weights.safetensors").is_file())  # fmt: skip


class FinishPage(QWizardPage):
    """The model's figures, and "Use it now"."""

    def __init__(self, wizard: TrainWizard) -> None:
        super().__init__(wizard)
        self.w = wizard
        self.setObjectName("trainFinishPage")
        self.setTitle("Your model is ready")
        self.setSubTitle("The figures of its best checkpoint, on the samples held out to "
                         "measure it.")  # fmt: skip
        self.figures = QLabel(self)
        self.figures.setObjectName("trainFigures")
        self.figures.setWordWrap(True)
        self.figures.setTextFormat(Qt.TextFormat.RichText)
        from ui.widgets.confusion import ConfusionMatrixView

        self.confusion = ConfusionMatrixView(self)
        self.use_button = QPushButton("&Use it now", self)
        self.use_button.setObjectName("useModelButton")
        self.use_button.clicked.connect(self._use)
        self.use_note = QLabel("Your library is indexed with it in the background; the vectors "
                               "of the model in use now are kept, so switching back is quick.",
                               self)  # fmt: skip
        self.use_note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.use_button)
        row.addWidget(self.use_note, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.figures)
        layout.addWidget(self.confusion, 1)
        layout.addLayout(row)

    def initializePage(self) -> None:
        session = self.w.session
        run = self.w.run_dir()
        self.setTitle(f"{run.name} is ready")
        self.use_button.setEnabled(True)
        self.use_button.setText("&Use it now")
        try:
            meta = json.loads((run / "config.json").read_text(encoding="utf-8"))["metadata"]
        except (OSError, ValueError, KeyError):
            meta = {}
        m = meta.get("metrics", {})
        rows = []
        if "val_accuracy" in m:
            rows.append(
                f"<b>{m['val_accuracy']:.1%}</b> of the validation samples classified "
                f"right (balanced over the classes: {m['val_balanced_accuracy']:.1%})"
            )
        if "val_loss" in m:
            rows.append(f"validation loss {m['val_loss']:.4g} at step {int(m.get('step', 0)):,} "
                        "(the best checkpoint, which the model keeps)")  # fmt: skip
        if session is not None and session.outcome is not None:
            said = {"converged": "it stopped improving", "max_steps": "its last step",
                    "stopped": "you stopped it"}.get(session.outcome, session.outcome)  # fmt: skip
            rows.append(f"trained for {session.current_step:,} steps, until {said}")
        rows.append(f"saved in {run}")
        self.figures.setText("<br>".join(rows))
        doc = meta.get("confusion")  # the best checkpoint's, which the figures above are of
        if isinstance(doc, dict) and doc.get("matrix"):
            caption = f"Validation confusion at step {doc.get('step', '?')}"
            self.confusion.set_matrix(doc.get("classes", []), doc["matrix"], caption)
        else:
            self.confusion.clear("No classes: nothing to confuse")

    def _use(self) -> None:
        self.w.use_model.emit(str(self.w.run_dir()))
        self.mark_in_use()

    def mark_in_use(self) -> None:
        self.use_button.setEnabled(False)
        self.use_button.setText("In use")


class CommandDialog(QDialog):
    """The run as commands to paste in a terminal, here or on a bigger machine."""

    def __init__(self, parent: QWidget, lines: list[tuple[str, str]]) -> None:
        super().__init__(parent)
        self.setObjectName("trainCommandDialog")
        self.setWindowTitle("Run this training from a terminal")
        layout = QVBoxLayout(self)
        self.texts: list[QPlainTextEdit] = []
        for title, command in lines:
            layout.addWidget(QLabel(title, self))
            text = QPlainTextEdit(command, self)
            text.setReadOnly(True)
            text.setMaximumHeight(70)
            text.setObjectName("commandText")
            copy = QPushButton("Copy", self)
            copy.clicked.connect(lambda _=False, c=command: QGuiApplication.clipboard().setText(c))
            row = QHBoxLayout()
            row.addWidget(text, 1)
            row.addWidget(copy, 0, Qt.AlignmentFlag.AlignTop)
            layout.addLayout(row)
            self.texts.append(text)
        close = QPushButton("Close", self)
        close.clicked.connect(self.accept)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        self.resize(760, 120 + 110 * len(lines))


class TrainWizard(QWizard):
    """Tools > Train model... (see the module docstring). Non-modal; one run at a time.

    Args:
        pool: where background tasks run (tests pass a synchronous pool).
        settings: remembered choices (default: the app's settings).

    Signals:
        use_model(str): "Use it now" on a finished run's bundle folder.
        models_changed(): a run wrote (or finished) a model: model lists are stale.
        training_changed(str): a line for the main window's status bar ("" when idle).
    """

    use_model = Signal(str)
    models_changed = Signal()
    training_changed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        pool: Pool | None = None,
        settings: QSettings | None = None,
        corrections_source=None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trainWizard")
        # () -> (library, snapshot, runtime) of the main window, or None without a library:
        # where "Improve the active model with my corrections" finds them.
        self.corrections_source = corrections_source
        self._improving = False  # the run now is one of corrections: switch to it when done
        self.setWindowTitle("Train a model")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.settings = settings or app_settings()
        self.tasks = TaskGroup(self, pool, on_error=lambda e: None)
        self.session: TrainingSession | None = None
        self.resume_dir: Path | None = None
        self._new_config: dict | None = None
        self._unseen_finish = False  # a run ended while the wizard was closed
        self.data_page = DataPage(self)
        self.setup_page = SetupPage(self)
        self.training_page = TrainingPage(self)
        self.finish_page = FinishPage(self)
        for page_id, page in enumerate((self.data_page, self.setup_page, self.training_page,
                                        self.finish_page)):  # fmt: skip
            self.setPage(page_id, page)
        self.setButtonText(QWizard.WizardButton.CancelButton, "&Close")
        self.resize(980, 660)
        self.setMinimumSize(760, 520)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(1000)
        self._status_timer.timeout.connect(self._say_status)

    @property
    def survey(self):
        return self.data_page.survey

    def improving(self) -> bool:
        """The Data page's choice is to improve the active model with the user's corrections."""
        return self.data_page.labels == CORRECTIONS and self.data_page.corrections is not None

    def active_model(self):
        """The main window's model's `BundleInfo` (None without one)."""
        source = self.corrections_source() if self.corrections_source else None
        return source[2].info if source is not None else None

    # -- runs -----------------------------------------------------------------------------------

    def run_dir(self) -> Path:
        """The run's log folder (which is also its bundle)."""
        if self.session is not None:
            return self.session.logdir
        if self.resume_dir is not None:
            return self.resume_dir
        from sampletool.paths import user_models_dir

        return user_models_dir() / self.setup_page.name.text().strip()

    @property
    def training(self) -> bool:
        """A training process is running now."""
        return self.session is not None and self.session.running

    def start_new(self) -> None:
        """Open at the first page for a new run (unless one is training, or finished while the
        wizard was closed: then show it)."""
        if not self.training and not self._unseen_finish:
            self.resume_dir = None
            self.session = None
            self.setStartId(DATA)
            self.restart()
        self._unseen_finish = False
        self.show()
        self.raise_()
        self.activateWindow()

    def resume(self, logdir: str | Path) -> bool:
        """Open at the training page, resuming the run in `logdir`. False (and nothing
        changes) while another run trains."""
        if self.training:
            return False
        self._improving = False  # a resumed run is used by choice, on the Finish page
        self.resume_dir = Path(logdir)
        self.session = None
        self.setStartId(TRAINING)
        self.restart()
        self.show()
        self.raise_()
        return True

    def start_session(self, resume: bool) -> None:
        """Start the training process: resume the run folder, or write the dataset and start
        the new run the setup page describes."""
        if self.training:
            return
        if not resume:
            self.setup_page.stop_measuring()
            self.setup_page.remember()
            config = self.setup_page.config()
            name = self.setup_page.name.text().strip()
            self._new_config = config
            self._improving = self.improving()
            self.training_page.status.setText("Writing the dataset...")
            self.tasks.run(
                "dataset",
                jobs.write_dataset,
                self.survey,
                name,
                self.setup_page.val_split.value() / 100,
                on_result=lambda ds: self._begin(name, config, ds),
                on_error=self._dataset_failed,
            )
            return
        logdir = self.resume_dir if self.resume_dir is not None else self.run_dir()
        self.resume_dir = logdir
        from sampletool.training.runs import TRAIN_CONFIG

        # A new run that failed before it wrote its settings starts again from them.
        again = self._new_config if not (logdir / TRAIN_CONFIG).is_file() else None
        self._attach(TrainingSession(logdir, self), again)

    def _dataset_failed(self, error: BaseException) -> None:
        self._improving = False
        self.training_page._failed(message_of(error))

    def _begin(self, name: str, config: dict, dataset: Path) -> None:
        from sampletool.paths import user_models_dir

        config = dict(config, dataset=str(dataset))
        self._new_config = config
        self.resume_dir = user_models_dir() / name
        self._attach(TrainingSession(self.resume_dir, self), config)

    def _attach(self, session: TrainingSession, config: dict | None) -> None:
        if self.session is not None:
            self.session.deleteLater()
        self.session = session
        classes = bool(self.survey.class_names) if config is not None and self.survey else True
        self.training_page.attach(session, classes)
        session.ended.connect(lambda *_: self._session_over())
        session.ended.connect(self._maybe_switch)
        session.failed.connect(lambda *_: self._session_over())
        session.failed.connect(lambda *_: setattr(self, "_improving", False))
        session.validated.connect(lambda *_: self.models_changed.emit())
        session.start(config)
        self._status_timer.start()
        self._say_status()

    def _maybe_switch(self, *_args) -> None:
        """A run of corrections that made a model: the app switches to it at once."""
        if self._improving and (self.run_dir() / "weights.safetensors").is_file():
            self._improving = False
            self.use_model.emit(str(self.run_dir()))
            self.finish_page.mark_in_use()

    def _session_over(self) -> None:
        self._status_timer.stop()
        self._unseen_finish = not self.isVisible()
        self.training_changed.emit("")

    def _say_status(self) -> None:
        s = self.session
        if s is None or not s.running:
            self.training_changed.emit("")
            return
        pct = f" {100 * s.current_step / s.max_steps:.0f} %" if s.max_steps else ""
        state = " (paused)" if s.is_paused else ""
        self.training_changed.emit(f"Training {s.logdir.name}{pct}{state}")

    def stop_and_wait(self, msecs: int = 60_000) -> bool:
        """Stop the run and wait for it to save (quitting the app). True if it ended in time."""
        if self.session is None:
            return True
        return self.session.stop_and_wait(msecs)

    # -- commands -------------------------------------------------------------------------------

    def command_lines(self) -> list[tuple[str, str]]:
        """(title, command) lines that repeat this run from a terminal."""
        from sampletool.training.runs import shell_line, train_command

        session = self.session
        if session is not None and session.config:
            config = dict(session.config)
        else:
            config = self.setup_page.config()
            if self._new_config is not None:
                config["dataset"] = self._new_config.get("dataset", "")
        survey = self.survey
        if not config.get("dataset"):
            from sampletool.paths import user_data_dir

            name = self.setup_page.name.text().strip() or "my-model"
            config["dataset"] = str(user_data_dir() / "datasets" / name)
        try:
            train = train_command(config, self.run_dir())
        except ValueError as e:
            return [("This run cannot be written as a command:", str(e))]
        lines = [("Train the same model from a terminal:", shell_line(train)),
                 ("On a machine with several GPUs (one process each):",
                  shell_line(train_command(config, self.run_dir(), nproc=4)))]  # fmt: skip
        if survey is not None and survey.data_dirs:
            flag = {"subfolders": ["--classes-from-subfolders"],
                    "names": ["--classes-from-names"]}.get(survey.labels, [])  # fmt: skip
            share = self.setup_page.val_split.value() / 100
            make = ["sampletool", "make-dataset", *survey.data_dirs, "--name",
                    Path(config["dataset"]).name, "--out", config["dataset"], *flag,
                    "--train-ratio", f"{1 - share:g}"]  # fmt: skip
            lines.insert(0, ("Make its dataset first (on another machine, with the folders "
                             "there):", shell_line(make)))  # fmt: skip
        return lines

    def show_command(self) -> CommandDialog:
        dialog = CommandDialog(self, self.command_lines())
        dialog.show()
        return dialog

    # -- closing --------------------------------------------------------------------------------

    def reject(self) -> None:
        """Close: a run in progress goes on in the background (Tools > Train model... shows it
        again)."""
        self.setup_page.stop_measuring()
        self.hide()
        if not self.training:
            super().reject()

    def done(self, result: int) -> None:
        self.setup_page.stop_measuring()
        super().done(result)
