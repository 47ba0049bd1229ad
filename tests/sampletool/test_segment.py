"""Onset detection and file segmentation, on synthetic drums, cymbals, pads and long files.

Every sound is synthesised here from fixed seeds, with its onsets known to the sample.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from sampletool.audio import AudioError
from sampletool.segment import detect_onsets, segment_file
from tests.helpers import write

# --- synthesis ---------------------------------------------------------------------------------


def band(x: np.ndarray, sr: int, low: float = 0.0, high: float | None = None) -> np.ndarray:
    """Zero-phase band-pass through the FFT, with second-order Butterworth-like slopes."""
    f = np.fft.rfftfreq(x.size, 1 / sr)
    gain = np.ones(f.size)
    if low > 0:
        gain /= np.sqrt(1 + (low / np.maximum(f, 1e-3)) ** 4)
    if high is not None:
        gain /= np.sqrt(1 + (f / high) ** 4)
    return np.fft.irfft(np.fft.rfft(x) * gain, x.size)


def fade(x: np.ndarray, sr: int, seconds: float = 0.03) -> np.ndarray:
    """Fade the last `seconds` out (a cosine), so a synthetic hit does not end in a click."""
    n = min(x.size, round(seconds * sr))
    x = x.copy()
    x[-n:] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, n))
    return x


def kick(sr: int, rng: np.random.Generator, gain: float = 1.0, decay: float = 0.12) -> np.ndarray:
    """A sine sweeping down from ~160 Hz to ~50 Hz, with a click (a long `decay`: an 808)."""
    t = np.arange(round(max(0.6, 6 * decay) * sr)) / sr
    freq = 50 + 110 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    body = np.sin(phase) * np.exp(-t / decay)
    click = rng.standard_normal(t.size) * np.exp(-t / 0.002) * 0.3
    return fade(gain * 0.9 * (body + click), sr)


def snare(sr: int, rng: np.random.Generator, gain: float = 1.0, tail: float = 0.09) -> np.ndarray:
    """A 190 Hz tone and band-limited noise, both decaying."""
    t = np.arange(round(max(0.35, 6 * tail) * sr)) / sr
    tone = np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    noise = band(rng.standard_normal(t.size), sr, 1000, 7000)
    noise *= np.exp(-t / tail)
    return fade(gain * 0.5 * (0.8 * tone + noise), sr)


def hat(sr: int, rng: np.random.Generator, gain: float = 1.0, tail: float = 0.02) -> np.ndarray:
    """High-passed noise with a short decay (a long `tail` makes an open hat)."""
    t = np.arange(round(max(0.08, 6 * tail) * sr)) / sr
    noise = band(rng.standard_normal(t.size), sr, 6000)
    return fade(gain * 0.35 * noise * np.exp(-t / tail), sr)


def mix(sr: int, seconds: float, hits: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Add each (time, sound) at its sample; float32."""
    out = np.zeros(round(seconds * sr))
    for time, sound in hits:
        i = round(time * sr)
        n = min(sound.size, out.size - i)
        out[i : i + n] += sound[:n]
    return out.astype(np.float32)


@dataclass(frozen=True)
class Loop:
    """A synthetic drum loop and the times its hits start."""

    name: str
    audio: np.ndarray
    sr: int
    onsets: np.ndarray


