"""Sounds made for a DAW: the silent tail cut off (with a short fade, so no click) and the
sample rate a DAW session runs at.

The models make fixed-length clips at their own rate (the built-in one: 2 s at 16 kHz) whose
sound often ends long before the clip does. A sample dragged into a DAW should end where its
sound ends and play at the session's rate without the DAW converting it on import.

Resampling is soxr's (a well-kept, band-limited C resampler: fast, and far better tested than
anything written here would be). Light: numpy and soxr only.
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["DAW_RATES", "resample", "trim_tail"]

DAW_RATES = (44100, 48000)
SILENCE_DB = -60.0  # below the loudest moment: always silence
NOISE_MARGIN_DB = 6.0  # above the tail's own noise floor: still that floor
CUT_CEILING_DB = -40.0  # nothing louder than this (below the loudest moment) is ever cut
FADE_SECONDS = 0.01
FRAME_SECONDS = 0.01


def trim_tail(
    audio: np.ndarray,
    sample_rate: int,
    floor_db: float = SILENCE_DB,
    fade_seconds: float = FADE_SECONDS,
) -> np.ndarray:
    """Cut the near-silence after a sound, ending it with a short fade-out.

    Levels are RMS over 10 ms frames, relative to the loudest frame. The tail is what follows
    the last frame louder than `floor_db` or, when the clip ends on a steady noise floor (the
    phase reconstruction leaves one around -50 dB), than that floor plus 6 dB; a frame louder
    than -40 dB is never cut, so a sound that lasts to the end is kept whole.

    Args:
        audio: float mono [n].
        floor_db: frames quieter than this, relative to the loudest, are silence.
        fade_seconds: a raised-cosine fade over the last samples kept (taken from the tail
            when there is one), so the cut makes no click.

    Returns:
        float32 [m], m <= n: the audio up to its last frame above the threshold plus the
        fade (a silent clip: `fade_seconds` of zeros).
    """
    x = np.nan_to_num(np.asarray(audio, np.float32).reshape(-1))
    fade = max(1, round(fade_seconds * sample_rate))
    hop = max(1, round(FRAME_SECONDS * sample_rate))
    frames = -(-x.size // hop)
    padded = np.zeros(frames * hop, np.float32)
    padded[: x.size] = x
    rms = np.sqrt(np.mean(padded.reshape(frames, hop).astype(np.float64) ** 2, axis=1))
    if not frames or rms.max() <= 0.0:
        return np.zeros(min(fade, x.size), np.float32)
    level = 20.0 * np.log10(np.maximum(rms / rms.max(), 1e-12))
    tail_floor = float(np.median(level[-max(1, frames // 10) :]))
    threshold = min(max(floor_db, tail_floor + NOISE_MARGIN_DB), CUT_CEILING_DB)
    last = int(np.flatnonzero(level > threshold)[-1])
    end = min(x.size, (last + 1) * hop + fade)
    out = x[:end].copy()
    n = min(fade, end)
    out[end - n :] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
    return out


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono float audio from `rate_in` to `rate_out` Hz (soxr, high quality), float32 within
    +-1 (the filter's ringing may overshoot a peak at full scale)."""
    x = np.asarray(audio, np.float32).reshape(-1)
    if rate_in == rate_out:
        return x.copy()
    y = soxr.resample(x, rate_in, rate_out, quality="HQ")
    return np.clip(y, -1.0, 1.0).astype(np.float32)
