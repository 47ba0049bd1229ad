"""The blend panel: drop a few samples into slots, move their weights, hear the blend at once.

Each slot holds one sample and its latent: the sound's point in the decoder's space, read on a
worker thread and cached per sample. (The library's stored vectors are search vectors, read
before the model's flows; they decode badly, so they are not used here.) Any control change asks for
a new sound; requests are coalesced for ~40 ms and at most one generation runs at a time. While
one runs, only the newest request is remembered (a flag: the settings are read again when it
starts), and a finished result is shown only if no newer request is waiting, so a quick drag
never plays a backlog of stale sounds. Results go to `generated`, a small waveform and a session
history; they can be saved or dragged out as WAV files.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QEvent, QObject, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QDrag, QDragEnterEvent, QDropEvent, QMouseEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sampletool.errors import FileProblem
from ui import app_settings
from ui.dnd import SampleRef, can_accept, make_mime, samples_from_mime
from ui.workers import run_task

MAX_SLOTS = 8
WEIGHT_MIN, WEIGHT_MAX, DEFAULT_WEIGHT = -1.0, 2.0, 1.0
DEBOUNCE_MS = 40
HISTORY_LIMIT = 100  # ~130 kB each at 2 s / 16 kHz: the whole session history stays small
SEED_MAX = 2**31 - 1
SETTINGS_KEY = "blend/saveDir"
HINT = "Drop samples here or right-click → Add to blend"

SavePathProvider = Callable[[QWidget, str, str, str], str]


def _ask_save_path(parent: QWidget, caption: str, start: str, filters: str) -> str:
    return QFileDialog.getSaveFileName(parent, caption, start, filters)[0]


def _reason(error: BaseException) -> str:
    """One readable line for an error from the engine."""
    if isinstance(error, FileProblem):
        return error.reason
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- engine side (runs on a worker thread) -------------------------------------------------------


def _latent_job(tool, path: str, onset: float) -> np.ndarray:
    return np.asarray(tool.latent(path, onset), np.float32)


def _blend_job(tool, latents, weights, normalize, variance, seed) -> np.ndarray:
    z = tool.blend_latent(latents, weights, normalize, variance, seed)
    return tool.decode(z, seed=seed)[0]


# -- state ---------------------------------------------------------------------------------------


@dataclass
class _Request:
    """One generation: everything the worker needs, read from the controls when it starts."""

    key: tuple
    tool: Any
    latents: np.ndarray
    weights: list[float]
    normalize: bool
    variance: float
    seed: int
    label: str
    note: str = ""


@dataclass
class BlendResult:
    """A generated sound in the session history."""

    number: int
    audio: np.ndarray
    sample_rate: int
    label: str
    key: tuple = field(repr=False)
    wav_path: Path | None = None  # the temp file written for a drag, reused by later drags


class _ElidedLabel(QLabel):
    """A label that elides its text in the middle (file extensions stay visible)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = self.fontMetrics()
        self.setText(metrics.elidedText(self._full, Qt.TextElideMode.ElideMiddle, self.width()))