def drum_loop(
    name: str,
    *,
    sr: int,
    bpm: float,
    bars: int,
    kicks: str,
    snares: str,
    hats: str,
    swing: float = 0.0,
    boom: float = 0.12,
    seed: int = 0,
) -> Loop:
    """A loop on a 16-step grid: 'X' a hit, 'x' a hit 12 dB down (a ghost note), 'o' an open
    hat, '.' nothing. Velocities vary by ±3 dB, timing by ±4 ms, odd 16ths are delayed by
    `swing` (a fraction of a 16th). `boom` is the kick's decay time (0.6 s: an 808 bass that
    rings under everything). A hat chokes the hat before it and a kick the kick before it, as
    on a drum machine. Simultaneous hits make one onset."""
    rng = np.random.default_rng(seed)
    step = 60.0 / bpm / 4
    hits = []
    onsets = set()
    ringing: dict[str, tuple[float, np.ndarray]] = {}
    for bar in range(bars):
        for i in range(16):
            t = (bar * 16 + i) * step + (swing * step if i % 2 else 0.0)
            t += rng.uniform(-0.004, 0.004) + 0.05
            for pattern, make in ((kicks, kick), (snares, snare), (hats, hat)):
                symbol = pattern[i]
                if symbol == ".":
                    continue
                gain = 10 ** (rng.uniform(-3, 3) / 20) * (10 ** (-12 / 20) if symbol == "x" else 1)
                if make is kick:
                    sound = kick(sr, rng, gain, decay=boom)
                elif make is hat:
                    sound = hat(sr, rng, gain, tail=0.15 if symbol == "o" else 0.02)
                else:
                    sound = snare(sr, rng, gain)
                if make is not snare:
                    if make.__name__ in ringing:  # choke the one still ringing
                        start, previous = ringing[make.__name__]
                        n = round((t - start) * sr)
                        previous[:n] = fade(previous[:n], sr, 0.01)
                        previous[n:] = 0
                    ringing[make.__name__] = (t, sound)
                hits.append((t, sound))
                onsets.add(round(t * sr))
    seconds = bars * 16 * step + 0.6
    audio = mix(sr, seconds, hits)
    audio *= 0.8 / np.abs(audio).max()
    return Loop(name, audio, sr, np.array(sorted(onsets)) / sr)


def crash(sr: int, seconds: float = 5.0, seed: int = 1) -> np.ndarray:
    """A crash cymbal: bright noise and 80 drifting inharmonic partials, decaying slowly with a
    slight shimmer (two amplitude modulations, ±15% together) and a colour that wanders."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    bright = band(rng.standard_normal(t.size), sr, 3000)
    dark = band(rng.standard_normal(t.size), sr, 400, 2500)
    colour = 0.5 + 0.2 * np.sin(2 * np.pi * 0.7 * t + 1.0)  # the bright/dark balance wobbles
    y = colour * bright + (1 - colour) * 2 * dark
    for _ in range(80):
        f = rng.uniform(300, min(12000, sr / 2 - 500))
        drift = 1 + 0.003 * np.sin(2 * np.pi * rng.uniform(0.3, 2) * t)
        partial = np.sin(2 * np.pi * np.cumsum(f * drift) / sr + rng.uniform(0, 2 * np.pi))
        y += partial * np.exp(-t / rng.uniform(0.5, 2.5)) / 9
    shimmer = 1 + 0.1 * np.sin(2 * np.pi * 5.3 * t) + 0.05 * np.sin(2 * np.pi * 8.1 * t + 2.0)
    y *= np.exp(-t / 1.2) * shimmer * np.minimum(1, t / 0.002)
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def saw(freq: np.ndarray, sr: int, phase0: float = 0.0) -> np.ndarray:
    """A naive (aliasing, hard-edged) sawtooth following `freq` [samples], in [-1, 1]."""
    phase = phase0 + np.cumsum(freq) / sr
    return 2 * (phase % 1.0) - 1


def pad(sr: int, seconds: float = 7.5, seed: int = 2) -> np.ndarray:
    """A chord of detuned saws with vibrato and tremolo: 0.8 s attack, 5 s sustain, release."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    vibrato = 2 ** (0.15 / 12 * np.sin(2 * np.pi * 5.0 * t))  # ±15 cents
    y = np.zeros(t.size)
    for note in (220.0, 277.18, 329.63, 440.0):
        for cents in (-9, 0, 8):
            f = note * 2 ** (cents / 1200) * vibrato
            y += saw(f, sr, rng.uniform())
    y = band(y, sr, 0, 3000)
    tremolo = 1 + 0.15 * np.sin(2 * np.pi * 3.7 * t)
    attack, sustain = 0.8, 5.8
    envelope = np.clip(t / attack, 0, 1) * np.clip(1 - (t - sustain) / 1.2, 0, 1)
    y *= envelope**2 * tremolo
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def reverb_snare(sr: int, seconds: float = 4.0, seed: int = 3) -> np.ndarray:
    """A snare with early reflections and a 2.5 s noisy reverb tail."""
    rng = np.random.default_rng(seed)
    dry = snare(sr, rng)
    t = np.arange(round(seconds * sr)) / sr
    tail = band(rng.standard_normal(t.size), sr, 100, 5000)
    tail *= 0.25 * np.exp(-t / 0.36) * np.clip((t - 0.01) / 0.03, 0, 1)
    hits = [(0.0, dry), (0.0, tail)]
    hits += [(d, g * dry) for d, g in ((0.017, 0.5), (0.029, 0.4), (0.043, 0.3), (0.061, 0.2))]
    y = mix(sr, seconds, hits)
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def bass_note(sr: int, seconds: float = 5.0) -> np.ndarray:
    """A low saw (55 Hz) with vibrato and a filter, held 4 s."""
    t = np.arange(round(seconds * sr)) / sr
    f = 55 * 2 ** (0.25 / 12 * np.sin(2 * np.pi * 5.5 * t))  # ±25 cents
    y = band(saw(f, sr), sr, 0, 600)
    envelope = np.clip(t / 0.02, 0, 1) * np.clip(1 - (t - 4.0) / 0.3, 0, 1)
    y *= envelope * (1 + 0.1 * np.sin(2 * np.pi * 4.2 * t))
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def match(found: np.ndarray | list[float], truth: np.ndarray, tol: float = 0.03) -> list[float]:
    """One-to-one matching within `tol` seconds, closest pairs first: the matched errors
    (found - true), one per matched pair."""
    pairs = sorted(
        (abs(f - t), i, j)
        for i, f in enumerate(found)
        for j, t in enumerate(truth)
        if abs(f - t) <= tol
    )
    used_found, used_truth, errors = set(), set(), []
    for _, i, j in pairs:
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
            errors.append(float(found[i] - truth[j]))
    return errors


