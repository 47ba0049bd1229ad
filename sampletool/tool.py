"""`SoundSampleTool`: the facade scripts use, a thin layer over a model runtime and a library.

It keeps the shape of SampleVAE's `tool_class` (embed, predict, generate, find_similar,
class_names) without its limits. The CLI, the GUI and the library use the runtime
(`sampletool.models.runtime`) and the `Library` directly; nothing in the engine depends on this
module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sampletool.audio import load_clips, write_wav
from sampletool.library import Library, LibraryError, ScanReport
from sampletool.models.runtime import AudioInput, ModelRuntime, load_runtime
from sampletool.progress import Progress


class SoundSampleTool:
    """Embed, classify and generate sounds with one model bundle, and search a library.

    Args:
        model_dir: a bundle folder or an installed bundle's name; None for the built-in default.
        library_dir: the sample library this tool searches (`find_similar`, `scan_library`).
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
        self.runtime: ModelRuntime = load_runtime(model_dir, device)
        self.library_dir = Path(library_dir) if library_dir is not None else None
        self.library_segmentation = library_segmentation
        self._library: Library | None = None

    # -- description ----------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        """The classifier's classes, in output order; empty for a model without classifier."""
        return self.runtime.class_names

    @property
    def latent_dim(self) -> int:
        """Length of a search vector (`embed`)."""
        return self.runtime.vector_dim

    @property
    def sample_rate(self) -> int:
        return self.runtime.sample_rate

    @property
    def model_id(self) -> str:
        return self.runtime.model_id

    def __repr__(self) -> str:
        return f"SoundSampleTool(model={self.runtime.name!r}, device={str(self.runtime.device)!r})"

    # -- one sound ------------------------------------------------------------------------------

    def embed(self, audio_file_or_array: AudioInput, offset: float = 0.0) -> np.ndarray:
        """The search vector of one sound, float32 [latent_dim] (64 for the built-in model).

        An array is mono (or [channels, samples]) audio at the model's sample rate.

        Raises:
            AudioError: the file cannot be read.
        """
        return self.runtime.read(audio_file_or_array, offset).vectors[0]

    def latent(self, audio_file_or_array: AudioInput, offset: float = 0.0) -> np.ndarray:
        """The latent of one sound for generation: its point in the decoder's space. `generate`
        blends these; they are not search vectors (`embed`).

        Raises:
            AudioError: the file cannot be read.
        """
        return self.runtime.read(audio_file_or_array, offset).latents[0]

    def predict(self, target_file: AudioInput, offset: float = 0.0) -> tuple[np.ndarray, str]:
        """Classify one sound.

        Returns:
            (probabilities float32 [num_classes] in `class_names` order, the likeliest class).

        Raises:
            ModelError: the model has no classifier.
            AudioError: the file cannot be read.
        """
        self.runtime.require_classifier()
        probs = self.runtime.read(target_file, offset).probs
        assert probs is not None  # a model with classes has a classifier (checked at load)
        return probs[0], self.class_names[int(np.argmax(probs[0]))]

    def embed_files(
        self, files: Sequence[str | os.PathLike[str]], workers: int | None = None
    ) -> tuple[np.ndarray, list[int], list[tuple[int, str, str]]]:
        """Search vectors of many files, decoding in worker processes; bad files are skipped.

        Returns:
            (vectors [n_ok, latent_dim], input positions of those rows, failures as
            (position, path, reason)).
        """
        audio = self.runtime.audio
        batch = load_clips(files, seconds=audio.seconds, sample_rate=audio.sample_rate,
                           workers=workers)  # fmt: skip
        return self.runtime.encode_clips(batch.audio).vectors, batch.indices, batch.failures

    # -- generation -----------------------------------------------------------------------------

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
        rt = self.runtime
        if latents is not None:
            if len(audio_files):
                warnings.warn("both latents and audio_files given: using the latents", stacklevel=2)
            lat = np.asarray(latents, np.float32).reshape(-1, *rt.latent_shape)
        elif len(audio_files):
            lat = np.stack([self.latent(f) for f in audio_files])
        else:
            lat = np.empty((0, *rt.latent_shape), np.float32)
        z = rt.blend(lat, weights, normalize_weights, variance, seed)
        audio = rt.decode(z, seed=0 if seed is None else seed, iterations=griffin_lim_iters)[0]
        if out_file is not None:
            write_wav(out_file, audio, rt.sample_rate)
        return audio

    # -- library --------------------------------------------------------------------------------

    @property
    def library(self) -> Library:
        """The `Library` of `library_dir` (opened on first use).

        Raises:
            LibraryError: no library_dir was given, or it is not a folder.
        """
        if self._library is None:
            if self.library_dir is None:
                raise LibraryError("no library: create the tool with library_dir=FOLDER")
            self._library = Library(
                self.library_dir, self.runtime, segmentation=self.library_segmentation
            )
        return self._library

    def scan_library(
        self, workers: int | None = None, progress: Progress | None = None, cancel=None
    ) -> ScanReport:
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
        found = self.library.find_similar(target, num_similar, offset, same_kind=same_kind)
        return found.paths, found.onsets, found.distances
