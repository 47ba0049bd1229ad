"""The log-mel frontend the models see, and its inverse back to audio (Griffin-Lim).

Features follow SampleVAE: a power mel spectrogram in dB relative to each clip's own maximum,
floored at -top_db and scaled to [0, 1] (1 is the clip's loudest bin, 0 is top_db below it).
Because every clip is normalised to its own peak, decoded features carry no absolute level;
decoded audio is therefore peak-normalised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch

_AMIN = 1e-10  # power below this counts as silence
_SUB_BATCH = 32


@dataclass(frozen=True)
class AudioConfig:
    """Audio parameters shared by a model and its frontend; stored in every model bundle."""

    sample_rate: int = 16000
    seconds: float = 2.0
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 128
    top_db: float = 80.0
    f_min: float = 0.0
    f_max: float | None = None

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.seconds <= 0 or self.hop_length <= 0:
            raise ValueError("sample_rate, seconds and hop_length must be positive")
        if self.n_fft < 16 or self.n_mels < 1 or self.top_db <= 0:
            raise ValueError("n_fft must be >= 16, n_mels >= 1 and top_db > 0")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"n_mels ({self.n_mels}) exceeds the FFT bins ({self.n_fft // 2 + 1})")

    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.seconds)

    @property
    def num_frames(self) -> int:
        """Frames per clip: one per hop (2 s at 16 kHz with hop 256 gives 125)."""
        return self.num_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AudioConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    # Slaney's auditory-toolbox scale (librosa's default): linear below 1 kHz, log above.
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(
        f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels
    )


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=8)
def mel_filterbank(cfg: AudioConfig) -> np.ndarray:
    """Slaney-normalised triangular mel filters, float32 [n_mels, n_fft // 2 + 1]."""
    f_max = cfg.f_max if cfg.f_max is not None else cfg.sample_rate / 2
    fft_freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(cfg.f_min), _hz_to_mel(f_max), cfg.n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return weights.astype(np.float32)


class _Kernels:
    """Per-device tensors (window, filterbank, its pseudo-inverse), built once."""

    def __init__(self, cfg: AudioConfig, device: torch.device) -> None:
        fb = mel_filterbank(cfg)
        self.window = torch.hann_window(cfg.n_fft, device=device)
        self.fb = torch.from_numpy(fb).to(device)
        self.fb_pinv = torch.from_numpy(np.linalg.pinv(fb).astype(np.float32)).to(device)

    @staticmethod
    def get(cfg: AudioConfig, device: torch.device) -> _Kernels:
        return _kernels(cfg, str(device))


@lru_cache(maxsize=16)
def _kernels(cfg: AudioConfig, device: str) -> _Kernels:
    return _Kernels(cfg, torch.device(device))


def _stft(x: torch.Tensor, cfg: AudioConfig, k: _Kernels) -> torch.Tensor:
    return torch.stft(
        x,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=k.window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )


def log_mel(audio: torch.Tensor | np.ndarray, cfg: AudioConfig | None = None) -> torch.Tensor:
    """Log-mel features of a batch of clips.

    Args:
        audio: Float tensor [B, N] (or [N]) of mono audio at `cfg.sample_rate`.
        cfg: audio parameters; the defaults give 128 mel bands x 125 frames for 2 s at 16 kHz.

    Returns:
        Float tensor [B, n_mels, num_frames] in [0, 1], on the input's device. Each clip is in
        dB relative to its own maximum, floored at -top_db, then mapped to [0, 1]. A silent clip
        gives all zeros.
    """
    cfg = cfg or AudioConfig()
    x = torch.as_tensor(audio, dtype=torch.float32)
    if x.dim() == 1:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"audio must be [B, N], got shape {tuple(x.shape)}")
    if x.shape[0] > _SUB_BATCH:
        # Large batches allocate hundreds of MB of temporaries (the complex STFT alone is
        # ~0.5 MB a clip) and spend their time in page faults: 3x slower per clip at 256.
        return torch.cat(
            [log_mel(x[i : i + _SUB_BATCH], cfg) for i in range(0, len(x), _SUB_BATCH)]
        )
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    k = _Kernels.get(cfg, x.device)
    spec = _stft(x, cfg, k)[..., : cfg.num_frames]
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(k.fb, power)  # [B, n_mels, T]
    ref = mel.amax(dim=(1, 2), keepdim=True)
    db = 10.0 * torch.log10(mel.clamp_min(_AMIN) / ref.clamp_min(_AMIN))
    out = (db.clamp_min(-cfg.top_db) / cfg.top_db) + 1.0
    return torch.where(ref > _AMIN, out, torch.zeros_like(out))


