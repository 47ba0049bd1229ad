"""Gravis UltraSound patches (.pat): parsing, the sample a key picks, and rendered notes, on
patch files written here (the freepats set is not needed)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sampletool.training.gus import GusPatch

SR = 22050
_16BIT, _UNSIGNED, _LOOP, _PINGPONG, _SUSTAIN, _ENVELOPE = 1, 2, 4, 8, 32, 64
# The GF1 envelope most patches carry: straight up to 246, held, a release at rate 0x8D
# (range 2, increment 13: 246 offsets in 246 * 16 * 8**2 / 13 / 44100 = 0.44 s) down to 0.
PIANO_RATES, PIANO_OFFSETS = bytes([63, 63, 63, 0x8D, 63, 63]), bytes([246, 246, 246, 0, 0, 0])
PIANO_RELEASE = 246 * 16 * 64 / 13 / 44100


def _key_freq(key: float) -> float:
    return 440.0 * 2 ** ((key - 69) / 12)


def _sample(pcm: bytes, modes: int, rate: int, low: float, high: float, root: float,
            loop: tuple[int, int] = (0, 0), rates: bytes = bytes([63] * 6),
            offsets: bytes = bytes([246] * 6), scale: tuple[int, int] = (60, 1024),
            name: bytes = b"wave", size: int | None = None) -> bytes:  # fmt: skip
    """One sample: its 96-byte header (loop points in bytes, frequencies in Hz) and its PCM."""
    header = struct.pack(
        "<7sBIIIHIIIhB6s6s3s3sBhH36x", name, 0, len(pcm) if size is None else size, *loop, rate,
        round(low * 1000), round(high * 1000), round(root * 1000), 512, 7, rates, offsets,
        b"\0" * 3, b"\0" * 3, modes, *scale,
    )  # fmt: skip
    assert len(header) == 96
    return header + pcm


def _write_pat(path, samples: list[bytes], name: bytes = b"Test\0junk",
               magic: bytes = b"GF1PATCH110\0") -> bytes:  # fmt: skip
    """A patch of one instrument of one layer holding `samples`."""
    body = b"".join(samples)
    header = struct.pack("<12s10s60sBBBHHI36x", magic, b"ID#000002\0", b"written by a test",
                         1, 14, 0, len(samples), 127, len(body))  # fmt: skip
    instrument = struct.pack("<H16sIB40x", 0, name, len(body) + 47, 1)
    layer = struct.pack("<BBIB40x", 0, 0, len(body), len(samples))
    assert (len(header), len(instrument), len(layer)) == (129, 63, 47)
    data = header + instrument + layer + body
    path.write_bytes(data)
    return data


def _sine(freq: float, frames: int, rate: int = SR) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(frames) / rate)


# A 16-bit signed sine at 262.5 Hz (84 frames a cycle, so 100 cycles loop cleanly) for keys
# 48-83 with the GF1 envelope, and an 8-bit unsigned decaying 1050 Hz one-shot for keys 84-96.
LOW_ROOT, HIGH_ROOT = SR / 84, SR / 21


def _two_samples(path, **kw) -> bytes:
    low = (0.5 * _sine(LOW_ROOT, 8400) * 32767).astype("<i2")
    high = 128 + np.round(100 * _sine(HIGH_ROOT, 4410) * np.linspace(1, 0.2, 4410))
    return _write_pat(path, [
        _sample(low.tobytes(), _16BIT | _LOOP | _SUSTAIN | _ENVELOPE, SR, _key_freq(48),
                _key_freq(83.5), LOW_ROOT, loop=(2 * 4200, 2 * 8400), rates=PIANO_RATES,
                offsets=PIANO_OFFSETS, name=b"low"),
        _sample(high.astype("u1").tobytes(), _UNSIGNED, SR, _key_freq(83.5), _key_freq(96),
                HIGH_ROOT, name=b"high"),
    ], **kw)  # fmt: skip


def _pitch(x: np.ndarray) -> float:
    """The strongest frequency of a steady tone (zero-padded FFT)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    return float(np.fft.rfftfreq(8 * len(x), 1 / SR)[spectrum.argmax()])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_patch_fields_and_key_range(tmp_path):
    _two_samples(tmp_path / "tone.pat")
    patch = GusPatch(tmp_path / "tone.pat")
    assert patch.name == "Test"  # the bytes after the name's NUL are junk
    low, high = patch.samples
    assert (low.name, high.name) == ("low", "high")
    assert low.low_freq == pytest.approx(_key_freq(48), abs=1e-3)
    assert low.root_freq == pytest.approx(262.5, abs=1e-3)
    assert low.root_key == pytest.approx(60.06, abs=0.01)
    assert (low.rate, low.loop_start, low.loop_end, low.looping) == (SR, 4200, 8400, True)
    assert low.envelope_rates == tuple(PIANO_RATES)
    assert low.envelope_offsets == tuple(PIANO_OFFSETS)
    assert (low.scale_frequency, low.scale_factor) == (60, 1024)
    assert low.pcm.dtype == np.float32 and len(low.pcm) == 8400  # 16-bit: two bytes a frame
    assert np.abs(low.pcm - 0.5 * _sine(LOW_ROOT, 8400)).max() < 1e-4
    assert high.looping is False and len(high.pcm) == 4410 and high.pcm.dtype == np.float32
    assert abs(float(high.pcm.mean())) < 0.01 and 0.7 < np.abs(high.pcm).max() <= 1  # centred
    assert patch.key_range() == (48, 96)

    _write_pat(tmp_path / "nameless.pat", [_sample(b"\0\0" * 8, _16BIT, SR, 100, 200, 150)],
               name=b"\0")  # fmt: skip
    assert GusPatch(tmp_path / "nameless.pat").name == "nameless"  # the file's stem


