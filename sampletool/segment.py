"""Onset detection: where the separate sounds in a long file (a loop, a recording) begin.

When a library is scanned with segmentation on, each onset of a long file starts a library
entry of its own (the model embeds the 2 s that follow it). Splitting too eagerly is the worse
mistake: SampleVAE's detector cut a single cymbal hit into many pieces. So an onset here needs
two things at once: a sudden spectral change that stands out from its surroundings, and a real
rise in level somewhere in the spectrum. The tail of a crash, a reverb or a pad with vibrato
changes its spectrum all the time, but never climbs far above its own recent level.

The method, on frames every 10 ms (Hann window of 32 ms at 16 kHz, 46 ms at 44.1 kHz):

1. Spectral flux. The spectrum is grouped into bands (six per octave) and taken in dB. Each
   band's rise over the frame two hops back, max-filtered across neighbouring bands so that
   vibrato and pitch drift cost nothing (Böck & Widmer's "SuperFlux"), is half-wave rectified
   and averaged over the bands: the mean rise in dB.
2. An adaptive threshold: the flux's moving median over 0.5 s plus a margin of 1.5 robust
   standard deviations of the whole file's flux, and at least 1.3 dB. Peaks above it that are
   the highest within ±30 ms are candidates.
3. Backtracking: from each peak back along the flux to where it leaves the background, the
   last frame before the attack entered the analysis window.
4. A guard against decays: the attack must lift some frequency region (half an octave wide
   above 1 kHz, wider below) at least 6 dB above the loudest that region was in the 40 ms
   before, and that region must be one of the louder ones at the time (or leap 12 dB). Noise,
   beating partials and tremolo make a region's level wander, but not above its recent peaks.
5. The time is refined on a 2 ms energy envelope (plain and high-passed): the attack begins
   at the first block that clears the loudest of the 20 ms before it, so a segment keeps its
   transient (on the synthetic loops of the tests, onsets land 0.5-4 ms early, never late).
6. Of onsets closer than `min_gap`, the stronger (higher flux) is kept.

Only numpy is used (no torch): `segment_file` runs in the library scanner's worker processes.
Files are streamed in blocks and reduced on the way to ~15 bytes per 10 ms frame plus 2 bytes
per 2 ms: about 2.5 kB per second of audio, so an hour costs ~9 MB, not the 230 MB of its
samples at 16 kHz.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from pathlib import Path

import numpy as np
import soxr

from sampletool.audio import open_audio
from sampletool.errors import AudioError

__all__ = ["detect_onsets", "segment_file"]

# Frontend.
_HOP_SECONDS = 0.01  # one frame every 10 ms
_WINDOW_SECONDS = 0.04  # rounded to a power of two: 512 samples at 16 kHz, 2048 at 44.1 kHz
_LAG = 2  # the flux compares each frame with the one this many hops back
_BANDS_PER_OCTAVE = 6
_F_LOW = 30.0  # Hz: the flux's bands start here...
_F_HIGH = 16000.0  # Hz: ...and end here, or at Nyquist
# Hz: the guard's regions, half an octave wide above 1 kHz; wider below, where half an octave
# holds only a few FFT bins and the level of noise in it wanders too much.
_REGION_EDGES = (0, 200, 400, 700, 1000, 1400, 2000, 2800, 4000, 5600, 8000, 11300, 16000)
_FLOOR_DB = -90.0  # levels, in dB relative to a full-scale sine, are floored here
_FINE_SECONDS = 0.002  # resolution of the envelope that places each onset
_STEPS_PER_DB = 2  # levels are kept as uint8 in half-dB steps above _FLOOR_DB (to +37.5 dB)

# Peak picking.
_MEDIAN_RADIUS = 0.25  # s: half the adaptive threshold's moving-median window
_MIN_DELTA = 1.3  # dB: the threshold's margin above the median is at least this...
_SPREAD_FACTOR = 1.5  # ...or this many robust standard deviations of the file's flux
_PEAK_RADIUS = 0.03  # s: a candidate is the highest flux within this distance
_BACKTRACK_SECONDS = 0.25  # s: the attack begins at most this long before the flux's peak
_POST_FRAMES = 2  # frames after the flux peak that still belong to the attack
_RISE_DB = 6.0  # dB: the guard's required rise of a region above its recent maximum...
_REF_SECONDS = 0.04  # s: ...over this long before the attack
_REGION_RANGE_DB = 15.0  # dB: a region this far below the loudest one does not count...
_LEAP_DB = 12.0  # dB: ...unless it rises this much...
_LEAP_RANGE_DB = 25.0  # dB: ...and is no further below than this
_TILT_DB = 3.0  # dB per octave added to the region levels when comparing them
_FINE_MIN_RISE_DB = 6.0  # dB: below this the fine envelope cannot place the onset
_PLACE_BLOCKS = 10  # blocks (20 ms) of the fine envelope an attack must rise above
_PLACE_EARLY = 1  # blocks: the onset is placed this much before the block that rises

_MIN_RATE = 1000  # Hz: below this there is no spectrum to speak of

# Streaming.
_BLOCK_FRAMES = 1 << 14  # samples per channel read from a file (or pushed) at a time
_CHUNK_FRAMES = 256  # analysis frames computed at a time


class _Analysis:
    """Streaming frontend: push mono float32 audio in blocks of any size, then `finish`.

    Frame n is centred on sample n * hop (the signal is zero-padded by half a window at both
    ends), so N samples give 1 + N // hop frames however they were split into blocks. The time
    before the first sample counts as silence, so a sound that starts at once is an onset at 0.
    """

    def __init__(self, sample_rate: int, expected_samples: int = 0) -> None:
        self.sample_rate = sample_rate
        self.hop = max(1, round(_HOP_SECONDS * sample_rate))
        self.n_fft = max(16, 2 ** round(math.log2(_WINDOW_SECONDS * sample_rate)))
        self.sub = max(1, round(_FINE_SECONDS * sample_rate))
        self.window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        # Power scaled so that a full-scale sine reads 0 dB in the band that holds it.
        self.scale = np.float32(4.0 / float(self.window.sum()) ** 2)
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate)
        f_high = min(_F_HIGH, sample_rate / 2)
        n_edges = max(2, math.ceil(_BANDS_PER_OCTAVE * math.log2(f_high / _F_LOW)) + 1)
        edges = np.unique(np.searchsorted(freqs, np.geomspace(_F_LOW, f_high, n_edges)))
        self.band_bounds = edges[edges >= 1]  # band i sums FFT bins [bounds[i], bounds[i + 1])
        regions = []
        for lo, hi in itertools.pairwise(_REGION_EDGES):
            lo_bin = max(1, int(np.searchsorted(freqs, lo)))
            hi_bin = int(np.searchsorted(freqs, min(hi, sample_rate / 2)))
            if hi_bin - lo_bin >= 2:  # regions past Nyquist, or of a bin, are dropped
                regions.append((lo_bin, hi_bin))
        self.region_bounds = np.array([lo for lo, _ in regions] + [regions[-1][1]])
        centres = np.array([math.sqrt(max(freqs[lo], 100.0) * freqs[hi - 1]) for lo, hi in regions])
        self.tilt = (_TILT_DB * np.log2(centres / 1000.0)).astype(np.float32)
        self.floor = np.float32(10 ** (_FLOOR_DB / 10))
        self._buffer = np.zeros(self.n_fft // 2, np.float32)  # the leading half window of zeros
        self._previous = np.full((_LAG, self.band_bounds.size - 1), _FLOOR_DB, np.float32)
        self._fine_buffer = np.zeros(0, np.float32)
        self._last_sample = np.float32(0.0)
        self.n_samples = 0
        # Everything kept, allocated once when the length is known (no copies as it grows).
        n_frames = 1 + expected_samples // self.hop
        self._flux = _Rows((), np.float32, n_frames)
        self._levels = _Rows((self.region_bounds.size - 1,), np.uint8, n_frames)
        self._fine = _Rows((2,), np.uint8, expected_samples // self.sub + 1)

    def push(self, audio: np.ndarray) -> None:
        """Analyse the next samples (mono float32, finite)."""
        if audio.size == 0:
            return
        self.n_samples += audio.size
        self._push_fine(audio)
        buffer = np.concatenate([self._buffer, audio])
        n = 0 if buffer.size < self.n_fft else (buffer.size - self.n_fft) // self.hop + 1
        self._frames(buffer, n)
        self._buffer = buffer[n * self.hop :]

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flush the last frames and return what `_pick` needs: flux [T] (mean rise in dB),
        region levels [T, regions] (dB) and the fine envelope [T_fine, 2] (dB; plain and
        high-passed)."""
        total = 1 + self.n_samples // self.hop
        buffer = np.concatenate([self._buffer, np.zeros(self.n_fft, np.float32)])
        self._frames(buffer, total - self._flux.n)
        if self._fine_buffer.size:
            self._push_fine(np.zeros(self.sub - self._fine_buffer.size, np.float32))
        return self._flux.array(), self._levels.array(), self._fine.array()

    def _push_fine(self, audio: np.ndarray) -> None:
        x = np.concatenate([self._fine_buffer, audio]) if self._fine_buffer.size else audio
        n = x.size // self.sub
        if n:
            block = x[: n * self.sub]
            diff = np.diff(block, prepend=self._last_sample)
            self._last_sample = block[-1]
            plain = np.square(block).reshape(n, self.sub).mean(axis=1)
            high = np.square(diff).reshape(n, self.sub).mean(axis=1)
            energy = np.stack([2 * plain, 2 * high], axis=1) + self.floor  # full-scale sine: 0 dB
            self._fine.add(_quantise(10.0 * np.log10(energy)))
        self._fine_buffer = x[n * self.sub :].copy()

    def _frames(self, buffer: np.ndarray, n: int) -> None:
        if n <= 0:
            return
        view = np.lib.stride_tricks.sliding_window_view(buffer, self.n_fft)[:: self.hop][:n]
        for start in range(0, n, _CHUNK_FRAMES):
            spectrum = np.fft.rfft(view[start : start + _CHUNK_FRAMES] * self.window, axis=1)
            power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32) * self.scale
            bands = 10.0 * np.log10(_sum_bins(power, self.band_bounds) + self.floor)
            regions = 10.0 * np.log10(_sum_bins(power, self.region_bounds) + self.floor)
            history = np.concatenate([self._previous, bands])
            reference = history[:-_LAG]
            # Max filter across neighbouring bands: a partial that drifts into the next band
            # (vibrato, a pitch bend) is no rise there.
            reference = np.maximum(reference, np.pad(reference, ((0, 0), (1, 0)), "edge")[:, :-1])
            reference = np.maximum(reference, np.pad(reference, ((0, 0), (0, 1)), "edge")[:, 1:])
            self._flux.add(np.maximum(bands - reference, 0.0).mean(axis=1))
            self._levels.add(_quantise(regions))
            self._previous = history[-_LAG:]