# --- drum loops: precision and recall ----------------------------------------------------------

# Tempi 80-170 bpm, 16 kHz and 44.1 kHz, swing, ghost notes ('x', 12 dB down), open hats,
# 808 kicks ringing under everything. Hits are at least 0.1 s apart (the default min_gap).
LOOPS = [
    dict(name="boombap90", sr=44100, bpm=90, bars=2, swing=0.15, seed=10,
         kicks="X.....X...X..X..", snares="....X..x.x..X..x", hats="X.X.X.X.X.X.X.Xo"),
    dict(name="house124", sr=16000, bpm=124, bars=2, seed=11,
         kicks="X...X...X...X...", snares="....X.......X...", hats="X.o.X.o.X.o.X.o."),
    dict(name="dnb170", sr=44100, bpm=170, bars=3, seed=12,
         kicks="X.........X.....", snares="....X.....x.X...", hats="X.X.X.X.X.X.X.o."),
    dict(name="funk100", sr=16000, bpm=100, bars=2, swing=0.2, seed=13,
         kicks="X..X..X...X..X..", snares="....X.xx.x..X.x.", hats="XXXXXXXXXXXXXXXX"),
    dict(name="rock80", sr=44100, bpm=80, bars=1, seed=14,
         kicks="X.X.....X.X.....", snares="....X..x....X.xx", hats="XXXXXXXXXXXXXXo."),
    dict(name="trap808", sr=16000, bpm=140, bars=2, boom=0.6, seed=16,
         kicks="X......X..X.....", snares="....x...X.......", hats="X.X.X.X.X.X.X.X."),
    dict(name="hiphop808", sr=44100, bpm=92, bars=2, boom=0.5, swing=0.1, seed=17,
         kicks="X.....X...X..X..", snares="....X..x.x..X..x", hats="X.X.X.X.X.X.XoX."),
    dict(name="trap140", sr=16000, bpm=140, bars=2, seed=15,
         kicks="X.....X...X.....", snares="....x...X.......", hats="X.X.X.X.X.X.X.X."),
]  # fmt: skip


@pytest.fixture(scope="module")
def loops() -> list[tuple[Loop, np.ndarray]]:
    """Every loop with the onsets detected in it."""
    out = []
    for spec in LOOPS:
        loop = drum_loop(**spec)
        out.append((loop, detect_onsets(loop.audio, loop.sr)))
    return out


def test_the_loops_are_what_they_claim(loops):
    for loop, _ in loops:
        assert loop.audio.dtype == np.float32 and np.abs(loop.audio).max() <= 0.8 + 1e-6
        assert 3.5 <= loop.audio.size / loop.sr <= 8
        assert np.diff(loop.onsets).min() >= 0.1, loop.name  # resolvable with min_gap 0.1
        assert len(loop.onsets) >= 16
    assert {loop.sr for loop, _ in loops} == {16000, 44100}


