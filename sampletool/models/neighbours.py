"""Classifying a sound by its nearest labelled sounds, in the model's own search space.

A bundle may carry, beside its module's weights, the search vectors of the sounds it was
trained on and their classes (the tensors `neighbours.vectors` and `neighbours.labels` in its
weights file, and a "neighbours" entry in its config). A runtime that has them reads a sound's
class from the votes of its `k` nearest (Euclidean, as the library's search) together with the
classifier head:

    votes(class) = (votes for the class + 1) / (k + number of classes)
    p(class) = head_share * head(class) + (1 - head_share) * votes(class)

then calibrated like any model's probabilities (`sampletool.models.calibration`).

Why: a head is a few hyperplanes fitted where the training sounds are, and far from them, on
sounds unlike any it trained on, it extrapolates with confidence (the built-in model's head
calls a distorted guitar a cymbal at 93 %, whose nearest training sounds are distortion-guitar
notes). The neighbours answer with what the space around the sound holds, so the class column
agrees better with what "find similar" shows; the head generalises better where the sounds
are like its training's (real drums). The space is the one the model was trained to have
same-class neighbours in (stage 2's neighbour loss), and the search vectors are there anyway.
`sampletool.training.neighbours` chooses `k` and `head_share` on held-out clips.

A bundle's vectors are only valid for its own weights: a model fine-tuned from it (the
trainer's `init_from`) starts without them, and reads classes with its head until it is given
its own (`sampletool.training.neighbours`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sampletool.errors import BundleError

CONFIG_KEY = "neighbours"  # the bundle config's entry: {"k", "count", "head_share"}
VECTORS = "neighbours.vectors"  # float [count, vector_dim]
LABELS = "neighbours.labels"  # int64 [count], class indices
TENSORS = (VECTORS, LABELS)
MAX_COUNT = 1_000_000  # labelled sounds a bundle may carry (about 128 MB at 64 float16s each)
MAX_K = 1000
VECTOR_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
LABEL_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
FORMAT_VERSION = 2  # a bundle with neighbours: older Sample Tools say "made by a newer one"


@dataclass(frozen=True)
class NeighbourSpec:
    """A bundle config's "neighbours" entry: vote among the `k` nearest of `count` sounds, and
    mix in the head's probabilities at `head_share`."""

    k: int
    count: int
    head_share: float = 0.0

    def to_dict(self) -> dict:
        return {"k": self.k, "count": self.count, "head_share": self.head_share}

    @classmethod
    def from_doc(cls, doc: Mapping) -> NeighbourSpec | None:
        """The entry of a bundle config (None without one).

        Raises:
            ValueError: an entry that makes no sense.
        """
        entry = doc.get(CONFIG_KEY)
        if entry is None:
            return None
        if not isinstance(entry, Mapping):
            raise ValueError(f"{CONFIG_KEY!r} must be an object")
        found = []
        for name, top in (("k", MAX_K), ("count", MAX_COUNT)):
            v = entry.get(name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise ValueError(f"{CONFIG_KEY}.{name} must be a whole number in [1, {top}]")
            found.append(v)
        k, count = found
        if k > count:
            raise ValueError(f"{CONFIG_KEY}.k ({k}) is more than its count ({count})")
        share = entry.get("head_share", 0.0)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise ValueError(f"{CONFIG_KEY}.head_share must be a number in [0, 1)")
        return cls(k, count, float(share))


def expected_shapes(spec: NeighbourSpec, vector_dim: int) -> dict[str, tuple[int, ...]]:
    return {VECTORS: (spec.count, vector_dim), LABELS: (spec.count,)}


class Neighbours:
    """The labelled vectors of a bundle, on a device, voting on new sounds' classes."""

    def __init__(
        self,
        vectors: torch.Tensor,
        labels: torch.Tensor,
        k: int,
        num_classes: int,
        head_share: float = 0.0,
    ) -> None:
        self.vectors = vectors.float()
        self.labels = labels.long()
        self.k = int(k)
        self.num_classes = int(num_classes)
        self.head_share = float(head_share)
        self._norms = self.vectors.square().sum(1)

    @classmethod
    def from_tensors(
        cls,
        tensors: Mapping[str, torch.Tensor],
        spec: NeighbourSpec,
        vector_dim: int,
        num_classes: int,
        where: str,
    ) -> Neighbours:
        """Check a bundle's neighbour tensors against its config and make the voter.

        Raises:
            BundleError: a tensor missing, of the wrong shape or type, not finite, or a label
                that is not one of the model's classes; `where` names the bundle.
        """
        if num_classes < 2:
            raise BundleError(f"{where} has neighbours to vote on classes but no classifier")
        missing = [n for n in TENSORS if n not in tensors]
        if missing:
            raise BundleError(f"{where} says it has neighbours but its weights lack {missing[0]}")
        vectors, labels = tensors[VECTORS], tensors[LABELS]
        if vectors.dtype not in VECTOR_DTYPES:
            raise BundleError(f"{where}: {VECTORS} must be float16, bfloat16 or float32")
        if labels.dtype not in LABEL_DTYPES:
            raise BundleError(f"{where}: {LABELS} must hold class numbers (integers)")
        vectors, labels = vectors.float(), labels.long()
        for name, t in ((VECTORS, vectors), (LABELS, labels)):
            shape = expected_shapes(spec, vector_dim)[name]
            if tuple(t.shape) != shape:
                raise BundleError(
                    f"{where}: {name} is {list(t.shape)} but its config needs {list(shape)}"
                )
        if not bool(vectors.isfinite().all()):
            raise BundleError(f"{where}: {VECTORS} must hold finite numbers")
        if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
            raise BundleError(f"{where}: {LABELS} names a class the model does not have")
        return cls(vectors, labels, spec.k, num_classes, spec.head_share)

    def to(self, device: torch.device) -> Neighbours:
        return Neighbours(self.vectors.to(device), self.labels.to(device), self.k,
                          self.num_classes, self.head_share)  # fmt: skip

    @torch.inference_mode()
    def probs(self, vectors: torch.Tensor, head: torch.Tensor | None = None) -> torch.Tensor:
        """Search vectors Float [B, vector_dim] (and the head's probabilities [B, classes])
        -> class probabilities Float [B, classes]."""
        p = self.votes(vectors)
        if head is not None and self.head_share > 0:
            p = self.head_share * head.to(p) + (1 - self.head_share) * p
        return p

    @torch.inference_mode()
    def votes(self, vectors: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Search vectors Float [B, vector_dim] -> the neighbours' votes [B, classes] (each
        class one vote more than it got, over k + classes). Queries go `chunk` at a time
        (by default as many as keep a [chunk, count] distance matrix near 64 MB)."""
        chunk = chunk or max(1, min(256, (1 << 24) // max(len(self.labels), 1)))
        out = []
        ref = self.vectors.to(vectors.device)
        norms = self._norms.to(vectors.device)
        labels = self.labels.to(vectors.device)
        for i in range(0, len(vectors), chunk):
            v = vectors[i : i + chunk].float()
            # squared distances, up to the query's own norm (the same for every reference)
            d = norms[None] - 2 * v @ ref.T
            nearest = d.topk(self.k, dim=1, largest=False).indices
            votes = torch.zeros(len(v), self.num_classes, device=v.device)
            votes.scatter_add_(1, labels[nearest], torch.ones_like(nearest, dtype=votes.dtype))
            out.append((votes + 1) / (self.k + self.num_classes))
        if not out:
            return torch.empty(0, self.num_classes, device=vectors.device)
        return torch.cat(out)


def neighbour_tensors(vectors: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """What a bundle's weights file stores for these labelled vectors (float16: a tenth of a
    percent of a vector's length moves no neighbour that matters, and halves the file)."""
    v = np.asarray(vectors, np.float32)
    y = np.asarray(labels, np.int64)
    if v.ndim != 2 or y.shape != (len(v),) or not len(v):
        raise ValueError("neighbours need vectors [count, dim] and as many labels")
    if not np.isfinite(v).all() or np.abs(v).max() > 6e4:
        raise ValueError("neighbour vectors must be finite and within float16's range")
    if len(v) > MAX_COUNT:
        raise ValueError(f"at most {MAX_COUNT:,} neighbours, not {len(v):,}")
    return {VECTORS: torch.from_numpy(v).half(), LABELS: torch.from_numpy(y)}
