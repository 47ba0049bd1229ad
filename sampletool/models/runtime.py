"""The model runtime: a loaded bundle on a device, and the one road between audio and vectors.

    runtime = load_runtime("default")                 # a bundle folder, a name, or None
    enc = runtime.read("kick.wav")                    # one sound -> Encoding (one pass)
    enc = runtime.encode(features)                    # a batch of features -> Encoding
    audio = runtime.decode(runtime.blend(latents, weights))

Every audio-to-vector path in the engine (the facade, the library's scan and its workers, the
CLI, the GUI) ends in `ModelRuntime.encode`, which gives all three readings of a sound at once:
the search vector, the class probabilities and the decoder latent (what blending mixes). The
library stores all three, so nothing reads a sample's audio twice.

`ModelRuntime` holds what every kind shares (device, bundle, audio parameters, batching, the
log-mel frontend, blending arithmetic, safe decoding); each model kind subclasses it with
`_encode`, `_decode` and `_prior_latent` (see `sampletool.models.vae.VAERuntime`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sampletool.audio import load_clip
from sampletool.errors import BundleError, ModelError
from sampletool.features import AudioConfig, LogMelTransform, log_mel
from sampletool.models.bundle import (
    CONFIG_FILE,
    BundleInfo,
    load_weights,
    model_id,
    read_bundle,
    read_weights_header,
    resolve_model,
)
from sampletool.models.calibration import Calibration, ClassReading, read_class
from sampletool.models.encoding import AudioInput, Encoding
from sampletool.models.kinds import get_kind
from sampletool.models.limits import BuildTooLarge, build_budget, build_within, check_audio
from sampletool.models.neighbours import TENSORS as NEIGHBOUR_TENSORS
from sampletool.models.neighbours import Neighbours, NeighbourSpec
from sampletool.progress import Progress

# Latents beyond this many prior standard deviations decode to nothing new; clamping keeps
# unbounded vector arithmetic (huge or negative weights) finite all the way to the waveform.
LATENT_LIMIT = 1e3
PEAK = 10 ** (-0.3 / 20)  # decoded audio peaks at -0.3 dBFS: headroom for DAC and codec overshoot


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; anything else is passed to torch.

    Raises:
        ValueError: an unknown device, or one this machine does not have.
    """
    if str(device) != "auto":
        try:
            dev = torch.device(str(device).strip().lower())
        except RuntimeError:
            raise ValueError(
                f"unknown device {str(device)!r}: use auto, cpu, cuda, cuda:N or mps"
            ) from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but Apple's MPS is not available")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def effective_weights(
    n: int, weights: Sequence[float] | None, normalize: bool
) -> tuple[np.ndarray, str | None]:
    """The weights a blend of `n` sounds really uses, and a note when they are not as given.

    SampleVAE's semantics, made safe: a weights list of the wrong length means equal weights;
    with `normalize` the weights are divided by their sum, and a sum of zero falls back to
    equal weights (a negative sum flips every sign, and says so); without it any finite weights
    are used as given (negative ones subtract).

    Returns:
        (float64 [n], None or one sentence saying what was changed and why).

    Raises:
        ValueError: a weight is NaN or infinite.
    """
    if n == 0:
        return np.empty(0, np.float64), None
    w = np.asarray(list(weights) if weights is not None else [], dtype=np.float64)
    note = None
    if w.shape != (n,):
        if w.size:
            note = f"{w.size} weights for {n} sounds: using equal weights"
        w = np.ones(n)
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite numbers")
    if normalize:
        total = w.sum()
        if abs(total) < 1e-9:
            return np.full(n, 1.0 / n), (
                "the weights sum to zero and cannot be normalised: using equal weights"
            )
        if total < 0:  # dividing by it flips every sign: [-1, -1] adds both sounds
            note = (
                "the weights sum to a negative number, so normalising flips their signs (a "
                "negative weight adds its sound): to subtract a sound, do not normalise"
            )
        w = w / total
    return w, note