class _Rows:
    """An array that grows by rows; preallocated to the expected count, so usually no copy."""

    def __init__(self, shape: tuple[int, ...], dtype: type, capacity: int) -> None:
        self._data: np.ndarray = np.empty((max(capacity, 16), *shape), dtype)
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        end = self.n + rows.shape[0]
        if end > self._data.shape[0]:
            shape = (max(end, 2 * self._data.shape[0]), *self._data.shape[1:])
            grown = np.empty(shape, self._data.dtype)
            grown[: self.n] = self._data[: self.n]
            self._data = grown
        self._data[self.n : end] = rows
        self.n = end

    def array(self) -> np.ndarray:
        return self._data[: self.n]


def _quantise(db: np.ndarray) -> np.ndarray:
    """dB (at least _FLOOR_DB) -> uint8 in half-dB steps: a quarter of the memory of float32."""
    return np.minimum(np.rint((db - _FLOOR_DB) * _STEPS_PER_DB), 255).astype(np.uint8)


def _decibels(q: np.ndarray) -> np.ndarray:
    """The inverse of `_quantise`, as float32."""
    return q.astype(np.float32) / _STEPS_PER_DB + _FLOOR_DB


def _sum_bins(power: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum the power of consecutive groups of FFT bins: group i is [bounds[i], bounds[i + 1])."""
    return np.add.reduceat(power[:, bounds[0] : bounds[-1]], bounds[:-1] - bounds[0], axis=1)


def _moving_median(x: np.ndarray, radius: int) -> np.ndarray:
    """Median of x over [i - radius, i + radius], computed in chunks. Outside the file is
    silence, whose flux is 0."""
    padded = np.pad(x, radius)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    out = np.empty(x.size, np.float32)
    step = 1 << 12
    for i in range(0, x.size, step):
        out[i : i + step] = np.median(windows[i : i + step], axis=1)
    return out


def _place(fine: np.ndarray, lo: int, hi: int, sub: int) -> int | None:
    """The sample where an attack begins between samples `lo` and `hi`, from the 2 ms
    envelopes: the first block that clears the loudest of the 20 ms before it by at least half
    the largest such margin in the range (so a waveform's own ripple, which never clears its
    recent peaks, is no attack), less one block. None when no envelope clears its recent peaks
    by enough to tell."""
    i0, i1 = max(0, lo // sub), min(fine.shape[0], -(-hi // sub) + 1)
    if i1 <= i0:
        return None
    index = np.arange(i0 - _PLACE_BLOCKS, i1)
    e = _decibels(fine[np.maximum(index, 0)])
    e[index < 0] = _FLOOR_DB  # silence before the start
    peaks = np.lib.stride_tricks.sliding_window_view(e[:-1], _PLACE_BLOCKS, axis=0).max(axis=-1)
    margin = e[_PLACE_BLOCKS:] - peaks  # blocks i0 .. i1 - 1
    best: tuple[float, int] | None = None
    for m in margin.T:
        top = float(m.max())
        if top >= _FINE_MIN_RISE_DB and (best is None or top > best[0]):
            best = (top, i0 + int(np.argmax(m >= 0.5 * top)) - _PLACE_EARLY)
    return None if best is None else max(0, best[1]) * sub


def _pick(
    analysis: _Analysis,
    flux: np.ndarray,
    levels: np.ndarray,
    fine: np.ndarray,
    min_gap: float,
    sensitivity: float,
) -> np.ndarray:
    """Onset times in seconds (float64, sorted) from the frontend's output."""
    sr, hop, n_fft = analysis.sample_rate, analysis.hop, analysis.n_fft
    fps = sr / hop
    active = levels.max(axis=1, initial=0) > 10 * _STEPS_PER_DB  # frames with sound
    if not active.any():
        return np.zeros(0, np.float64)
    a = flux[active]
    spread = 1.4826 * float(np.median(np.abs(a - np.median(a))))
    delta = max(_MIN_DELTA, _SPREAD_FACTOR * spread) / sensitivity
    background = _moving_median(flux, max(1, round(_MEDIAN_RADIUS * fps)))
    radius = max(1, round(_PEAK_RADIUS * fps))
    padded = np.pad(flux, radius, mode="constant", constant_values=-1.0)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).max(axis=1)
    peaks = np.flatnonzero((flux >= background + delta) & (flux >= local_max) & active)
    if peaks.size:  # the first frame of a plateau
        peaks = peaks[np.r_[True, np.diff(peaks) > radius]]

    ref = max(1, round(_REF_SECONDS * fps))
    back = max(1, round(_BACKTRACK_SECONDS * fps))
    # A frame whose flux is this close to the background is not yet part of an attack.
    quiet = background + 0.5 * delta
    floor = np.full(levels.shape[1], _FLOOR_DB, np.float32)
    rise_db, big_db = _RISE_DB / sensitivity, _LEAP_DB / sensitivity
    end = analysis.n_samples - n_fft // 2
    found: list[tuple[float, float]] = []  # (strength, time)
    previous = -back
    for p in peaks.tolist():
        # Back along the flux to the last frame before the attack entered the window; frame
        # -1 (before the start) is silence, with no flux.
        s = p
        limit = max(p - back, previous + 1, -1)
        while s > limit and flux[s] > quiet[s] and (flux[s - 1] if s else 0.0) < flux[s]:
            s -= 1
        previous = p
        # The attack's level in each region: the second-loudest frame after it (a single
        # frame can be a flicker of noise), against the loudest just before it.
        after = np.sort(_decibels(levels[s + 1 : p + _POST_FRAMES + 1]), axis=0)
        post = after[-2] if after.shape[0] > 1 else after[-1]
        before = _decibels(levels[max(0, s - ref) : s + 1].max(axis=0)) if s >= 0 else floor
        rise = post - before
        # Only regions near the loudest count: where a sound is faint, the level of its noise
        # wanders most, and a rise there is not heard. Levels are tilted up 3 dB an octave
        # (music is darker than white noise) and the region below 200 Hz, where a bass or an
        # 808 can tower over everything, does not set the bar for the others. A region further
        # down counts if it leaps.
        heard = post + analysis.tilt
        top = (heard[1:] if heard.size > 1 else heard).max()
        loud = (heard >= top - _REGION_RANGE_DB) | (
            (rise >= big_db) & (heard >= top - _LEAP_RANGE_DB)
        )
        rise = np.where(loud, rise, -np.inf)
        if rise.max() < rise_db:
            continue
        # The attack entered the window of frame s + 1, not (much) that of frame s.
        centre = s * hop
        start = _place(fine, max(0, centre), p * hop + n_fft // 2, analysis.sub)
        if start is None:
            start = max(0, centre + n_fft // 2)
        if start > 0 and start >= end:
            continue  # the file stops in the middle of a sound: a click, not an onset
        found.append((float(flux[p]), start / sr))
    # The strongest first; each onset keeps min_gap from those already kept.
    kept: list[float] = []
    for _, t in sorted(found, key=lambda f: -f[0]):
        i = bisect.bisect_left(kept, t)
        if (i == 0 or t - kept[i - 1] >= min_gap) and (i == len(kept) or kept[i] - t >= min_gap):
            kept.insert(i, t)
    return np.array(kept, np.float64)


def _check(sample_rate: int, min_gap: float) -> None:
    if not (isinstance(sample_rate, int | np.integer) and sample_rate >= _MIN_RATE):
        raise ValueError(f"sample_rate must be an integer >= {_MIN_RATE} Hz, got {sample_rate!r}")
    if not (min_gap >= 0 and math.isfinite(min_gap)):
        raise ValueError(f"min_gap must be a finite number >= 0, got {min_gap}")


def detect_onsets(
    audio: np.ndarray,
    sample_rate: int,
    *,
    min_gap: float = 0.1,
    sensitivity: float = 1.0,
) -> np.ndarray:
    """Find where the separate sounds in `audio` begin.

    Each onset is placed where its attack begins (not at its loudest point), to within a few
    milliseconds. A sound that starts with the first sample gives an onset at 0.0. The tail of
    a cymbal or a reverb, a pad swelling and a held note with vibrato give none.

    Args:
        audio: mono audio, shape [samples], float32 (other floats are converted, integer
            PCM is scaled to [-1, 1); NaN and infinite samples count as silence).
        sample_rate: its rate in Hz.
        min_gap: of two onsets closer together than this many seconds, only the stronger is
            kept.
        sensitivity: above 1, quieter and subtler onsets count; below 1, only clear ones do.
            It divides both the threshold's margin and the rise in level an onset must bring.

    Returns:
        Onset times in seconds, float64, sorted; empty for silence.

    Raises:
        ValueError: `audio` is not one-dimensional, or an argument is out of range.
    """
    _check(sample_rate, min_gap)
    if not (sensitivity > 0 and math.isfinite(sensitivity)):
        raise ValueError(f"sensitivity must be a finite number > 0, got {sensitivity}")
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono, shape [samples], got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    analysis = _Analysis(int(sample_rate), x.size)
    for i in range(0, x.size, _BLOCK_FRAMES):
        analysis.push(x[i : i + _BLOCK_FRAMES])
    return _pick(analysis, *analysis.finish(), min_gap, sensitivity)


def segment_file(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = 16000,
    min_gap: float = 0.1,
    max_seconds: float | None = 600.0,
    min_segment: float = 0.05,
) -> list[float]:
    """Where the segments of an audio file begin, in seconds.

    The file is streamed in blocks, mixed to mono and converted to `sample_rate` on the way
    (soxr's streaming resampler), so memory stays small whatever its length: about 2.5 kB
    per second of audio scanned. The onsets are those `detect_onsets` finds in the same audio,
    but the list is never empty: a file with none (silence, a single swell) is one segment
    from 0.0.

    Args:
        path: an audio file in any format libsndfile reads (recognised by its content).
        sample_rate: the rate the analysis runs at, in Hz.
        min_gap: of two onsets closer together than this many seconds, only the stronger is
            kept.
        max_seconds: scan only the first this many seconds of the file (None: all of it).
        min_segment: drop onsets closer than this many seconds to the end of the file.

    Returns:
        Sorted onset times in seconds; at least one.

    Raises:
        AudioError: the file is missing, unreadable, empty, not audio or damaged.
        ValueError: an argument is out of range (a caller's bug).
    """
    _check(sample_rate, min_gap)
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds}")
    if not (min_segment >= 0 and math.isfinite(min_segment)):
        raise ValueError(f"min_segment must be a finite number >= 0, got {min_segment}")
    path = Path(path)
    with open_audio(path) as f:
        sr, frames = f.samplerate, f.frames
        # Read a little past the cap: an attack just before it peaks just after.
        limit = frames if max_seconds is None else min(frames, math.ceil((max_seconds + 0.5) * sr))
        analysis = _Analysis(sample_rate, math.ceil(limit * sample_rate / sr) + sample_rate)
        stream = soxr.ResampleStream(sr, sample_rate, 1, dtype="float32", quality="HQ")
        done = 0
        while done < limit:
            try:
                block = f.read(min(_BLOCK_FRAMES, limit - done), dtype="float32", always_2d=True)
            except Exception as e:
                raise AudioError(path, f"decoding failed ({e})") from None
            if block.shape[0] == 0:
                break  # the header promised more than the file holds
            done += block.shape[0]
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if not np.isfinite(mono).all():
                mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
            if sr != sample_rate:
                mono = stream.resample_chunk(mono, last=done >= limit)
            analysis.push(np.ascontiguousarray(mono, dtype=np.float32))
        if done == 0:
            raise AudioError(path, "no audio could be decoded (the file is truncated)")
        if sr != sample_rate and done < limit:
            analysis.push(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    onsets = _pick(analysis, *analysis.finish(), min_gap, 1.0)
    end = (frames if done >= limit else done) / sr  # a truncated file ends where it stops
    keep = onsets <= end - min_segment
    if max_seconds is not None:
        keep &= onsets < max_seconds
    return [float(t) for t in onsets[keep]] or [0.0]