@pytest.mark.parametrize("index", range(len(LOOPS)), ids=[spec["name"] for spec in LOOPS])
def test_each_loop_precision_and_recall(loops, index):
    loop, found = loops[index]
    matched = len(match(found, loop.onsets))
    missed = [round(t, 3) for t in loop.onsets if not match(found, np.array([t]))]
    extra = [round(t, 3) for t in found if not match(loop.onsets, np.array([t]))]
    detail = (
        f"{loop.name}: {len(found)} found, {len(loop.onsets)} true; missed {missed}, extra {extra}"
    )
    assert matched / max(len(found), 1) >= 0.9, detail  # precision
    assert matched / len(loop.onsets) >= 0.9, detail  # recall


def test_all_loops_precision_and_recall(loops):
    matched = sum(len(match(found, loop.onsets)) for loop, found in loops)
    n_found = sum(len(found) for _, found in loops)
    n_true = sum(len(loop.onsets) for loop, _ in loops)
    assert matched / n_found >= 0.95
    assert matched / n_true >= 0.95


def test_onsets_are_placed_at_the_start_of_the_attack(loops):
    """Never late (a segment keeps its transient), and only a few ms early."""
    errors = np.array([e for loop, found in loops for e in match(found, loop.onsets)])
    assert errors.size > 150
    assert errors.max() <= 0.002
    assert errors.min() >= -0.010
    assert abs(np.median(errors)) <= 0.005


def test_sensitivity_trades_recall_for_caution(loops):
    loop, found = next((loop, found) for loop, found in loops if loop.name == "funk100")
    cautious = detect_onsets(loop.audio, loop.sr, sensitivity=0.5)
    eager = detect_onsets(loop.audio, loop.sr, sensitivity=2.0)
    assert len(cautious) < len(found) <= len(eager)
    assert len(match(cautious, found, tol=0.001)) == len(cautious)  # a subset


# --- single sounds that must stay one segment ---------------------------------------------------

SINGLES = [
    *[("crash", sr, seed) for sr in (16000, 44100) for seed in (1, 2, 3)],
    *[("pad", sr, seed) for sr in (16000, 44100) for seed in (2, 5)],
    *[("reverb_snare", sr, seed) for sr in (16000, 44100) for seed in (3, 4)],
    *[("bass_note", sr, 0) for sr in (16000, 44100)],
]


def single(kind: str, sr: int, seed: int) -> np.ndarray:
    if kind == "bass_note":
        return bass_note(sr)
    if kind == "crash":
        return crash(sr, seconds=4.0 + seed * 0.5, seed=seed)
    return {"pad": pad, "reverb_snare": reverb_snare}[kind](sr, seed=seed)


@pytest.mark.parametrize(
    ("kind", "sr", "seed"), SINGLES, ids=[f"{k}-{r}-{s}" for k, r, s in SINGLES]
)
def test_a_decaying_or_sustained_sound_is_one_segment(kind, sr, seed):
    """A crash's shimmering tail, a pad's swell, vibrato and tremolo, a reverb's noisy tail and
    a bass note's vibrato: one onset, where the sound starts (SampleVAE cut a cymbal into
    many). Nothing before it is within 40 dB of the sound's peak (a pad fades in from
    silence, so "where it starts" is where it becomes audible)."""
    audio = single(kind, sr, seed)
    onsets = detect_onsets(audio, sr)
    assert len(onsets) == 1, onsets
    assert onsets[0] <= 0.05
    assert np.abs(audio[: round(onsets[0] * sr)]).max(initial=0) <= 0.01 * np.abs(audio).max()


@pytest.mark.parametrize("kind", ["crash", "pad"])
def test_a_single_sound_after_silence_is_one_onset_where_it_starts(kind):
    sr = 16000
    audio = np.concatenate([np.zeros(round(0.7 * sr), np.float32), single(kind, sr, 2)])
    onsets = detect_onsets(audio, sr)
    assert len(onsets) == 1, onsets
    assert abs(onsets[0] - 0.7) <= 0.03


