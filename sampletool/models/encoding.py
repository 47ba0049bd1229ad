"""What a model reads in a sound, as plain arrays (no torch): what the library stores and the
GUI passes around."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AudioInput = str | os.PathLike[str] | np.ndarray  # a file, or mono / [channels, samples] audio


@dataclass
class Encoding:
    """What the model reads in a batch of sounds.

    Attributes:
        vectors: float32 [B, vector_dim], the search vectors (what similarity compares).
        probs: float32 [B, classes], class probabilities; None without a classifier.
        latents: float32 [B, *latent_shape], each sound's point in the decoder's space (what
            `blend` mixes and `decode` renders). Not the search vector: see the model kind.
    """

    vectors: np.ndarray
    probs: np.ndarray | None
    latents: np.ndarray

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, rows: slice | Sequence[int] | np.ndarray) -> Encoding:
        return Encoding(
            self.vectors[rows], None if self.probs is None else self.probs[rows], self.latents[rows]
        )

    @staticmethod
    def concat(parts: Sequence[Encoding]) -> Encoding:
        """One Encoding of several batches, in order (at least one batch)."""
        probs = [p.probs for p in parts if p.probs is not None]
        return Encoding(
            np.concatenate([p.vectors for p in parts]),
            np.concatenate(probs) if probs else None,
            np.concatenate([p.latents for p in parts]),
        )