class ModelRuntime:
    """A loaded model bundle on a device. Subclassed once per model kind.

    Use `load_runtime` to make one. Several, of different models, may live in one process; a
    runtime is safe to use from one thread at a time (the GUI runs each call as a task).

    Attributes:
        info: the bundle's description (name, path, kind, class names, metadata).
        config: the kind's typed config.
        audio: the audio parameters the model was trained with.
        module: the torch module, in eval mode, on `device`.
        device: where the module runs.
        model_id: names this model's vectors in a library catalogue (`bundle.model_id`).
        calibration: the temperature `encode` applies to the class probabilities, and the
            confidence under which a class reads as unsure (from the bundle's metadata).
        neighbours: the labelled sounds whose votes give the class probabilities, when the
            bundle has them (`sampletool.models.neighbours`); else the classifier head's.
    """

    def __init__(
        self,
        info: BundleInfo,
        config: Any,
        audio: AudioConfig,
        module: torch.nn.Module,
        device: torch.device,
    ) -> None:
        self.info = info
        self.config = config
        self.audio = audio
        self.module = module
        self.device = device
        self.model_id = model_id(info)
        self.calibration = Calibration.from_metadata(info.metadata)
        self.neighbours: Neighbours | None = None

    # -- what the model is ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def metadata(self) -> dict:
        """What the bundle says of itself: description, dataset, training metrics..."""
        return self.info.metadata

    @property
    def class_names(self) -> list[str]:
        """The classifier's classes, in output order; empty for a model without classifier."""
        return list(self.info.class_names)

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def vector_dim(self) -> int:
        """Length of a search vector."""
        raise NotImplementedError

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one sound's decoder latent."""
        raise NotImplementedError

    @property
    def batch_size(self) -> int:
        """Clips per forward pass. On a CPU one at a time is 2x faster than 64 for the VAE: the
        encoder's full-resolution activations (2 MB a clip) then stay in cache."""
        return 1 if self.device.type == "cpu" else 64

    @property
    def can_generate(self) -> bool:
        """Whether `decode` makes audio (a model without a decoder only reads sounds)."""
        return True

    @property
    def realtime_decode(self) -> bool:
        """Whether `decode` is fast enough to follow a slider (the app then re-generates as
        controls move; otherwise the user asks, and sees progress)."""
        return True

    def read_class(self, probs: np.ndarray, user_label: str | None = None) -> ClassReading:
        """One sound's (calibrated) probabilities -> its class as shown: sure or unsure, with
        the runner-up (see `sampletool.models.calibration.read_class`)."""
        return read_class(probs, self.class_names, self.calibration.unsure_below, user_label)

    def require_classifier(self) -> None:
        """Raises ModelError unless the model classifies."""
        if not self.class_names:
            raise ModelError(
                f"model {self.name!r} has no classifier; train one with classes "
                "(sub-folders as classes) to classify sounds"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.name!r}, device={str(self.device)!r})"

    # -- audio -> encodings ---------------------------------------------------------------------

    def clip(self, target: AudioInput, offset: float = 0.0) -> np.ndarray:
        """One clip at the model's rate and length, float32 [num_samples], from a file or from
        an array of mono (or [channels, samples]) audio at the model's rate.

        Raises:
            AudioError: the file cannot be read.
        """
        if isinstance(target, np.ndarray):
            x = np.asarray(target, dtype=np.float32)
            if x.ndim == 2:  # [channels, samples]
                x = x.mean(axis=0)
            if x.ndim != 1:
                raise ValueError(
                    f"audio arrays must be [samples] or [channels, samples], got {x.shape}"
                )
            start = round(offset * self.audio.sample_rate)
            x = x[start : start + self.audio.num_samples]
            out = np.zeros(self.audio.num_samples, np.float32)
            out[: x.shape[0]] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
            return out
        return load_clip(target, offset, self.audio.seconds, self.audio.sample_rate)

    def frontend(self) -> Any:
        """The per-clip feature transform for worker processes: picklable, float32 clip ->
        float16 features (see `sampletool.audio.ClipLoader`'s transform)."""
        return LogMelTransform(self.audio)

    @torch.inference_mode()
    def features(self, clips: np.ndarray) -> torch.Tensor:
        """Clips float32 [B, num_samples] -> the model's input features on the device."""
        return log_mel(torch.from_numpy(np.ascontiguousarray(clips)).to(self.device), self.audio)

    @torch.inference_mode()
    def encode(
        self, features: np.ndarray | torch.Tensor, batch_size: int | None = None
    ) -> Encoding:
        """A batch of features (from `features` or `frontend`, any float dtype) -> Encoding.

        The class probabilities are calibrated (`calibration`); a silent clip (all-zero
        features) gets equal probabilities for every class: there is nothing to hear in it."""
        n = len(features)
        if n == 0:
            return Encoding(
                np.empty((0, self.vector_dim), np.float32),
                np.empty((0, len(self.class_names)), np.float32) if self.class_names else None,
                np.empty((0, *self.latent_shape), np.float32),
            )
        step = batch_size or self.batch_size
        parts = []
        for i in range(0, n, step):
            chunk = features[i : i + step]
            x = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.asarray(chunk))
            x = x.to(self.device, torch.float32)
            vectors, probs, latents = self._encode(x)
            self._refuse_non_finite(vectors, probs, latents)
            if probs is not None and self.neighbours is not None:
                probs = self.neighbours.probs(vectors, probs)
            p = None
            if probs is not None:
                p = self.calibration.apply(probs.float().cpu().numpy())
                silent = (x.flatten(1).abs().amax(1) == 0).cpu().numpy()
                p[silent] = 1.0 / p.shape[1]
            parts.append(Encoding(vectors.float().cpu().numpy(), p, latents.float().cpu().numpy()))
        return Encoding.concat(parts)

    def _refuse_non_finite(self, *outputs: torch.Tensor | None) -> None:
        """A NaN or infinite vector would be stored, searched and blended as if it were a
        sound's: a model that makes one is broken, and says so."""
        if not all(bool(t.isfinite().all()) for t in outputs if t is not None):
            raise ModelError(
                f"model {self.name!r} ({self.path}) gives NaN or infinite numbers: it is damaged "
                "or its training diverged; nothing it made was kept. Use another model"
            )

    def check_output(self) -> None:
        """Encode one test sound (a tone in a little noise) and refuse the model if anything it
        gives is NaN or infinite (`load_runtime` calls this before handing out a runtime).

        Raises:
            BundleError: it is.
        """
        t = np.arange(self.audio.num_samples, dtype=np.float64) / self.audio.sample_rate
        noise = np.random.default_rng(0).standard_normal(t.size)
        clip = 0.3 * np.sin(2 * np.pi * 440.0 * t) * np.exp(-3 * t) + 0.01 * noise
        try:
            self.encode_clips(clip.astype(np.float32)[None])
        except ModelError:
            raise BundleError(
                f"model {self.name!r} ({self.path}) gives NaN or infinite numbers for a test "
                "sound: it is damaged or its training diverged"
            ) from None

    def encode_clips(self, clips: np.ndarray, batch_size: int | None = None) -> Encoding:
        """Clips float32 [B, num_samples] at the model's rate -> Encoding."""
        step = batch_size or self.batch_size
        if not len(clips):  # every file of a batch unreadable: nothing to transform
            return self.encode(np.empty((0,), np.float32), step)
        if len(clips) <= step:
            return self.encode(self.features(clips), step)
        return Encoding.concat(
            [
                self.encode(self.features(clips[i : i + step]), step)
                for i in range(0, len(clips), step)
            ]
        )

    def read(self, target: AudioInput, offset: float = 0.0) -> Encoding:
        """One sound (a file, from `offset` seconds, or an array) -> an Encoding of one row.

        Raises:
            AudioError: the file cannot be read.
        """
        return self.encode_clips(self.clip(target, offset)[None])

    # -- latents -> audio -----------------------------------------------------------------------

    def blend(
        self,
        latents: np.ndarray,
        weights: Sequence[float] | None = None,
        normalize: bool = True,
        variance: float = 0.0,
        seed: int | None = None,
    ) -> np.ndarray:
        """The latent to decode: the weighted sum of `latents` [K, *latent_shape] (see
        `effective_weights`; a note on changed weights is issued as a UserWarning) plus Gaussian
        noise of `variance`; a random draw from the prior when K is 0.

        Raises:
            ValueError: a negative or non-finite variance, or non-finite weights.
        """
        if not (variance >= 0 and math.isfinite(variance)):
            raise ValueError(f"variance must be a finite number >= 0, got {variance}")
        rng = np.random.default_rng(seed)
        lat = np.asarray(latents, np.float64).reshape(-1, *self.latent_shape)
        if len(lat) == 0:
            z = np.asarray(self._prior_latent(rng), np.float64)
        else:
            w, note = effective_weights(len(lat), weights, normalize)
            if note:
                warnings.warn(note, stacklevel=2)
            z = np.tensordot(w, lat, axes=1)
        if variance > 0:
            z = z + rng.standard_normal(z.shape) * math.sqrt(variance)
        return z.astype(np.float32)

    @torch.inference_mode()
    def decode(
        self,
        latents: np.ndarray | torch.Tensor,
        *,
        seed: int | None = 0,
        iterations: int = 32,
        progress: Progress | None = None,
        cancel=None,
    ) -> np.ndarray:
        """Latents [B, *latent_shape] (or one) -> audio float32 [B, num_samples], each
        peak-normalised to -0.3 dBFS (all zeros if silent).

        Never returns NaN or samples beyond +-1, whatever the latent.

        Args:
            seed: seeds whatever the decoder draws (the VAE's random initial phase).
            iterations: phase-reconstruction iterations (the VAE's Griffin-Lim): more is
                slower and cleaner.
            progress, cancel: for decoders slow enough to need them (see sampletool.progress).
        """
        z = torch.as_tensor(np.asarray(latents, np.float32)).to(self.device)
        if z.dim() == len(self.latent_shape):
            z = z[None]
        z = torch.nan_to_num(z, nan=0.0, posinf=LATENT_LIMIT, neginf=-LATENT_LIMIT)
        z = z.clamp(-LATENT_LIMIT, LATENT_LIMIT)
        raw = self._decode(z, seed=seed, iterations=iterations, progress=progress, cancel=cancel)
        audio = torch.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0).float().cpu().numpy()
        peak = np.abs(audio).max(axis=1, keepdims=True)
        scale = np.where(peak > 1e-9, PEAK / np.maximum(peak, 1e-9), 0.0)
        return (audio * scale).astype(np.float32)

    # -- what each kind provides ----------------------------------------------------------------

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Features on the device -> (search vectors [B, vector_dim], class probabilities
        [B, classes] or None, decoder latents [B, *latent_shape])."""
        raise NotImplementedError

    def _decode(
        self, z: torch.Tensor, *, seed: int | None, iterations: int, progress, cancel
    ) -> torch.Tensor:
        """Decoder latents on the device -> audio [B, num_samples] (any level)."""
        raise NotImplementedError

    def _prior_latent(self, rng: np.random.Generator) -> np.ndarray:
        """A random decoder latent, drawn from the model's prior."""
        raise NotImplementedError


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