class LogMelTransform:
    """Clip float32 [num_samples] -> log-mel float16 [n_mels, num_frames], for loader workers.

    float16 keeps the features' precision (they lie in [0, 1]; steps of 5e-4 near 1) and halves
    what crosses the pipe and what the cache stores.
    """

    def __init__(self, cfg: AudioConfig | None = None) -> None:
        self.cfg = cfg or AudioConfig()

    @staticmethod
    def init_worker() -> None:
        torch.set_num_threads(1)  # one process per core already

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return log_mel(torch.from_numpy(clip), self.cfg)[0].numpy().astype(np.float16)


def mel_to_linear(features: torch.Tensor, cfg: AudioConfig | None = None) -> torch.Tensor:
    """Invert the frontend's scaling and mel projection: [B, n_mels, T] -> magnitudes [B, F, T].

    The mel projection is undone by its pseudo-inverse, clipped at zero (a cheap stand-in for
    non-negative least squares: on real spectra it is within a few percent of NNLS).
    """
    cfg = cfg or AudioConfig()
    f = torch.as_tensor(features, dtype=torch.float32)
    if f.dim() == 2:
        f = f.unsqueeze(0)
    k = _Kernels.get(cfg, f.device)
    db = (f.clamp(0.0, 1.0) - 1.0) * cfg.top_db
    mel_power = torch.pow(10.0, db / 10.0)
    # Bins at the floor were "anything quieter"; treating them as silence avoids a noise bed.
    mel_power = torch.where(f > 0, mel_power, torch.zeros_like(mel_power))
    power = torch.matmul(k.fb_pinv, mel_power).clamp_min(0.0)
    return power.sqrt()


def griffin_lim(
    magnitude: torch.Tensor,
    cfg: AudioConfig | None = None,
    n_iter: int = 32,
    momentum: float = 0.99,
    seed: int | None = 0,
) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013): a phase for `magnitude`, returned as audio.

    Args:
        magnitude: Float tensor [B, n_fft // 2 + 1, T] of STFT magnitudes.
        n_iter: iterations; 32 with momentum sounds close to 100 without it.
        momentum: the "fast" in fast Griffin-Lim; 0 gives the classic algorithm.
        seed: seeds the random initial phase, so a decode is reproducible; None for fresh.

    Returns:
        Float tensor [B, cfg.num_samples].
    """
    cfg = cfg or AudioConfig()
    if n_iter < 0:
        raise ValueError("n_iter must be >= 0")
    mag = torch.as_tensor(magnitude, dtype=torch.float32)
    k = _Kernels.get(cfg, mag.device)
    # The frontend keeps num_frames frames; a centred STFT of num_samples has one more.
    n_stft_frames = cfg.num_samples // cfg.hop_length + 1
    if mag.shape[-1] < n_stft_frames:
        pad = mag[..., -1:].expand(*mag.shape[:-1], n_stft_frames - mag.shape[-1])
        mag = torch.cat([mag, pad], dim=-1)
    gen = torch.Generator(device=mag.device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    phase = torch.rand(mag.shape, generator=gen, device=mag.device) * (2 * math.pi)
    angles = torch.polar(torch.ones_like(mag), phase)
    n = cfg.num_samples

    def istft(spec: torch.Tensor) -> torch.Tensor:
        return torch.istft(
            spec,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            window=k.window,
            center=True,
            length=n,
        )

    prev = torch.zeros_like(angles)
    alpha = momentum / (1.0 + momentum)
    for _ in range(n_iter):
        rebuilt = _stft(istft(mag * angles), cfg, k)
        angles = rebuilt - alpha * prev
        angles = angles / (angles.abs() + 1e-16)
        prev = rebuilt
    return istft(mag * angles)


def features_to_audio(
    features: torch.Tensor, cfg: AudioConfig | None = None, n_iter: int = 32, seed: int | None = 0
) -> torch.Tensor:
    """Log-mel features [B, n_mels, T] -> audio [B, num_samples] (not yet normalised)."""
    return griffin_lim(mel_to_linear(features, cfg), cfg, n_iter=n_iter, seed=seed)
