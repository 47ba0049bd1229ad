"""load_clip and the batched loader: formats, channels, resampling, seeking, errors.

Every file is synthesised in tmp_path; nothing is read from a real sample library.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sampletool.audio as audio_module
import sampletool.errors
from sampletool.audio import (
    AudioError,
    ClipLoader,
    detect_format,
    load_clip,
    load_clips,
    open_audio,
)
from sampletool.progress import Cancelled
from tests.helpers import noise_burst, tone, write

SR = 16000
N = 2 * SR  # samples in a default clip


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    """Frequency of the strongest FFT bin (Hann window)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spectrum.argmax()])


def sine_amplitude(x: np.ndarray) -> float:
    """Amplitude of a sine, from its RMS."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) * 2))


def audio_error(path: Path | str, **kw) -> AudioError:
    """load_clip's AudioError for `path`, after checking it names the path."""
    with pytest.raises(AudioError) as info:
        load_clip(path, **kw)
    err = info.value
    assert err.path == str(path)
    assert err.reason.strip()
    assert str(err) == f"{path}: {err.reason}"
    return err


def test_audio_error_is_the_errors_class():
    assert audio_module.AudioError is sampletool.errors.AudioError
    assert "AudioError" in audio_module.__all__
    assert issubclass(AudioError, sampletool.errors.SampleToolError)


# --- formats -----------------------------------------------------------------------------------