def test_unsigned_16_bit_and_signed_8_bit_are_centred(tmp_path):
    tone = _sine(LOW_ROOT, 840)
    _write_pat(tmp_path / "pcm.pat", [
        _sample((32768 + 16000 * tone).astype("<u2").tobytes(), _16BIT | _UNSIGNED, SR, 100,
                400, LOW_ROOT),
        _sample((100 * tone).astype("i1").tobytes(), 0, SR, 400, 800, LOW_ROOT),
    ])  # fmt: skip
    u16, s8 = GusPatch(tmp_path / "pcm.pat").samples
    assert np.abs(u16.pcm - 16000 / 32768 * tone).max() < 1e-4
    assert np.abs(s8.pcm - np.trunc(100 * tone) / 128).max() < 1e-6


def test_render_picks_the_sample_of_the_key_at_its_pitch(tmp_path):
    _two_samples(tmp_path / "tone.pat")
    patch = GusPatch(tmp_path / "tone.pat")
    low, high = patch.samples
    assert patch.sample_for(60) is low and patch.sample_for(83) is low
    assert patch.sample_for(84) is high and patch.sample_for(96) is high
    assert patch.sample_for(20) is low and patch.sample_for(120) is high  # nearest root
    for key in (48, 60, 67, 72, 83):  # the looped sine, pitched up and down
        note = patch.render(key, 100, hold=0.3, sample_rate=SR)
        assert _pitch(note[1000:6000]) == pytest.approx(_key_freq(key), rel=0.005)
    for key in (84, 90):  # the 8-bit one-shot
        note = patch.render(key, 100, hold=0.3, sample_rate=SR)
        assert _pitch(note[:2000]) == pytest.approx(_key_freq(key), rel=0.005)


def test_looped_note_sustains_for_hold_then_releases(tmp_path):
    _two_samples(tmp_path / "tone.pat")
    patch = GusPatch(tmp_path / "tone.pat")
    hold = 0.6  # over twice the 8400 frames of the sample: the loop carries it
    note = patch.render(60, 127, hold=hold, sample_rate=SR)
    assert note.dtype == np.float32 and note.ndim == 1
    assert len(note) == int((hold + PIANO_RELEASE) * SR)  # the release from the envelope
    assert np.abs(note[:10]).max() < 0.01  # the envelope's attack: up 92 dB in 1.4 ms
    steady = [_rms(note[int(t * SR) : int((t + 0.1) * SR)]) for t in (0.05, 0.25, 0.45)]
    assert max(steady) / min(steady) < 1.05 and steady[0] > 0.2  # held at one level
    off = int(hold * SR)
    after = _rms(note[off + int(0.1 * SR) : off + int(0.15 * SR)])
    assert after < steady[0] / 5  # ~21 dB down 0.1 s into a 96 dB, 0.44 s release
    assert np.abs(note[-100:]).max() < 1e-3 * np.abs(note).max()
    assert np.abs(note).max() <= 1.0
    capped = patch.render(60, 127, hold=hold, sample_rate=SR, release_cap=0.2)
    assert len(capped) == int((hold + 0.2) * SR)
    assert np.allclose(capped[: off - 1], note[: off - 1])


def test_one_shot_plays_to_its_end_and_is_cut_by_its_release(tmp_path):
    _two_samples(tmp_path / "tone.pat")
    patch = GusPatch(tmp_path / "tone.pat")
    step = _key_freq(84) / HIGH_ROOT  # source frames per output frame
    note = patch.render(84, 127, hold=0.5, sample_rate=SR)
    assert len(note) == pytest.approx(4410 / step, abs=3)  # the sample's end, before hold
    short = patch.render(84, 127, hold=0.05, sample_rate=SR, release_cap=0.1)
    assert len(short) == int((0.05 + 0.1) * SR)  # hold + release (0.3 s, capped) < the sample
    assert np.abs(short[-50:]).max() < 1e-3 * np.abs(short).max()