class BlendSlot(QFrame):
    """One sample in the blend: its name, state, weight slider and a remove button."""

    weight_changed = Signal(float)
    remove_requested = Signal()
    menu_requested = Signal(QPoint)  # global position of a right-click

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.ref: SampleRef | None = None
        self.vector: np.ndarray | None = None
        self.error: str | None = None
        self.setObjectName(f"blendSlot{index}")
        self.setProperty("blendSlot", True)
        self.setFrameShape(QFrame.Shape.StyledPanel)

        self.name_label = _ElidedLabel(self)
        self.name_label.setObjectName(f"blendName{index}")
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.remove_button = QToolButton(self)
        self.remove_button.setObjectName(f"blendRemove{index}")
        self.remove_button.setText("✕")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setToolTip("Remove from the blend")
        self.remove_button.clicked.connect(self.remove_requested)

        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName(f"blendWeight{index}")
        self.slider.setRange(round(WEIGHT_MIN * 100), round(WEIGHT_MAX * 100))
        self.slider.setSingleStep(1)
        self.slider.setPageStep(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(100)  # marks at -1, 0, 1 and 2
        self.slider.setValue(round(DEFAULT_WEIGHT * 100))
        self.slider.setToolTip("Weight (negative weights subtract this sound)")
        self.slider.valueChanged.connect(self._slider_moved)
        self.value_label = QLabel(self)
        self.value_label.setObjectName(f"blendWeightValue{index}")
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("-0.00") + 8)
        self.state_label = QLabel(self)
        self.state_label.setObjectName(f"blendSlotState{index}")
        self.state_label.setWordWrap(True)
        self.state_label.hide()

        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self.name_label, 1)
        top.addWidget(self.remove_button)
        bottom = QHBoxLayout()
        bottom.setSpacing(6)
        bottom.addWidget(self.slider, 1)
        bottom.addWidget(self.value_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 6)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(bottom)
        layout.addWidget(self.state_label)
        self._show_value()
        self.hide()

    @property
    def weight(self) -> float:
        return self.slider.value() / 100

    def set_weight(self, weight: float) -> None:
        self.slider.setValue(round(float(np.clip(weight, WEIGHT_MIN, WEIGHT_MAX)) * 100))

    @property
    def usable(self) -> bool:
        return self.ref is not None and self.vector is not None

    def set_sample(self, ref: SampleRef) -> None:
        self.ref, self.vector, self.error = ref, None, None
        self.name_label.set_full_text(ref.name)
        self.setToolTip(ref.path + (f"\nfrom {ref.onset:.2f} s" if ref.onset else ""))
        self.slider.blockSignals(True)
        self.slider.setValue(round(DEFAULT_WEIGHT * 100))
        self.slider.blockSignals(False)
        self._show_value()
        self.set_waiting("reading...")
        self.show()

    def clear(self) -> None:
        self.ref, self.vector, self.error = None, None, None
        self.name_label.set_full_text("")
        self.setToolTip("")
        self.hide()

    def set_waiting(self, text: str) -> None:
        self.vector, self.error = None, None
        self._set_state(text, error=False)

    def set_vector(self, vector: np.ndarray) -> None:
        self.vector, self.error = vector, None
        self._set_state("", error=False)

    def set_error(self, reason: str) -> None:
        self.vector, self.error = None, reason
        self._set_state(f"Not used: {reason}", error=True)

    def state_text(self) -> str:
        return self.state_label.text() if self.state_label.isVisibleTo(self) else ""

    def _set_state(self, text: str, error: bool) -> None:
        self.state_label.setText(text)
        self.state_label.setVisible(bool(text))
        self.state_label.setStyleSheet("color: #c0392b;" if error else "color: palette(mid);")
        self.slider.setEnabled(not error)
        self.value_label.setEnabled(not error)

    def _slider_moved(self, _value: int) -> None:
        self._show_value()
        self.weight_changed.emit(self.weight)

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.weight:.2f}")

    def contextMenuEvent(self, event) -> None:
        if self.ref is not None:
            self.menu_requested.emit(event.globalPos())


class _HistoryList(QListWidget):
    """The session's results; an item dragged out is a WAV file."""

    def __init__(self, panel: BlendPanel) -> None:
        super().__init__(panel)
        self._panel = panel
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)

    def sizeHint(self) -> QSize:
        return QSize(240, 110)  # the slots get the room first; the history scrolls

    def startDrag(self, supported_actions) -> None:
        item = self.currentItem()
        if item is not None:
            self._panel._drag_result(self._panel.history_entry(item), self)


# -- the panel -----------------------------------------------------------------------------------


