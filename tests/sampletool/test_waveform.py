"""Envelopes, excerpts and spectrograms for the waveform view; every file is made in tmp_path."""

from __future__ import annotations

import itertools
import threading
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from sampletool.errors import AudioError
from sampletool.progress import Cancelled
from sampletool.waveform import (
    Envelope,
    envelope_of,
    read_envelope,
    read_excerpt,
    spectrogram_db,
)
from tests.helpers import tone, write


def brute_force_envelope(mono: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition, one bin at a time."""
    n = len(mono)
    edges = [i * n // bins for i in range(bins + 1)]
    mins = np.array([mono[a:b].min() for a, b in itertools.pairwise(edges)])
    maxs = np.array([mono[a:b].max() for a, b in itertools.pairwise(edges)])
    return mins, maxs


# --- envelope_of --------------------------------------------------------------------------------


def test_envelope_is_the_exact_min_and_max_of_each_bin():
    rng = np.random.default_rng(1)
    audio = rng.uniform(-1, 1, 10_007).astype(np.float32)
    env = envelope_of(audio, 8000, bins=100)
    mins, maxs = brute_force_envelope(audio, 100)
    assert env.mins.dtype == np.float32 and env.mins.shape == (100,)
    np.testing.assert_array_equal(env.mins, mins)
    np.testing.assert_array_equal(env.maxs, maxs)
    assert env.duration == pytest.approx(10_007 / 8000)
    assert env.sample_rate == 8000
    assert env.complete
    assert env.times[0] == 0 and env.times[-1] == pytest.approx(99 * 10_007 / 8000 / 100)


def test_envelope_of_a_short_sound_is_its_samples():
    audio = np.array([0.1, -0.5, 0.9, 0.0], dtype=np.float32)
    env = envelope_of(audio, 4, bins=2000)
    np.testing.assert_array_equal(env.mins, audio)
    np.testing.assert_array_equal(env.maxs, audio)
    np.testing.assert_allclose(env.times, [0, 0.25, 0.5, 0.75])
    assert env.duration == 1.0


def test_envelope_mixes_channels_to_mono_and_zeroes_nan():
    left = np.array([1.0, 0.0, np.nan, 0.5], dtype=np.float32)
    right = np.array([-1.0, 0.5, 0.2, 0.5], dtype=np.float32)
    env = envelope_of(np.stack([left, right], axis=1), 4, bins=2)
    np.testing.assert_allclose(env.mins, [0.0, 0.0])  # frame 2 is NaN: silence
    np.testing.assert_allclose(env.maxs, [0.25, 0.5])


def test_envelope_of_nothing_is_empty():
    env = envelope_of(np.zeros(0, np.float32), 16000)
    assert env.mins.shape == (0,) and env.duration == 0.0 and env.times.shape == (0,)


# --- read_envelope ------------------------------------------------------------------------------


def test_read_envelope_equals_the_envelope_of_the_whole_file(tmp_path):
    rng = np.random.default_rng(2)
    stereo = (rng.uniform(-0.8, 0.8, (30_011, 2))).astype(np.float32)
    path = write(tmp_path / "s.wav", stereo, 8000, subtype="FLOAT")
    whole = envelope_of(sf.read(str(path), dtype="float32")[0], 8000, bins=500)
    # Blocks of 0.13 s (1040 frames) straddle the 60-frame bins at every boundary.
    env = read_envelope(path, bins=500, block_seconds=0.13)
    np.testing.assert_array_equal(env.mins, whole.mins)
    np.testing.assert_array_equal(env.maxs, whole.maxs)
    assert env.duration == pytest.approx(30_011 / 8000)


def test_twenty_minute_file_read_blockwise_in_little_memory(tmp_path):
    sr, minutes = 8000, 20
    n = sr * 60 * minutes
    rng = np.random.default_rng(3)
    # Noise whose loudness changes every few seconds, so each bin has its own min and max.
    loudness = np.repeat(rng.uniform(0.05, 0.95, n // (3 * sr) + 1), 3 * sr)[:n]
    audio = (rng.uniform(-1, 1, n) * loudness).astype(np.float32)
    path = write(tmp_path / "long.wav", audio, sr, subtype="PCM_16")
    del audio, loudness
    whole = envelope_of(sf.read(str(path), dtype="float32")[0], sr, bins=2000)

    tracemalloc.start()
    try:
        env = read_envelope(path, bins=2000, block_seconds=7.3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(env.mins, whole.mins)
    np.testing.assert_array_equal(env.maxs, whole.maxs)
    assert env.duration == pytest.approx(minutes * 60)
    assert env.complete
    # The whole file as float32 is 38 MB; a 7.3 s block is 0.23 MB.
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB"


def test_read_envelope_stops_when_cancelled(tmp_path):
    path = write(tmp_path / "t.wav", tone(440, 2.0), 16000)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled) as stopped:
        read_envelope(path, bins=100, block_seconds=0.5, cancel=cancel)
    env = stopped.value.partial
    assert not env.complete
    assert isinstance(env, Envelope) and env.mins.shape == (100,)


def test_truncated_flac_draws_what_is_there(tmp_path):
    path = write(tmp_path / "t.flac", tone(440, 4.0) * 0.9, 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a cut-off download: libsndfile loses sync
    env = read_envelope(path, bins=200, block_seconds=0.5)
    assert 0.5 <= env.duration < 2.5
    assert len(env.mins) < 200 and env.times[-1] < env.duration
    assert np.isfinite(env.mins).all() and env.maxs.max() == pytest.approx(0.45, abs=0.01)


def _file(path, content: bytes):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.wav", "not found"),
        (lambda d: _file(d / "empty.wav", b""), "empty"),
        (lambda d: _file(d / "text.wav", b"hello, not audio " * 20), "not an audio file"),
        (lambda d: d, "folder"),
    ],
)
def test_unreadable_files_raise_audio_error_with_a_reason(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(AudioError) as info:
        read_envelope(path)
    assert words in info.value.reason
    assert info.value.path == str(path)
    with pytest.raises(AudioError):
        read_excerpt(path)


# --- read_excerpt -------------------------------------------------------------------------------


def test_read_excerpt_reads_only_from_the_offset(tmp_path):
    ramp = np.linspace(-1, 1, 16000, dtype=np.float32)
    path = write(tmp_path / "r.wav", np.stack([ramp, -ramp], axis=1), 8000, subtype="FLOAT")
    audio, sr = read_excerpt(path, offset=0.5, seconds=0.25)
    assert sr == 8000 and audio.shape == (2000, 2)
    np.testing.assert_array_equal(audio[:, 0], ramp[4000:6000])
    mono, _ = read_excerpt(path, offset=1.5, seconds=10.0, mono=True)
    assert mono.shape == (4000,)  # cut at the end of the file
    np.testing.assert_allclose(mono, 0.0, atol=1e-6)
    with pytest.raises(AudioError, match="past the end"):
        read_excerpt(path, offset=2.5)


# --- spectrogram_db -----------------------------------------------------------------------------


def test_spectrogram_of_a_tone_peaks_at_its_frequency():
    db, times, freqs = spectrogram_db(tone(1000, 1.0, sr=16000), 16000, n_fft=512, hop=128)
    frames = 1 + 16000 // 128  # centred frames: one every hop from 0 to the end
    assert db.shape == (257, frames) and db.dtype == np.float32
    assert times.shape == (frames,) and freqs.shape == (257,)
    assert times[0] == 0 and times[1] == 128 / 16000 and freqs[-1] == 8000
    assert db.max() == 0.0 and db.min() >= -80.0
    loudest = freqs[db.mean(axis=1).argmax()]
    assert abs(loudest - 1000) <= 16000 / 512
    assert db[freqs > 4000].mean() < -60  # far from the tone: near the floor


def test_spectrogram_is_cut_at_max_seconds_and_handles_silence_and_short_sounds():
    db, times, _ = spectrogram_db(tone(440, 3.0, sr=8000), 8000, hop=256, max_seconds=1.0)
    assert times[-1] < 1.0 and db.shape[1] == 1 + 8000 // 256
    silent, _, _ = spectrogram_db(np.zeros(4000, np.float32), 8000)
    assert (silent == -80).all()
    short, times, _ = spectrogram_db(np.ones(100, np.float32), 8000)
    assert short.shape == (513, 1) and times.shape == (1,)
