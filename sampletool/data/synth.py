"""A procedural sample synthesiser: drum one-shots, percussion, tonal and FX sounds, and loops.

Everything is numpy, deterministic by seed, and fast (hundreds of one-shots a second). It feeds
the built-in model's training recipe, the demo library, tests and benchmarks.

Each class has several generators (kick: 808-style sine sweep, acoustic thump, distorted
hardcore kick...), each drawing its parameters from wide ranges; a shared post chain then adds
what real samples have: filtering, saturation or bit reduction, a room or reverb tail, layering
noise, stereo width, leading silence, and (when written) varied sample rates and bit depths.

    s = synthesize("kick", seed=3)          # Sound(audio [n, channels], sample_rate, ...)
    write_demo_library("~/Demo", per_class=30, loops=6)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sampletool.errors import SampleToolError
from sampletool.progress import Cancelled, Progress

CLASSES = ("kick", "snare", "hihat", "tom", "cymbal", "clap", "percussion", "tonal", "fx")
SAMPLE_RATES = (22050, 32000, 44100, 44100, 48000, 48000, 96000)
SUBTYPES = ("PCM_16", "PCM_16", "PCM_24", "FLOAT")
_SYNTH_RATE = 48000  # sounds are made at this rate, then resampled for writing


@dataclass
class Sound:
    """One synthesised sound.

    Attributes:
        audio: Float32 [frames, channels] in [-1, 1].
        sample_rate: Hz.
        cls: the class name (one of CLASSES, or "loop").
        variant: which generator made it ("808", "acoustic", "open", ...).
        onsets: for loops, the start of each hit in seconds; otherwise [leading silence].
    """

    audio: np.ndarray
    sample_rate: int
    cls: str
    variant: str
    onsets: list[float]


# -- building blocks -------------------------------------------------------------------------


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(seconds * sr)) / sr


def _decay(t: np.ndarray, tau: float | np.ndarray) -> np.ndarray:
    return np.exp(-t / np.maximum(tau, 1e-4))


def _attack(t: np.ndarray, seconds: float) -> np.ndarray:
    return np.clip(t / max(seconds, 1e-4), 0.0, 1.0)


def _sweep(t: np.ndarray, f: np.ndarray | float, sr: int) -> np.ndarray:
    """Phase (radians) of an oscillator following frequency f(t)."""
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), t.shape)
    return 2 * np.pi * np.cumsum(f) / sr


def _noise(rng: np.random.Generator, n: int, colour: float = 0.0) -> np.ndarray:
    """Noise with a 1/f^colour power spectrum (0 white, 1 pink, 2 brown), unit peak."""
    x = rng.standard_normal(n)
    if colour:
        size = _fast_len(n)
        spec = np.fft.rfft(x, size)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / f ** (colour / 2), size)[:n]
    return x / (np.abs(x).max() + 1e-12)


def _fast_len(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())  # numpy's FFT is slow on lengths with large primes


def _band(x: np.ndarray, sr: int, lo: float = 0.0, hi: float | None = None, order: float = 2.0):
    """Zero-phase band-pass by FFT with smooth (Butterworth-shaped) edges."""
    size = _fast_len(len(x))
    spec = np.fft.rfft(x, size)
    f = np.fft.rfftfreq(size, 1 / sr)
    g = np.ones_like(f)
    if lo > 0:
        g *= 1 / np.sqrt(1 + (lo / np.maximum(f, 1e-3)) ** (2 * order))
    if hi is not None and hi < sr / 2:
        g *= 1 / np.sqrt(1 + (f / hi) ** (2 * order))
    return np.fft.irfft(spec * g, size)[: len(x)]


def _resonant_band(x: np.ndarray, sr: int, centre: float, q: float) -> np.ndarray:
    size = _fast_len(len(x))
    spec = np.fft.rfft(x, size)
    f = np.fft.rfftfreq(size, 1 / sr)
    g = 1 / np.sqrt(1 + q**2 * (f / centre - centre / np.maximum(f, 1e-3)) ** 2)
    return np.fft.irfft(spec * g, size)[: len(x)]


def _moving_band(
    x: np.ndarray, sr: int, centres: Callable[[float], float], q: float, block: int = 2048
) -> np.ndarray:
    """A band-pass whose centre follows centres(time fraction), by overlap-add of FFT frames."""
    n = len(x)
    hop = block // 2
    win = np.hanning(block + 1)[:-1]
    out = np.zeros(n + block)
    padded = np.concatenate([x, np.zeros(block)])
    f = np.fft.rfftfreq(block, 1 / sr)
    for start in range(0, n, hop):
        c = max(30.0, centres(start / max(n, 1)))
        g = 1 / np.sqrt(1 + q**2 * (f / c - c / np.maximum(f, 1e-3)) ** 2)
        frame = np.fft.irfft(np.fft.rfft(padded[start : start + block] * win) * g, block)
        out[start : start + block] += frame
    return out[:n]


def _metal(rng: np.random.Generator, t: np.ndarray, base: float, n: int = 6) -> np.ndarray:
    """Inharmonic square-wave cluster, the 808/909 cymbal and hat source."""
    ratios = np.array([1.0, 1.4823, 1.8003, 2.5464, 2.6307, 3.8970])[:n]
    ratios = ratios * rng.uniform(0.97, 1.03, len(ratios))
    phase = rng.uniform(0, 2 * np.pi, len(ratios))
    return np.sign(np.sin(2 * np.pi * base * ratios[:, None] * t + phase[:, None])).sum(0)


def _partials(
    rng: np.random.Generator,
    t: np.ndarray,
    freqs: np.ndarray,
    taus: np.ndarray,
    amps: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of decaying sines (float32 and vectorised: this is the synthesiser's hot spot);
    random amplitudes unless given."""
    phase = rng.uniform(0, 2 * np.pi, len(freqs)).astype(np.float32)
    if amps is None:
        amps = rng.uniform(0.3, 1.0, len(freqs))
    amps = np.asarray(amps, np.float32)
    t32 = t.astype(np.float32)
    w = (2 * np.pi * np.asarray(freqs, np.float32))[:, None]
    d = (-1 / np.maximum(np.asarray(taus, np.float32), 1e-4))[:, None]
    return (amps @ (np.sin(w * t32 + phase[:, None]) * np.exp(d * t32))).astype(np.float64)


