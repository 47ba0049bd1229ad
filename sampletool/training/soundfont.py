"""SoundFont 2 files as training material: their raw samples, and notes rendered from their
presets as a sampler plays them.

    for name, rate, pcm in soundfont_samples(path): ...          # every sample as stored
    font = SoundFont(path)
    for preset in font.presets():                                  # bank, program, name
        audio = font.render(preset, key=60, velocity=100, hold=0.5, sample_rate=22050)

The renderer follows the SF2 2.04 generator model far enough for training data: preset and
instrument zones chosen by key and velocity range, the sample's root key and tuning, loops
(sampleModes 1 and 3), and the volume envelope (delay, attack, hold, decay, sustain, release)
with the preset level adding to the instrument level. Filters, modulators and LFOs are left out;
pitch follows by linear interpolation, which is what most hardware samplers did.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Generator numbers (SF2 2.04, section 8.1.2).
_DELAY, _ATTACK, _HOLD, _DECAY, _SUSTAIN, _RELEASE = 33, 34, 35, 36, 37, 38
_INSTRUMENT, _KEY_RANGE, _VEL_RANGE, _ATTENUATION = 41, 43, 44, 48
_COARSE, _FINE, _SAMPLE_ID, _SAMPLE_MODES, _SCALE_TUNING, _ROOT_KEY = 51, 52, 53, 54, 56, 58
_RANGES = (_KEY_RANGE, _VEL_RANGE)
# Generators whose preset-level value adds to the instrument's (the ones the renderer uses).
_ADDITIVE = (_DELAY, _ATTACK, _HOLD, _DECAY, _SUSTAIN, _RELEASE, _ATTENUATION, _COARSE, _FINE)
_DEFAULTS = {_DELAY: -12000, _ATTACK: -12000, _HOLD: -12000, _DECAY: -12000, _SUSTAIN: 0,
             _RELEASE: -12000, _ATTENUATION: 0, _COARSE: 0, _FINE: 0, _SAMPLE_MODES: 0,
             _SCALE_TUNING: 100, _ROOT_KEY: -1}  # fmt: skip


def _riff_chunks(data: bytes | mmap.mmap, start: int, end: int):
    while start + 8 <= end:
        cid, size = struct.unpack_from("<4sI", data, start)
        yield cid, start + 8, size
        start += 8 + size + (size & 1)


def _open(path: Path) -> tuple[bytes | mmap.mmap, dict]:
    with open(path, "rb") as f:
        # Memory-mapped: a GM SoundFont can be half a gigabyte.
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError(f"{path} is not a SoundFont 2 file")
    where = {}
    for cid, off, size in _riff_chunks(data, 12, len(data)):
        if cid == b"LIST":
            for c2, o2, s2 in _riff_chunks(data, off + 4, off + size):
                where[(data[off : off + 4], c2)] = (o2, s2)
    return data, where


@dataclass(frozen=True)
class Sample:
    name: str
    start: int
    end: int
    loop_start: int
    loop_end: int
    rate: int
    root: int
    correction: int  # cents
    kind: int  # 1 mono, 2 right, 4 left, 8 linked; bit 15 ROM


def _samples(data, where) -> list[Sample]:
    off, size = where[(b"pdta", b"shdr")]
    out = []
    for i in range(size // 46 - 1):  # the last header is the terminal "EOS"
        name, start, end, ls, le, rate, pitch, corr, _link, kind = struct.unpack_from(
            "<20sIIIIIBbHH", data, off + 46 * i
        )
        out.append(Sample(name.split(b"\0")[0].decode("latin-1").strip(), start, end, ls, le,
                          rate, pitch, corr, kind))  # fmt: skip
    return out


def soundfont_samples(path: Path):
    """(name, sample rate, int16 samples) for each sample of an SF2 file (mono samples and the
    left half of stereo pairs; ROM samples skipped)."""
    data, where = _open(path)
    smpl_off, smpl_size = where[(b"sdta", b"smpl")]
    pcm = np.frombuffer(data, "<i2", smpl_size // 2, smpl_off)
    for s in _samples(data, where):
        if s.kind & 0x8000 or s.kind == 2 or not 0 <= s.start < s.end <= len(pcm):
            continue
        yield s.name, s.rate, pcm[s.start : s.end]


@dataclass(frozen=True)
class Preset:
    name: str
    bank: int
    program: int
    index: int  # in the file's preset list


@dataclass
class _Zone:
    gens: dict[int, int]
    key: tuple[int, int]
    vel: tuple[int, int]


def _zones(data, where, list_chunk: bytes, bag_chunk: bytes, gen_chunk: bytes, entry: int):
    """[(name, [zone, ...])] for each preset (phdr) or instrument (inst); the first zone of a
    list is its global zone when it names no instrument / sample (kept as `global`)."""
    if not all((b"pdta", c) in where for c in (list_chunk, bag_chunk, gen_chunk)):
        return []  # a file of bare samples, no presets
    hdr_off, hdr_size = where[(b"pdta", list_chunk)]
    bag_off, _ = where[(b"pdta", bag_chunk)]
    gen_off, gen_size = where[(b"pdta", gen_chunk)]
    count = hdr_size // entry
    bag_index = [struct.unpack_from("<H", data, hdr_off + entry * i + entry - 2 - (
        12 if list_chunk == b"phdr" else 0))[0] for i in range(count)]  # fmt: skip
    terminal = _INSTRUMENT if list_chunk == b"phdr" else _SAMPLE_ID
    out = []
    for i in range(count - 1):
        name = bytes(data[hdr_off + entry * i : hdr_off + entry * i + 20])
        zones = []
        for b in range(bag_index[i], bag_index[i + 1]):
            g0 = struct.unpack_from("<H", data, bag_off + 4 * b)[0]
            g1 = struct.unpack_from("<H", data, bag_off + 4 * (b + 1))[0]
            gens, key, vel = {}, (0, 127), (0, 127)
            for g in range(g0, min(g1, gen_size // 4)):
                oper = struct.unpack_from("<H", data, gen_off + 4 * g)[0]
                if oper in _RANGES:
                    lo, hi = struct.unpack_from("<BB", data, gen_off + 4 * g + 2)
                    if oper == _KEY_RANGE:
                        key = (lo, hi)
                    else:
                        vel = (lo, hi)
                elif oper in (_INSTRUMENT, _SAMPLE_ID):
                    gens[oper] = struct.unpack_from("<H", data, gen_off + 4 * g + 2)[0]
                else:
                    gens[oper] = struct.unpack_from("<h", data, gen_off + 4 * g + 2)[0]
            zones.append(_Zone(gens, key, vel))
        glob = None
        if zones and terminal not in zones[0].gens:
            glob = zones.pop(0)
        out.append((name.split(b"\0")[0].decode("latin-1").strip(), glob, zones))
    return out


def _seconds(timecents: int) -> float:
    return float(2.0 ** (max(-12000, min(8000, timecents)) / 1200.0))


class SoundFont:
    """A SoundFont 2 file, read in place (memory-mapped)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._data, where = _open(self.path)
        smpl_off, smpl_size = where[(b"sdta", b"smpl")]
        self._pcm = np.frombuffer(self._data, "<i2", smpl_size // 2, smpl_off)
        self._samples = _samples(self._data, where)
        self._presets = _zones(self._data, where, b"phdr", b"pbag", b"pgen", 38)
        self._instruments = _zones(self._data, where, b"inst", b"ibag", b"igen", 22)
        hdr_off = where.get((b"pdta", b"phdr"), (0, 0))[0]
        self._banks = [struct.unpack_from("<HH", self._data, hdr_off + 38 * i + 20)
                       for i in range(len(self._presets))]  # fmt: skip

    def presets(self) -> list[Preset]:
        """Every preset, sorted by bank and program (bank 128 holds the drum kits)."""
        found = [Preset(name, bank, program, i) for i, ((name, _g, _z), (program, bank))
                 in enumerate(zip(self._presets, self._banks, strict=True))]  # fmt: skip
        return sorted(found, key=lambda p: (p.bank, p.program, p.index))

    def key_range(self, preset: Preset) -> tuple[int, int]:
        """The lowest and highest key any of the preset's sample zones plays."""
        lo, hi = 127, 0
        for _pz, iz, _g, _ig in self._voices(preset):
            lo, hi = min(lo, iz.key[0]), max(hi, iz.key[1])
        return (lo, hi) if lo <= hi else (60, 60)

    def _voices(self, preset: Preset):
        _name, pglob, pzones = self._presets[preset.index]
        for pz in pzones:
            inst = pz.gens.get(_INSTRUMENT)
            if inst is None or inst >= len(self._instruments):
                continue
            _iname, iglob, izones = self._instruments[inst]
            for iz in izones:
                sid = iz.gens.get(_SAMPLE_ID)
                if sid is None or sid >= len(self._samples):
                    continue
                yield pz, iz, pglob, iglob

    def render(
        self, preset: Preset, key: int, velocity: int, hold: float, sample_rate: int,
        release_cap: float = 2.0,
    ) -> np.ndarray:  # fmt: skip
        """One note: `key` held for `hold` seconds at `velocity`, then released; float32 mono
        at `sample_rate` (all zeros when no zone of the preset plays that key and velocity)."""
        voices = []
        for pz, iz, pglob, iglob in self._voices(preset):
            if not (pz.key[0] <= key <= pz.key[1] and iz.key[0] <= key <= iz.key[1]):
                continue
            if not (pz.vel[0] <= velocity <= pz.vel[1] and iz.vel[0] <= velocity <= iz.vel[1]):
                continue
            sample = self._samples[iz.gens[_SAMPLE_ID]]
            if sample.kind & 0x8000 or sample.kind == 2:  # ROM, or a stereo pair's right half
                continue
            gens = dict(_DEFAULTS) | (iglob.gens if iglob else {}) | iz.gens
            for g in _ADDITIVE:
                gens[g] += (pglob.gens.get(g, 0) if pglob else 0) + pz.gens.get(g, 0)
            voices.append(self._voice(sample, gens, key, velocity, hold, sample_rate,
                                      release_cap))  # fmt: skip
        voices = [v for v in voices if len(v)]
        if not voices:
            return np.zeros(0, np.float32)
        out = np.zeros(max(len(v) for v in voices), np.float32)
        for v in voices:
            out[: len(v)] += v
        return out

    def _voice(self, s: Sample, gens: dict[int, int], key: int, velocity: int, hold: float,
               sr: int, release_cap: float) -> np.ndarray:  # fmt: skip
        if not 0 <= s.start < s.end <= len(self._pcm) or s.rate <= 0:
            return np.zeros(0, np.float32)
        pcm = self._pcm[s.start : s.end].astype(np.float32) / 32768.0
        root = gens[_ROOT_KEY] if 0 <= gens[_ROOT_KEY] <= 127 else s.root
        root = root if 0 <= root <= 127 else 60
        cents = (key - root) * gens[_SCALE_TUNING] + 100 * gens[_COARSE] + gens[_FINE]
        step = s.rate / sr * 2.0 ** ((cents + s.correction) / 1200.0)  # source frames per output
        delay, attack, hold_s = (_seconds(gens[g]) for g in (_DELAY, _ATTACK, _HOLD))
        decay, release = _seconds(gens[_DECAY]), min(_seconds(gens[_RELEASE]), release_cap)
        n = int((hold + release) * sr)
        pos = np.arange(n, dtype=np.float64) * step
        looped = gens[_SAMPLE_MODES] & 1 and s.start <= s.loop_start < s.loop_end <= s.end
        if looped:
            ls, le = s.loop_start - s.start, s.loop_end - s.start
            over = pos >= le
            pos[over] = ls + np.mod(pos[over] - ls, le - ls)
        else:
            pos = pos[pos < len(pcm) - 1]
        i = pos.astype(np.int64)
        frac = (pos - i).astype(np.float32)
        x = pcm[i] * (1 - frac) + pcm[np.minimum(i + 1, len(pcm) - 1)] * frac
        # The volume envelope in dB: attack is linear in amplitude, decay and release fall
        # 100 dB over their time (so a sustain of S cB is reached after decay * S / 1000).
        t = np.arange(len(x)) / sr - delay
        sustain_db = -min(max(gens[_SUSTAIN], 0), 1440) / 10.0
        after = np.maximum(t - attack - hold_s, 0.0)
        db = np.maximum(-100.0 * after / decay, sustain_db)
        env = np.where(t < attack, np.clip(t / max(attack, 1e-4), 0, 1), 10 ** (db / 20))
        env[t < 0] = 0.0
        off = int(hold * sr)
        if off < len(env):
            level = env[off - 1] if off > 0 else 0.0
            rel = np.arange(len(env) - off) / sr
            env[off:] = level * 10 ** (-100.0 * rel / release / 20)
        gain = 10 ** (-max(gens[_ATTENUATION], 0) / 200.0) * (velocity / 127.0) ** 2
        return (x * env * gain).astype(np.float32)
