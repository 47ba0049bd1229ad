"""Gravis UltraSound patches (.pat, the GF1 format of the `freepats` set that TiMidity plays) as
training material: their samples, and notes rendered from them as a GUS plays them.

    patch = GusPatch(path)
    lo, hi = patch.key_range()                                     # keys the samples cover
    audio = patch.render(key=60, velocity=100, hold=0.5, sample_rate=22050)

A patch is a 129-byte header, then per instrument a 63-byte header, per layer a 47-byte header
and per sample a 96-byte header followed by its PCM (8 or 16 bit, signed or unsigned, all
little-endian). Each sample covers a frequency range and was recorded at a root frequency (both
in milli-Hz in the file). The renderer picks the sample whose range holds the note (the nearest
root when none does), follows the key by linear interpolation (as scaled by the sample's
scale_frequency and scale_factor: 1024 tracks the keyboard, 0 plays every key at one pitch),
loops between the loop points (forward; bidirectional and backward as the GF1 plays them) and
shapes the level with the GF1 volume envelope where TiMidity keeps it (a looped sample with the
envelope mode bit). Tremolo, vibrato, panning, the fine tuning field and the fractional loop
points are left out.

The GF1 envelope is six (rate, offset) stages on a logarithmic volume: 16 offset steps to 6 dB,
so the 0..255 offsets span 96 dB. Stages 0-2 run while the key is down (the last holding its
level: the sustain), 3-5 after it is let go. A rate byte is a 6-bit increment and a 2-bit range:
the volume moves `increment` sixteenths of an offset step every 8**range frames at 44.1 kHz.

A drum patch is played by TiMidity at its drum key, pitched by that key's frequency over the
root frequency like any other patch: `GusSample.root_key` is the key at which a sample plays at
its recorded pitch.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_HEADER, _INSTRUMENT, _LAYER = 129, 63, 47
_MAGICS = (b"GF1PATCH110\0", b"GF1PATCH100\0")
_ID = b"ID#000002\0"
# wave name, fractions, data size, loop start, loop end (bytes), sample rate, low, high and root
# frequency (milli-Hz), tune, balance, envelope rates, offsets, tremolo, vibrato, modes, scale
# frequency, scale factor, reserved: 96 bytes.
_SAMPLE = struct.Struct("<7sBIIIHIIIhB6s6s3s3sBhH36x")
# Mode bits.
_16BIT, _UNSIGNED, _LOOP, _PINGPONG, _REVERSE, _SUSTAIN, _ENVELOPE = 1, 2, 4, 8, 16, 32, 64
_DB_PER_OFFSET = 96.0 / 256  # the GF1 volume is logarithmic: 16 offset steps to 6 dB
_GF1_RATE = 44100.0  # the card's frame rate with 14 voices, which the envelope rates count in
_ATTACK = 0.003  # seconds: the linear attack of a note with no envelope
_RELEASE = 0.3  # seconds: the release of a note with no envelope
_RELEASE_DB = 96.0  # how far a release falls (the GF1's whole volume range)


def _key(freq: float) -> float:
    return 69.0 + 12.0 * math.log2(max(freq, 1e-3) / 440.0)


def _freq(key: float) -> float:
    return 440.0 * 2.0 ** ((key - 69.0) / 12.0)


@dataclass(frozen=True, eq=False)
class GusSample:
    name: str
    low_freq: float  # Hz: the range of notes this sample plays
    high_freq: float
    root_freq: float  # Hz: the pitch it was recorded at
    rate: int  # frames per second
    loop_start: int  # frames
    loop_end: int
    looping: bool  # mode bit 2
    modes: int  # the raw mode byte (bits: 16-bit, unsigned, loop, bidirectional, backward,
    #             sustain, envelope, clamped release)
    envelope_rates: tuple[int, ...]  # six raw bytes each
    envelope_offsets: tuple[int, ...]
    scale_frequency: int  # the key around which scale_factor bends the keyboard (60 mostly)
    scale_factor: int  # 1024: one semitone per key; 0: every key at the same pitch
    pcm: np.ndarray  # float32 in [-1, 1]

    @property
    def root_key(self) -> float:
        """The (fractional) MIDI key of the root frequency."""
        return _key(self.root_freq)


def _pcm(raw: bytes, modes: int) -> np.ndarray:
    if modes & _16BIT:
        x = np.frombuffer(raw, "<u2" if modes & _UNSIGNED else "<i2", len(raw) // 2)
        centre, scale = (32768.0 if modes & _UNSIGNED else 0.0), 32768.0
    else:
        x = np.frombuffer(raw, "u1" if modes & _UNSIGNED else "i1")
        centre, scale = (128.0 if modes & _UNSIGNED else 0.0), 128.0
    return ((x.astype(np.float32) - centre) / scale).astype(np.float32)


def _read(path: Path, data: bytes) -> tuple[str, list[GusSample]]:
    """The instrument name and every usable sample of every instrument and layer."""
    base = 128 if data[:1] == b"\0" and data[128:137] == b"GF1PATCH1" else 0  # MacBinary
    head = data[base : base + 22]
    if head[:12] not in _MAGICS or head[12:22] != _ID:
        raise ValueError(f"{path} is not a Gravis UltraSound patch")

    def need(off: int, size: int) -> None:
        if off + size > len(data):
            raise ValueError(f"{path} is truncated ({len(data)} bytes, needs {off + size})")

    need(base, _HEADER)
    off = base + _HEADER
    name, samples = "", []
    for _i in range(max(data[base + 82], 1)):  # instruments (to some patch makers 0 means 1)
        need(off, _INSTRUMENT)
        if not name:
            name = data[off + 2 : off + 18].split(b"\0")[0].decode("latin-1").strip()
        layers = data[off + 22]
        off += _INSTRUMENT
        for _l in range(max(layers, 1)):
            need(off, _LAYER)
            count = data[off + 6]
            off += _LAYER
            for _s in range(count):
                need(off, _SAMPLE.size)
                (wave, _frac, size, ls, le, rate, lo, hi, root, _tune, _bal, env_rates,
                 env_offsets, _trem, _vib, modes, scale_freq, scale_factor) = _SAMPLE.unpack_from(
                    data, off)  # fmt: skip
                off += _SAMPLE.size
                need(off, size)
                raw = data[off : off + size]
                off += size
                width = 2 if modes & _16BIT else 1
                if rate == 0 or root == 0 or size < 2 * width:
                    continue  # nothing a note could be made of
                samples.append(GusSample(
                    wave.split(b"\0")[0].decode("latin-1").strip(), lo / 1000.0, hi / 1000.0,
                    root / 1000.0, rate, ls // width, le // width, bool(modes & _LOOP), modes,
                    tuple(env_rates), tuple(env_offsets), scale_freq, scale_factor,
                    _pcm(raw, modes)))  # fmt: skip
    return name, samples


def _ramp(rate: int, steps: float) -> float:
    """Seconds the GF1 volume ramp at `rate` takes to move `steps` envelope offsets."""
    increment = rate & 0x3F
    if increment == 0:
        return math.inf if steps else 0.0
    return abs(steps) * 16 * 8 ** (rate >> 6) / increment / _GF1_RATE


def _uses_envelope(s: GusSample, looped: bool) -> bool:
    """Whether the envelope shapes the note, by TiMidity's rules: only a looped sample keeps it
    (there is nothing to sustain otherwise), and not one whose rates are all the fastest (the
    patch makers' "no envelope") or that ends its release high."""
    return bool(looped and s.modes & _ENVELOPE and any(r != 63 for r in s.envelope_rates)
                and s.envelope_offsets[5] < 100)  # fmt: skip


class GusPatch:
    """A Gravis UltraSound patch file, read whole (patches are a few megabytes at most)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        name, self.samples = _read(self.path, self.path.read_bytes())
        self.name = name if any(c.isalnum() for c in name) else self.path.stem

    def key_range(self) -> tuple[int, int]:
        """The lowest and highest MIDI key the samples' frequency ranges cover (within a cent:
        patch makers write the top of a range as 8371.199 Hz for key 120's 8372.018 Hz)."""
        lo, hi = 127, 0
        for s in self.samples:
            if 0 < s.low_freq <= s.high_freq:
                lo = min(lo, max(0, math.ceil(_key(s.low_freq) - 0.01)))
                hi = max(hi, min(127, math.floor(_key(s.high_freq) + 0.01)))
        return (lo, hi) if lo <= hi else (60, 60)

    def sample_for(self, key: int) -> GusSample | None:
        """The sample that plays `key`: the first whose frequency range holds it, else the one
        with the nearest root (None when the patch has no usable sample)."""
        f = _freq(key)
        for s in self.samples:
            if s.low_freq <= f <= s.high_freq:
                return s
        return min(self.samples, key=lambda s: abs(_key(s.root_freq) - key), default=None)

    def render(
        self, key: int, velocity: int, hold: float, sample_rate: int, release_cap: float = 1.5
    ) -> np.ndarray:
        """One note: `key` held for `hold` seconds at `velocity`, then released; float32 mono
        at `sample_rate`. A looped sample sounds for `hold` plus its release (from the envelope,
        else 0.3 s; at most `release_cap`), a one-shot until its end or that time, whichever is
        first. Empty when the patch has no usable sample."""
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, not {sample_rate}")
        s = self.sample_for(key)
        if s is None:
            return np.zeros(0, np.float32)
        pcm, ls, le = s.pcm, s.loop_start, s.loop_end
        if s.modes & _REVERSE:  # the GF1 plays a backward sample reversed, loop and all
            pcm, ls, le = pcm[::-1], len(pcm) - le, len(pcm) - ls
        looped = s.looping and 0 <= ls < le <= len(pcm)
        enveloped = _uses_envelope(s, looped)

        scale_freq = s.scale_frequency if 0 <= s.scale_frequency <= 127 else 60
        factor = s.scale_factor if 0 <= s.scale_factor <= 2048 else 1024
        f_note = _freq(scale_freq + (key - scale_freq) * factor / 1024.0)
        step = s.rate / sample_rate * f_note / s.root_freq  # source frames per output frame
        hold = max(float(hold), 0.0)
        sr, off = sample_rate, int(hold * sample_rate)

        # The envelope while the key is down, as offsets (0..255) over time, and the release.
        if enveloped:
            times, levels = [0.0], [0.0]
            for rate, target in zip(s.envelope_rates[:3], s.envelope_offsets[:3], strict=True):
                times.append(times[-1] + min(_ramp(rate, target - levels[-1]), 1e6))
                levels.append(float(target))
            at_off = float(np.interp(hold, times, levels))
            release, level = 0.0, at_off
            for rate, target in zip(s.envelope_rates[3:], s.envelope_offsets[3:], strict=True):
                release += _ramp(rate, target - level)
                level = target
            release = release if math.isfinite(release) else _RELEASE
            release = max(release, 0.005)
        else:
            release = _RELEASE
        release = min(release, max(release_cap, 0.005))
        n = int((hold + release) * sr)

        pos = np.arange(n, dtype=np.float64) * step
        if looped:
            # The loop runs through the release when the envelope fades it (the GF1 way);
            # without one the note leaves the loop when the key is let go and plays the tail.
            stop = n if enveloped else min(off, n)
            head, span = pos[:stop], le - ls
            over = head >= le
            if s.modes & _PINGPONG:
                u = np.mod(head[over] - ls, 2 * span)
                head[over] = ls + np.where(u < span, u, 2 * span - u)
            else:
                head[over] = ls + np.mod(head[over] - ls, span)
            if stop < n:
                start = head[-1] + step if stop else 0.0
                tail = start + step * np.arange(n - stop)
                pos = np.concatenate([head, tail[tail < len(pcm) - 1]])
        else:
            pos = pos[pos < len(pcm) - 1]
        i = pos.astype(np.int64)
        frac = (pos - i).astype(np.float32)
        x = pcm[i] * (1 - frac) + pcm[np.minimum(i + 1, len(pcm) - 1)] * frac

        t = np.arange(len(x)) / sr
        if enveloped:
            db = (np.interp(t, times, levels) - 255.0) * _DB_PER_OFFSET
            env = 10 ** (db / 20)
        else:
            env = np.clip(t / _ATTACK, 0.0, 1.0)
        if off < len(env):
            level = env[off - 1] if off > 0 else 0.0
            rel = np.arange(len(env) - off) / sr
            env[off:] = level * 10 ** (-_RELEASE_DB * rel / release / 20)
        gain = (min(max(velocity, 0), 127) / 127.0) ** 2
        return (x * env * gain).astype(np.float32)
