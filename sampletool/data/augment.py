"""On-the-fly audio augmentation, after the NSynth experiments: additive and multiplicative
noise (Gaussian, Laplace or a Gaussian mixture) at a random signal-to-noise ratio, plus random
gain, small time shifts, sampler-style retuning and the effects a producer's samples come
through (drive, chorus, reverb); and on the log-mel features, a rough pitch shift, spectral
tilt, truncation and time stretch.

Note: the log-mel frontend normalises every clip to its own peak, so a gain alone changes no
feature; it matters combined with noise at a fixed level, and for other frontends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

MODES = ("none", "additive", "multiplicative", "both")
NOISES = ("gaussian", "laplace", "gmm")


@dataclass(frozen=True)
class AugmentConfig:
    """What to do to each training clip. `mode="none"` with no shift and no gain does nothing."""

    mode: str = "none"
    noise: str = "gaussian"
    snr_db: tuple[float, float] = (10.0, 30.0)
    gain_db: tuple[float, float] = (0.0, 0.0)
    # The share of clips that get the noise (the rest stay clean): a model that only ever
    # heard a noise floor reads the true silence of a clean recording (above a bass's
    # harmonics, after a short note) as a cue, and a clean bass as a hi-hat.
    noise_p: float = 1.0
    max_shift: float = 0.0  # seconds, either way
    # Retune by up to +-pitch semitones the way a sampler does, by playing the clip faster or
    # slower (so a higher pitch also decays sooner).
    pitch: float = 0.0
    # The effects between an instrument and a sample library, each on a share of the clips,
    # whatever their class (a driven kick is still a kick): drive (tanh or hard clipping, 6 to
    # 30 dB into it; a clean note's harmonics reach up into a cymbal's bands), chorus (one to
    # three copies under a slowly swept 7-25 ms delay; pads and ensembles) and reverb (a
    # synthetic room or hall, decaying 60 dB in 0.2 to 2.5 s, mixed 10-50 % wet).
    drive_p: float = 0.0
    chorus_p: float = 0.0
    reverb_p: float = 0.0
    # On the log-mel features (cheap; they make a model trained on one set of recordings
    # generalise to others): roll the mel axis by up to +-mel_shift bins (a rough pitch
    # shift: at the low end, where a band is about 14 Hz wide, 4 bands move a 50 Hz kick an
    # octave; `pitch` is the faithful one), tilt the spectrum by up to +-tilt_db from the
    # lowest to the highest band, with probability `truncate` cut the sound off at a random
    # time (short samples are common), and stretch time by a factor between 1/(1+stretch) and
    # 1+stretch (drums of one kind ring for longer or shorter from kit to kit).
    mel_shift: int = 0
    tilt_db: float = 0.0
    truncate: float = 0.0
    stretch: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        object.__setattr__(self, "gain_db", tuple(float(v) for v in self.gain_db))
        if self.mode not in MODES:
            raise ValueError(f"augment mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.noise not in NOISES:
            raise ValueError(f"noise must be one of {', '.join(NOISES)}, not {self.noise!r}")
        for name in ("snr_db", "gain_db"):
            lo, hi = getattr(self, name)
            if len(getattr(self, name)) != 2 or lo > hi:
                raise ValueError(f"{name} must be a (low, high) range")
        for name in ("noise_p", "drive_p", "chorus_p", "reverb_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.max_shift < 0 or self.pitch < 0:
            raise ValueError("max_shift and pitch must be >= 0")
        if (self.mel_shift < 0 or self.tilt_db < 0 or self.stretch < 0
                or not 0.0 <= self.truncate <= 1.0):  # fmt: skip
            raise ValueError("mel_shift, tilt_db and stretch must be >= 0, truncate in [0, 1]")

    @property
    def needs_clips(self) -> bool:
        """Whether it works on the audio (so training needs the clips, not only features)."""
        return (self.mode != "none" or self.max_shift > 0 or self.pitch > 0
                or self.gain_db != (0.0, 0.0) or self.effects)  # fmt: skip

    @property
    def effects(self) -> bool:
        return self.drive_p > 0 or self.chorus_p > 0 or self.reverb_p > 0

    @property
    def on_features(self) -> bool:
        return self.mel_shift > 0 or self.tilt_db > 0 or self.truncate > 0 or self.stretch > 0

    @property
    def active(self) -> bool:
        return self.needs_clips or self.on_features

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        return cls(**d)


def unit_noise(shape: tuple[int, ...], kind: str, gen: torch.Generator) -> torch.Tensor:
    """Zero-mean, unit-variance noise of the given kind."""
    if kind == "gaussian":
        return torch.randn(shape, generator=gen)
    if kind == "laplace":
        u = torch.rand(shape, generator=gen).clamp(1e-7, 1 - 1e-7) - 0.5
        return -torch.sign(u) * torch.log1p(-2 * u.abs()) / math.sqrt(2.0)  # scale b = 1/sqrt(2)
    # A Gaussian mixture: mostly quiet with occasional loud bursts (crackle, hiss with pops).
    stds = torch.tensor([0.5, 1.0, 3.0])
    probs = torch.tensor([0.6, 0.3, 0.1])
    comp = torch.multinomial(probs, math.prod(shape), replacement=True, generator=gen)
    x = torch.randn(shape, generator=gen) * stds[comp].view(shape)
    return x / math.sqrt(float((probs * stds.square()).sum()))


def augment(
    audio: torch.Tensor | np.ndarray,
    cfg: AugmentConfig,
    sample_rate: int = 16000,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment a batch of clips, Float [B, N] -> Float [B, N] (a new tensor)."""
    x = torch.as_tensor(audio, dtype=torch.float32).clone()
    if x.dim() == 1:
        x = x[None]
    gen = generator or torch.Generator().manual_seed(0)
    b, n = x.shape

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, 1, generator=gen)

    if cfg.pitch > 0:
        rates = 2 ** ((torch.rand(b, generator=gen) * 2 - 1) * cfg.pitch / 12)
        x = _stretch_time(x[:, None], 1 / rates)[:, 0]
    if cfg.effects:
        x = _effects(x, cfg, sample_rate, gen)
    if cfg.max_shift > 0:
        max_s = int(cfg.max_shift * sample_rate)
        shifts = torch.randint(-max_s, max_s + 1, (b,), generator=gen)
        for i, s in enumerate(shifts.tolist()):
            if s > 0:
                x[i, s:] = x[i, :-s].clone()
                x[i, :s] = 0
            elif s < 0:
                x[i, :s] = x[i, -s:].clone()
                x[i, s:] = 0
    if cfg.gain_db != (0.0, 0.0):
        x = x * 10 ** (uniform(*cfg.gain_db) / 20)
    if cfg.mode != "none":
        noisy = torch.ones(b, 1)
        if cfg.noise_p < 1.0:
            noisy = (torch.rand(b, 1, generator=gen) < cfg.noise_p).float()
    if cfg.mode in ("multiplicative", "both"):
        level = noisy * 10 ** (-uniform(*cfg.snr_db) / 20)
        x = x * (1 + level * unit_noise((b, n), cfg.noise, gen))
    if cfg.mode in ("additive", "both"):
        rms = x.square().mean(-1, keepdim=True).sqrt()
        level = noisy * rms * 10 ** (-uniform(*cfg.snr_db) / 20)
        x = x + level * unit_noise((b, n), cfg.noise, gen)
    return x


