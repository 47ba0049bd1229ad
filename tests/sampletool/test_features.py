"""The log-mel frontend and its inverse (mel -> linear magnitude -> Griffin-Lim audio)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sampletool.features import (
    AudioConfig,
    features_to_audio,
    griffin_lim,
    log_mel,
    mel_filterbank,
    mel_to_linear,
)
from tests.helpers import noise_burst, tone

SR = 16000
N = 32000
CFG = AudioConfig()


def band_centres(cfg: AudioConfig = CFG) -> np.ndarray:
    """Centre (apex) frequency of every mel band, read off the filterbank on a ~1 Hz grid."""
    fine = AudioConfig(**{**cfg.to_dict(), "n_fft": 16384})
    fb = mel_filterbank(fine)
    return fb.argmax(axis=1) * (cfg.sample_rate / fine.n_fft)


def stft_mag(x: torch.Tensor) -> torch.Tensor:
    """|STFT| with the frontend's parameters, written out independently of the module."""
    spec = torch.stft(
        x,
        n_fft=1024,
        hop_length=256,
        window=torch.hann_window(1024),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.abs()


def spectral_convergence(target: torch.Tensor, audio: torch.Tensor) -> np.ndarray:
    """||target - |STFT(audio)||| / ||target|| per clip, over the target's frames."""
    mag = stft_mag(audio)[..., : target.shape[-1]]
    err = torch.linalg.norm((mag - target).flatten(1), dim=1)
    return (err / torch.linalg.norm(target.flatten(1), dim=1)).numpy()


def peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[spectrum.argmax()])


def chirp(seconds: float = 2.0, f0: float = 100.0, f1: float = 4000.0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.5 * np.sin(phase)).astype(np.float32)


def mixed_batch() -> np.ndarray:
    """Three different 2 s clips: a decaying tone, a drum-ish noise burst, a chirp."""
    burst = np.zeros(N, np.float32)
    burst[8000 : 8000 + 4800] = noise_burst(0.3)
    return np.stack([tone(440, 2.0, decay=3), burst, chirp()])


# --- AudioConfig -------------------------------------------------------------------------------


def test_config_defaults_and_round_trip():
    assert CFG.num_samples == 32000
    assert CFG.num_frames == 125
    assert AudioConfig.from_dict(CFG.to_dict()) == CFG
    other = AudioConfig(sample_rate=22050, seconds=1.0, n_mels=64)
    assert AudioConfig.from_dict({**other.to_dict(), "unknown": 1}) == other
    assert other.num_samples == 22050 and other.num_frames == 22050 // 256


@pytest.mark.parametrize(
    "kw",
    [
        {"sample_rate": 0},
        {"sample_rate": -16000},
        {"seconds": 0.0},
        {"seconds": -1.0},
        {"hop_length": 0},
        {"n_fft": 8},
        {"n_mels": 0},
        {"top_db": 0.0},
        {"top_db": -80.0},
        {"n_fft": 64, "n_mels": 34},  # more bands than the 33 FFT bins
    ],
)
def test_config_rejects_bad_values(kw):
    with pytest.raises(ValueError):
        AudioConfig(**kw)


def test_config_accepts_the_edge_of_valid():
    assert AudioConfig(n_fft=64, n_mels=33).n_mels == 33
    assert AudioConfig(n_fft=16, n_mels=1).n_fft == 16


# --- log_mel -----------------------------------------------------------------------------------


def test_shape_dtype_and_range():
    feats = log_mel(mixed_batch())
    assert isinstance(feats, torch.Tensor)
    assert feats.shape == (3, 128, 125) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    assert feats.min() >= 0 and feats.max() <= 1
    assert torch.equal(feats.amax(dim=(1, 2)), torch.ones(3))  # each clip's loudest bin is 1
    assert (feats < 1).float().mean() > 0.99  # ... and it is only the loudest


def test_one_clip_and_tensor_input():
    y = tone(440, 2.0)
    single = log_mel(y)
    assert single.shape == (1, 128, 125)
    assert torch.equal(log_mel(torch.from_numpy(y)), single)
    assert torch.equal(log_mel(y.astype(np.float64)), single)
    with pytest.raises(ValueError):
        log_mel(np.zeros((1, 1, N), np.float32))


def test_batch_equals_per_clip():
    batch = mixed_batch()
    together = log_mel(batch)
    for i, clip in enumerate(batch):
        torch.testing.assert_close(together[i], log_mel(clip)[0], atol=1e-5, rtol=0)