def _norm(x: np.ndarray) -> np.ndarray:
    return x / (np.abs(x).max() + 1e-12)


# -- generators, one per variant ---------------------------------------------------------------


def _kick(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = rng.choice(["808", "punchy", "acoustic", "hard"], p=[0.25, 0.3, 0.25, 0.2])
    long_tail = {"808": (0.3, 1.2), "punchy": (0.08, 0.3), "acoustic": (0.1, 0.35)}
    lo, hi = long_tail.get(variant, (0.12, 0.5))
    tau = rng.uniform(lo, hi)
    t = _t(min(2.0, tau * 5 + 0.1), sr)
    f_end = rng.uniform(38, 75)
    f_start = f_end + rng.uniform(60, 350)
    tau_p = rng.uniform(0.008, 0.06)
    f = f_end + (f_start - f_end) * _decay(t, tau_p)
    body = np.sin(_sweep(t, f, sr)) * _decay(t, tau) * _attack(t, 0.002)
    click = _band(_noise(rng, len(t)), sr, rng.uniform(1000, 4000)) * _decay(t, 0.003)
    x = body + rng.uniform(0.05, 0.6) * click
    if variant == "acoustic":
        thump = _band(_noise(rng, len(t), 1.0), sr, 40, rng.uniform(150, 400)) * _decay(t, 0.05)
        beater = _resonant_band(_noise(rng, len(t)), sr, rng.uniform(2000, 5000), 3)
        x = x + rng.uniform(0.3, 0.8) * thump + 0.2 * beater * _decay(t, 0.006)
    if variant == "hard":
        x = np.tanh(x * rng.uniform(3, 12))
    return x, str(variant)


def _snare(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = rng.choice(["acoustic", "808", "909", "rimshot", "brush", "noise", "tight"],
                         p=[.22, .14, .18, .1, .08, .16, .12])  # fmt: skip
    t = _t(rng.uniform(0.35, 0.9), sr)
    f0 = rng.uniform(150, 260)
    pitch = f0 * (1 + rng.uniform(0, 0.6) * _decay(t, 0.01))
    tone = np.sin(_sweep(t, pitch, sr)) + rng.uniform(0.2, 0.7) * np.sin(_sweep(t, pitch * 1.6, sr))
    tone *= _decay(t, rng.uniform(0.03, 0.09))
    noise_tau = rng.uniform(0.06, 0.25) if variant != "brush" else rng.uniform(0.15, 0.3)
    wires = _band(_noise(rng, len(t)), sr, rng.uniform(800, 3000), rng.uniform(6000, 14000))
    wires *= _decay(t, noise_tau) * _attack(t, 0.001 if variant != "brush" else 0.02)
    if variant == "tight":  # a short, snappy electronic snare
        tone *= _decay(t, 0.02)
        wires *= _decay(t, rng.uniform(0.02, 0.06))
    mix = {"acoustic": 0.9, "808": 0.6, "909": 1.2, "rimshot": 0.7, "brush": 1.5,
           "noise": rng.uniform(2.0, 5.0), "tight": 1.0}[str(variant)]  # fmt: skip
    x = rng.uniform(0.4, 1.0) * tone + mix * wires
    if variant == "rimshot":
        crack = _resonant_band(_noise(rng, len(t)), sr, rng.uniform(1500, 4000), 6)
        x = x + 1.5 * _norm(crack) * _decay(t, 0.01)
    return x, str(variant)


def _hihat(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = rng.choice(["closed", "open", "pedal"], p=[0.5, 0.35, 0.15])
    span = {"closed": (0.015, 0.07), "open": (0.18, 0.6), "pedal": (0.03, 0.09)}[str(variant)]
    tau = rng.uniform(*span)
    t = _t(min(2.0, tau * 6 + 0.05), sr)
    metal = _metal(rng, t, rng.uniform(300, 550))
    noise = _noise(rng, len(t))
    x = rng.uniform(0.2, 1.0) * _norm(metal) + rng.uniform(0.3, 1.0) * noise
    x = _band(x, sr, rng.uniform(5000, 9000), rng.uniform(12000, 20000), order=3)
    env = _decay(t, tau) * _attack(t, 0.001 if variant != "pedal" else 0.006)
    return x * env, str(variant)


def _tom(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = rng.choice(["acoustic", "electronic", "floor"], p=[0.45, 0.35, 0.2])
    f0 = rng.uniform(60, 110) if variant == "floor" else rng.uniform(85, 300)
    tau = rng.uniform(0.2, 0.7)
    t = _t(min(2.0, tau * 5), sr)
    drop = rng.uniform(0.05, 0.5) if variant == "electronic" else rng.uniform(0.02, 0.15)
    f = f0 * (1 + drop * _decay(t, rng.uniform(0.02, 0.1)))
    x = np.sin(_sweep(t, f, sr)) * _decay(t, tau)
    if variant != "electronic":
        for ratio in (1.59, 2.14, 2.65):
            x += rng.uniform(0.05, 0.3) * np.sin(_sweep(t, f * ratio, sr)) * _decay(t, tau / 3)
    stick = _band(_noise(rng, len(t)), sr, 800, 6000) * _decay(t, rng.uniform(0.005, 0.02))
    return x + rng.uniform(0.1, 0.5) * stick, str(variant)


def _cymbal(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = rng.choice(["crash", "ride", "splash", "china", "808"], p=[0.35, 0.3, 0.15, 0.1, 0.1])
    span = {"crash": (0.5, 1.4), "ride": (0.5, 1.2), "splash": (0.2, 0.45), "china": (0.4, 1.0),
            "808": (0.4, 1.2)}[str(variant)]  # fmt: skip
    tau = rng.uniform(*span)
    t = _t(2.0, sr)
    if variant == "808":
        x = _band(_norm(_metal(rng, t, rng.uniform(300, 500))) + 0.5 * _noise(rng, len(t)), sr,
                  rng.uniform(3000, 6000), 16000)  # fmt: skip
    else:
        n = int(rng.integers(25, 45))
        freqs = np.exp(rng.uniform(np.log(400), np.log(14000), n))
        x = _norm(_partials(rng, t, freqs, tau * rng.uniform(0.3, 1.2, n)))
        wash = _band(_noise(rng, len(t)), sr, rng.uniform(2500, 6000), rng.uniform(12000, 18000))
        x = rng.uniform(0.2, 0.7) * x + rng.uniform(0.8, 1.5) * _norm(wash)
        if variant == "ride":
            bell = _partials(rng, t, rng.uniform(700, 1000) * np.array([1, 2.4, 3.9]),
                             np.full(3, 0.4))  # fmt: skip
            x = x + rng.uniform(0.3, 1.0) * bell + _noise(rng, len(t)) * _decay(t, 0.01)
        if variant == "china":
            x = np.tanh(2.5 * x)
    bloom = _attack(t, rng.uniform(0.001, 0.03))
    return x * _decay(t, tau) * bloom, str(variant)


def _clap(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = rng.choice(["808", "acoustic", "layered"], p=[0.4, 0.35, 0.25])
    t = _t(rng.uniform(0.3, 0.8), sr)
    x = np.zeros_like(t)
    bursts = int(rng.integers(3, 6))
    gap = rng.uniform(0.006, 0.015)
    src = _band(_noise(rng, len(t)), sr, rng.uniform(600, 1200), rng.uniform(2500, 6000))
    for i in range(bursts):
        start = i * gap * rng.uniform(0.8, 1.2)
        tt = np.clip(t - start, 0, None)
        x += src * (t >= start) * _decay(tt, 0.004) * rng.uniform(0.6, 1.0)
    tail_start = bursts * gap
    tt = np.clip(t - tail_start, 0, None)
    x += src * (t >= tail_start) * _decay(tt, rng.uniform(0.04, 0.2)) * rng.uniform(0.5, 1.0)
    if variant == "layered":
        x = x + 0.5 * _band(_noise(rng, len(t)), sr, 3000) * _decay(t, 0.05)
    return x, str(variant)


def _percussion(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = str(rng.choice(["cowbell", "clave", "woodblock", "shaker", "conga", "tambourine",
                              "triangle"]))  # fmt: skip
    t = _t(rng.uniform(0.3, 1.2), sr)
    if variant == "cowbell":
        f = rng.uniform(500, 600)
        x = np.sign(np.sin(2 * np.pi * f * t)) + np.sign(np.sin(2 * np.pi * f * 1.48 * t))
        x = _resonant_band(x, sr, f * 1.6, 2) * _decay(t, rng.uniform(0.05, 0.25))
    elif variant == "clave":
        x = np.sin(2 * np.pi * rng.uniform(1800, 2800) * t) * _decay(t, rng.uniform(0.01, 0.04))
    elif variant == "woodblock":
        f = rng.uniform(500, 1500)
        x = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(2 * np.pi * f * 2.7 * t)
        x = x * _decay(t, rng.uniform(0.015, 0.05))
    elif variant == "shaker":
        n_hits = int(rng.integers(1, 3))
        x = np.zeros_like(t)
        for i in range(n_hits):
            tt = t - i * rng.uniform(0.08, 0.15)
            x += (
                (tt >= 0)
                * _attack(np.clip(tt, 0, None), rng.uniform(0.01, 0.04))
                * _decay(np.clip(tt, 0, None), rng.uniform(0.03, 0.1))
            )
        x = x * _band(_noise(rng, len(t)), sr, rng.uniform(3000, 7000))
    elif variant == "conga":
        f = rng.uniform(180, 450)
        x = np.sin(_sweep(t, f * (1 + 0.1 * _decay(t, 0.01)), sr)) * _decay(
            t, rng.uniform(0.08, 0.3)
        )
        x = x + rng.uniform(0.1, 0.8) * _band(_noise(rng, len(t)), sr, 1000) * _decay(t, 0.008)
    elif variant == "tambourine":
        x = np.zeros_like(t)
        jingle = _band(_metal(rng, t, rng.uniform(1200, 2200)), sr, 5000)
        for i in range(int(rng.integers(2, 5))):
            tt = t - i * rng.uniform(0.01, 0.03)
            x += (tt >= 0) * _decay(np.clip(tt, 0, None), rng.uniform(0.05, 0.15))
        x = x * jingle
    else:  # triangle
        f = rng.uniform(3000, 6000)
        x = _partials(rng, t, f * np.array([1, 2.76, 5.4]), np.full(3, rng.uniform(0.3, 1.0)))
    return x, variant


def _tonal(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = str(rng.choice(["bass", "pluck", "pad", "bell", "keys", "lead"]))
    midi = {"bass": (28, 48), "pluck": (48, 76), "pad": (45, 70), "bell": (60, 90),
            "keys": (48, 80), "lead": (55, 84)}[variant]  # fmt: skip
    f0 = 440 * 2 ** ((rng.integers(*midi) - 69) / 12)
    dur = rng.uniform(0.6, 2.0)
    t = _t(dur, sr)
    n_harm = max(1, min(40, int(12000 / f0)))
    h = np.arange(1, n_harm + 1)
    if variant in ("bass", "lead", "pad"):
        shape = rng.choice(["saw", "square"])
        amps = 1 / h if shape == "saw" else (h % 2) / h
        voices = 3 if variant == "pad" else 1
        x = np.zeros_like(t)
        for _ in range(voices):
            detune = f0 * (1 + rng.uniform(-0.008, 0.008))
            ph = rng.uniform(0, 2 * np.pi)
            x += (amps[:, None] * np.sin(2 * np.pi * detune * h[:, None] * t + ph)).sum(0)
        x = _band(x, sr, 0, rng.uniform(f0 * 2, min(f0 * 20, 12000)))
        att = {"bass": 0.005, "lead": 0.02, "pad": rng.uniform(0.2, 0.6)}[variant]
        rel = np.clip((dur - t) / 0.05, 0, 1)
        x = x * _attack(t, att) * rel
    elif variant == "pluck":
        x = _partials(rng, t, f0 * h, rng.uniform(0.2, 0.8) / h**0.7, amps=1 / h)
    elif variant == "bell":
        ratio = rng.choice([1.4, 2.0, 3.5, 1.41])
        index = rng.uniform(1, 6) * _decay(t, rng.uniform(0.2, 1.0))
        x = np.sin(2 * np.pi * f0 * t + index * np.sin(2 * np.pi * f0 * ratio * t))
        x = x * _decay(t, rng.uniform(0.5, 1.5))
    else:  # keys: electric-piano-ish FM with a tine
        x = np.sin(2 * np.pi * f0 * t + 1.5 * _decay(t, 0.3) * np.sin(2 * np.pi * f0 * t))
        x = (x + 0.3 * np.sin(2 * np.pi * f0 * 7 * t) * _decay(t, 0.05)) * _decay(t, 0.8)
    return x, variant


def _fx(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    variant = str(rng.choice(["riser", "downlifter", "sweep", "zap", "impact", "glitch",
                              "reverse"]))  # fmt: skip
    t = _t(rng.uniform(0.8, 2.0), sr)
    n = len(t)
    frac = t / t[-1]
    if variant in ("riser", "downlifter", "sweep"):
        lo, hi = rng.uniform(200, 800), rng.uniform(3000, 12000)
        if variant == "riser":
            path = lambda p: lo * (hi / lo) ** p  # noqa: E731
            env = frac**2
        elif variant == "downlifter":
            path = lambda p: hi * (lo / hi) ** p  # noqa: E731
            env = 1 - frac
        else:
            path = lambda p: lo * (hi / lo) ** (0.5 - 0.5 * np.cos(2 * np.pi * p))  # noqa: E731
            env = np.sin(np.pi * frac)
        x = _moving_band(_noise(rng, n), sr, path, rng.uniform(2, 8)) * env
        if rng.random() < 0.5:
            f = np.array([path(p) for p in frac]) / 8
            x = _norm(x) + 0.3 * np.sin(_sweep(t, f, sr)) * env
    elif variant == "zap":
        f = rng.uniform(2000, 6000) * _decay(t, rng.uniform(0.02, 0.1)) + rng.uniform(80, 300)
        x = np.sign(np.sin(_sweep(t, f, sr))) * _decay(t, rng.uniform(0.05, 0.3))
    elif variant == "impact":
        boom = np.sin(_sweep(t, 30 + 60 * _decay(t, 0.1), sr)) * _decay(t, 0.6)
        x = boom + _band(_noise(rng, n, 1.0), sr, 100, 5000) * _decay(t, rng.uniform(0.2, 0.8))
    elif variant == "glitch":
        x = np.zeros(n)
        pos = 0
        while pos < n:
            length = int(rng.uniform(0.01, 0.12) * sr)
            seg = np.sin(2 * np.pi * rng.uniform(100, 4000) * t[:length])
            if rng.random() < 0.5:
                seg = np.sign(seg) * rng.random()
            x[pos : pos + length] = seg[: n - pos] * (rng.random() < 0.7)
            pos += length
    else:  # reverse: a reversed cymbal or pad swell
        x, _ = _cymbal(rng, sr)
        x = x[::-1][-n:]
    return x, variant


_GENERATORS = {
    "kick": _kick, "snare": _snare, "hihat": _hihat, "tom": _tom, "cymbal": _cymbal,
    "clap": _clap, "percussion": _percussion, "tonal": _tonal, "fx": _fx,
}  # fmt: skip


# -- the post chain ----------------------------------------------------------------------------


def _reverb_ir(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    t = _t(seconds, sr)
    ir = _noise(rng, len(t)) * _decay(t, seconds / 6.9)  # -60 dB at `seconds`
    return _band(ir, sr, 100, rng.uniform(3000, 12000))


def _convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    n = len(x) + len(ir) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[:n]


def _post(rng: np.random.Generator, x: np.ndarray, sr: int, cls: str) -> tuple[np.ndarray, float]:
    """Colour, saturate, add a room, go stereo and add leading silence. Returns (audio
    [n, channels], leading silence in seconds)."""
    x = _norm(x)
    if rng.random() < 0.3:  # tilt the spectrum
        x = _band(x, sr, rng.uniform(20, 200) if cls not in ("kick", "tom") else 20,
                  rng.uniform(6000, 20000))  # fmt: skip
    r = rng.random()
    if r < 0.15:
        x = np.tanh(x * rng.uniform(1.5, 6))
    elif r < 0.2:
        levels = 2 ** int(rng.integers(4, 9))
        x = np.round(x * levels) / levels
    if rng.random() < 0.4:  # a room or plate
        ir = _reverb_ir(rng, sr, rng.uniform(0.2, 1.5))
        wet = _norm(_convolve(x, ir))
        x = np.concatenate([x, np.zeros(len(wet) - len(x))]) + rng.uniform(0.05, 0.35) * wet
    if rng.random() < 0.2:  # a quiet noise floor, as in old recordings
        x = x + rng.uniform(0.002, 0.02) * _noise(rng, len(x), rng.uniform(0, 2))
    x = _norm(x) * rng.uniform(0.3, 0.99)
    fade = min(len(x), int(0.005 * sr))
    x[len(x) - fade :] *= np.linspace(1, 0, fade)
    lead = rng.uniform(0, 0.03) if rng.random() < 0.4 else 0.0
    x = np.concatenate([np.zeros(int(lead * sr)), x])
    if rng.random() < 0.5:
        delay = int(rng.uniform(0, 0.0015) * sr)
        right = np.concatenate([np.zeros(delay), x[: len(x) - delay]])
        pan = rng.uniform(-0.3, 0.3)
        x = np.stack([x * (1 - pan), right * (1 + pan)], 1) / (1 + abs(pan))
    else:
        x = x[:, None]
    return np.clip(x, -1, 1).astype(np.float32), lead


def synthesize(cls: str, seed: int, sample_rate: int | None = None) -> Sound:
    """One sound of class `cls`, the same for the same (cls, seed).

    sample_rate: the output rate; None draws one of SAMPLE_RATES (the sound is made at 48 kHz
    and resampled).
    """
    if cls not in _GENERATORS:
        raise ValueError(f"unknown class {cls!r} (known: {', '.join(CLASSES)})")
    rng = np.random.default_rng([seed, CLASSES.index(cls)])
    x, variant = _GENERATORS[cls](rng, _SYNTH_RATE)
    audio, lead = _post(rng, x, _SYNTH_RATE, cls)
    rate = int(rng.choice(SAMPLE_RATES)) if sample_rate is None else int(sample_rate)
    return Sound(_resample(audio, _SYNTH_RATE, rate), rate, cls, variant, [lead])


def _resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return audio
    import soxr

    # A square wave's Gibbs ripple can overshoot after resampling: keep within [-1, 1].
    return np.clip(soxr.resample(audio, sr_in, sr_out), -1, 1).astype(np.float32)


def make_loop(seed: int, bpm: float | None = None, bars: int = 1) -> Sound:
    """A drum loop of one-shots on a 16-step grid; `onsets` holds each hit's start time."""
    rng = np.random.default_rng([seed, 99])
    bpm = float(bpm or rng.uniform(85, 140))
    step = 60 / bpm / 4
    kit = {c: synthesize(c, int(rng.integers(1 << 30)), _SYNTH_RATE) for c in
           ("kick", "snare", "hihat", "clap", "percussion")}  # fmt: skip
    patterns = {
        "kick": [0, 8] + ([10] if rng.random() < 0.5 else []) + ([6] if rng.random() < 0.3 else []),
        "snare": [4, 12],
        "hihat": list(range(0, 16, 2 if rng.random() < 0.5 else 1)),
        "percussion": [int(s) for s in rng.choice(16, size=2, replace=False)],
    }
    if rng.random() < 0.4:
        patterns["clap"] = patterns.pop("snare")
    n = int(round(bars * 16 * step * _SYNTH_RATE))
    out = np.zeros((n, 2), np.float32)
    onsets = set()
    for cls, steps in patterns.items():
        hit = kit[cls].audio
        lead = int(kit[cls].onsets[0] * _SYNTH_RATE)
        hit = hit[lead:]
        if cls in ("hihat", "percussion"):
            hit = hit[: int(step * 2 * _SYNTH_RATE)] * 0.6
        for bar in range(bars):
            for s in steps:
                start = int(round((bar * 16 + s) * step * _SYNTH_RATE))
                seg = hit[: n - start]
                out[start : start + len(seg)] += seg  # broadcasts mono to both channels
                onsets.add(round(start / _SYNTH_RATE, 6))
    out = out / max(1.0, float(np.abs(out).max()) / 0.95)
    rate = int(rng.choice([44100, 48000]))
    return Sound(_resample(out, _SYNTH_RATE, rate), rate, "loop", f"{bpm:.0f}bpm", sorted(onsets))


def write_sound(path: Path, sound: Sound, subtype: str = "PCM_16") -> None:
    import soundfile as sf

    from sampletool.fileio import atomic_write

    fmt = {".flac": "FLAC", ".aiff": "AIFF", ".aif": "AIFF", ".ogg": "OGG"}.get(
        path.suffix.lower(), "WAV"
    )
    if fmt in ("FLAC", "OGG") or (fmt == "AIFF" and subtype == "FLOAT"):
        subtype = {"FLAC": "PCM_16", "OGG": "VORBIS", "AIFF": "PCM_24"}[fmt]
    atomic_write(
        path,
        lambda p: sf.write(p, sound.audio, sound.sample_rate, subtype=subtype, format=fmt),
    )


def write_class_folders(
    folder: str | os.PathLike[str],
    per_class: int,
    seed: int = 0,
    classes: tuple[str, ...] = CLASSES,
    formats: tuple[str, ...] = (".wav",),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Write `per_class` one-shots of each class to folder/<class>/<class>_<n>.<ext>.

    Sample rates and bit depths vary per file; files already there are kept (a rerun after an
    interruption only writes what is missing). Returns the paths, in order.

    Raises:
        Cancelled: `cancel` was set; its `partial` is the paths written so far.
    """
    folder = Path(folder)
    rng = np.random.default_rng([seed, 7])
    paths: list[Path] = []
    total = per_class * len(classes)
    for ci, cls in enumerate(classes):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            if cancel is not None and cancel.is_set():
                raise Cancelled("writing the samples was cancelled", partial=paths)
            ext = formats[int(rng.integers(len(formats)))]
            subtype = SUBTYPES[int(rng.integers(len(SUBTYPES)))]
            path = folder / cls / f"{cls}_{i:04d}{ext}"
            if not path.exists():
                write_sound(path, synthesize(cls, seed * 1_000_003 + i), subtype)
            paths.append(path)
            if progress is not None:
                progress(ci * per_class + i + 1, total, path.name)
    return paths


DEMO_MARKER = ".sampletool-demo"


class DemoLibraryError(SampleToolError):
    """The demo library cannot be written there."""


def write_demo_library(
    folder: str | os.PathLike[str],
    per_class: int = 30,
    loops: int = 8,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """A demo library: class folders of one-shots in several formats, plus a Loops folder.

    The folder must be new, empty, or an earlier (maybe interrupted) demo library, which is
    completed; anything else is refused so no one's files get mixed with synthetic ones.

    Raises:
        DemoLibraryError: the folder holds other files.
        OSError: the folder cannot be created or written.
        Cancelled: `cancel` was set; its `partial` is the paths written so far (a later call
            completes the library).
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DemoLibraryError(f"{folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / DEMO_MARKER).exists():
        raise DemoLibraryError(f"{folder} is not empty; choose a new or empty folder for the demo")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(
        "Synthesised by Sample Tool (sampletool demo); safe to delete.\n", encoding="utf-8"
    )
    total = per_class * len(CLASSES) + loops

    def one_shot_progress(done: int, _total: int, name: str) -> None:
        if progress is not None:
            progress(done, total, name)

    paths = write_class_folders(
        folder, per_class, seed, formats=(".wav", ".wav", ".wav", ".flac", ".aiff"),
        progress=one_shot_progress, cancel=cancel,
    )  # fmt: skip
    (folder / "Loops").mkdir(parents=True, exist_ok=True)
    for i in range(loops):
        if cancel is not None and cancel.is_set():
            raise Cancelled("writing the demo library was cancelled", partial=paths)
        loop = make_loop(seed * 1000 + i, bars=2)
        path = folder / "Loops" / f"loop_{i:02d}_{loop.variant}.wav"
        if not path.exists():
            write_sound(path, loop, "PCM_24")
        paths.append(path)
        if progress is not None:
            progress(len(paths), total, path.name)
    return paths
