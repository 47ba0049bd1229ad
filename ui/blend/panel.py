"""The blend panel: drop a few samples into slots, move their weights, hear the blend at once.

Each slot holds one sample and its decoder latent: for a sample of the open library, the latent
its scan stored (a catalogue read, no audio); for anything else, read from the sound once, on a
worker, and cached. (The library's search vectors are read before the model's flows; they decode
badly, so they are not used here.) Any control change asks for a new sound; requests are
coalesced for ~40 ms and a `LatestWins` scheduler keeps one generation running with only the
newest request waiting, so a quick drag never plays a backlog of stale sounds. Each result
loses its silent tail (with a short fade), and the same worker writes it as a WAV file at a
DAW's rate (44.1 or 48 kHz, the setting beside Save) in a session folder; then it goes to
`generated`, a small waveform and the session history. Saved or dragged out, it is that
trimmed, resampled file. A click on a history entry brings back its sound and its settings.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QEvent, QObject, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QDrag, QDragEnterEvent, QDropEvent, QMouseEvent, QPen
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sampletool.progress import Cancelled
from ui.blend.history import BlendResult, HistoryList, blend_file_name
from ui.blend.scheduler import LatestWins
from ui.blend.slot import BlendSlot
from ui.dnd import MIME_TYPE, SampleRef, can_accept, make_mime, samples_from_mime
from ui.messages import reason_of
from ui.settings import app_settings
from ui.workers import Pool, TaskGroup

MAX_SLOTS = 8
DEBOUNCE_MS = 40
SEED_MAX = 2**31 - 1
SETTINGS_KEY = "blend/saveDir"
RATE_KEY = "blend/sampleRate"
DEFAULT_RATE = 44100
HINT = "Drop samples here or right-click → Add to blend"

SavePathProvider = Callable[[QWidget, str, str, str], str]


def _ask_save_path(parent: QWidget, caption: str, start: str, filters: str) -> str:
    """A save dialog opened in `start`'s folder with its name filled in ("" if cancelled).

    The folder is set on the dialog itself: some platforms' dialogs, given a file path as the
    start, open in the home folder instead."""
    dialog = QFileDialog(parent, caption, str(Path(start).parent), filters)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setDefaultSuffix("wav")
    dialog.setDirectory(str(Path(start).parent))
    dialog.selectFile(Path(start).name)
    try:
        accepted = dialog.exec() == QFileDialog.DialogCode.Accepted
        return dialog.selectedFiles()[0] if accepted and dialog.selectedFiles() else ""
    finally:
        dialog.deleteLater()


def _audio_files(refs: Sequence[SampleRef]) -> tuple[list[SampleRef], list[SampleRef]]:
    """(those named as audio files, the others): a name decides, so no file is opened on the
    GUI thread."""
    from sampletool.data.dataset import AUDIO_EXTENSIONS

    audio = [r for r in refs if Path(r.path).suffix.lower() in AUDIO_EXTENSIONS]
    return audio, [r for r in refs if r not in audio]


def _refusal(refused: Sequence[SampleRef]) -> str:
    names = ", ".join(r.name for r in refused[:3]) + (" ..." if len(refused) > 3 else "")
    one = len(refused) == 1
    return (f"Not added: {names} {'is not an audio file' if one else 'are not audio files'} "
            "(blend slots take wav, aiff, flac, ogg or mp3 files)")  # fmt: skip


# -- engine side (runs on a worker thread) -------------------------------------------------------


def _latent_job(runtime, library, path: str, onset: float) -> np.ndarray:
    """A sample's decoder latent: stored in the library for its entries, else read."""
    if library is not None:
        try:
            return np.asarray(library.latent(path, onset), np.float32)
        except sqlite3.ProgrammingError:  # closed meanwhile (another library was opened)
            pass
    return runtime.read(path, onset).latents[0]


def _blend_job(runtime, latents, weights, variance, seed, folder: Path | None, name: str,
               wav_rate: int, progress=None, cancel=None):  # fmt: skip
    """Blend with the effective weights, decode, trim the silent tail, and write the result's
    WAV at `wav_rate` (for drags) into the session's folder, made here the first time (None).

    Returns (the trimmed audio at the model's rate, the WAV's path or None, why it could not be
    written or None, the folder)."""
    from sampletool.export import trim_tail

    z = runtime.blend(latents, weights, normalize=False, variance=variance, seed=seed)
    audio = runtime.decode(z, seed=seed, progress=progress, cancel=cancel)[0]
    audio = trim_tail(audio, runtime.sample_rate)
    try:
        # Left in place on exit: a DAW may still reference a file dropped into it.
        folder = folder or Path(tempfile.mkdtemp(prefix="sampletool-blends-"))
        path = _save_job(audio, runtime.sample_rate, folder / name, wav_rate)
        return audio, path, None, folder
    except OSError as e:
        return audio, None, f"could not write the temporary WAV file ({e.strerror or e})", folder