def test_silent_clip_is_all_zeros():
    batch = np.stack([np.zeros(N, np.float32), tone(440, 2.0), np.full(N, 1e-9, np.float32)])
    feats = log_mel(batch)
    assert not torch.isnan(feats).any()
    assert torch.equal(feats[0], torch.zeros(128, 125))
    assert torch.equal(feats[2], torch.zeros(128, 125))  # below the silence threshold
    assert feats[1].max() == 1  # a silent neighbour changes nothing for the others
    torch.testing.assert_close(feats[1], log_mel(batch[1])[0], atol=1e-5, rtol=0)


def test_nan_and_inf_input_are_treated_as_zeros():
    y = tone(440, 2.0)
    bad = y.copy()
    idx = [10, 5000, 5001, 20000, 31999]
    bad[idx] = [np.nan, np.inf, -np.inf, np.nan, np.nan]
    zeroed = y.copy()
    zeroed[idx] = 0
    feats = log_mel(bad)
    assert torch.isfinite(feats).all()
    assert torch.equal(feats, log_mel(zeroed))
    all_nan = log_mel(np.full(N, np.nan, np.float32))
    assert torch.equal(all_nan, torch.zeros(1, 128, 125))


@pytest.mark.parametrize("freq", [150, 440, 1000, 2500, 3333, 5000, 7000])
def test_a_tone_peaks_in_the_band_nearest_it(freq):
    centres = band_centres()
    feats = log_mel(tone(freq, 2.0))[0]
    loudest = int(feats.mean(dim=1).argmax())
    assert loudest == int(np.abs(centres - freq).argmin())


def test_band_centres_rise_across_the_spectrum():
    centres = band_centres()
    assert centres.shape == (128,)
    assert np.all(np.diff(centres) > 0)
    assert 0 < centres[0] < 50 and 7500 < centres[-1] < 8000


@pytest.mark.parametrize(("db", "expected"), [(-20, 0.75), (-40, 0.5), (-60, 0.25)])
def test_values_are_db_below_the_peak_over_top_db(db, expected):
    # One second of a tone, then the same tone `db` quieter: its band reads 1 + db / 80 there.
    quiet = 10 ** (db / 20)
    y = np.concatenate([tone(1000, 1.0), quiet * tone(1000, 1.0)]).astype(np.float32)
    feats = log_mel(y)[0]
    band = int(feats[:, 10:50].mean(dim=1).argmax())
    assert feats[band, 10:50].mean() == pytest.approx(1.0, abs=0.01)
    assert feats[band, 70:124].mean() == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("db", [-80, -90, -120])
def test_bins_top_db_down_are_zero(db):
    quiet = 10 ** (db / 20)
    y = np.concatenate([tone(1000, 1.0), quiet * tone(1000, 1.0)]).astype(np.float32)
    feats = log_mel(y)[0]
    band = int(feats[:, 10:50].mean(dim=1).argmax())
    if db == -80:
        assert feats[band, 70:124].max() < 0.01
    else:
        assert torch.all(feats[:, 70:124] == 0)


def test_filterbank_shape_and_normalisation():
    fb = mel_filterbank(CFG)
    assert fb.shape == (128, 513) and fb.dtype == np.float32
    assert np.all(fb >= 0)
    assert np.all(fb.max(axis=1) > 0)  # no empty band
    # Slaney normalisation: each triangle has unit area in Hz (measured on a ~1 Hz grid).
    fine = mel_filterbank(AudioConfig(n_fft=16384))
    areas = fine.sum(axis=1) * (SR / 16384)
    np.testing.assert_allclose(areas, 1.0, rtol=0.01)


def test_matches_librosa():
    import librosa  # a dev dependency: the reference this frontend must match

    np.testing.assert_allclose(
        mel_filterbank(CFG), librosa.filters.mel(sr=SR, n_fft=1024, n_mels=128), atol=1e-6
    )
    rng = np.random.default_rng(0)
    clips = [*mixed_batch(), (0.1 * rng.standard_normal(N)).astype(np.float32)]
    feats = log_mel(np.stack(clips)).numpy()
    for clip, ours in zip(clips, feats, strict=True):
        mel = librosa.feature.melspectrogram(y=clip, sr=SR, n_fft=1024, hop_length=256, n_mels=128)
        ref = librosa.power_to_db(mel, ref=np.max, top_db=80) / 80 + 1
        np.testing.assert_allclose(ours, ref[:, :125], atol=1e-4, rtol=0)