def _chosen(b: int, p: float, gen: torch.Generator) -> list[int]:
    return torch.nonzero(torch.rand(b, generator=gen) < p).flatten().tolist()


def _effects(x: torch.Tensor, cfg: AugmentConfig, sr: int, gen: torch.Generator) -> torch.Tensor:
    """Drive, chorus and reverb (in that order, as on a channel strip) on the chosen clips of
    Float [B, N]; each keeps its clip's peak level."""
    b, n = x.shape
    peak = x.abs().amax(-1, keepdim=True).clamp_min(1e-9)

    def rand() -> float:
        return float(torch.rand((), generator=gen))

    for i in _chosen(b, cfg.drive_p, gen):
        y = x[i] / peak[i] * 10 ** ((6 + 24 * rand()) / 20)
        x[i] = (torch.tanh(y) if rand() < 0.6 else y.clamp(-1.0, 1.0)) * peak[i]
    t = torch.arange(n, dtype=torch.float32) / sr
    for i in _chosen(b, cfg.chorus_p, gen):
        y = x[i].clone()
        for _ in range(1 + int(3 * rand())):
            delay = (0.007 + 0.018 * rand()) + (0.001 + 0.004 * rand()) * torch.sin(
                2 * torch.pi * (0.2 + 2.8 * rand()) * t + 2 * torch.pi * rand()
            )
            pos = (torch.arange(n, dtype=torch.float32) - delay * sr).clamp(0, n - 1)
            lo = pos.floor().long()
            frac = pos - lo
            y = y + 0.7 * (x[i, lo] * (1 - frac) + x[i, (lo + 1).clamp(max=n - 1)] * frac)
        x[i] = y
    rows = _chosen(b, cfg.reverb_p, gen)
    if rows:
        c = len(rows)
        rt60 = 0.2 + 2.3 * torch.rand(c, 1, generator=gen)
        tail = torch.randn(c, n, generator=gen) * torch.exp(-6.91 * t[None] / rt60)
        # darker halls: a moving average of 1 to 4 samples takes off some of the top
        for j, width in enumerate((1 + 4 * torch.rand(c, generator=gen)).long().tolist()):
            if width > 1:
                tail[j, : n - width + 1] = tail[j].unfold(0, width, 1).mean(1)
        tail = tail / tail.square().sum(1, keepdim=True).sqrt().clamp_min(1e-9)
        size = 1 << (2 * n - 1).bit_length()
        wet = torch.fft.irfft(torch.fft.rfft(x[rows], size) * torch.fft.rfft(tail, size), size)
        mix = 0.1 + 0.4 * torch.rand(c, 1, generator=gen)
        x[rows] = (1 - mix) * x[rows] + mix * wet[:, :n]
    touched = x.abs().amax(-1, keepdim=True).clamp_min(1e-9)
    return x * (peak / touched)


