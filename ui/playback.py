"""Playing sounds: one Player per window, a thin layer over sounddevice.

sounddevice is imported on the first play, not at start-up. A machine without PortAudio or
without an output device (a CI box, a headless server, a laptop whose sound server is down)
gets one readable `unavailable` message and silent no-ops afterwards; nothing is raised into
the GUI. The playhead position is the time elapsed since play() on a ~30 Hz timer: it follows
the sound within the output latency, which is all a playhead needs.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from PySide6.QtCore import QElapsedTimer, QObject, QTimer, Signal

__all__ = ["NO_DEVICE", "OutputBackend", "Player", "SoundDeviceOutput"]

NO_DEVICE = "No audio output device: playback is off"
_PA_INVALID_SAMPLE_RATE = -9997  # PortAudio's paInvalidSampleRate


class OutputBackend(Protocol):
    """What the Player needs from an audio output; `play` returns at once (non-blocking)."""

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Start playing float32 audio of shape [n, channels], replacing any sound playing."""

    def stop(self) -> None:
        """Stop the sound playing, if any."""


def _import_sounddevice() -> Any:
    import sounddevice  # OSError when the PortAudio library itself is missing

    return sounddevice


class SoundDeviceOutput:
    """The default backend: sounddevice's play/stop on the default output device.

    Raises:
        ImportError, OSError: from the constructor, when sounddevice or PortAudio is missing.
    """

    def __init__(self) -> None:
        self._sd = _import_sounddevice()

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        self._sd.play(audio, sample_rate)

    def stop(self) -> None:
        self._sd.stop()


def _is_portaudio_error(error: BaseException) -> bool:
    # By name: sounddevice may not be importable at all, and its error is not an OSError.
    return any(cls.__name__ == "PortAudioError" for cls in type(error).__mro__)


def _device_reason(error: BaseException) -> str:
    """The sentence for an output that cannot be opened."""
    message = str(error.args[0]) if error.args else type(error).__name__
    lowered = message.lower()
    if "querying device" in lowered or "invalid device" in lowered or "no device" in lowered:
        return NO_DEVICE
    return f"The audio output could not be opened ({message}): playback is off"


class Player(QObject):
    """Plays in-memory audio or part of a file on the default output.

    Signals:
        state_changed(bool): playing started (True) or ended/stopped (False).
        unavailable(str): the output cannot be used; emitted once, with a readable reason.
        error(str): one sound could not be played (unreadable file...); playback stays on.
        position(float): seconds into the sound (file time for `play_excerpt`) about 30 times a
            second while playing; -1.0 once it ends or is stopped, so a playhead can hide.
    """

    state_changed = Signal(bool)
    unavailable = Signal(str)
    error = Signal(str)
    position = Signal(float)

    TICK_MS = 33

    def __init__(self, parent: QObject | None = None, backend: OutputBackend | None = None):
        super().__init__(parent)
        self._backend = backend  # None: the default one, opened on the first play
        self._reason = ""
        self._playing = False
        self._from = 0.0  # time of the sound's first frame, in the caller's timeline
        self._length = 0.0
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setInterval(self.TICK_MS)
        self._timer.timeout.connect(self._tick)

    @property
    def available(self) -> bool:
        """False once the output turned out to be unusable (see `reason`)."""
        return not self._reason

    @property
    def reason(self) -> str:
        """Why playback is off ("" while it is available)."""
        return self._reason

    @property
    def is_playing(self) -> bool:
        return self._playing

    def play(self, audio: np.ndarray, sample_rate: int, start: float = 0.0) -> bool:
        """Play `audio` ([n] or [n, channels]) from `start` seconds.

        Returns:
            True if the sound started; False if playback is off, the audio is empty or
            `start` is past its end, or the output refused it (see the signals).
        """
        if self._reason:
            return False
        try:
            data = np.asarray(audio, dtype=np.float32)
            if data.ndim == 1:
                data = data[:, None]
            if data.ndim != 2 or not sample_rate > 0 or not np.isfinite(start):
                raise ValueError(f"audio of shape {data.shape} at {sample_rate} Hz")
        except (TypeError, ValueError) as e:
            self.error.emit(f"Cannot play this sound: {e}")
            return False
        first = max(0, round(start * sample_rate))
        return self._play(data[first:], int(sample_rate), first / sample_rate)

    def play_excerpt(self, audio: np.ndarray, sample_rate: int, at: float = 0.0) -> bool:
        """Play audio read from a file elsewhere (off the GUI thread); `at` is the file time of
        its first frame, so `position` reports file time."""
        if self._reason:
            return False
        return self._play(np.asarray(audio), sample_rate, max(0.0, float(at)))

    def stop(self) -> None:
        """Stop the sound playing, if any."""
        if self._backend is not None and self._playing:
            try:
                self._backend.stop()
            except Exception:  # stopping a dead stream must not take the GUI down
                pass
        self._finish()

    def _open_backend(self) -> OutputBackend | None:
        if self._backend is None and not self._reason:
            try:
                self._backend = SoundDeviceOutput()
            except OSError:
                self._turn_off("Audio playback is off: the PortAudio library is not installed")
            except ImportError:
                self._turn_off("Audio playback is off: the sounddevice package is not installed")
        return self._backend

    def _play(self, data: np.ndarray, sample_rate: int, begins_at: float) -> bool:
        backend = self._open_backend()
        if backend is None or not len(data):
            return False
        # Generated blends can overshoot; clipping here protects ears and speakers.
        data = np.ascontiguousarray(np.clip(np.nan_to_num(data), -1.0, 1.0), dtype=np.float32)
        try:
            backend.play(data, sample_rate)
        except Exception as e:
            self._failed(e, sample_rate)
            return False
        self._from, self._length = begins_at, len(data) / sample_rate
        self._clock.start()
        self._timer.start()
        self.position.emit(begins_at)
        if not self._playing:
            self._playing = True
            self.state_changed.emit(True)
        return True

    def _failed(self, error: Exception, sample_rate: int) -> None:
        self._finish()
        code = error.args[1] if len(error.args) > 1 else None
        if _is_portaudio_error(error) and code == _PA_INVALID_SAMPLE_RATE:
            self.error.emit(f"The audio output cannot play sound at {sample_rate} Hz")
        elif _is_portaudio_error(error) or isinstance(error, OSError):
            self._turn_off(_device_reason(error))
        else:
            self.error.emit(f"Playback failed: {error}")

    def _turn_off(self, reason: str) -> None:
        if not self._reason:
            self._reason = reason
            self.unavailable.emit(reason)

    def _tick(self) -> None:
        elapsed = self._clock.elapsed() / 1000.0
        if elapsed >= self._length:
            self._finish()  # the stream ends by itself: stopping it now would cut its tail
        else:
            self.position.emit(self._from + elapsed)

    def _finish(self) -> None:
        self._timer.stop()
        if self._playing:
            self._playing = False
            self.position.emit(-1.0)
            self.state_changed.emit(False)
