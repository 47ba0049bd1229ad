"""What a sound looks like: a min/max envelope for drawing, an excerpt, a spectrogram.

Qt-free (numpy + soundfile), so the GUI runs these on a worker thread and tests run them
anywhere. Files are read blockwise: drawing a one-hour recording costs a few megabytes, not the
whole file in memory.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import numpy as np

from sampletool.audio import open_audio
from sampletool.errors import AudioError
from sampletool.progress import Cancelled

__all__ = [
    "Envelope",
    "envelope_of",
    "mono_mix",
    "read_envelope",
    "read_excerpt",
    "spectrogram_db",
]


@dataclass
class Envelope:
    """The outline of a sound: the lowest and highest sample of its mono mix in each bin.

    Bin `i` covers samples `[i * n // bins, (i + 1) * n // bins)` of the `n` in the sound; a
    sound shorter than the requested bins gets one bin per sample (then `mins == maxs`).

    Attributes:
        mins, maxs: float32 arrays of shape [bins].
        duration: length of the sound in seconds.
        sample_rate: rate of the sound in Hz.
        complete: False when reading stopped early (cancelled); the missing bins read 0.
    """

    mins: np.ndarray
    maxs: np.ndarray
    duration: float
    sample_rate: int
    complete: bool = True

    @property
    def times(self) -> np.ndarray:
        """Start of each bin in seconds, float64 array of shape [bins]."""
        bins = len(self.mins)
        return np.arange(bins) * (self.duration / bins) if bins else np.zeros(0)


class _EnvelopeBuilder:
    """Exact per-bin min/max of a signal that arrives in consecutive blocks of any size."""

    def __init__(self, n_frames: int, bins: int) -> None:
        self.bins = max(0, min(int(bins), n_frames))
        self.edges = (np.arange(self.bins + 1, dtype=np.int64) * n_frames) // max(self.bins, 1)
        self.mins = np.full(self.bins, np.inf, dtype=np.float32)
        self.maxs = np.full(self.bins, -np.inf, dtype=np.float32)
        self.filled = 0  # frames seen so far

    def add(self, mono: np.ndarray) -> None:
        start, stop = self.filled, self.filled + len(mono)
        stop = min(stop, int(self.edges[-1]))
        if stop <= start:
            return
        mono = mono[: stop - start]
        first = int(np.searchsorted(self.edges, start, side="right")) - 1
        last = int(np.searchsorted(self.edges, stop - 1, side="right")) - 1
        cuts = np.concatenate(([0], self.edges[first + 1 : last + 1] - start))
        span = slice(first, last + 1)
        self.mins[span] = np.minimum(self.mins[span], np.minimum.reduceat(mono, cuts))
        self.maxs[span] = np.maximum(self.maxs[span], np.maximum.reduceat(mono, cuts))
        self.filled = stop

    def result(self, sample_rate: int, complete: bool = True) -> Envelope:
        mins, maxs = self.mins, self.maxs
        unseen = ~np.isfinite(mins)
        mins[unseen] = 0.0
        maxs[unseen] = 0.0
        duration = float(self.edges[-1]) / sample_rate if sample_rate > 0 else 0.0
        return Envelope(mins, maxs, duration, int(sample_rate), complete)


def mono_mix(audio: np.ndarray) -> np.ndarray:
    """[n] or [n, ch] -> float32 [n], the channels averaged, non-finite samples zeroed."""
    audio = np.asarray(audio)
    if audio.ndim == 2:
        mono = (
            audio.mean(axis=1, dtype=np.float32)
            if audio.shape[1] > 1
            else audio[:, 0].astype(np.float32, copy=False)
        )
    elif audio.ndim == 1:
        mono = audio.astype(np.float32, copy=False)
    else:
        raise ValueError(f"audio must have shape [n] or [n, channels], got {audio.shape}")
    if not np.isfinite(mono).all():
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return mono


def envelope_of(audio: np.ndarray, sample_rate: int, bins: int = 2000) -> Envelope:
    """The min/max envelope of an in-memory sound.

    Args:
        audio: array of shape [n] or [n, channels]; channels are averaged.
        sample_rate: its rate in Hz.
        bins: how many (min, max) pairs; a sound shorter than that gets one bin per sample.
    """
    if bins < 1 or sample_rate <= 0:
        raise ValueError(f"bins and sample_rate must be positive, got {bins}, {sample_rate}")
    mono = mono_mix(audio)
    builder = _EnvelopeBuilder(len(mono), bins)
    builder.add(mono)
    return builder.result(sample_rate)


def read_envelope(
    path: str | os.PathLike[str],
    bins: int = 2000,
    block_seconds: float = 10.0,
    cancel: threading.Event | None = None,
) -> Envelope:
    """The min/max envelope of an audio file, read `block_seconds` at a time.

    Memory stays constant whatever the file's length; the result equals `envelope_of` on the
    whole file.

    Raises:
        AudioError: the file is missing, unreadable, not audio, damaged or empty.
        Cancelled: `cancel` was set; its `partial` is the envelope so far (`complete=False`).
    """
    if bins < 1 or not block_seconds > 0:
        raise ValueError(f"bins and block_seconds must be positive, got {bins}, {block_seconds}")
    with open_audio(path) as f:
        sr = f.samplerate
        builder = _EnvelopeBuilder(f.frames, bins)
        block = max(1, math.ceil(block_seconds * sr))
        while builder.filled < f.frames:
            if cancel is not None and cancel.is_set():
                raise Cancelled("reading cancelled", partial=builder.result(sr, complete=False))
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except Exception as e:  # libsndfile decoding errors come in several types
                if builder.filled:
                    break  # damaged part-way (a cut-off download): draw what decodes
                raise AudioError(path, f"decoding failed ({e})") from None
            if not len(data):
                break  # the header promised more frames than the file holds
            builder.add(mono_mix(data))
    if builder.filled == 0:
        raise AudioError(path, "no audio could be decoded (the file is truncated)")
    if builder.filled < int(builder.edges[-1]):
        # A truncated file: draw what is there, as long as it really is.
        return _truncated(builder, sr)
    return builder.result(sr)


def _truncated(builder: _EnvelopeBuilder, sample_rate: int) -> Envelope:
    kept = int(np.searchsorted(builder.edges, builder.filled, side="left"))
    env = builder.result(sample_rate)
    return Envelope(
        env.mins[:kept].copy(),
        env.maxs[:kept].copy(),
        builder.filled / sample_rate,
        sample_rate,
    )


def read_excerpt(
    path: str | os.PathLike[str],
    offset: float = 0.0,
    seconds: float = 30.0,
    mono: bool = False,
) -> tuple[np.ndarray, int]:
    """Read at most `seconds` of a file from `offset`, at the file's own rate.

    Only the frames needed are decoded (the file is seeked).

    Returns:
        (audio, sample_rate): float32 audio of shape [n, channels], or [n] with `mono=True`
        (channels averaged); non-finite samples become zeros.

    Raises:
        AudioError: the file cannot be read, or `offset` is past its end.
        ValueError: a negative or non-finite offset, or a non-positive length.
    """
    if not (offset >= 0.0 and math.isfinite(offset)):
        raise ValueError(f"offset must be a finite number >= 0, got {offset}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    with open_audio(path) as f:
        sr = f.samplerate
        start = round(offset * sr)
        if start >= f.frames:
            lasts = f.frames / sr
            raise AudioError(path, f"{offset:.3f} s is past the end (the file lasts {lasts:.3f} s)")
        try:
            if start:
                f.seek(start)
            data = f.read(min(math.ceil(seconds * sr), f.frames - start), dtype="float32",
                          always_2d=True)  # fmt: skip
        except Exception as e:
            raise AudioError(path, f"decoding failed ({e})") from None
    if not len(data):
        raise AudioError(path, "no audio could be decoded (the file is truncated)")
    if mono:
        return mono_mix(data), sr
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return data, sr


def spectrogram_db(
    audio: np.ndarray,
    sample_rate: int,
    n_fft: int = 1024,
    hop: int = 256,
    max_seconds: float = 30.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude spectrogram in decibels relative to its loudest cell (Hann window).

    Only the first `max_seconds` are analysed. Frame `i` is centred on sample `i * hop` (the
    sound is zero-padded by `n_fft / 2` at both ends, as librosa's `center=True`); silence is
    -80 dB everywhere.

    Args:
        audio: mono float32 of shape [n] ([n, channels] is mixed down).

    Returns:
        (db, times, freqs): db is float32 [n_fft // 2 + 1, frames] in [-80, 0]; times are the
        frame centres in seconds [frames]; freqs the bin frequencies in Hz [n_fft // 2 + 1].
    """
    if n_fft < 2 or hop < 1 or sample_rate <= 0 or not max_seconds > 0:
        raise ValueError("n_fft >= 2, hop >= 1, sample_rate and max_seconds > 0 are required")
    mono = mono_mix(audio)[: max(1, round(max_seconds * sample_rate))]
    n = len(mono)
    # Frames centred on 0, hop, 2 hop...: the picture lines up with the sound's start and end.
    mono = np.pad(mono, (n_fft // 2, n_fft - n_fft // 2))
    frames = 1 + n // hop
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    windows = np.lib.stride_tricks.sliding_window_view(mono, n_fft)[::hop]
    mags = np.empty((frames, n_fft // 2 + 1), dtype=np.float32)
    step = 512  # frames per FFT batch: bounded temporary memory for long inputs
    for i in range(0, frames, step):
        mags[i : i + step] = np.abs(np.fft.rfft(windows[i : i + step] * window, axis=1))
    peak = float(mags.max())
    if peak > 0:
        floor = peak * 10 ** (-80 / 20)
        db = 20 * np.log10(np.maximum(mags, floor) / peak)
    else:
        db = np.full(mags.shape, -80.0)
    times = np.arange(frames) * hop / sample_rate
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    return np.ascontiguousarray(db.T, dtype=np.float32), times, freqs