def _stretch_time(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Float [B, C, N] with each item's last axis stretched by its factor (linear
    interpolation from the start), then cut or zero-padded back to N."""
    n = x.shape[-1]
    out = torch.zeros_like(x)
    for i, f in enumerate(factors.tolist()):
        m = max(1, round(n * f))
        y = torch.nn.functional.interpolate(x[i : i + 1], size=m, mode="linear")
        out[i, :, : min(m, n)] = y[0, :, :n]
    return out


def augment_features(
    features: torch.Tensor, cfg: AugmentConfig, top_db: float, generator: torch.Generator
) -> torch.Tensor:
    """The feature-domain part of `cfg` on log-mel features Float [B, n_mels, T] in [0, 1]
    (0 = top_db below the clip's peak). Returns a new tensor, still peak-normalised."""
    x = features.clone()
    b, m, t = x.shape
    gen = generator
    if cfg.mel_shift > 0:
        shifts = torch.randint(-cfg.mel_shift, cfg.mel_shift + 1, (b,), generator=gen).tolist()
        for i, s in enumerate(shifts):
            if s > 0:
                x[i, s:] = features[i, :-s]
                x[i, :s] = features[i, :1]  # repeat the edge band
            elif s < 0:
                x[i, :s] = features[i, -s:]
                x[i, s:] = features[i, -1:]
    if cfg.stretch > 0:
        # Log-uniform factors; the attack stays at the start, the clip length stays the same.
        factors = torch.exp((torch.rand(b, generator=gen) * 2 - 1) * math.log1p(cfg.stretch))
        x = _stretch_time(x, factors)
    if cfg.tilt_db > 0:
        tilt = (torch.rand(b, 1, 1, generator=gen) * 2 - 1) * cfg.tilt_db / top_db
        ramp = torch.linspace(-0.5, 0.5, m).view(1, m, 1)
        x = torch.where(x > 0, x + tilt * ramp, x)
    if cfg.truncate > 0:
        cut = torch.rand(b, generator=gen) < cfg.truncate
        for i in torch.nonzero(cut).flatten().tolist():
            # Keep at least a tenth of the clip; fade out over 3 frames (about 50 ms).
            start = int(torch.randint(max(1, t // 10), t, (1,), generator=gen))
            fade = torch.linspace(1.0, 0.0, 5)[1:4]
            n = min(3, t - start)
            x[i, :, start : start + n] = x[i, :, start : start + n] * fade[:n]
            x[i, :, start + n :] = 0.0
    # Back to 0 dB at the peak, as the frontend makes every clip.
    audible = x > 0
    peak = x.amax(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    return torch.where(audible, (x - peak + 1).clamp(0.0, 1.0), x)
