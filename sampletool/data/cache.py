"""Feature cache: a dataset's clips and log-mel features as memory-mapped arrays on disk.

Built once, in parallel, and reused: by a resumed training run, and by any other model with the
same audio parameters. Each array has a `done` mask beside it, flushed with every chunk, so an
interrupted build resumes where it stopped. Files that cannot be decoded are marked failed and
left out of training.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from sampletool.audio import ClipLoader
from sampletool.data.dataset import Dataset
from sampletool.features import AudioConfig, LogMelTransform, log_mel
from sampletool.fileio import atomic_write
from sampletool.progress import Progress, check_cancel

PENDING, DONE, FAILED = 0, 1, 2
CHUNK = 256


class FeatureCache:
    """Cached features ([N, n_mels, T] float16) and, on request, clips ([N, samples] float16).

    The cache folder is `<dataset>/cache/<key>`, the key hashing the audio parameters and the
    manifest, so a changed dataset or frontend never reads stale features.
    """

    def __init__(self, dataset: Dataset, audio: AudioConfig) -> None:
        self.dataset = dataset
        self.audio = audio
        manifest = (dataset.root / "manifest.csv").read_bytes()
        key = hashlib.sha1(
            json.dumps(audio.to_dict(), sort_keys=True).encode() + manifest
        ).hexdigest()[:16]
        self.dir = dataset.root / "cache" / key
        self.n = len(dataset)

    # -- arrays ---------------------------------------------------------------------------------

    def _shape(self, kind: str) -> tuple[int, ...]:
        if kind == "features":
            return (self.n, self.audio.n_mels, self.audio.num_frames)
        return (self.n, self.audio.num_samples)

    def _array(self, kind: str, writable: bool) -> np.memmap:
        path = self.dir / f"{kind}.npy"
        if writable and not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            return open_memmap(path, mode="w+", dtype=np.float16, shape=self._shape(kind))
        arr = np.load(path, mmap_mode="r+" if writable else "r")
        if arr.shape != self._shape(kind) or arr.dtype != np.float16:
            raise ValueError(f"{path} has shape {arr.shape}, expected {self._shape(kind)}")
        return arr

    def _status_path(self, kind: str) -> Path:
        return self.dir / f"{kind}.status.npy"

    def status(self, kind: str = "features") -> np.ndarray:
        """Per file: 0 pending, 1 done, 2 failed (unreadable)."""
        p = self._status_path(kind)
        if not p.exists():
            return np.zeros(self.n, np.uint8)
        s = np.load(p)
        return s if s.shape == (self.n,) else np.zeros(self.n, np.uint8)

    def _save_status(self, kind: str, status: np.ndarray) -> None:
        atomic_write(self._status_path(kind), lambda p: np.save(p, status))

    def is_complete(self, kind: str = "features") -> bool:
        return bool((self.status(kind) != PENDING).all())

    def features(self) -> np.ndarray:
        """Read-only memory map of the features, float16 [N, n_mels, T]."""
        return self._array("features", writable=False)

    def clips(self) -> np.ndarray:
        """Read-only memory map of the clips, float16 [N, num_samples]."""
        return self._array("clips", writable=False)

    def failures(self) -> list[tuple[str, str]]:
        p = self.dir / "failures.json"
        return [tuple(x) for x in json.loads(p.read_text())] if p.exists() else []

    # -- building -------------------------------------------------------------------------------

    def build(
        self,
        with_clips: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Decode and compute whatever is missing.

        Raises:
            Cancelled: `cancel` was set; what was computed is kept, and the next build goes on
                from there.
        """
        kinds = ["features", "clips"] if with_clips else ["features"]
        statuses = {k: self.status(k) for k in kinds}
        todo = np.flatnonzero(np.logical_or.reduce([s == PENDING for s in statuses.values()]))
        if len(todo) == 0:
            return
        arrays = {k: self._array(k, writable=True) for k in kinds}
        failures = dict(self.failures())
        done_before = self.n - len(todo)
        paths = self.dataset.paths
        # Features are computed in the workers; with clips wanted, in the parent from the clips.
        transform = None if with_clips else LogMelTransform(self.audio)
        with ClipLoader(workers, self.audio.seconds, self.audio.sample_rate, transform) as loader:
            for start in range(0, len(todo), CHUNK):
                idx = todo[start : start + CHUNK]
                rows, clips = [], []
                for j, result in loader.iter_clips([paths[i] for i in idx]):
                    i = int(idx[j])
                    if isinstance(result, str):
                        failures[paths[i]] = result
                        for s in statuses.values():
                            s[i] = FAILED
                    else:
                        rows.append(i)
                        clips.append(result)
                if rows:
                    batch = np.stack(clips)
                    if with_clips:
                        arrays["clips"][rows] = batch.astype(np.float16)
                        batch = log_mel(torch.from_numpy(batch), self.audio).numpy()
                    arrays["features"][rows] = batch.astype(np.float16)
                    for k in kinds:
                        arrays[k].flush()
                    for s in statuses.values():
                        s[rows] = DONE
                for k in kinds:
                    self._save_status(k, statuses[k])
                (self.dir / "failures.json").write_text(json.dumps(sorted(failures.items())))
                if progress is not None:
                    n_done = done_before + min(start + CHUNK, len(todo))
                    progress(n_done, self.n, "caching features")
                check_cancel(
                    cancel, "caching features was cancelled; the next run goes on from here"
                )