def load_runtime(
    model: str | os.PathLike[str] | None = None, device: str | torch.device = "auto"
) -> ModelRuntime:
    """Load a bundle (a folder, an installed bundle's name, or None for the built-in default)
    onto `device`, through its kind's builder and runtime.

    Raises:
        BundleError: not a bundle, a newer format, an unknown kind, a config that makes no
            sense, or weights that are missing, damaged or do not match the config.
        ValueError: an unknown device.
    """
    dev = resolve_device(device)
    info = read_bundle(resolve_model(model))
    config_path = info.path / CONFIG_FILE
    # A config is a stranger's text: its sizes are checked (by its kind and `check_audio`), and
    # the weights' header read, before anything is built; the build itself may then allocate
    # only a few times what the weights hold.
    try:
        kind = get_kind(info.kind)
        config = kind.config_type.from_dict(dict(info.doc["model"]))
        audio = AudioConfig.from_dict(dict(info.doc["audio"]))
        check_audio(audio)
        spec = NeighbourSpec.from_doc(info.doc)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise BundleError(f"{config_path} describes no valid model ({e})") from None
    if len(info.class_names) != config.num_classes:
        raise BundleError(
            f"{config_path} names {len(info.class_names)} classes for a model with "
            f"{config.num_classes}"
        )
    declared = read_weights_header(info)
    weights_bytes = sum(4 * math.prod(shape) for shape in declared.values())
    try:
        module = build_within(kind.build, config, audio, build_budget(weights_bytes))
    except BuildTooLarge:
        raise BundleError(
            f"{config_path} describes a model too large for its weights (building it asks for "
            f"more than {_megabytes(build_budget(weights_bytes))}; its weights hold "
            f"{_megabytes(weights_bytes)}): the config does not match the weights"
        ) from None
    except (TypeError, ValueError, RuntimeError, MemoryError) as e:
        raise BundleError(f"{config_path} describes no valid model ({e})") from None
    extra = load_weights(info, module, NEIGHBOUR_TENSORS if spec else ())
    module.to(dev).eval()
    runtime = kind.runtime_type(info, config, audio, module, dev)
    if spec is not None:
        runtime.neighbours = Neighbours.from_tensors(
            extra, spec, runtime.vector_dim, len(info.class_names), str(info.path)
        ).to(dev)
    runtime.check_output()
    return runtime
