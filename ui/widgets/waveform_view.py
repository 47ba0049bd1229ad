"""The waveform of the sample being auditioned: a min/max outline, its onsets, a playhead, and a
spectrogram on demand. A click asks to play from that point (`play_from`).

Files are read on a worker thread (blockwise: an hour-long recording costs the same memory as a
one-shot) through the view's task group: a newer `load()` wins over an older one still reading.
The widget remembers no settings; whoever owns it may save `spectrogram_button.isChecked()`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sampletool.errors import AudioError
from sampletool.waveform import (
    Envelope,
    envelope_of,
    mono_mix,
    read_envelope,
    read_excerpt,
    spectrogram_db,
)
from ui.widgets import ElidedLabel
from ui.workers import Pool, TaskGroup

SPECTROGRAM_SECONDS = 30.0
N_FFT, HOP = 1024, 256
ENVELOPE_BINS = 2000
ONSET_COLOR = "#f39c12"  # amber: readable on light and dark backgrounds
ONSET_COLOR_ON_IMAGE = "#4dd0e1"  # cyan: stands out on the inferno colour map
EMPTY_TEXT = "Choose a sample to see its waveform."

Spectrogram = tuple[np.ndarray, np.ndarray, np.ndarray]  # (db [freq, frames], times, freqs)


@dataclass
class _Sound:
    envelope: Envelope
    audio: np.ndarray  # mono float32, at most SPECTROGRAM_SECONDS, for the spectrogram
    sample_rate: int
    spectrogram: Spectrogram | None = None


def _read_sound(path: str, with_spectrogram: bool, progress=None, cancel=None) -> _Sound:
    """Worker side of `load`: the envelope of the whole file and its first seconds."""
    envelope = read_envelope(path, bins=ENVELOPE_BINS, cancel=cancel)
    audio, sr = read_excerpt(path, 0.0, SPECTROGRAM_SECONDS, mono=True)
    spectrogram = spectrogram_db(audio, sr, N_FFT, HOP) if with_spectrogram else None
    return _Sound(envelope, audio, sr, spectrogram)


class WaveformView(QWidget):
    """Shows one sound. Signals: `play_from(float)`: the user clicked at that time (seconds)."""

    play_from = Signal(float)

    def __init__(self, parent: QWidget | None = None, pool: Pool | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("waveformView")
        self.tasks = TaskGroup(self, pool)
        self.path: str | None = None
        self.envelope: Envelope | None = None
        self.onsets: tuple[float, ...] = ()
        self.onset_lines: list[pg.InfiniteLine] = []
        self._audio: np.ndarray | None = None
        self._sample_rate = 0
        self._spectrogram: Spectrogram | None = None

        self.title = ElidedLabel(self, tooltip=True)
        self.title.setObjectName("waveformTitle")
        self.info = QLabel(self)
        self.info.setObjectName("waveformInfo")
        self.info.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.spectrogram_button = QToolButton(self)
        self.spectrogram_button.setObjectName("spectrogramToggle")
        self.spectrogram_button.setText("Spectrogram")
        self.spectrogram_button.setCheckable(True)
        self.spectrogram_button.setToolTip(
            f"Show the spectrogram (of the first {SPECTROGRAM_SECONDS:.0f} s) instead of the "
            "waveform"
        )
        self.spectrogram_button.toggled.connect(self._spectrogram_toggled)

        self.plot = pg.PlotWidget(self)
        self.plot.setObjectName("waveformPlot")
        self.plot.setMinimumHeight(90)
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)  # pyqtgraph's expert menu (log axes, export...) surprises
        item.hideButtons()
        item.setLabel("bottom", "Time", units="s")
        self._vb = item.getViewBox()
        self._vb.setMouseEnabled(x=True, y=False)  # wheel and drag zoom/pan time only
        self._vb.enableAutoRange(x=False, y=False)

        self._min_curve = pg.PlotCurveItem()
        self._max_curve = pg.PlotCurveItem()
        self._fill = pg.FillBetweenItem(self._min_curve, self._max_curve)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setColorMap(pg.colormap.get("inferno"))
        self.image.setVisible(False)
        self.playhead = pg.InfiniteLine(angle=90, movable=False)
        self.playhead.setZValue(20)
        self.playhead.setVisible(False)
        for it in (self.image, self._fill, self._min_curve, self._max_curve, self.playhead):
            item.addItem(it)
        self.image.setZValue(-10)
        self.plot.scene().sigMouseClicked.connect(self._scene_clicked)

        self.message = QLabel(self)
        self.message.setObjectName("waveformMessage")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setMargin(12)
        self.message.setBackgroundRole(QPalette.ColorRole.Base)  # the plot's background
        self.message.setAutoFillBackground(True)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.message)

        header = QHBoxLayout()
        header.setContentsMargins(4, 0, 4, 0)
        header.addWidget(self.title, 1)
        header.addWidget(self.info)
        header.addWidget(self.spectrogram_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.stack, 1)

        self._apply_colours()
        self._apply_mode()
        self.clear()

    # --- public API -----------------------------------------------------------------------

    def load(self, path: str, onsets: Sequence[float] = (), title: str = "") -> None:
        """Show a file: read on a worker thread, "Loading..." meanwhile; a later call wins."""
        self._begin(str(path), onsets, title or Path(path).name)
        self._show_message(f"Loading {Path(path).name}...")
        self.tasks.run(
            "sound",
            _read_sound,
            str(path),
            self.spectrogram_button.isChecked(),
            pass_control=True,
            on_result=self._loaded,
            on_error=self._failed,
        )

    def set_audio(
        self,
        audio: np.ndarray,
        sample_rate: int,
        onsets: Sequence[float] = (),
        title: str = "",
    ) -> None:
        """Show an in-memory sound ([n] or [n, channels]), such as a generated blend, at once
        (its spectrogram, when shown, is computed on a worker)."""
        self._begin(None, onsets, title)
        mono = mono_mix(audio)
        sound = _Sound(
            envelope_of(mono, sample_rate, ENVELOPE_BINS),
            mono[: round(SPECTROGRAM_SECONDS * sample_rate)],
            int(sample_rate),
        )
        self._loaded(sound)  # the spectrogram, if shown, follows from a worker

    def clear(self) -> None:
        """Show nothing (and drop any load still running)."""
        self._begin(None, (), "")
        self._show_message(EMPTY_TEXT)

    def set_playhead(self, seconds: float) -> None:
        """Move the playhead line; a negative time hides it."""
        if seconds >= 0 and math.isfinite(seconds):
            self.playhead.setValue(seconds)
            self.playhead.setVisible(True)
        else:
            self.playhead.setVisible(False)

    def show_spectrogram(self, on: bool) -> None:
        self.spectrogram_button.setChecked(on)

    @property
    def message_text(self) -> str:
        """The text shown instead of the plot ("" while a sound is shown)."""
        return self.message.text() if self.stack.currentWidget() is self.message else ""

    # --- loading --------------------------------------------------------------------------

    def _begin(self, path: str | None, onsets: Sequence[float], title: str) -> None:
        self.tasks.drop_all()  # what an older load or spectrogram brings back is stale now
        self.path = path
        self.onsets = tuple(float(t) for t in onsets if math.isfinite(t) and t >= 0)
        self.envelope = None
        self._audio, self._sample_rate, self._spectrogram = None, 0, None
        self.title.set_full_text(title)
        self.info.setText("")
        self._min_curve.setData([], [])
        self._max_curve.setData([], [])
        self.image.clear()
        self.set_playhead(-1)
        for line in self.onset_lines:
            self.plot.removeItem(line)
        self.onset_lines = []

    def _loaded(self, sound: _Sound) -> None:
        env = self.envelope = sound.envelope
        self._audio, self._sample_rate = sound.audio, sound.sample_rate
        self._spectrogram = sound.spectrogram
        times = env.times
        self._min_curve.setData(times, env.mins)
        self._max_curve.setData(times, env.maxs)
        for t in self.onsets:
            line = pg.InfiniteLine(pos=t, angle=90, movable=False)
            line.setZValue(10)
            self.plot.addItem(line)
            self.onset_lines.append(line)
        duration = max(env.duration, 1.0 / max(env.sample_rate, 1))
        bin_seconds = duration / max(len(env.mins), 1)
        self._vb.setLimits(xMin=0.0, xMax=duration, minXRange=min(duration, 20 * bin_seconds))
        self._vb.setXRange(0.0, duration, padding=0)
        rate = f"{env.sample_rate / 1000:g} kHz"
        self.info.setText(f"{_format_duration(env.duration)} · {rate}")
        self.stack.setCurrentWidget(self.plot)
        self._ensure_spectrogram()  # toggled on while this sound was loading
        self._apply_mode()

    def _failed(self, error: BaseException) -> None:
        name = Path(self.path or "").name or "this sound"
        if isinstance(error, AudioError):
            text = f"Cannot show {name}: {error.reason}"
        else:  # a decoder bug: still a sentence, never a traceback
            text = f"Cannot show {name}: unexpected error ({type(error).__name__}: {error})"
        self._show_message(text)

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    # --- spectrogram ----------------------------------------------------------------------

    def _spectrogram_toggled(self, on: bool) -> None:
        self._ensure_spectrogram()
        self._apply_mode()

    def _ensure_spectrogram(self) -> None:
        """Compute the shown sound's spectrogram on a worker if it is wanted and missing."""
        wanted = self.spectrogram_button.isChecked() and self._spectrogram is None
        if wanted and self._audio is not None and len(self._audio):
            self.tasks.run(
                "spectrogram",
                spectrogram_db,
                self._audio,
                self._sample_rate,
                N_FFT,
                HOP,
                on_result=self._spectrogram_ready,
                on_error=self._failed,
            )

    def _spectrogram_ready(self, spectrogram: Spectrogram) -> None:
        self._spectrogram = spectrogram
        self._apply_mode()

    def _apply_mode(self) -> None:
        spectral = self.spectrogram_button.isChecked()
        for it in (self._fill, self._min_curve, self._max_curve):
            it.setVisible(not spectral)
        item = self.plot.getPlotItem()
        left = item.getAxis("left")
        if spectral:
            nyquist = self._sample_rate / 2 if self._sample_rate else 8000.0
            if self._spectrogram is not None:
                db, times, freqs = self._spectrogram
                hop = HOP / self._sample_rate
                df = freqs[1] - freqs[0]
                self.image.setImage(db.T, autoLevels=False, levels=(-80.0, 0.0))
                self.image.setRect(
                    QRectF(times[0] - hop / 2, -df / 2, hop * len(times), df * len(freqs))
                )
            self.image.setVisible(self._spectrogram is not None)
            left.setTicks(None)
            item.setLabel("left", "Frequency", units="Hz")
            self._vb.setLimits(yMin=0.0, yMax=nyquist)
            self._vb.setYRange(0.0, nyquist, padding=0)
        else:
            self.image.setVisible(False)
            left.setTicks([[(-1.0, "-1"), (0.0, "0"), (1.0, "1")]])
            item.setLabel("left", "")
            item.getAxis("left").showLabel(False)
            self._vb.setLimits(yMin=-1.05, yMax=1.05)
            self._vb.setYRange(-1.0, 1.0, padding=0.02)
        self._apply_colours()

    # --- looks ----------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._apply_colours()

    def _apply_colours(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        accent = palette.color(QPalette.ColorRole.Highlight)
        self.plot.setBackground(palette.color(QPalette.ColorRole.Base))
        for name in ("left", "bottom"):
            axis = self.plot.getPlotItem().getAxis(name)
            axis.setPen(pg.mkPen(_with_alpha(text, 120)))
            axis.setTextPen(pg.mkPen(text))
        self._min_curve.setPen(pg.mkPen(accent, width=1))
        self._max_curve.setPen(pg.mkPen(accent, width=1))
        self._fill.setBrush(pg.mkBrush(_with_alpha(accent, 140)))
        spectral = self.spectrogram_button.isChecked()
        onset = QColor(ONSET_COLOR_ON_IMAGE if spectral else ONSET_COLOR)
        for line in self.onset_lines:
            line.setPen(pg.mkPen(_with_alpha(onset, 200), width=1, style=Qt.PenStyle.DashLine))
        self.playhead.setPen(pg.mkPen(QColor("white") if spectral else text, width=2))

    # --- mouse ----------------------------------------------------------------------------

    def _scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.envelope is None:
            return
        pos = event.scenePos()
        if not self._vb.sceneBoundingRect().contains(pos):
            return  # on an axis, not on the sound
        if event.double():
            self._vb.setXRange(0.0, self.envelope.duration, padding=0)  # double click: view all
            return
        event.accept()
        seconds = self._vb.mapSceneToView(pos).x()
        self.play_from.emit(float(min(max(seconds, 0.0), self.envelope.duration)))


def _with_alpha(color: QColor, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def _format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds, 1), 60)
    if minutes < 60:
        return f"{int(minutes)}:{secs:04.1f}"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
