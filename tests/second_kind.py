"""A second model kind, defined here and nowhere in the engine: it proves that a kind is one
module and one registry entry. The CLI, the library, the trainer and the app must work with it
unchanged.

"mean-linear": the search vector is a linear map of the time-averaged log-mel spectrum; the
decoder maps it back to one spectrum held over the clip; an optional linear classifier reads
the vector. Small enough to train in a second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sampletool.features import AudioConfig, features_to_audio
from sampletool.models.kinds import Loss, ModelKind
from sampletool.models.runtime import ModelRuntime

NAME = "mean-linear"


@dataclass(frozen=True)
class MeanLinearConfig:
    kind: str = NAME
    dim: int = 6
    num_classes: int = 0

    def __post_init__(self) -> None:
        if self.kind != NAME or self.dim < 1 or self.num_classes < 0:
            raise ValueError("not a valid mean-linear config")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MeanLinearConfig:
        return cls(**d)


class MeanLinear(nn.Module):
    def __init__(self, n_mels: int, n_frames: int, dim: int, num_classes: int) -> None:
        super().__init__()
        self.n_frames = n_frames
        self.enc = nn.Linear(n_mels, dim)
        self.dec = nn.Linear(dim, n_mels)
        self.classifier = nn.Linear(dim, num_classes) if num_classes else None

    def vector(self, features: torch.Tensor) -> torch.Tensor:
        return self.enc(features.mean(-1))

    def spectrum(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z))[..., None].expand(-1, -1, self.n_frames)

    def forward(self, features, generator=None, labels=None):
        v = self.vector(features)
        logits = self.classifier(v) if self.classifier is not None else None
        return self.spectrum(v), logits

    def loss(self, features, labels=None, class_balance=None, forward=None, generator=None):
        recon, logits = (forward or self.forward)(features, generator, labels)
        total = (recon - features).square().sum((1, 2)).mean()
        parts = {"recon": float(total.detach())}
        if logits is not None and labels is not None and (labels >= 0).any():
            ce = F.cross_entropy(logits, labels, weight=class_balance, ignore_index=-1)
            total = total + 10 * ce
            parts["ce"] = float(ce.detach())
        parts["loss"] = float(total.detach())
        return Loss(total, parts, logits)


def build(config: MeanLinearConfig, audio: AudioConfig) -> MeanLinear:
    return MeanLinear(audio.n_mels, audio.num_frames, config.dim, config.num_classes)


class MeanLinearRuntime(ModelRuntime):
    module: MeanLinear

    @property
    def vector_dim(self) -> int:
        return self.config.dim

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.dim,)

    def _encode(self, x):
        v = self.module.vector(x)
        c = self.module.classifier
        return v, None if c is None else torch.softmax(c(v), -1), v

    def _decode(self, z, *, seed, iterations, progress, cancel):
        return features_to_audio(self.module.spectrum(z), self.audio, n_iter=iterations, seed=seed)

    def _prior_latent(self, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(self.config.dim)


KIND = ModelKind(
    name=NAME,
    description="a linear map of the mean log-mel spectrum (tests only)",
    config_type=MeanLinearConfig,
    build=build,
    runtime_type=MeanLinearRuntime,
)