@pytest.mark.parametrize("sr", [16000, 44100])
def test_new_hits_over_tails_and_sustained_sounds_are_found(sr):
    """The guard against decays must not hide real onsets on top of them."""
    rng = np.random.default_rng(5)
    cases = [
        ([0.3, 2.3], [(0.3, crash(sr, 5.0, 1)), (2.3, 0.5 * crash(sr, 4.0, 2))]),
        ([0.2, 2.5, 3.5], [(0.2, crash(sr, 5.0, 1)), (2.5, 0.3 * kick(sr, rng)),
                           (3.5, 0.3 * snare(sr, rng))]),
        ([0.0, 3.0, 4.5], [(0.0, pad(sr)), (3.0, 0.5 * snare(sr, rng)),
                           (4.5, 0.5 * kick(sr, rng))]),
        ([0.0, 1.0, 2.0], [(0.0, bass_note(sr)), (1.0, 0.3 * snare(sr, rng)),
                           (2.0, 0.2 * kick(sr, rng))]),
    ]  # fmt: skip
    for truth, hits in cases:
        onsets = detect_onsets(mix(sr, 6.0, hits), sr)
        assert len(onsets) == len(truth), (truth, onsets)
        assert abs(onsets[0] - truth[0]) <= 0.05, (truth, onsets)  # the pad fades in
        assert len(match(onsets[1:], np.array(truth[1:]))) == len(truth) - 1, (truth, onsets)


# --- edges -------------------------------------------------------------------------------------


def test_silence_has_no_onsets(tmp_path):
    assert detect_onsets(np.zeros(3 * 16000, np.float32), 16000).size == 0
    assert detect_onsets(np.zeros(0, np.float32), 16000).size == 0
    assert detect_onsets(np.zeros(10, np.float32), 16000).size == 0
    path = write(tmp_path / "silence.wav", np.zeros(2 * 16000, np.float32))
    assert segment_file(path) == [0.0]


def test_a_sound_at_the_first_sample_is_an_onset_at_zero():
    onsets = detect_onsets(snare(16000, np.random.default_rng(1)), 16000)
    assert onsets.tolist() == [0.0]
    assert onsets.dtype == np.float64


def test_leading_silence_puts_the_onset_at_the_hit(tmp_path):
    sr = 44100
    audio = mix(sr, 2.0, [(1.0, kick(sr, np.random.default_rng(2)))])
    onsets = detect_onsets(audio, sr)
    assert len(onsets) == 1 and abs(onsets[0] - 1.0) <= 0.03
    path = write(tmp_path / "late.wav", audio, sr)
    result = segment_file(path)
    assert len(result) == 1 and abs(result[0] - 1.0) <= 0.03


def test_min_gap_merges_close_onsets():
    sr = 16000
    rng = np.random.default_rng(3)
    audio = mix(sr, 1.0, [(0.2, 0.3 * snare(sr, rng)), (0.26, snare(sr, rng))])  # a flam
    assert len(detect_onsets(audio, sr)) == 1
    assert len(detect_onsets(audio, sr, min_gap=0.04)) == 2