def test_velocity_scales_the_level(tmp_path):
    _two_samples(tmp_path / "tone.pat")
    patch = GusPatch(tmp_path / "tone.pat")
    loud = patch.render(60, 127, 0.3, SR)
    soft = patch.render(60, 64, 0.3, SR)
    assert np.abs(soft).max() / np.abs(loud).max() == pytest.approx((64 / 127) ** 2, rel=0.01)
    assert not patch.render(60, 0, 0.3, SR).any()


def test_bidirectional_and_fixed_pitch_samples(tmp_path):
    ramp = np.linspace(-0.5, 0.5, 200)
    _write_pat(tmp_path / "odd.pat", [
        _sample((ramp * 32767).astype("<i2").tobytes(), _16BIT | _LOOP | _PINGPONG, SR, 10,
                10000, SR / 400, loop=(0, 400), scale=(60, 0)),
    ])  # fmt: skip
    patch = GusPatch(tmp_path / "odd.pat")
    a, b = patch.render(40, 127, 0.2, SR), patch.render(80, 127, 0.2, SR)
    assert np.array_equal(a, b)  # scale factor 0: every key plays at the scale key's pitch
    # back and forth over the ramp: a triangle of period 400 source frames, at key 60's pitch
    assert _pitch(a[500:4000]) == pytest.approx(_key_freq(60), rel=0.01)
    assert np.abs(a).max() <= 0.5 + 1e-4


def test_not_a_patch_or_truncated_raises(tmp_path):
    data = _two_samples(tmp_path / "tone.pat")
    for name, bad in [("empty", b""), ("header", data[:100]), ("sample_header", data[:300]),
                      ("pcm", data[:-10]), ("magic", b"GF1PATCH111" + data[11:]),
                      ("id", data[:12] + b"ID#000003\0" + data[22:]),
                      ("riff", b"RIFF\0\0\0\0WAVEfmt " + data[16:])]:  # fmt: skip
        (tmp_path / f"{name}.pat").write_bytes(bad)
        with pytest.raises(ValueError, match="not a Gravis|truncated"):
            GusPatch(tmp_path / f"{name}.pat")
    _write_pat(tmp_path / "old.pat", [_sample(b"\0\1" * 50, _16BIT, SR, 100, 200, 150)],
               magic=b"GF1PATCH100\0")  # fmt: skip
    assert len(GusPatch(tmp_path / "old.pat").samples) == 1
    huge = _sample(b"\0" * 64, 0, SR, 100, 200, 150, size=0xFFFFFFFF)  # claims 4 GB of PCM
    _write_pat(tmp_path / "huge.pat", [huge])
    with pytest.raises(ValueError, match="truncated"):
        GusPatch(tmp_path / "huge.pat")


def test_hostile_samples_are_skipped_or_played_without_their_loop(tmp_path):
    tone = (0.5 * _sine(LOW_ROOT, 840) * 32767).astype("<i2").tobytes()
    _write_pat(tmp_path / "hostile.pat", [
        _sample(tone, _16BIT | _LOOP | _ENVELOPE, SR, 100, 300, LOW_ROOT, loop=(0, 10**9),
                rates=PIANO_RATES, offsets=PIANO_OFFSETS),         # loop past the data
        _sample(tone, _16BIT | _LOOP, SR, 300, 600, LOW_ROOT, loop=(1000, 500)),  # backwards
        _sample(tone, _16BIT, 0, 600, 900, LOW_ROOT),               # no sample rate: skipped
        _sample(tone, _16BIT, SR, 900, 1200, 0),                    # no root: skipped
        _sample(b"\1", _16BIT, SR, 1200, 2400, LOW_ROOT),           # under a frame: skipped
        _sample(tone, _16BIT, SR, 2400, 4800, 0.001),               # absurd root: very short
        _sample(tone, _16BIT | _LOOP, 65535, 4800, 9600, 1e6, loop=(0, 2), scale=(999, 60000)),
    ])  # fmt: skip
    patch = GusPatch(tmp_path / "hostile.pat")
    assert len(patch.samples) == 4
    for key in range(0, 128, 7):
        note = patch.render(key, 100, 0.2, SR)
        assert note.dtype == np.float32 and len(note) <= int((0.2 + 1.5) * SR)
        assert np.isfinite(note).all() and np.abs(note).max() <= 1.0
    step = _key_freq(55) / LOW_ROOT  # the first sample, played to its end without its loop
    assert len(patch.render(55, 100, 0.5, SR)) == pytest.approx(839 / step, abs=1)
    assert len(patch.render(60, 100, 0.0, SR)) <= int(0.3 * SR)

    _write_pat(tmp_path / "unusable.pat", [_sample(tone, _16BIT, 0, 100, 200, 150)])
    nothing = GusPatch(tmp_path / "unusable.pat")
    assert nothing.samples == [] and nothing.key_range() == (60, 60)
    out = nothing.render(60, 100, 0.5, SR)
    assert out.dtype == np.float32 and len(out) == 0
