"""`SoundSampleTool`: the facade the CLI, the GUI and scripts use. Keeps the shape of SampleVAE's
`tool_class` (embed, predict, generate, class_names) without its limits."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sampletool.audio import load_clip, load_clips
from sampletool.errors import ModelError
from sampletool.features import features_to_audio, log_mel
from sampletool.fileio import atomic_write
from sampletool.models.bundle import ModelBundle, load_bundle
from sampletool.registry import resolve_model

log = logging.getLogger(__name__)

AudioInput = str | os.PathLike[str] | np.ndarray

# Latents beyond this many prior standard deviations decode to nothing new; clamping keeps
# unbounded vector arithmetic (huge or negative weights) finite all the way to the waveform.
_LATENT_LIMIT = 1e3
_PEAK = 10 ** (-0.3 / 20)  # peak-normalise to -0.3 dBFS: headroom for DAC and codec overshoot


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; anything else is passed to torch."""
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


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV through a temporary file, so a crash never leaves half a file."""
    return atomic_write(
        path, lambda p: sf.write(str(p), audio, sample_rate, subtype="PCM_16", format="WAV")
    )


class SoundSampleTool:
    """Embed, classify and generate sounds with one model bundle.

    Args:
        model_dir: a bundle folder or an installed bundle's name; None for the built-in default.
        library_dir: the sample library this tool searches (used by `find_similar`, which comes
            with the library index).
        library_segmentation: split long library files at onsets into separate entries (None:
            as the library was last scanned).
        device: 'auto', 'cpu', 'cuda', 'cuda:1', 'mps'.

    Several instances, with different models, may live in one process.

    Raises:
        BundleError: the model folder is not a usable bundle.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        library_dir: str | os.PathLike[str] | None = None,
        library_segmentation: bool | None = None,
        device: str | torch.device = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.bundle: ModelBundle = load_bundle(resolve_model(model_dir), self.device)
        self.model = self.bundle.model
        self.audio = self.bundle.audio
        self.library_dir = Path(library_dir) if library_dir is not None else None
        self.library_segmentation = library_segmentation
        self._library = None
        digest = hashlib.sha1()
        for name in ("config.json", "weights.safetensors"):
            digest.update((self.bundle.path / name).read_bytes())
        # Names this model's vectors in a library catalogue: the same bundle bytes, the same id.
        self.model_id = f"{self.bundle.name[:24]}-{digest.hexdigest()[:12]}"

    # -- description ----------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        """The classifier's classes, in output order; empty for a model without classifier."""
        return list(self.bundle.class_names)

    @property
    def latent_dim(self) -> int:
        return int(self.model.latent_dim)

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    def __repr__(self) -> str:
        return f"SoundSampleTool(model={self.bundle.name!r}, device={str(self.device)!r})"

    # -- audio -> vectors -----------------------------------------------------------------------

    def _clip(self, target: AudioInput, offset: float = 0.0) -> np.ndarray:
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

    @torch.inference_mode()
    def features(self, clips: np.ndarray) -> torch.Tensor:
        """Clips [B, num_samples] at the model's rate -> log-mel [B, n_mels, T] on the device."""
        return log_mel(torch.from_numpy(np.ascontiguousarray(clips)).to(self.device), self.audio)

    @property
    def batch_size(self) -> int:
        """Clips per forward pass. On a CPU one at a time is 2x faster than 64: the encoder's
        full-resolution activations (2 MB a clip) then stay in cache."""
        return 1 if self.device.type == "cpu" else 64

    @torch.inference_mode()
    def embed_clips(self, clips: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Clips [B, num_samples] -> search vectors (posterior means) float32 [B, latent]."""
        if len(clips) == 0:
            return np.empty((0, self.latent_dim), np.float32)
        batch_size = batch_size or self.batch_size
        out = [
            self.model.embed(self.features(clips[i : i + batch_size])).float().cpu().numpy()
            for i in range(0, len(clips), batch_size)
        ]
        return np.concatenate(out)

    @torch.inference_mode()
    def embed_features(
        self, features: np.ndarray, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Log-mel features [B, n_mels, T] -> (vectors float32 [B, latent], class
        probabilities float32 [B, classes] or None without a classifier)."""
        vecs, probs = [], []
        batch_size = batch_size or self.batch_size
        for i in range(0, len(features), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(features[i : i + batch_size], np.float32))
            v, p = self._vectors_and_probs(x.to(self.device))
            vecs.append(v)
            if p is not None:
                probs.append(p)
        if not vecs:
            return np.empty((0, self.latent_dim), np.float32), None
        return np.concatenate(vecs), (np.concatenate(probs) if probs else None)

    def _vectors_and_probs(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Features on the device -> (search vectors, class probabilities or None)."""
        post = self.model.encode(x)
        probs = torch.softmax(self.model.class_logits(post), -1) if self.class_names else None
        return post.mean.float().cpu().numpy(), None if probs is None else probs.cpu().numpy()

    def embed(self, audio_file_or_array: AudioInput, offset: float = 0.0) -> np.ndarray:
        """The search vector of one sound: the posterior mean, float32 [latent] (64 by default).

        An array is mono (or [channels, samples]) audio at the model's sample rate.

        Raises:
            AudioError: the file cannot be read.
        """
        return self.embed_clips(self._clip(audio_file_or_array, offset)[None])[0]

    @torch.inference_mode()
    def embed_and_predict(
        self, audio_file_or_array: AudioInput, offset: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One sound's search vector (`embed`) and class probabilities (`predict`; None without
        a classifier) from a single read and pass of the model.

        Raises:
            AudioError: the file cannot be read.
        """
        x = self.features(self._clip(audio_file_or_array, offset)[None])
        vectors, probs = self._vectors_and_probs(x)
        return vectors[0], None if probs is None else probs[0]

    @torch.inference_mode()
    def latent(self, audio_file_or_array: AudioInput, offset: float = 0.0) -> np.ndarray:
        """The latent of one sound for generation: its point in the decoder's space (the
        posterior mean through the flows), float32 [latent]. `generate` blends these; they are
        not search vectors (`embed`), which are read before the flows.

        Raises:
            AudioError: the file cannot be read.
        """
        x = self.features(self._clip(audio_file_or_array, offset)[None])
        return self.model.decoder_latent(self.model.encode(x))[0].float().cpu().numpy()

    def embed_files(
        self, files: Sequence[str | os.PathLike[str]], workers: int | None = None
    ) -> tuple[np.ndarray, list[int], list[tuple[int, str, str]]]:
        """Embed many files, decoding in worker processes; bad files are skipped.

        Returns:
            (vectors [n_ok, latent], input positions of those rows, failures as
            (position, path, reason)).
        """
        batch = load_clips(
            files, seconds=self.audio.seconds, sample_rate=self.audio.sample_rate, workers=workers
        )
        return self.embed_clips(batch.audio), batch.indices, batch.failures

    # -- classification -------------------------------------------------------------------------

    def _require_classifier(self) -> None:
        if not self.class_names or getattr(self.model, "classifier", None) is None:
            raise ModelError(
                f"model {self.bundle.name!r} has no classifier; train one with classes "
                "(sub-folders as classes) to classify sounds"
            )

    @torch.inference_mode()
    def predict_clips(self, clips: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Clips [B, num_samples] -> class probabilities float32 [B, num_classes]."""
        self._require_classifier()
        batch_size = batch_size or self.batch_size
        out = [
            torch.softmax(self.model.classify(self.features(clips[i : i + batch_size])), -1)
            .float()
            .cpu()
            .numpy()
            for i in range(0, len(clips), batch_size)
        ]
        return np.concatenate(out) if out else np.empty((0, len(self.class_names)), np.float32)

    def predict(self, target_file: AudioInput, offset: float = 0.0) -> tuple[np.ndarray, str]:
        """Classify one sound.

        Returns:
            (probabilities float32 [num_classes] in `class_names` order, the likeliest class).

        Raises:
            ModelError: the model has no classifier.
            AudioError: the file cannot be read.
        """
        self._require_classifier()
        probs = self.predict_clips(self._clip(target_file, offset)[None])[0]
        return probs, self.class_names[int(np.argmax(probs))]

    # -- generation -----------------------------------------------------------------------------

    @staticmethod
    def blend_weights(n: int, weights: Sequence[float] | None, normalize: bool) -> np.ndarray:
        """SampleVAE's weight semantics, made safe.

        A weights list of the wrong length means equal weights. With `normalize`, weights are
        divided by their sum; a sum of zero falls back to equal weights (with a warning).
        Without it, any finite weights are used as given (negative weights subtract).
        """
        if n == 0:
            return np.empty(0, np.float64)
        w = np.asarray(list(weights) if weights is not None else [], dtype=np.float64)
        if w.shape != (n,):
            if w.size:
                warnings.warn(f"{w.size} weights for {n} sounds: using equal weights", stacklevel=3)
            w = np.ones(n)
        if not np.isfinite(w).all():
            raise ValueError("weights must be finite numbers")
        if normalize:
            total = w.sum()
            if abs(total) < 1e-9:
                warnings.warn(
                    "the weights sum to zero and cannot be normalised: using equal weights",
                    stacklevel=3,
                )
                return np.full(n, 1.0 / n)
            w = w / total
        return w

    @torch.inference_mode()
    def decode(
        self, latents: np.ndarray | torch.Tensor, griffin_lim_iters: int = 32, seed: int | None = 0
    ) -> np.ndarray:
        """Latents [B, latent] in the decoder's space (`latent`, `blend_latent`) -> audio
        float32 [B, num_samples], each peak-normalised.

        Never returns NaN or samples beyond +-1, whatever the latent.
        """
        z = torch.as_tensor(np.asarray(latents, np.float32)).to(self.device)
        if z.dim() == 1:
            z = z[None]
        z = torch.nan_to_num(z, nan=0.0, posinf=_LATENT_LIMIT, neginf=-_LATENT_LIMIT)
        z = z.clamp(-_LATENT_LIMIT, _LATENT_LIMIT)
        feats = self.model.decode(z)
        audio = features_to_audio(feats, self.audio, n_iter=griffin_lim_iters, seed=seed)
        audio = torch.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0).float().cpu().numpy()
        peak = np.abs(audio).max(axis=1, keepdims=True)
        scale = np.where(peak > 1e-9, _PEAK / np.maximum(peak, 1e-9), 0.0)
        return (audio * scale).astype(np.float32)

    def blend_latent(
        self,
        latents: np.ndarray,
        weights: Sequence[float] | None = None,
        normalize_weights: bool = True,
        variance: float = 0.0,
        seed: int | None = None,
    ) -> np.ndarray:
        """The latent to decode: weighted sum of `latents` [K, latent] plus Gaussian noise of the
        given variance; a random prior draw when K is 0 (under a class prior: around a random
        class's centre)."""
        if not (variance >= 0 and math.isfinite(variance)):
            raise ValueError(f"variance must be a finite number >= 0, got {variance}")
        rng = np.random.default_rng(seed)
        latents = np.asarray(latents, np.float64).reshape(-1, self.latent_dim)
        if len(latents) == 0:
            z = rng.standard_normal(self.latent_dim)
            if getattr(self.model, "prior", "standard") == "class" and self.class_names:
                centres = self.model.class_centres.cpu().numpy()
                z = z + centres[rng.integers(len(self.class_names))]
        else:
            w = self.blend_weights(len(latents), weights, normalize_weights)
            z = w @ latents
        if variance > 0:
            z = z + rng.standard_normal(self.latent_dim) * math.sqrt(variance)
        return z.astype(np.float32)

    def generate(
        self,
        out_file: str | os.PathLike[str] | None = "generated.wav",
        audio_files: Sequence[AudioInput] = (),
        weights: Sequence[float] | None = (),
        normalize_weights: bool = True,
        variance: float = 0.0,
        latents: np.ndarray | None = None,
        seed: int | None = None,
        griffin_lim_iters: int = 32,
    ) -> np.ndarray:
        """Blend sounds in latent space, decode, and write a peak-normalised WAV.

        Args:
            out_file: where to write the WAV (16-bit, the model's rate); None to only return it.
            audio_files: sounds (paths or arrays) whose latents (`latent`) are blended.
            weights: one per sound (or per latent); the wrong number means equal weights.
            normalize_weights: divide the weights by their sum (equal weights if it is zero);
                False allows any vector arithmetic, negative weights included.
            variance: variance of Gaussian noise added to the blended latent.
            latents: blend these [K, latent] (from `latent`) instead of the files' latents.
            seed: seeds the noise, the random latent (no files, no latents) and the phase
                reconstruction, so the same call gives the same sound.
            griffin_lim_iters: phase-reconstruction iterations (more is slower and cleaner).

        Returns:
            The audio, float32 [num_samples], peak at -0.3 dBFS (all zeros if silent).
        """
        if latents is not None:
            if len(audio_files):
                warnings.warn("both latents and audio_files given: using the latents", stacklevel=2)
            lat = np.asarray(latents, np.float32).reshape(-1, self.latent_dim)
        elif len(audio_files):
            lat = np.stack([self.latent(f) for f in audio_files])
        else:
            lat = np.empty((0, self.latent_dim), np.float32)
        z = self.blend_latent(lat, weights, normalize_weights, variance, seed)
        audio = self.decode(z, griffin_lim_iters, seed=0 if seed is None else seed)[0]
        if out_file is not None:
            write_wav(out_file, audio, self.audio.sample_rate)
        return audio

    # -- library --------------------------------------------------------------------------------

    @property
    def library(self):
        """The `Library` of `library_dir` (opened on first use).

        Raises:
            LibraryError: no library_dir was given, or it is not a folder.
        """
        if self._library is None:
            from sampletool.library.library import Library, LibraryError

            if self.library_dir is None:
                raise LibraryError("no library: create the tool with library_dir=FOLDER")
            self._library = Library(self.library_dir, self, segmentation=self.library_segmentation)
        return self._library

    def scan_library(self, workers: int | None = None, progress=None, cancel=None):
        """Index `library_dir` incrementally; see `Library.scan`."""
        return self.library.scan(workers, progress, cancel)

    def find_similar(
        self,
        target: AudioInput,
        num_similar: int = 10,
        offset: float = 0.0,
        *,
        same_kind: bool = False,
    ) -> tuple[list[str], list[float], list[float]]:
        """The `num_similar` library entries nearest to `target` (a library entry, itself
        excluded; any audio file; or an audio array), as (files, onsets, distances), nearest
        first; with `same_kind`, only entries the classifier puts in the target's class. Scan
        the library first (`scan_library`)."""
        return self.library.find_similar(target, num_similar, offset, same_kind=same_kind)
