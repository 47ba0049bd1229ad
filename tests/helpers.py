"""Helpers for tests: synthetic sounds and tiny model bundles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(
    freq: float = 440.0, seconds: float = 1.0, sr: int = 16000, decay: float = 0.0
) -> np.ndarray:
    """A sine (optionally with an exponential decay), float32 mono."""
    t = np.arange(round(seconds * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t)
    if decay:
        y *= np.exp(-t * decay)
    return y.astype(np.float32)


def noise_burst(seconds: float = 0.3, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """White noise with a fast decay: a crude hi-hat."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    return (0.5 * rng.standard_normal(t.size) * np.exp(-t * 20)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int = 16000, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, **kw)
    return path


TINY_VAE = dict(
    conv_channels=(4, 8),
    pool_sizes=((4, 4), (4, 4)),
    hidden=32,
    latent=8,
    flow_length=2,
    flow_hidden=16,
)


def make_bundle(directory: Path, num_classes: int = 3, seed: int = 0, **overrides) -> Path:
    """Save a tiny randomly initialised bundle; classes are named class0, class1, ..."""
    import torch

    from sampletool.features import AudioConfig
    from sampletool.models.bundle import save_bundle
    from sampletool.models.kinds import build_model
    from sampletool.models.vae import VAEConfig

    torch.manual_seed(seed)
    cfg = VAEConfig(**{**TINY_VAE, "num_classes": num_classes, **overrides})
    audio = AudioConfig()
    model = build_model(cfg, audio)
    names = [f"class{i}" for i in range(num_classes)]
    return save_bundle(directory, model, cfg, audio, names, {"description": "test model"})