# --- inverse -----------------------------------------------------------------------------------


def test_mel_to_linear_shape():
    feats = log_mel(mixed_batch())
    mag = mel_to_linear(feats)
    assert mag.shape == (3, 513, 125) and mag.dtype == torch.float32
    assert torch.isfinite(mag).all() and (mag >= 0).all()
    assert mel_to_linear(feats[0]).shape == (1, 513, 125)
    assert torch.equal(mel_to_linear(torch.zeros(2, 128, 125)), torch.zeros(2, 513, 125))


def test_mel_to_linear_puts_a_tone_back_in_its_bins():
    mag = mel_to_linear(log_mel(tone(1000, 2.0)))[0]
    peak_bin = int(mag.mean(dim=1).argmax())
    assert abs(peak_bin * SR / 1024 - 1000) <= 50


def test_features_to_audio_shape_and_finite():
    feats = log_mel(mixed_batch()[:2])
    audio = features_to_audio(feats, n_iter=4)
    assert audio.shape == (2, N) and audio.dtype == torch.float32
    assert torch.isfinite(audio).all()
    assert (audio.abs().amax(dim=1) > 0).all()
    assert features_to_audio(feats[0], n_iter=1).shape == (1, N)


def test_decoded_tones_keep_their_frequency():
    freqs = [440, 2500, 5000]
    centres = band_centres()
    audio = features_to_audio(log_mel(np.stack([tone(f, 2.0) for f in freqs])))
    assert torch.isfinite(audio).all()
    for f, clip in zip(freqs, audio.numpy(), strict=True):
        k = int(np.abs(centres - f).argmin())
        band_width = (centres[k + 1] - centres[k - 1]) / 2  # centre spacing around the tone
        assert abs(peak_hz(clip[2000:-2000]) - f) <= band_width


def test_more_iterations_converge_further():
    feats = log_mel(mixed_batch())
    target = mel_to_linear(feats)
    few = spectral_convergence(target, features_to_audio(feats, n_iter=2))
    many = spectral_convergence(target, features_to_audio(feats, n_iter=32))
    assert np.all(many < 0.85 * few), (few, many)


def consistent_magnitudes() -> torch.Tensor:
    """|STFT| of real signals: magnitudes that some audio has exactly."""
    rng = np.random.default_rng(1)
    y = np.stack(
        [tone(700, 2.0, decay=2) + tone(1900, 2.0), (0.2 * rng.standard_normal(N)).astype("f4")]
    )
    return stft_mag(torch.from_numpy(y))


def test_griffin_lim_approaches_an_exact_magnitude():
    mag = consistent_magnitudes()
    assert mag.shape == (2, 513, 126)
    audio = griffin_lim(mag, n_iter=32)
    assert audio.shape == (2, N) and torch.isfinite(audio).all()
    few = spectral_convergence(mag, griffin_lim(mag, n_iter=2))
    many = spectral_convergence(mag, audio)
    assert np.all(many < 0.6 * few), (few, many)


def test_momentum_converges_faster_than_classic_griffin_lim():
    mag = consistent_magnitudes()
    fast = spectral_convergence(mag, griffin_lim(mag, n_iter=16, momentum=0.99))
    classic = spectral_convergence(mag, griffin_lim(mag, n_iter=16, momentum=0.0))
    assert np.all(fast < 0.9 * classic), (fast, classic)


def test_seed_makes_decoding_reproducible():
    feats = log_mel(tone(440, 2.0, decay=2))
    a = features_to_audio(feats, n_iter=4, seed=3)
    assert torch.equal(a, features_to_audio(feats, n_iter=4, seed=3))
    assert not torch.allclose(a, features_to_audio(feats, n_iter=4, seed=4))
    fresh = [features_to_audio(feats, n_iter=1, seed=None) for _ in range(2)]
    assert not torch.allclose(fresh[0], fresh[1])


def test_silent_features_decode_to_silence():
    audio = features_to_audio(torch.zeros(2, 128, 125), n_iter=4)
    assert audio.shape == (2, N)
    assert torch.equal(audio, torch.zeros(2, N))


def test_griffin_lim_rejects_negative_iterations():
    with pytest.raises(ValueError):
        griffin_lim(torch.zeros(1, 513, 125), n_iter=-1)
