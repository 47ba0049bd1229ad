"""Sounds made for a DAW: the silent tail trimmed with a fade, resampled with soxr."""

from __future__ import annotations

import numpy as np
import pytest

from sampletool.export import resample, trim_tail

SR = 16000


def hit_then_silence(sound_s: float = 0.2, total_s: float = 2.0) -> np.ndarray:
    """A decaying 440 Hz tone for `sound_s`, then digital silence up to `total_s`."""
    t = np.arange(round(sound_s * SR)) / SR
    out = np.zeros(round(total_s * SR), np.float32)
    out[: t.size] = 0.9 * np.sin(2 * np.pi * 440 * t) * np.exp(-t * 5)
    return out


def test_the_silent_tail_is_cut_after_the_sound_with_a_short_fade():
    audio = hit_then_silence()
    out = trim_tail(audio, SR)
    fade = round(0.01 * SR)
    assert 0.15 * SR < out.size <= 0.2 * SR + fade  # the sound, and at most the fade after it
    np.testing.assert_array_equal(out[:1600], audio[:1600])  # the sound itself untouched
    assert out[-1] == 0.0  # ends on zero: no click


def test_a_steady_noise_floor_after_the_sound_counts_as_silence():
    # What the phase reconstruction leaves after a drum hit: noise about 50 dB down.
    rng = np.random.default_rng(0)
    audio = hit_then_silence() + (0.9 * 10 ** (-55 / 20) * rng.standard_normal(2 * SR)).astype(
        np.float32
    )
    out = trim_tail(audio, SR)
    assert 0.1 * SR < out.size < 0.3 * SR


def test_a_sound_that_lasts_to_the_end_is_kept_whole_and_faded():
    t = np.arange(2 * SR) / SR
    audio = (0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)).astype(np.float32)  # -17 dB at 2 s
    out = trim_tail(audio, SR)
    assert out.size == audio.size
    assert abs(out[-1]) < 1e-6 and out[SR] == audio[SR]


def test_a_silent_clip_becomes_a_few_milliseconds_of_silence():
    out = trim_tail(np.zeros(SR, np.float32), SR)
    assert out.size == round(0.01 * SR) and not out.any()


@pytest.mark.parametrize("rate", [44100, 48000])
def test_resampling_keeps_the_pitch_and_the_duration(rate):
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = resample(tone, SR, rate)
    assert out.dtype == np.float32 and abs(out.size - rate) <= 2
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * rate / out.size - 1000) < 2
    assert np.abs(out).max() <= 1.0


def test_resampling_to_the_same_rate_is_a_copy():
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    y = resample(x, SR, SR)
    np.testing.assert_array_equal(x, y)
    assert y is not x
