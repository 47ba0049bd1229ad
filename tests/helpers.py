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


def class_sound(cls: str, rng: np.random.Generator) -> np.ndarray:
    """A "low" (a low sine), "high" (a high sine) or any other class (noise) one-shot."""
    t = np.arange(int(16000 * rng.uniform(0.3, 0.9))) / 16000
    if cls == "low":
        y = np.sin(2 * np.pi * rng.uniform(60, 150) * t)
    elif cls == "high":
        y = np.sin(2 * np.pi * rng.uniform(2500, 4000) * t)
    else:
        y = rng.standard_normal(t.size)
    return (0.5 * y * np.exp(-t * rng.uniform(3, 10))).astype(np.float32)


def make_class_folders(root: Path, per_class: int = 16, classes=("low", "high", "noise")) -> Path:
    """root/<class>/<class>NN.wav, `per_class` of each (see `class_sound`)."""
    rng = np.random.default_rng(0)
    for cls in classes:
        for i in range(per_class):
            write(root / cls / f"{cls}{i:02d}.wav", class_sound(cls, rng))
    return root


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