class BlendPanel(QWidget):
    """Blend the latent vectors of up to 8 samples and hear the decoded result.

    Signals:
        generated(audio, sample_rate): a new result, or an old one to replay (float32
            [num_samples]); the window plays it and shows it in the main waveform view.
        slots_changed(): a slot was filled, cleared, or its vector or error arrived.

    Attributes:
        save_path_provider: `(parent, caption, start_path, filters) -> path or ""`; a file
            dialog by default (tests swap it).
        generations_started: how many generation tasks this panel has started.
    """

    generated = Signal(object, int)
    slots_changed = Signal()

    def __init__(self, parent: QWidget | None = None, actions=None) -> None:
        super().__init__(parent)
        self.setObjectName("blendPanel")
        self.setAcceptDrops(True)
        self.actions = actions  # ui.actions.SampleActions: the shared right-click menu
        self.save_path_provider: SavePathProvider = _ask_save_path
        self.generations_started = 0

        self._tool = None
        self._tool_state = "loading"  # "loading" until set_tool; then "ready" or "none"
        self._vectors: dict[SampleRef, np.ndarray] = {}
        self._errors: dict[SampleRef, str] = {}
        self._reading: set[SampleRef] = set()
        self._tool_token = 0  # bumped by set_tool: vectors from an older model are dropped
        self._running: _Request | None = None
        self._pending = False
        self._history: list[BlendResult] = []
        self._current: BlendResult | None = None
        self._blend_count = 0
        self._temp_dir: Path | None = None
        self._press_pos: QPoint | None = None

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.regenerate_now)

        self._build()
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
        controls.addWidget(QLabel("Variance", self), 1, 0)
        controls.addWidget(self.variance, 1, 1)
        controls.addWidget(self.variance_label, 1, 2)
        controls.addWidget(QLabel("Seed", self), 2, 0)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_button)
        controls.addLayout(seed_row, 2, 1, 1, 2)
        controls.setColumnStretch(1, 1)

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

        self.history = _HistoryList(self)
        self.history.setObjectName("blendHistory")
        self.history.setToolTip("Click to play again; drag out as a WAV file")
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
        layout.addWidget(self.result_plot)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.save_button)
        layout.addLayout(save_row)
        history_label = QLabel("History", self)
        history_label.setStyleSheet("font-weight: bold;")
        layout.addWidget(history_label)
        layout.addWidget(self.history)
        layout.addWidget(self.status)
        self._variance_moved(self.variance.value())

    def sizeHint(self) -> QSize:
        return QSize(340, 640)

    # -- model and vectors -----------------------------------------------------------------

    @property
    def tool(self):
        return self._tool

    def set_tool(self, tool) -> None:
        """The loaded SoundSampleTool, or None when none could be loaded. Vectors from an
        earlier model are dropped and the samples read again."""
        changed = tool is not self._tool
        self._tool = tool
        self._tool_state = "ready" if tool is not None else "none"
        if changed:
            self._tool_token += 1
            self._vectors.clear()
            self._errors.clear()
            self._reading.clear()
        if tool is None:
            self._set_status("No model loaded: blending needs a model")
        else:
            self._set_status("")
        for slot in self.slots:
            if slot.ref is not None:
                self._resolve(slot)
        self.slots_changed.emit()

    def _resolve(self, slot: BlendSlot) -> None:
        """Give a slot its latent: cached, or read in the background."""
        ref = slot.ref
        if ref is None:
            return
        if ref in self._vectors:
            slot.set_vector(self._vectors[ref])
            return
        if ref in self._errors:
            slot.set_error(self._errors[ref])
            return
        if self._tool is None:
            slot.set_waiting("waiting for the model")
            return
        slot.set_waiting("reading...")
        if ref not in self._reading:
            self._reading.add(ref)
            token = self._tool_token
            run_task(
                _latent_job, self._tool, ref.path, ref.onset,
                on_result=lambda v, ref=ref, t=token: self._latent_read(ref, t, v, None),
                on_error=lambda e, ref=ref, t=token: self._latent_read(ref, t, None, e),
            )  # fmt: skip

    def _latent_read(self, ref: SampleRef, token: int, vector, error) -> None:
        if not shiboken6.isValid(self) or token != self._tool_token:
            return
        self._reading.discard(ref)
        if error is not None:
            self._errors[ref] = _reason(error)
        else:
            self._vectors[ref] = vector
        touched = False
        for slot in self.slots:
            if slot.ref == ref:
                touched = True
                if error is not None:
                    slot.set_error(self._errors[ref])
                else:
                    slot.set_vector(vector)
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

    def clear_slots(self) -> None:
        for slot in self.slots:
            slot.clear()
        self._update_hint()
        self.slots_changed.emit()

    def samples(self) -> list[SampleRef | None]:
        """The sample in each slot (None for an empty one)."""
        return [s.ref for s in self.slots]

    def slot_vector(self, index: int) -> np.ndarray | None:
        return self.slots[index].vector

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

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if can_accept(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if can_accept(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        refs = samples_from_mime(event.mimeData())
        if not refs:
            event.ignore()
            return
        event.acceptProposedAction()
        added = self.add_samples(refs)
        if 0 < added < len(refs):
            self._set_status(
                f"Added {added} of {len(refs)}: all {MAX_SLOTS} blend slots are full", error=True
            )

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
        if self._tool is None:
            self._show_no_model()

    # -- generation ------------------------------------------------------------------------

    def is_busy(self) -> bool:
        """True while vectors are being read or a sound is (or will shortly be) generated."""
        waiting = shiboken6.isValid(self._debounce) and self._debounce.isActive()
        return bool(self._reading or self._running is not None or self._pending or waiting)

    def _schedule(self, *_: object) -> None:
        """A control changed: generate after a short pause. The timer is not restarted, so a
        continuous drag still produces sounds at the rate the engine can make them."""
        if not self._debounce.isActive():
            self._debounce.start()

    def regenerate_now(self) -> None:
        """Start a generation from the current settings now (or, with one running, remember
        that the settings changed)."""
        self._debounce.stop()
        if self._tool is None:
            self._show_no_model()
            return
        request = self._request()
        if request is None:
            return
        if self._running is not None:
            self._pending = request.key != self._running.key
            return
        self._pending = False
        if self._current is not None and request.key == self._current.key:
            self._set_status("")
            self.generated.emit(self._current.audio, self._current.sample_rate)  # replay
            return
        self._start(request)

    def _show_no_model(self) -> None:
        if self._tool_state == "loading":
            self._set_status("Loading the model...")
        else:
            self._set_status("No model loaded: blending needs a model", error=True)

    def _request(self) -> _Request | None:
        filled = [s for s in self.slots if s.ref is not None]
        used = [s for s in filled if s.usable]
        if any(s.vector is None and s.error is None for s in filled):
            # Wait for every sample: a half-read blend would play a sound nobody asked for.
            self._set_status("Reading the samples...")
            return None
        if filled and not used:
            self._set_status("None of the samples can be read", error=True)
            return None
        tool = self._tool
        normalize = self.normalize.isChecked()
        variance = self.variance.value() / 100
        seed = self.seed.value()
        weights = [s.weight for s in used]
        latents = (
            np.stack([s.vector for s in used]).astype(np.float32)
            if used
            else np.empty((0, tool.latent_dim), np.float32)
        )
        note = ""
        if used:
            effective = list(weights)
            total = sum(weights)
            if normalize and abs(total) < 1e-9:
                effective = [1.0 / len(used)] * len(used)
                weights = effective  # what the engine would do, without its warning
                note = "The weights sum to zero: using equal weights"
            elif normalize:
                effective = [w / total for w in weights]
            parts = [f"{s.ref.name} {w:.2f}" for s, w in zip(used, effective, strict=True)]
            label = " + ".join(parts)
        else:
            label = f"random (seed {seed})"
        if variance > 0:
            label += f", variance {variance:.2f}"
        key = (
            id(tool), tuple((s.ref, s.weight) for s in used), normalize, variance, seed,
        )  # fmt: skip
        return _Request(key, tool, latents, weights, normalize, variance, seed, label, note)

    def _start(self, request: _Request) -> None:
        self._running = request  # set before run_task: a synchronous pool finishes inside it
        self.generations_started += 1
        self._set_status("Generating...")
        run_task(
            _blend_job, request.tool, request.latents, request.weights, request.normalize,
            request.variance, request.seed,
            on_result=lambda audio, r=request: self._finished(r, audio, None),
            on_error=lambda e, r=request: self._finished(r, None, e),
        )  # fmt: skip

    def _finished(self, request: _Request, audio, error) -> None:
        if not shiboken6.isValid(self):
            return
        if self._running is request:
            self._running = None
        newer = self._pending or self._debounce.isActive()
        if not newer and request.tool is self._tool:
            if error is not None:
                self._set_status(f"The blend failed: {_reason(error)}", error=True)
            else:
                self._show_result(request, np.asarray(audio, np.float32))
        if self._pending:
            self._pending = False
            self.regenerate_now()

    def _show_result(self, request: _Request, audio: np.ndarray) -> None:
        self._blend_count += 1
        entry = BlendResult(
            self._blend_count, audio, int(request.tool.sample_rate),
            f"blend {self._blend_count} — {request.label}", request.key,
        )  # fmt: skip
        self._history.insert(0, entry)
        item = QListWidgetItem(entry.label)
        item.setData(Qt.ItemDataRole.UserRole, entry.number)
        item.setToolTip(
            f"{entry.label}\nseed {request.seed}, "
            f"weights {'normalised' if request.normalize else 'as given'}"
        )
        self.history.insertItem(0, item)
        while len(self._history) > HISTORY_LIMIT:
            self._history.pop()
            self.history.takeItem(self.history.count() - 1)
        self._set_status(request.note, error=bool(request.note))
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
        return list(self._history)

    def history_entry(self, item: QListWidgetItem) -> BlendResult | None:
        number = item.data(Qt.ItemDataRole.UserRole)
        return next((e for e in self._history if e.number == number), None)

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
            self._set_current(entry)
            self.generated.emit(entry.audio, entry.sample_rate)

    def _session_dir(self) -> Path:
        if self._temp_dir is None or not self._temp_dir.is_dir():
            # Left in place on exit: a DAW may still reference a file dropped into it.
            self._temp_dir = Path(tempfile.mkdtemp(prefix="sampletool-blends-"))
        return self._temp_dir

    def result_wav(self, entry: BlendResult | None = None) -> Path | None:
        """The result as a WAV file in this session's temp folder (written once)."""
        entry = entry or self._current
        if entry is None:
            return None
        if entry.wav_path is None or not entry.wav_path.is_file():
            from sampletool.tool import write_wav

            path = self._session_dir() / f"sampletool-blend-{entry.number}.wav"
            entry.wav_path = write_wav(path, entry.audio, entry.sample_rate)
        return entry.wav_path

    def result_mime(self, entry: BlendResult | None = None):
        """The drag payload of a result (the current one by default): a local file URL to its
        WAV file, which DAWs and file managers accept. None without a result."""
        try:
            path = self.result_wav(entry)
        except OSError as e:
            self._set_status(f"Could not write the temporary WAV file: {e}", error=True)
            return None
        return None if path is None else make_mime([SampleRef(str(path))])

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

    def save(self, path: str | None = None) -> Path | None:
        """Save the current result as a WAV file; asks for the path when none is given."""
        if self._current is None:
            self._set_status("Nothing to save yet: generate a sound first", error=True)
            return None
        settings = app_settings()
        if path is None:
            folder = str(settings.value(SETTINGS_KEY, "") or "") or str(Path.home())
            start = str(Path(folder) / f"blend-{self._current.number}.wav")
            path = self.save_path_provider(self, "Save blend as WAV", start, "WAV audio (*.wav)")
            if not path:
                return None
        target = Path(path)
        if target.suffix.lower() != ".wav":
            target = target.with_name(target.name + ".wav")
        from sampletool.tool import write_wav

        try:
            written = write_wav(target, self._current.audio, self._current.sample_rate)
        except Exception as e:  # a full disk or a read-only folder is a message
            self._set_status(f"Could not save {target.name}: {_reason(e)}", error=True)
            return None
        settings.setValue(SETTINGS_KEY, str(written.parent))
        self._set_status(f"Saved {written.name}")
        return written

    # -- status ----------------------------------------------------------------------------

    def status_text(self) -> str:
        return self.status.text()

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b;" if error else "")