def test_nan_and_infinite_samples_count_as_silence():
    sr = 16000
    audio = mix(sr, 2.0, [(1.0, snare(sr, np.random.default_rng(4)))])
    clean = detect_onsets(audio, sr)
    audio[: sr // 2] = np.nan
    audio[sr // 2 : sr // 2 + 10] = np.inf
    assert detect_onsets(audio, sr).tolist() == clean.tolist()
    assert detect_onsets(audio.astype(np.float64), sr).tolist() == clean.tolist()


def test_integer_pcm_is_scaled_to_full_scale():
    sr = 16000
    audio = mix(
        sr,
        2.0,
        [
            (0.3, snare(sr, np.random.default_rng(9))),
            (1.2, 0.1 * hat(sr, np.random.default_rng(9))),
        ],
    )
    pcm = np.round(audio * 32767).astype(np.int16)
    assert detect_onsets(pcm, sr).tolist() == detect_onsets(pcm / 32768.0, sr).tolist()
    assert len(detect_onsets(pcm, sr)) == 2


def test_arguments_out_of_range_are_a_callers_bug(tmp_path):
    mono = np.zeros(1600, np.float32)
    with pytest.raises(ValueError, match="mono"):
        detect_onsets(np.zeros((1600, 2), np.float32), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        detect_onsets(mono, 0)
    with pytest.raises(ValueError, match="min_gap"):
        detect_onsets(mono, 16000, min_gap=-1)
    with pytest.raises(ValueError, match="sensitivity"):
        detect_onsets(mono, 16000, sensitivity=0)
    path = write(tmp_path / "a.wav", mono)
    with pytest.raises(ValueError, match="max_seconds"):
        segment_file(path, max_seconds=0)
    with pytest.raises(ValueError, match="min_segment"):
        segment_file(path, min_segment=-0.1)


# --- files -------------------------------------------------------------------------------------


def test_segment_file_agrees_with_detect_onsets_on_a_wav(tmp_path, loops):
    loop = next(loop for loop, _ in loops if loop.sr == 16000)
    path = write(tmp_path / "loop.wav", loop.audio, loop.sr, subtype="FLOAT")
    expected = detect_onsets(loop.audio, loop.sr)
    assert segment_file(path) == expected.tolist()


def test_segment_file_agrees_with_detect_onsets_on_a_stereo_flac(tmp_path, loops):
    loop = next(loop for loop, _ in loops if loop.sr == 44100)
    rng = np.random.default_rng(6)
    right = loop.audio * 0.5 + 0.01 * rng.standard_normal(loop.audio.size).astype(np.float32)
    path = write(tmp_path / "loop.flac", np.stack([loop.audio, right], axis=1), loop.sr)
    decoded, _ = sf.read(str(path), dtype="float32")
    mono = decoded.mean(axis=1, dtype=np.float32)
    # At the file's own rate: the same samples, the same onsets.
    native = segment_file(path, sample_rate=loop.sr)
    assert native == detect_onsets(mono, loop.sr).tolist()
    # At 16 kHz (the default), streamed through soxr: as the whole file resampled at once.
    streamed = segment_file(path)
    at_once = detect_onsets(soxr.resample(mono, loop.sr, 16000, quality="HQ"), 16000)
    assert len(streamed) == len(at_once)
    assert len(match(streamed, at_once, tol=0.002)) == len(at_once)
    # And both find the loop's hits.
    assert len(match(streamed, loop.onsets)) >= 0.85 * len(loop.onsets)


def test_min_segment_drops_an_onset_at_the_very_end(tmp_path):
    sr = 16000
    rng = np.random.default_rng(7)
    audio = mix(sr, 1.0, [(0.1, snare(sr, rng)), (0.965, snare(sr, rng))])
    path = write(tmp_path / "end.wav", audio, sr)
    assert len(segment_file(path, min_segment=0.0)) == 2
    kept = segment_file(path)  # min_segment=0.05: the last hit is 35 ms from the end
    assert len(kept) == 1 and abs(kept[0] - 0.1) <= 0.03


LONG_SR = 8000
LONG_MINUTES = 20


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """20 minutes at 8 kHz, silence with a snare every 10 s (at 0.5, 10.5, 20.5 ...), written
    a block at a time."""
    path = tmp_path_factory.mktemp("long") / "hour.wav"
    hit = 0.5 * snare(LONG_SR, np.random.default_rng(8))
    block = np.zeros(10 * LONG_SR, np.float32)
    block[LONG_SR // 2 : LONG_SR // 2 + hit.size] = hit
    with sf.SoundFile(str(path), "w", LONG_SR, 1, "PCM_16") as f:
        for _ in range(LONG_MINUTES * 6):
            f.write(block)
    return path


def test_a_long_file_is_streamed_in_bounded_memory(long_file, tmp_path):
    segment_file(write(tmp_path / "warm.wav", np.zeros(1000, np.float32)))  # lazy imports
    decoded = LONG_MINUTES * 60 * LONG_SR * 4  # the whole file as float32: 38 MB
    tracemalloc.start()
    try:
        onsets = segment_file(long_file, max_seconds=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < decoded / 4, f"segment_file peaked at {peak / 1e6:.1f} MB"
    truth = 0.5 + 10.0 * np.arange(LONG_MINUTES * 6)
    assert len(onsets) == truth.size
    assert len(match(onsets, truth)) == truth.size


def test_max_seconds_caps_the_scan(long_file):
    assert len(match(segment_file(long_file, max_seconds=95.0), 0.5 + 10.0 * np.arange(10))) == 10
    assert len(segment_file(long_file, max_seconds=95.0)) == 10
    default = segment_file(long_file)  # max_seconds=600
    assert len(default) == 60
    assert 590.0 < default[-1] < 600.0


def test_unreadable_files_raise_audio_error(tmp_path):
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    empty = tmp_path / "empty.wav"
    empty.touch()
    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 20)
    damaged = tmp_path / "damaged.wav"
    damaged.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    cases = {
        tmp_path / "missing.wav": "not found",
        folder: "folder",
        empty: "empty",
        text: "not an audio file",
        damaged: "WAV",
    }
    for path, words in cases.items():
        with pytest.raises(AudioError) as info:
            segment_file(path)
        assert info.value.path == str(path)
        assert words in info.value.reason, info.value.reason