# (file name, soundfile.write arguments, format libsndfile must report, max error or None=lossy)
FORMATS = [
    ("u8.wav", {"subtype": "PCM_U8"}, "WAV", 1 / 128 + 1e-6),
    ("s16.wav", {"subtype": "PCM_16"}, "WAV", 1 / 32768 + 1e-7),
    ("s24.wav", {"subtype": "PCM_24"}, "WAV", 2**-23 + 1e-9),
    ("s32.wav", {"subtype": "PCM_32"}, "WAV", 1e-8),
    ("float.wav", {"subtype": "FLOAT"}, "WAV", 0.0),
    ("double.wav", {"subtype": "DOUBLE"}, "WAV", 0.0),
    ("pcm.aiff", {"subtype": "PCM_16"}, "AIFF", 1 / 32768 + 1e-7),
    ("pcm.flac", {"subtype": "PCM_16"}, "FLAC", 1 / 32768 + 1e-7),
    ("vorbis.ogg", {"format": "OGG", "subtype": "VORBIS"}, "OGG", None),
    ("layer3.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}, "MP3", None),
]


@pytest.mark.parametrize(("name", "kw", "fmt", "tol"), FORMATS, ids=[f[0] for f in FORMATS])
def test_every_format_loads(tmp_path, name, kw, fmt, tol):
    y = tone(1000, 1.5)
    path = write(tmp_path / name, y, SR, **kw)
    assert sf.info(str(path)).format == fmt  # the file really is what the case claims
    x = load_clip(path)
    assert x.dtype == np.float32 and x.shape == (N,)
    assert np.all(x[y.size :] == 0)  # 1.5 s file, 2 s clip: zero-padded
    if tol is not None:
        assert np.abs(x[: y.size] - y).max() <= tol
    else:  # lossy: same tone, same level, no time shift
        assert abs(peak_hz(x[: y.size]) - 1000) <= 10
        assert sine_amplitude(x[2000:22000]) == pytest.approx(0.5, rel=0.05)
        corr = np.dot(x[: y.size], y) / (np.linalg.norm(x[: y.size]) * np.linalg.norm(y))
        assert corr > 0.95


# (real format arguments, misleading file name)
MISLABELLED = [
    ({"format": "WAV", "subtype": "PCM_16"}, "really_wav.ogg"),
    ({"format": "FLAC", "subtype": "PCM_16"}, "really_flac.wav"),
    ({"format": "MP3", "subtype": "MPEG_LAYER_III"}, "really_mp3.bin"),
    ({"format": "OGG", "subtype": "VORBIS"}, "really_ogg.mp3"),
    ({"format": "AIFF", "subtype": "PCM_16"}, "really_aiff.flac"),
]


@pytest.mark.parametrize(("kw", "name"), MISLABELLED, ids=[m[1] for m in MISLABELLED])
def test_format_comes_from_content_not_extension(tmp_path, kw, name):
    proper = write(tmp_path / f"proper.{kw['format'].lower()}", tone(660, 1.0), SR, **kw)
    wrong = tmp_path / name
    wrong.write_bytes(proper.read_bytes())
    expected = load_clip(proper)
    x = load_clip(wrong)
    assert np.array_equal(x, expected)
    assert abs(peak_hz(x[:SR]) - 660) <= 10


def test_detect_format_reads_magic_bytes(tmp_path):
    y = tone(440, 0.2)
    cases = {
        "WAV": {"format": "WAV"},
        "AIFF": {"format": "AIFF", "subtype": "PCM_16"},
        "FLAC": {"format": "FLAC"},
        "OGG": {"format": "OGG", "subtype": "VORBIS"},
        "MP3": {"format": "MP3", "subtype": "MPEG_LAYER_III"},
        "CAF": {"format": "CAF", "subtype": "PCM_16"},
        "W64": {"format": "W64", "subtype": "PCM_16"},
    }
    for expected, kw in cases.items():
        path = write(tmp_path / f"x{expected}.bin", y, SR, **kw)
        assert detect_format(path.read_bytes()[:12]) == expected, expected
    assert detect_format(b"") is None
    assert detect_format(b"hello, world") is None
    assert detect_format(b"RIFF\0\0\0\0AVI ") is None  # RIFF, but not audio
    assert detect_format(b"\xff\xfb\x90\x00" + bytes(8)) == "MP3"  # a bare MPEG frame header


# --- channels ----------------------------------------------------------------------------------


def test_opposite_phase_stereo_mixes_to_silence(tmp_path):
    y = tone(440, 1.0)
    path = write(tmp_path / "phase.wav", np.stack([y, -y], axis=1), SR, subtype="FLOAT")
    assert sf.info(str(path)).channels == 2
    x = load_clip(path)
    assert x.shape == (N,)
    assert np.abs(x).max() < 1e-7


def test_six_channels_are_averaged(tmp_path):
    channels = [tone(200 * (c + 1), 1.0) * (c + 1) / 6 for c in range(6)]
    data = np.stack(channels, axis=1)
    path = write(tmp_path / "surround.wav", data, SR, subtype="FLOAT")
    assert sf.info(str(path)).channels == 6
    x = load_clip(path)
    assert x.shape == (N,) and x.dtype == np.float32
    np.testing.assert_allclose(x[:SR], data.mean(axis=1), atol=1e-6)
    assert np.all(x[SR:] == 0)


def test_one_sided_stereo_is_half_level(tmp_path):
    y = tone(1000, 1.0)
    path = write(
        tmp_path / "left.wav", np.stack([y, np.zeros_like(y)], axis=1), SR, subtype="FLOAT"
    )
    np.testing.assert_allclose(load_clip(path)[:SR], y / 2, atol=1e-7)


# --- resampling --------------------------------------------------------------------------------

RATES = [8000, 22050, 44100, 96000, 192000]


@pytest.mark.parametrize("sr", RATES)
def test_resampled_tone_keeps_frequency_and_level(tmp_path, sr):
    path = write(tmp_path / f"tone{sr}.wav", tone(1000, 3.0, sr), sr, subtype="FLOAT")
    x = load_clip(path, offset=0.5)
    assert x.shape == (N,) and x.dtype == np.float32
    inner = x[1600:-1600]  # away from the clip's cut edges
    assert abs(peak_hz(inner) - 1000) <= 10
    assert sine_amplitude(inner) == pytest.approx(0.5, rel=0.05)
    # Nothing but the tone: no images (upsampling) and no aliases (downsampling).
    spectrum = np.abs(np.fft.rfft(inner * np.hanning(inner.size))) ** 2
    freqs = np.fft.rfftfreq(inner.size, 1 / SR)
    outside = spectrum[np.abs(freqs - 1000) > 100].sum() / spectrum.sum()
    assert outside < 1e-4


@pytest.mark.parametrize(
    ("sr", "freq"),
    [(22050, 10000), (44100, 12000), (96000, 20000), (192000, 20000), (192000, 60000)],
)
def test_tones_above_the_new_nyquist_are_removed_not_aliased(tmp_path, sr, freq):
    # Naive decimation or linear interpolation folds these into the 0-8 kHz band at full level
    # (12 kHz at 44.1 kHz would reappear at 4 kHz); a band-limited resampler removes them.
    path = write(tmp_path / f"high{sr}.wav", tone(freq, 3.0, sr), sr, subtype="FLOAT")
    x = load_clip(path, offset=0.5)
    assert x.shape == (N,)
    inner = x[1600:-1600]
    assert np.sqrt(np.mean(inner.astype(np.float64) ** 2)) < 1e-4  # the tone's RMS was 0.35


def test_other_output_rates_and_lengths(tmp_path):
    path = write(tmp_path / "tone.wav", tone(1000, 3.0, 44100), 44100, subtype="FLOAT")
    x = load_clip(path, seconds=1.0, sample_rate=22050)
    assert x.shape == (22050,) and x.dtype == np.float32
    assert abs(peak_hz(x[1000:-1000], 22050) - 1000) <= 10
    assert load_clip(path, seconds=0.5, sample_rate=8000).shape == (4000,)
    assert load_clip(path, seconds=0.123).shape == (round(0.123 * SR),)


# --- length and offset -------------------------------------------------------------------------


def test_short_file_is_zero_padded(tmp_path):
    y = noise_burst(0.5)
    x = load_clip(write(tmp_path / "short.wav", y, SR, subtype="FLOAT"))
    assert x.shape == (N,)
    assert np.array_equal(x[: y.size], y)
    assert np.all(x[y.size :] == 0)


def test_short_resampled_file_is_zero_padded(tmp_path):
    y = tone(1000, 0.5, 44100)
    x = load_clip(write(tmp_path / "short44.wav", y, 44100, subtype="FLOAT"))
    assert x.shape == (N,)
    assert sine_amplitude(x[800:7200]) == pytest.approx(0.5, rel=0.05)
    assert np.all(x[SR // 2 :] == 0)


def test_long_file_is_cropped_and_offset_is_exact_at_the_same_rate(tmp_path):
    rng = np.random.default_rng(3)
    y = (0.3 * rng.standard_normal(5 * SR)).astype(np.float32)
    path = write(tmp_path / "long.wav", y, SR, subtype="FLOAT")
    assert np.array_equal(load_clip(path), y[:N])
    assert np.array_equal(load_clip(path, offset=1.5), y[24000 : 24000 + N])
    assert np.array_equal(load_clip(path, offset=0.25, seconds=0.5), y[4000:12000])
    # An offset whose clip runs past the end: what is there, then zeros.
    tail = load_clip(path, offset=4.0)
    assert np.array_equal(tail[:SR], y[4 * SR :]) and np.all(tail[SR:] == 0)


@pytest.mark.parametrize("sr", [16000, 44100, 48000, 8000])
@pytest.mark.parametrize("offset", [0.0, 0.5, 1.2])
def test_offset_puts_a_click_at_the_right_sample(tmp_path, sr, offset):
    y = np.zeros(3 * sr, np.float32)
    click_at = 1.25
    y[round(click_at * sr)] = 0.9
    path = write(tmp_path / f"click{sr}.wav", y, sr, subtype="FLOAT")
    x = load_clip(path, offset=offset)
    expected = (click_at - offset) * SR
    assert abs(int(np.abs(x).argmax()) - expected) <= 16  # 1 ms


def test_a_tone_change_lands_where_the_offset_says(tmp_path):
    sr = 44100
    y = np.concatenate([tone(500, 2.0, sr), tone(3000, 2.0, sr)])
    path = write(tmp_path / "change.wav", y, sr, subtype="FLOAT")
    x = load_clip(path, offset=1.25)  # the change is 0.75 s into the clip
    change = round(0.75 * SR)
    assert abs(peak_hz(x[: change - 80]) - 500) <= 10
    assert abs(peak_hz(x[change + 80 :]) - 3000) <= 10
    # Energy above 1.5 kHz switches on within a few ms of the expected sample.
    high = np.abs(np.diff(x))  # a crude high-pass: 3 kHz has ~6x the slope of 500 Hz
    onset = int(np.argmax(high > 0.5 * high[change + 80 :].max()))
    assert abs(onset - change) <= 48  # 3 ms


def test_bad_arguments_are_value_errors(tmp_path):
    path = write(tmp_path / "ok.wav", tone(440, 0.5), SR)
    for kw in ({"offset": -0.1}, {"offset": float("nan")}, {"offset": float("inf")}):
        with pytest.raises(ValueError):
            load_clip(path, **kw)
    with pytest.raises(ValueError):
        load_clip(path, seconds=0)
    with pytest.raises(ValueError):
        load_clip(path, sample_rate=0)


# --- seeking in long files ---------------------------------------------------------------------

HOUR_SR = 8000


def minute_freq(minute: int) -> float:
    return 100.0 + 50.0 * minute


@pytest.fixture(scope="module")
def hour_wav(tmp_path_factory):
    """One hour of 8 kHz PCM_16 mono (about 57 MB); minute m is a tone at minute_freq(m)."""
    path = tmp_path_factory.mktemp("long") / "hour.wav"
    t = np.arange(60 * HOUR_SR) / HOUR_SR
    with sf.SoundFile(str(path), "w", HOUR_SR, 1, "PCM_16") as f:
        for minute in range(60):
            f.write(0.5 * np.sin(2 * np.pi * minute_freq(minute) * t))
    yield path
    path.unlink()


def test_offset_into_an_hour_long_file_reads_the_right_minute(hour_wav):
    assert sf.info(str(hour_wav)).frames == 3600 * HOUR_SR
    x = load_clip(hour_wav, offset=3000.0)  # minute 50
    assert x.shape == (N,)
    assert abs(peak_hz(x) - minute_freq(50)) <= 10
    assert sine_amplitude(x[800:-800]) == pytest.approx(0.5, rel=0.05)
    x = load_clip(hour_wav, offset=2999.0)  # the last second of minute 49, then minute 50
    assert abs(peak_hz(x[: SR - 400]) - minute_freq(49)) <= 10
    assert abs(peak_hz(x[SR + 400 :]) - minute_freq(50)) <= 10
    x = load_clip(hour_wav, offset=3599.0)  # the last second, then padding
    assert abs(peak_hz(x[: SR - 400]) - minute_freq(59)) <= 10
    assert np.all(x[SR:] == 0)


def test_an_hour_long_file_is_not_decoded_whole(hour_wav):
    load_clip(hour_wav, offset=10.0)  # first call: lazy imports and caches are not the clip's
    whole_file = 3600 * HOUR_SR * 4  # float32 samples: 115 MB
    tracemalloc.start()
    try:
        # The instrument sees numpy buffers: decoding one minute shows up at full size.
        with sf.SoundFile(str(hour_wav)) as f:
            f.read(60 * HOUR_SR, dtype="float32")
        _, peak_minute = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        tracemalloc.clear_traces()
        x = load_clip(hour_wav, offset=3000.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_minute >= 60 * HOUR_SR * 4
    assert peak < 10_000_000, f"load_clip allocated {peak / 1e6:.1f} MB for a 2 s clip"
    assert peak < whole_file / 10
    assert abs(peak_hz(x) - minute_freq(50)) <= 10


def test_flac_seek_near_the_end(tmp_path):
    path = tmp_path / "three_minutes.flac"
    seg = 10 * SR
    t = np.arange(seg) / SR
    with sf.SoundFile(str(path), "w", SR, 1, "PCM_16", format="FLAC") as f:
        for s in range(18):  # segment s (10 s each) is a tone at 200 + 100 s Hz
            f.write(0.5 * np.sin(2 * np.pi * (200 + 100 * s) * t))
    assert sf.info(str(path)).frames == 180 * SR
    x = load_clip(path, offset=175.0)
    reference, _ = sf.read(str(path), start=175 * SR, frames=N, dtype="float32")
    assert np.array_equal(x, reference)
    assert abs(peak_hz(x) - 1900) <= 10
    x = load_clip(path, offset=179.5)
    assert abs(peak_hz(x[: SR // 2]) - 1900) <= 10
    assert np.all(x[SR // 2 :] == 0)
    x = load_clip(path, offset=95.0)  # back to the middle after a seek near the end
    assert abs(peak_hz(x) - 1100) <= 10


# --- files that cannot be read -----------------------------------------------------------------


def test_missing_file(tmp_path):
    err = audio_error(tmp_path / "nope.wav")
    assert "not found" in err.reason


def test_folder(tmp_path):
    folder = tmp_path / "drums.wav"
    folder.mkdir()
    err = audio_error(folder)
    assert "folder" in err.reason


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    err = audio_error(path)
    assert "empty" in err.reason


def test_wav_with_no_frames(tmp_path):
    path = write(tmp_path / "noframes.wav", np.zeros(0, np.float32), SR)
    assert path.stat().st_size > 0
    err = audio_error(path)
    assert "no audio" in err.reason


def test_random_bytes(tmp_path):
    data = np.random.default_rng(7).bytes(4096)
    assert detect_format(data[:12]) is None
    path = tmp_path / "noise.wav"
    path.write_bytes(data)
    err = audio_error(path)
    assert "not an audio file" in err.reason


def test_truncated_header(tmp_path):
    path = write(tmp_path / "cut.wav", tone(440, 1.0), SR)
    path.write_bytes(path.read_bytes()[:20])
    err = audio_error(path)
    assert "WAV" in err.reason


def test_truncated_body_loads_what_is_there(tmp_path):
    y = tone(440, 2.0)
    path = write(tmp_path / "half.wav", y, SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: 44 + SR * 2])  # header and the first second
    x = load_clip(path)
    np.testing.assert_allclose(x[:SR], y[:SR], atol=1 / 32768 + 1e-7)
    assert np.all(x[SR:] == 0)
    err = audio_error(path, offset=1.5)
    assert "1.000" in err.reason


def test_malformed_fmt_chunk_named_ogg(tmp_path):
    # Like Debian lmms-common's drums/kick04.ogg: a RIFF/WAVE whose fmt chunk has format tag
    # 0x674F (Ogg Vorbis in WAV, mode 1) and size 26, with an .ogg name.
    valid = write(tmp_path / "valid.wav", tone(100, 0.5, 44100), 44100, subtype="PCM_16")
    data = valid.read_bytes()
    at = data.index(b"fmt ")
    (size,) = struct.unpack("<I", data[at + 4 : at + 8])
    assert size == 16
    fmt = bytearray(data[at + 8 : at + 8 + size])
    fmt[0:2] = struct.pack("<H", 0x674F)
    fmt += struct.pack("<H", 8) + bytes(8)  # cbSize 8 and 8 bytes of extension: 26 in all
    body = data[:at] + b"fmt " + struct.pack("<I", len(fmt)) + bytes(fmt) + data[at + 8 + size :]
    body = body[:4] + struct.pack("<I", len(body) - 8) + body[8:]
    path = tmp_path / "kick04.ogg"
    path.write_bytes(body)
    assert detect_format(body[:12]) == "WAV"
    err = audio_error(path)
    assert "WAV" in err.reason


@pytest.mark.parametrize(("sr", "seconds"), [(SR, 1.5), (44100, 0.75)])
def test_offset_past_the_end_names_the_duration(tmp_path, sr, seconds):
    path = write(tmp_path / "short.wav", tone(440, seconds, sr), sr)
    err = audio_error(path, offset=seconds + 0.5)
    assert f"{seconds:.3f}" in err.reason
    assert "past the end" in err.reason
    err = audio_error(path, offset=seconds)  # exactly at the end: nothing to read either
    assert f"{seconds:.3f}" in err.reason


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_nan_and_inf_samples_become_zeros(tmp_path, subtype):
    y = tone(440, 1.0)
    bad = [100, 200, 300, 4000]
    y_bad = y.copy()
    y_bad[bad] = [np.nan, np.inf, -np.inf, np.nan]
    path = write(tmp_path / "nan.wav", y_bad, SR, subtype=subtype)
    raw, _ = sf.read(str(path), dtype="float32")
    assert np.isnan(raw[100]) and np.isinf(raw[200])  # the file really holds them
    x = load_clip(path)
    assert np.isfinite(x).all()
    assert np.all(x[bad] == 0)
    keep = np.setdiff1d(np.arange(SR), bad)
    assert np.array_equal(x[keep], y[keep])


def test_nan_samples_do_not_spread_through_the_resampler(tmp_path):
    y = tone(1000, 1.0, 44100)
    y[1000:1010] = np.nan
    y[30000] = np.inf
    x = load_clip(write(tmp_path / "nan44.wav", y, 44100, subtype="FLOAT"))
    assert np.isfinite(x).all()
    assert sine_amplitude(x[1600:14400]) == pytest.approx(0.5, rel=0.05)


PERMISSION_SCRIPT = """
import os, sys
from sampletool.audio import AudioError, load_clip
load_clip("readable.wav")  # as root: every lazy import and library load happens now
try:
    os.setgid(65534)
    os.setuid(65534)
except OSError as e:
    print("SKIP cannot switch to uid 65534:", e)
    sys.exit(0)
try:
    load_clip("readable.wav")
except Exception as e:
    print("SKIP uid 65534 cannot read even a world-readable file:", type(e).__name__, e)
    sys.exit(0)
try:
    load_clip("locked.wav")
except AudioError as e:
    print("REASON", e.reason)
    print("PATH", e.path)
else:
    print("LOADED")
"""


def test_permission_denied(tmp_path):
    readable = write(tmp_path / "readable.wav", tone(440, 0.5), SR)
    locked = write(tmp_path / "locked.wav", tone(440, 0.5), SR)
    readable.chmod(0o644)
    locked.chmod(0o000)
    try:
        if os.geteuid() != 0:
            err = audio_error(locked)
            assert "permission denied" in err.reason
            return
        # root reads a mode-000 file, so the check runs in a child that drops to uid 65534
        # (nobody). Python itself may be installed where nobody cannot reach it (a venv whose
        # base interpreter lives under /root), so the child starts as root, loads everything,
        # then drops privileges. Parent folders of tmp_path are private, so the child works
        # from inside tmp_path (opened to everyone) with relative names.
        tmp_path.chmod(0o755)
        proc = subprocess.run(
            [sys.executable, "-c", PERMISSION_SCRIPT],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        if out.startswith("SKIP"):
            pytest.skip(out.strip())
        assert "LOADED" not in out, "uid 65534 read a mode-000 file"
        assert "REASON permission denied" in out, out
        assert "PATH locked.wav" in out, out
    finally:
        locked.chmod(0o644)


# --- many files --------------------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path):
    """Good and bad files interleaved, with offsets; and what load_clip says about each."""
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    empty = tmp_path / "empty.wav"
    empty.touch()
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(1).bytes(2048))
    stereo = np.stack([tone(300, 3.0, 44100), noise_burst(3.0, 44100)], axis=1)
    entries = [
        (write(tmp_path / "a.wav", tone(220, 1.0), SR), 0.0),
        (tmp_path / "missing.wav", 0.0),
        (write(tmp_path / "b.flac", stereo, 44100), 0.7),
        (empty, 0.0),
        (write(tmp_path / "c.wav", noise_burst(0.4), SR, subtype="FLOAT"), 0.1),
        (folder, 0.0),
        (write(tmp_path / "d.ogg", tone(880, 2.5, 22050), 22050, format="OGG"), 0.0),
        (junk, 0.0),
        (write(tmp_path / "e.wav", tone(440, 1.0), SR), 5.0),  # offset past the end
        (write(tmp_path / "f.aiff", tone(1200, 3.0, 48000), 48000), 1.0),
        (write(tmp_path / "g.wav", noise_burst(1.0, seed=5), SR), 0.0),
    ]
    paths = [str(p) for p, _ in entries]
    offsets = [o for _, o in entries]
    expected: list[np.ndarray | str] = []
    for p, o in entries:
        try:
            expected.append(load_clip(p, offset=o))
        except AudioError as e:
            expected.append(e.reason)
    return paths, offsets, expected


def check_batch(batch, paths, expected, positions=None):
    positions = range(len(paths)) if positions is None else positions
    good = [i for i in positions if not isinstance(expected[i], str)]
    bad = [(i, paths[i], expected[i]) for i in positions if isinstance(expected[i], str)]
    assert batch.indices == good
    assert batch.failures == bad
    assert batch.audio.dtype == np.float32
    assert batch.audio.shape == (len(good), N)
    for row, i in enumerate(good):
        assert np.array_equal(batch.audio[row], expected[i]), paths[i]


@pytest.mark.parametrize("workers", [2, 0])
def test_load_clips_keeps_order_and_reports_failures(mixed, workers):
    paths, offsets, expected = mixed
    assert sum(isinstance(e, str) for e in expected) == 5  # the fixture is really mixed
    calls = []
    batch = load_clips(
        paths, offsets, workers=workers, progress=lambda *a: calls.append(a)
    )  # fmt: skip
    check_batch(batch, paths, expected)
    assert calls == [(k + 1, len(paths), paths[k]) for k in range(len(paths))]


@pytest.mark.parametrize("workers", [2, 0])
def test_cancel_stops_early(mixed, workers):
    paths, offsets, expected = mixed
    paths, offsets = paths * 4, offsets * 4  # 44 files: a pool would otherwise finish them all
    expected = expected * 4
    # Cancelling leaves workers busy; shutting the pool down then used to deadlock now and
    # then (a worker killed while holding the result queue's lock), so do it a few times.
    for _ in range(3 if workers else 1):
        cancel = threading.Event()
        calls = []

        def progress(done, total, path, calls=calls, cancel=cancel):
            calls.append((done, total))
            if done == 3:
                cancel.set()

        with pytest.raises(Cancelled) as stopped:
            load_clips(paths, offsets, workers=workers, progress=progress, cancel=cancel)
        assert calls == [(1, 44), (2, 44), (3, 44)]
        check_batch(stopped.value.partial, paths, expected, positions=range(3))


def test_a_loader_serves_a_full_load_after_a_cancelled_one(mixed):
    paths, offsets, expected = mixed
    with ClipLoader(workers=2) as loader:
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(Cancelled) as stopped:
            loader.load(paths * 4, offsets * 4, cancel=cancel)
        # Cancelled before any result: the pool stops without waiting for the files in hand.
        check_batch(stopped.value.partial, paths, expected, positions=range(0))
        full = loader.load(paths, offsets)  # no stray results from the cancelled job
        check_batch(full, paths, expected)


def test_workers_and_in_process_agree(mixed):
    paths, offsets, _ = mixed
    with ClipLoader(workers=2) as pooled:
        a = pooled.load(paths, offsets)
    b = load_clips(paths, offsets, workers=0)
    c = load_clips(paths, offsets)  # fewer than 8 files would run in-process; 11 use a pool
    for other in (b, c):
        assert np.array_equal(a.audio, other.audio)
        assert a.indices == other.indices
        assert a.failures == other.failures


def test_clip_loader_iter_clips_and_reuse(mixed):
    paths, _, _ = mixed
    with ClipLoader(workers=2, seconds=0.5, sample_rate=8000) as loader:
        items = list(loader.iter_clips(paths))
        assert [i for i, _ in items] == list(range(len(paths)))
        for i, result in items:
            try:
                want = load_clip(paths[i], seconds=0.5, sample_rate=8000)
            except AudioError as e:
                assert result == e.reason
            else:
                assert isinstance(result, np.ndarray) and np.array_equal(result, want)
        again = loader.load(paths)  # the pool serves a second call
        assert again.audio.shape == (sum(not isinstance(r, str) for _, r in items), 4000)
        with pytest.raises(ValueError):
            list(loader.iter_clips(paths, offsets=[0.0]))


def test_all_files_bad_gives_an_empty_batch(tmp_path):
    paths = [tmp_path / "x.wav", tmp_path / "y.wav"]
    batch = load_clips(paths, workers=0)
    assert batch.audio.shape == (0, N) and batch.audio.dtype == np.float32
    assert batch.indices == []
    assert [(i, p) for i, p, _ in batch.failures] == [(0, str(paths[0])), (1, str(paths[1]))]
    assert all("not found" in r for _, _, r in batch.failures)


# --- issue 24: hostile files and dying workers (tests/corpus/bad_files.py) -----------------------


def test_random_bytes_named_mp3_are_not_audio_and_libmpg123_prints_nothing(tmp_path, capfd):
    from tests.corpus.bad_files import random_bytes_mp3

    for seed in range(3):
        err = audio_error(random_bytes_mp3(tmp_path, f"noise{seed}.mp3", seed=seed))
        assert err.reason == "not an audio file (its content is no format we can read)"
    out, err_text = capfd.readouterr()
    assert "MPEG" not in err_text and "resync" not in err_text and err_text == ""
    os.write(2, b"still here\n")  # fd 2 was given back
    assert capfd.readouterr().err == "still here\n"


@pytest.mark.parametrize(
    "tag, codec",
    [(0x674F, "Ogg Vorbis (format 0x674F)"), (0x0055, "MPEG Layer 3 (MP3) (format 0x0055)"),
     (0x0161, "Windows Media Audio (format 0x0161)"), (0x7777, "an unknown codec (format 0x7777)")],
)  # fmt: skip
def test_a_wav_with_an_unsupported_codec_names_the_codec(tmp_path, tag, codec):
    from tests.corpus.bad_files import wav_with_unsupported_codec

    err = audio_error(wav_with_unsupported_codec(tmp_path, tag=tag))
    assert err.reason.startswith(f"WAV with an unsupported codec: {codec}"), err.reason
    assert "despite its '.ogg' extension the content is WAV" in err.reason


def _wav_around(payload: bytes, tag: int = 0x674F) -> bytes:
    """A RIFF/WAVE file with `payload` as its data chunk and the fmt chunk of LMMS's
    kick04.ogg (26 bytes: the codec's tag, mono, 44.1 kHz, cbSize 8 and 8 bytes of extension)
    and a fact chunk between them, as there."""
    fmt = struct.pack("<HHIIHH", tag, 1, 44100, 18000, 1, 16) + struct.pack("<H", 8) + bytes(8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<I", 4) + struct.pack("<I", 12345)
    body += b"data" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_ogg_vorbis_wrapped_in_a_wav_is_read_from_its_stream(tmp_path):
    # LMMS ships kick04.ogg and harpsichord01.ogg as WAV files with format 0x674F whose data
    # chunk is a whole Ogg Vorbis stream: libsndfile refuses the WAV, and reads the stream.
    import io

    stream = io.BytesIO()
    sf.write(stream, tone(220, 1.5, 44100), 44100, format="OGG", subtype="VORBIS")
    ogg = stream.getvalue()
    direct = tmp_path / "direct.ogg"
    direct.write_bytes(ogg)
    path = tmp_path / "kick04.ogg"
    path.write_bytes(_wav_around(ogg))
    with open_audio(path) as f:
        assert (f.samplerate, f.channels) == (44100, 1)
        assert abs(f.frames - round(1.5 * 44100)) < 64
    np.testing.assert_array_equal(load_clip(path, 0.5, 1.0), load_clip(direct, 0.5, 1.0))
    assert np.abs(load_clip(path)).max() > 0.1
    # The same wrapping around anything but a whole Ogg stream still says what the file is.
    for payload in (ogg[:40], b"\0" * 400, ogg[4:]):
        path.write_bytes(_wav_around(payload))
        err = audio_error(path)
        assert err.reason.startswith("WAV with an unsupported codec: Ogg Vorbis"), err.reason


def test_the_codec_tag_of_an_extensible_wav_is_its_sub_format(tmp_path):
    path = write(tmp_path / "x.wav", tone(300, 0.1), SR, subtype="PCM_24")  # WAVE_FORMAT_EXTENSIBLE
    assert audio_module.wav_format_tag(path) == 0x0001
    assert audio_module.wav_format_tag(write(tmp_path / "f.flac", tone(300, 0.1), SR)) is None


def test_a_worker_that_dies_fails_its_file_and_the_others_load(tmp_path):
    from tests.corpus.bad_files import KillOnMarker, decoder_killer

    paths = [write(tmp_path / f"s{i:02d}.wav", tone(200 + 20 * i, 0.3), SR) for i in range(40)]
    paths.insert(17, decoder_killer(tmp_path))
    with ClipLoader(workers=2, transform=KillOnMarker()) as loader:
        batch = loader.load(paths)
        assert batch.indices == [i for i in range(41) if i != 17]
        [(i, path, reason)] = batch.failures
        assert (i, path) == (17, str(paths[17]))
        assert reason.startswith("the decoder process died (signal 9, SIGKILL"), reason
        assert reason.endswith("reading this file")
        again = loader.load(paths[:3])  # the restarted pool serves the next call
        assert again.indices == [0, 1, 2] and not again.failures


def run_script(folder: Path, text: str) -> subprocess.CompletedProcess:
    """Run `text` as a script in a child process, with `folder` as its argument (the time
    limit only guards the suite against a hang)."""
    script = folder / "script.py"
    script.write_text(text)
    root = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.run([sys.executable, str(script), str(folder)], capture_output=True,
                          text=True, timeout=120, cwd=root, env=env)  # fmt: skip


HALF_RESULT_SCRIPT = """
import sys
from pathlib import Path
from sampletool.audio import ClipLoader
from tests.corpus.bad_files import HalfResultOnMarker, decoder_killer
from tests.helpers import tone, write

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    paths = [write(folder / f"s{i}.wav", tone(300, 0.2)) for i in range(30)]
    paths.insert(11, decoder_killer(folder))
    with ClipLoader(workers=2, transform=HalfResultOnMarker()) as loader:
        batch = loader.load(paths)
        [(i, path, reason)] = batch.failures
        print(batch.indices == [i for i in range(31) if i != 11], i, Path(path).name)
        print(reason)
        print(loader.load(paths[:3]).indices)
"""


def test_a_worker_killed_while_sending_its_result_does_not_hang_the_pool(tmp_path):
    """The executor reads results from one pipe all workers share: a worker killed halfway
    through a message leaves its reader waiting for the rest while another worker lives. The
    pool sees the dead worker, fails its file and goes on."""
    r = run_script(tmp_path, HALF_RESULT_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "True 11 killer.wav",
        "the decoder process died (signal 9, SIGKILL: killed, perhaps by the system for lack of "
        "memory) reading this file",
        "[0, 1, 2]",
    ], r.stdout + r.stderr


STUCK_WORKER_SCRIPT = """
import sys, threading
from pathlib import Path
from sampletool.audio import ClipLoader
from sampletool.progress import Cancelled
from tests.corpus.bad_files import HangOnMarker, decoder_killer
from tests.helpers import tone, write

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    paths = [write(folder / f"s{i}.wav", tone(300, 0.2)) for i in range(20)]
    paths.insert(2, decoder_killer(folder))  # in a worker's hands when the cancel comes
    cancel = threading.Event()
    with ClipLoader(workers=2, transform=HangOnMarker()) as loader:
        try:
            loader.load(paths[:2])  # a first load works
            loader.load(paths, progress=lambda *a: cancel.set(), cancel=cancel)
        except Cancelled:
            print("CANCELLED")
"""


def test_cancel_does_not_wait_for_a_stuck_worker_and_nothing_leaks(tmp_path):
    """Stopping must not wait for the file a worker has in hand (the app, quitting, gave up
    waiting and exited without cleaning up: "leaked semaphore objects")."""
    r = run_script(tmp_path, STUCK_WORKER_SCRIPT)
    assert r.returncode == 0 and r.stdout == "CANCELLED\n", r.stderr
    assert r.stderr == "", r.stderr