def _save_job(audio: np.ndarray, sample_rate: int, target: Path, wav_rate: int) -> Path:
    """Write a (trimmed) result as a WAV file at `wav_rate` (its folder made if need be)."""
    from sampletool.audio import write_wav
    from sampletool.export import resample

    return write_wav(target, resample(audio, sample_rate, wav_rate), wav_rate)


# -- state ---------------------------------------------------------------------------------------


@dataclass
class _Request:
    """One generation: everything the worker needs, read from the controls when asked."""

    key: tuple
    runtime: Any
    latents: np.ndarray
    weights: list[float]  # the effective weights (sampletool.models.runtime.effective_weights)
    normalize: bool
    variance: float
    seed: int
    label: str
    slots: tuple[tuple[SampleRef, float], ...] = ()  # the samples and their weights as set
    wav_rate: int = DEFAULT_RATE  # of its WAV file (for drags)
    note: str = ""


# -- the panel -----------------------------------------------------------------------------------


class BlendPanel(QWidget):
    """Blend the latent vectors of up to 8 samples and hear the decoded result.

    Args:
        actions: the window's `ui.actions.SampleActions` (the shared right-click menu).
        pool: where its tasks run (tests pass a synchronous one).

    Signals:
        generated(audio, sample_rate): a new result, or an old one to replay (float32
            [num_samples]); the window plays it and shows it in the main waveform view.
        slots_changed(): a slot was filled, cleared, or its latent or error arrived.
        saved(path): the current result was saved there.

    Attributes:
        save_path_provider: `(parent, caption, start_path, filters) -> path or ""`; a file
            dialog by default (tests swap it).
        generations_started: how many generation tasks this panel has started.
    """

    generated = Signal(object, int)
    slots_changed = Signal()
    saved = Signal(object)

    def __init__(self, parent: QWidget | None = None, actions=None, pool: Pool | None = None):
        super().__init__(parent)
        self.setObjectName("blendPanel")
        self.setAcceptDrops(True)
        self.actions = actions
        self.save_path_provider: SavePathProvider = _ask_save_path
        self.generations_started = 0

        self._runtime = None
        self._library = None
        self._model_state = "loading"  # "loading" until set_model; then "ready" or "none"
        self._latents: dict[SampleRef, np.ndarray] = {}
        self._errors: dict[SampleRef, str] = {}
        self._reads = TaskGroup(self, pool)  # one task per sample being read
        self._jobs = TaskGroup(self, pool)  # generations and saves
        self._scheduler: LatestWins[_Request] = LatestWins(key=lambda r: r.key)
        self._current: BlendResult | None = None
        self._blend_count = 0
        self._temp_dir: Path | None = None  # the session's WAV files (made by the first job)
        self._press_pos: QPoint | None = None
        self._restoring = False  # controls set from a history entry: no generation

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.regenerate_now)

        self._build()
        self.slots_changed.connect(self._update_weight_note)
        self._set_status("Loading the model...")
        self._update_hint()

    # -- construction ----------------------------------------------------------------------

    def _build(self) -> None:
        self.hint = QLabel(HINT, self)
        self.hint.setObjectName("blendHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid); padding: 16px;")

        self.slots: list[BlendSlot] = []
        slot_box = QWidget(self)
        slot_box.setObjectName("blendSlots")
        slot_layout = QVBoxLayout(slot_box)
        slot_layout.setContentsMargins(4, 4, 4, 4)
        slot_layout.setSpacing(4)
        slot_layout.addWidget(self.hint)
        for i in range(MAX_SLOTS):
            slot = BlendSlot(i, slot_box)
            slot.weight_changed.connect(self._schedule)
            slot.weight_changed.connect(self._update_weight_note)
            slot.remove_requested.connect(lambda i=i: self.clear_slot(i))
            slot.menu_requested.connect(lambda pos, i=i: self._slot_menu(i, pos))
            slot_layout.addWidget(slot)
            self.slots.append(slot)
        slot_layout.addStretch(1)
        self.slot_area = QScrollArea(self)
        self.slot_area.setObjectName("blendSlotArea")
        self.slot_area.setWidgetResizable(True)
        self.slot_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.slot_area.setFrameShape(QFrame.Shape.NoFrame)
        self.slot_area.setStyleSheet(
            "QScrollArea#blendSlotArea { border: 1px dashed palette(mid); border-radius: 4px; }"
        )
        self.slot_area.setWidget(slot_box)
        self.slot_area.setMinimumHeight(110)

        self.normalize = QCheckBox("Normalize weights", self)
        self.normalize.setObjectName("normalizeWeights")
        self.normalize.setChecked(True)
        self.normalize.setToolTip(
            "Divide the weights by their sum. Off: plain vector arithmetic (weights as given)."
        )
        self.normalize.toggled.connect(self._schedule)
        self.normalize.toggled.connect(self._update_weight_note)
        # What normalising does to negative weights is not obvious (1 and -0.5 become 2 and
        # -1): said beside the checkbox whenever it applies.
        self.weight_note = QLabel(self)
        self.weight_note.setObjectName("normalizeNote")
        self.weight_note.setWordWrap(True)
        self.weight_note.setStyleSheet("color: palette(mid); font-size: small;")
        self.weight_note.hide()

        self.variance = QSlider(Qt.Orientation.Horizontal, self)
        self.variance.setObjectName("blendVariance")
        self.variance.setRange(0, 100)
        self.variance.setPageStep(10)
        self.variance.setToolTip("Random variation added to the blended latent")
        self.variance_label = QLabel(self)
        self.variance_label.setObjectName("blendVarianceValue")
        self.variance_label.setAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        self.variance_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("-0.00") + 8)
        self.variance.valueChanged.connect(self._variance_moved)

        self.seed = QSpinBox(self)
        self.seed.setObjectName("blendSeed")
        self.seed.setRange(0, SEED_MAX)
        self.seed.setToolTip("Seed of the variation and of the phase reconstruction")
        self.seed.valueChanged.connect(self._schedule)
        self.random_button = QPushButton("Random", self)
        self.random_button.setObjectName("blendRandom")
        self.random_button.setToolTip("New random seed (with no samples: a random sound)")
        self.random_button.clicked.connect(self.randomize)

        controls = QGridLayout()
        controls.setHorizontalSpacing(6)
        controls.setVerticalSpacing(4)
        controls.addWidget(self.normalize, 0, 0, 1, 3)
        controls.addWidget(self.weight_note, 1, 0, 1, 3)
        controls.addWidget(QLabel("Variance", self), 2, 0)
        controls.addWidget(self.variance, 2, 1)
        controls.addWidget(self.variance_label, 2, 2)
        controls.addWidget(QLabel("Seed", self), 3, 0)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_button)
        controls.addLayout(seed_row, 3, 1, 1, 2)
        controls.setColumnStretch(1, 1)

        # A decoder too slow to follow the sliders (the WaveNet's) renders on request.
        self.render_button = QPushButton("&Generate", self)
        self.render_button.setObjectName("renderBlend")
        self.render_button.setToolTip("Render the blend with this model's decoder")
        self.render_button.clicked.connect(self.regenerate_now)
        self.render_progress = QProgressBar(self)
        self.render_progress.setObjectName("renderProgress")
        self.render_progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancelBlend")
        self.cancel_button.clicked.connect(self.cancel_generation)
        self.render_row = QWidget(self)
        render_layout = QHBoxLayout(self.render_row)
        render_layout.setContentsMargins(0, 0, 0, 0)
        render_layout.addWidget(self.render_button)
        render_layout.addWidget(self.render_progress, 1)
        render_layout.addWidget(self.cancel_button)
        self.render_row.hide()

        self.result_plot = pg.PlotWidget(self, background=None)
        self.result_plot.setObjectName("blendResult")
        self.result_plot.setMinimumHeight(64)
        self.result_plot.setMaximumHeight(90)
        self.result_plot.hideAxis("left")
        self.result_plot.hideAxis("bottom")
        self.result_plot.hideButtons()
        self.result_plot.setMenuEnabled(False)
        self.result_plot.setMouseEnabled(x=False, y=False)
        self.result_plot.getPlotItem().getViewBox().setDefaultPadding(0.0)
        self.result_plot.setYRange(-1.0, 1.0, padding=0.02)
        self.result_plot.setToolTip("Click to play; drag into a DAW or a folder as a WAV file")
        self.result_plot.viewport().installEventFilter(self)
        colour = self.palette().highlight().color()
        fill = QColor(colour)
        fill.setAlpha(170)
        self._env_top = pg.PlotDataItem(pen=QPen(colour, 0))
        self._env_bottom = pg.PlotDataItem(pen=QPen(colour, 0))
        self._env_fill = pg.FillBetweenItem(self._env_top, self._env_bottom, brush=fill)
        for item in (self._env_top, self._env_bottom, self._env_fill):
            self.result_plot.addItem(item)
        self._placeholder = pg.TextItem(
            "no sound yet", color=self.palette().mid().color(), anchor=(0.5, 0.5)
        )
        self.result_plot.addItem(self._placeholder)
        self._placeholder.setPos(0.5, 0.0)
        self.result_plot.setXRange(0.0, 1.0, padding=0)

        self.save_button = QPushButton("Save as WAV...", self)
        self.save_button.setObjectName("saveBlend")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(lambda: self.save())
        self.rate_box = QComboBox(self)
        self.rate_box.setObjectName("exportRate")
        self.rate_box.setToolTip("Sample rate of the WAV files saved or dragged out (a DAW "
                                 "session's rate: no conversion on import)")  # fmt: skip
        from sampletool.export import DAW_RATES

        for rate in DAW_RATES:
            self.rate_box.addItem(f"{rate / 1000:g} kHz", rate)
        remembered = str(app_settings().value(RATE_KEY, DEFAULT_RATE))
        index = self.rate_box.findData(int(remembered) if remembered.isdigit() else 0)
        self.rate_box.setCurrentIndex(index if index >= 0 else self.rate_box.findData(DEFAULT_RATE))
        self.rate_box.currentIndexChanged.connect(self._rate_changed)

        self.history = HistoryList(self, lambda entry: self._drag_result(entry, self.history))
        self.history.setObjectName("blendHistory")
        self.history.setToolTip("Click to bring back a sound and its settings; drag out as a "
                                "WAV file")  # fmt: skip
        self.history.setMinimumHeight(70)
        self.history.setWordWrap(True)
        self.history.setAlternatingRowColors(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history.itemClicked.connect(self._replay_item)
        self.history.itemActivated.connect(self._replay_item)

        self.status = QLabel(self)
        self.status.setObjectName("blendStatus")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.slot_area, 1)
        layout.addLayout(controls)
        layout.addWidget(self.render_row)
        layout.addWidget(self.result_plot)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.rate_box)
        save_row.addWidget(self.save_button)
        layout.addLayout(save_row)
        history_label = QLabel("History", self)
        history_label.setStyleSheet("font-weight: bold;")
        layout.addWidget(history_label)
        layout.addWidget(self.history)
        layout.addWidget(self.status)
        self.variance_label.setText(f"{self.variance.value() / 100:.2f}")  # no sound yet

    def sizeHint(self) -> QSize:
        return QSize(340, 640)

    @property
    def export_rate(self) -> int:
        """The sample rate (Hz) of the WAV files saved or dragged out."""
        return int(self.rate_box.currentData())

    def _rate_changed(self) -> None:
        """Remember the rate; the current result's drag file is written again at it."""
        rate = self.export_rate
        app_settings().setValue(RATE_KEY, rate)
        entry = self._current
        if entry is None or entry.wav_path is None or entry.wav_rate == rate:
            return
        target = entry.wav_path.parent / f"{rate} Hz" / entry.wav_path.name

        def written(path: Path, entry=entry, rate=rate) -> None:
            entry.wav_path, entry.wav_rate = path, rate

        # On failure the file at the earlier rate still drags out: nothing to say.
        self._jobs.run(("rewrite", entry.number), _save_job, entry.audio, entry.sample_rate,
                       target, rate, on_result=written, on_error=lambda e: None)  # fmt: skip

    def set_export_rate(self, rate: int) -> None:
        index = self.rate_box.findData(int(rate))
        if index < 0:
            raise ValueError(f"{rate} Hz is not one of the rates offered")
        self.rate_box.setCurrentIndex(index)

    # -- model, library and latents --------------------------------------------------------

    @property
    def runtime(self):
        return self._runtime

    def set_model(self, runtime) -> None:
        """The loaded model runtime, or None when none could be loaded. Latents from an
        earlier model are dropped and the samples read again."""
        changed = runtime is not self._runtime
        self._runtime = runtime
        self._model_state = "ready" if runtime is not None else "none"
        if changed:
            self._library = None  # the open library belongs to the earlier model
            self._reads.drop_all()
            self._latents.clear()
            self._errors.clear()
            self._scheduler.reset()
        self._show_mode()
        for slot in self.slots:
            if slot.ref is not None:
                self._resolve(slot)
        self.slots_changed.emit()

    @property
    def live(self) -> bool:
        """Whether the sound follows the controls (a decoder fast enough); otherwise the user
        asks for it with Generate, and watches its progress."""
        return self._runtime is None or self._runtime.realtime_decode

    def _can_generate(self) -> bool:
        return self._runtime is not None and self._runtime.can_generate

    def _show_mode(self) -> None:
        runtime = self._runtime
        self.render_row.setVisible(runtime is not None and not self.live)
        self._show_rendering(False)
        if runtime is None:
            self._set_status("No model loaded: blending needs a model")
        elif not self._can_generate():
            self._set_status(f"The model {runtime.name!r} ({runtime.kind}) makes no sounds: it "
                             "has no decoder. Blending needs a vae or wavenet-autoencoder "
                             "model.", error=True)  # fmt: skip
        elif not self.live:
            self._set_status("This model renders slowly: press Generate to hear the blend")
        else:
            self._set_status("")
        self.render_button.setEnabled(self._can_generate())

    def _show_rendering(self, running: bool) -> None:
        self.render_progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.render_button.setVisible(not running)
        if running:
            self.render_progress.setRange(0, 0)  # busy until the first report

    def _render_progress(self, done: int, total: int, _message: str) -> None:
        if total > 0:
            self.render_progress.setRange(0, total)
            self.render_progress.setValue(done)
            self.render_progress.setFormat(f"{100 * done // total} %")

    def cancel_generation(self) -> None:
        """Stop the generation running (a slow decoder's); nothing it made is kept."""
        self._jobs.cancel(("generate", self.generations_started))

    def set_library(self, library) -> None:
        """The open library (of the current model), whose stored latents serve its samples;
        None: every sample is read from its file."""
        self._library = library

    def _resolve(self, slot: BlendSlot) -> None:
        """Give a slot its latent: cached, stored in the library, or read in the background."""
        ref = slot.ref
        if ref is None:
            return
        if ref in self._latents:
            slot.set_latent(self._latents[ref])
            return
        if ref in self._errors:
            slot.set_error(self._errors[ref])
            return
        if self._runtime is None:
            slot.set_waiting("waiting for the model")
            return
        slot.set_waiting("reading...")
        if not self._reads.running(ref):
            self._reads.run(
                ref, _latent_job, self._runtime, self._library, ref.path, ref.onset,
                on_result=lambda v, ref=ref: self._latent_read(ref, v, None),
                on_error=lambda e, ref=ref: self._latent_read(ref, None, e),
            )  # fmt: skip

    def _latent_read(self, ref: SampleRef, latent, error) -> None:
        if error is not None:
            self._errors[ref] = reason_of(error)
        else:
            self._latents[ref] = latent
        touched = False
        for slot in self.slots:
            if slot.ref == ref:
                touched = True
                if error is not None:
                    slot.set_error(self._errors[ref])
                else:
                    slot.set_latent(latent)
        if touched:
            self.slots_changed.emit()
            if error is not None:
                self._set_status(f"{ref.name} is not used: {self._errors[ref]}", error=True)
            self._schedule()  # the last sample read (or failed): the blend can be made

    # -- slots -----------------------------------------------------------------------------

    def add_sample(self, ref: SampleRef) -> bool:
        """Put a sample into the first free slot; False (and a message) when all are full."""
        free = next((s for s in self.slots if s.ref is None), None)
        if free is None:
            self._set_status(
                f"All {MAX_SLOTS} blend slots are full: remove one to add {ref.name}", error=True
            )
            return False
        free.set_sample(ref)
        self._update_hint()
        self._resolve(free)
        if free.usable:
            self._schedule()
        self.slots_changed.emit()
        return True

    def add_samples(self, refs: Sequence[SampleRef]) -> int:
        """Add several samples; returns how many found a slot."""
        added = 0
        for ref in refs:
            if not self.add_sample(ref):
                break
            added += 1
        return added

    def clear_slot(self, index: int) -> None:
        slot = self.slots[index]
        if slot.ref is None:
            return
        slot.clear()
        self._update_hint()
        self.slots_changed.emit()
        if any(s.usable for s in self.slots):
            self._schedule()

    def samples(self) -> list[SampleRef | None]:
        """The sample in each slot (None for an empty one)."""
        return [s.ref for s in self.slots]

    def slot_latent(self, index: int) -> np.ndarray | None:
        return self.slots[index].latent

    def slot_error(self, index: int) -> str | None:
        return self.slots[index].error

    def weight(self, index: int) -> float:
        return self.slots[index].weight

    def set_weight(self, index: int, weight: float) -> None:
        self.slots[index].set_weight(weight)

    def _update_hint(self) -> None:
        filled = sum(s.ref is not None for s in self.slots)
        more = f"Drop more samples here ({filled} of {MAX_SLOTS})"
        self.hint.setText(more if filled else HINT)
        self.hint.setVisible(filled < MAX_SLOTS)
        # The hint goes below the filled slots once there are some.
        layout = self.hint.parentWidget().layout()
        layout.removeWidget(self.hint)
        if filled:
            layout.insertWidget(MAX_SLOTS, self.hint)
        else:  # centred in the empty drop zone
            layout.insertWidget(0, self.hint, 100)

    def _slot_menu(self, index: int, global_pos: QPoint) -> None:
        ref = self.slots[index].ref
        if self.actions is not None and ref is not None:
            self.actions.show_menu([ref], global_pos, self)

    # -- drops -----------------------------------------------------------------------------

    def _droppable(self, mime) -> tuple[list[SampleRef], list[SampleRef]]:
        """(the samples a drag carries that may take a slot, the files refused). Our own
        drags carry library entries (read by content whatever their names); files from
        elsewhere must be named as audio files."""
        if not can_accept(mime):
            return [], []
        refs = samples_from_mime(mime)
        return (refs, []) if mime.hasFormat(MIME_TYPE) else _audio_files(refs)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accepted, refused = self._droppable(event.mimeData())
        if accepted:
            event.acceptProposedAction()
        else:
            if refused:  # the cursor says no; this says why
                self._set_status(_refusal(refused), error=True)
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if self._droppable(event.mimeData())[0]:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        refs, refused = self._droppable(event.mimeData())
        if not refs:
            if refused:
                self._set_status(_refusal(refused), error=True)
            event.ignore()
            return
        event.acceptProposedAction()
        added = self.add_samples(refs)
        if 0 < added < len(refs):
            self._set_status(
                f"Added {added} of {len(refs)}: all {MAX_SLOTS} blend slots are full", error=True
            )
        elif refused:
            self._set_status(_refusal(refused), error=True)

    # -- controls --------------------------------------------------------------------------

    def _variance_moved(self, value: int) -> None:
        self.variance_label.setText(f"{value / 100:.2f}")
        self._schedule()

    def randomize(self) -> None:
        """A new random seed, and a new sound from it."""
        current = self.seed.value()
        seed = current
        while seed == current:
            seed = random.randrange(SEED_MAX + 1)
        self.seed.setValue(seed)  # valueChanged schedules the generation
        if self._runtime is None:
            self._show_no_model()

    # -- generation ------------------------------------------------------------------------

    def is_busy(self) -> bool:
        """True while latents are being read or a sound is (or will shortly be) generated."""
        waiting = shiboken6.isValid(self._debounce) and self._debounce.isActive()
        return bool(self._reads.running() or self._scheduler.busy or waiting)

    def _update_weight_note(self, *_: object) -> None:
        """Show what normalising does when a weight is negative: the sum shrinks, so every
        weight grows (1, 1 and -1 sum to 1 and stay; 1 and -0.5 become 2 and -1)."""
        from sampletool.models.runtime import effective_weights

        weights = [s.weight for s in self.slots if s.ref is not None and s.error is None]
        total = sum(weights)
        show = self.normalize.isChecked() and any(w < 0 for w in weights) and abs(total) > 1e-9
        if show:
            used, _ = effective_weights(len(weights), weights, True)
            self.weight_note.setText(
                f"Normalising divides each weight by their sum, {total:.2f} here. A negative "
                "weight makes that sum smaller, so the others end up larger than without it: "
                f"{', '.join(f'{w:.2f}' for w in used)}. Untick to use them as set."
            )
        self.weight_note.setVisible(show)

    def _schedule(self, *_: object) -> None:
        """A control changed: generate after a short pause. The timer is not restarted, so a
        continuous drag still produces sounds at the rate the engine can make them. A slow
        decoder waits for Generate."""
        if self._restoring:
            return
        if not self.live or (self._runtime is not None and not self._can_generate()):
            return
        if not self._debounce.isActive():
            self._debounce.start()

    def regenerate_now(self) -> None:
        """Ask for a sound from the current settings now: it starts at once, or waits for the
        generation running (replacing any older request waiting)."""
        self._debounce.stop()
        if self._runtime is None:
            self._show_no_model()
            return
        if not self._can_generate():
            self._show_mode()
            return
        request = self._request()
        if request is None:
            return
        if (
            self._scheduler.running is None
            and self._current is not None
            and (request.key == self._current.key)
        ):
            self._set_status("")
            self.generated.emit(self._current.audio, self._current.sample_rate)  # replay
            return
        start = self._scheduler.submit(request)
        if start is not None:
            self._start(start)

    def _show_no_model(self) -> None:
        if self._model_state == "loading":
            self._set_status("Loading the model...")
        else:
            self._set_status("No model loaded: blending needs a model", error=True)

    def _request(self) -> _Request | None:
        from sampletool.models.runtime import effective_weights

        filled = [s for s in self.slots if s.ref is not None]
        used = [s for s in filled if s.usable]
        if any(s.latent is None and s.error is None for s in filled):
            # Wait for every sample: a half-read blend would play a sound nobody asked for.
            self._set_status("Reading the samples...")
            return None
        if filled and not used:
            self._set_status("None of the samples can be read", error=True)
            return None
        runtime = self._runtime
        normalize = self.normalize.isChecked()
        variance = self.variance.value() / 100
        seed = self.seed.value()
        weights, note = effective_weights(len(used), [s.weight for s in used], normalize)
        latents = (
            np.stack([s.latent for s in used]).astype(np.float32)
            if used
            else np.empty((0, *runtime.latent_shape), np.float32)
        )
        if used:
            label = " + ".join(f"{s.ref.name} {w:.2f}" for s, w in zip(used, weights, strict=True))
        else:
            label = f"random (seed {seed})"
        if variance > 0:
            label += f", variance {variance:.2f}"
        if used:  # re-rolls of the same blend differ only by it
            label += f", seed {seed}"
        slots = tuple((s.ref, s.weight) for s in used)
        key = (id(runtime), slots, normalize, variance, seed)
        note = note[0].upper() + note[1:] if note else ""
        return _Request(key, runtime, latents, weights.tolist(), normalize, variance, seed, label,
                        slots, self.export_rate, note)  # fmt: skip

    def _start(self, request: _Request) -> None:
        self.generations_started += 1
        self._set_status("Generating...")
        slow = not self.live
        if slow:
            self._show_rendering(True)
        # Named by its samples, as a DAW shows the clip, in a folder of its own by generation:
        # no two results share a file, and none is named by a number the history never shows.
        wav = f"{self.generations_started}/{blend_file_name(request.slots, None)}"
        self._jobs.run(
            ("generate", self.generations_started), _blend_job, request.runtime,
            request.latents, request.weights, request.variance, request.seed, self._temp_dir, wav,
            request.wav_rate,
            on_result=lambda r, req=request: self._finished(req, r, None),
            on_error=lambda e, req=request: self._finished(req, None, e),
            on_progress=self._render_progress if slow else None, pass_control=True,
        )  # fmt: skip

    def _finished(self, request: _Request, result, error) -> None:
        wanted, following = self._scheduler.finish(request)
        if result is not None:
            self._temp_dir = self._temp_dir or result[3]  # the session folder, once made
        if following is None:
            self._show_rendering(False)
        if wanted and not self._debounce.isActive():
            if isinstance(error, Cancelled):
                self._set_status("Generation cancelled")
            elif error is not None:
                self._set_status(f"The blend failed: {reason_of(error)}", error=True)
            else:
                self._show_result(request, *result[:3])
        if following is not None:
            self._start(following)

    def _show_result(self, request: _Request, audio, wav_path, wav_problem) -> None:
        self._blend_count += 1
        entry = BlendResult(
            self._blend_count, np.asarray(audio, np.float32), int(request.runtime.sample_rate),
            f"blend {self._blend_count} — {request.label}", request.key, wav_path,
            request.wav_rate, request.slots, request.normalize, request.variance, request.seed,
        )  # fmt: skip
        self.history.add(entry, f"{entry.label}\nseed {request.seed}, weights "
                                f"{'normalised' if request.normalize else 'as given'}")  # fmt: skip
        problem = f"Dragging it out is off: {wav_problem}" if wav_problem else ""
        self._set_status(request.note or problem, error=bool(request.note or problem))
        self._set_current(entry)
        self.generated.emit(entry.audio, entry.sample_rate)

    # -- results ---------------------------------------------------------------------------

    @property
    def current(self) -> BlendResult | None:
        """The result shown in the panel's waveform (the newest, or a replayed one)."""
        return self._current

    @property
    def results(self) -> list[BlendResult]:
        """The session history, newest first."""
        return self.history.entries

    def history_entry(self, item: QListWidgetItem) -> BlendResult | None:
        return self.history.entry(item)

    def _set_current(self, entry: BlendResult) -> None:
        self._current = entry
        self.save_button.setEnabled(True)
        self._draw(entry.audio, entry.sample_rate)

    def _draw(self, audio: np.ndarray, sample_rate: int) -> None:
        buckets = max(1, min(len(audio), 600))
        n = len(audio) // buckets * buckets
        if n == 0:
            top = bottom = np.zeros(1, np.float32)
        else:
            blocks = audio[:n].reshape(buckets, -1)
            top, bottom = blocks.max(axis=1), blocks.min(axis=1)
        duration = max(len(audio) / sample_rate, 1e-3)
        x = np.linspace(0.0, duration, len(top))
        self._env_top.setData(x, top)
        self._env_bottom.setData(x, bottom)
        self._placeholder.hide()
        self.result_plot.setXRange(0.0, duration, padding=0)

    def _replay_item(self, item: QListWidgetItem) -> None:
        entry = self.history_entry(item)
        if entry is not None:
            self.restore(entry)

    def restore(self, entry: BlendResult) -> None:
        """Bring back a result: its samples in the slots, its weights, normalising, variance
        and seed, and its sound (played again, not generated again). A generation running
        meanwhile is let finish, unseen."""
        self._debounce.stop()
        self._restoring = True
        try:
            for slot in self.slots:
                slot.clear()
            for slot, (ref, weight) in zip(self.slots, entry.slots, strict=False):
                slot.set_sample(ref)
                slot.set_weight(weight)
                self._resolve(slot)  # cached: at once; after a model change, read again
            self.normalize.setChecked(entry.normalize)
            self.variance.setValue(round(entry.variance * 100))
            self.seed.setValue(entry.seed)
        finally:
            self._restoring = False
        self._debounce.stop()
        self._scheduler.discard()
        self._update_hint()
        self.slots_changed.emit()
        self._set_status(f"Back to blend {entry.number}")
        self._set_current(entry)
        self.generated.emit(entry.audio, entry.sample_rate)

    def result_mime(self, entry: BlendResult | None = None):
        """The drag payload of a result (the current one by default): a local file URL to its
        WAV file, which DAWs and file managers accept. None without a result, or when its
        file could not be written."""
        entry = entry or self._current
        if entry is None:
            return None
        if entry.wav_path is None:
            self._set_status("This sound has no WAV file to drag (see the message above)",
                             error=True)  # fmt: skip
            return None
        return make_mime([SampleRef(str(entry.wav_path))])

    def _drag_result(self, entry: BlendResult | None, source: QWidget) -> None:
        mime = self.result_mime(entry)
        if mime is None:
            return
        drag = QDrag(source)
        drag.setMimeData(mime)
        pixmap = self.result_plot.grab()
        if not pixmap.isNull():
            drag.setPixmap(pixmap.scaledToWidth(min(pixmap.width(), 160)))
        drag.exec(Qt.DropAction.CopyAction)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.result_plot.viewport() and self._current is not None:
            kind = event.type()
            if kind == QEvent.Type.MouseButtonPress:
                if isinstance(event, QMouseEvent) and event.button() == Qt.MouseButton.LeftButton:
                    self._press_pos = event.position().toPoint()
                    return True
            elif kind == QEvent.Type.MouseMove and self._press_pos is not None:
                moved = (event.position().toPoint() - self._press_pos).manhattanLength()
                if moved >= QApplication.startDragDistance():
                    self._press_pos = None
                    self._drag_result(self._current, self.result_plot)
                return True
            elif kind == QEvent.Type.MouseButtonRelease and self._press_pos is not None:
                self._press_pos = None
                self.generated.emit(self._current.audio, self._current.sample_rate)
                return True
        return super().eventFilter(watched, event)

    def save(self, path: str | None = None) -> None:
        """Save the current result as a WAV file (asking for the path when none is given), in
        the background; `saved` and the status line say how it went."""
        if self._current is None:
            self._set_status("Nothing to save yet: generate a sound first", error=True)
            return
        if path is None:
            folder = Path(str(app_settings().value(SETTINGS_KEY, "") or "") or Path.home())
            if not folder.is_dir():  # gone since (an unplugged drive)
                folder = Path.home()
            start = str(folder / blend_file_name(self._current.slots, self._current.number))
            path = self.save_path_provider(self, "Save blend as WAV", start, "WAV audio (*.wav)")
            if not path:
                return
        target = Path(path)
        if target.suffix.lower() != ".wav":
            target = target.with_name(target.name + ".wav")
        self._set_status(f"Saving {target.name}...")

        def done(written: Path) -> None:
            app_settings().setValue(SETTINGS_KEY, str(written.parent))
            self._set_status(f"Saved {written.name}")
            self.saved.emit(written)

        self._jobs.run(
            "save", _save_job, self._current.audio, self._current.sample_rate, target,
            self.export_rate, on_result=done,
            on_error=lambda e: self._set_status(f"Could not save {target.name}: {reason_of(e)}",
                                                error=True),
        )  # fmt: skip

    # -- status ----------------------------------------------------------------------------

    def status_text(self) -> str:
        return self.status.text()

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")
