"""Per-file work of a library scan, run in worker processes: fingerprint, probe, segment,
compute features and, on a CPU, encode them.

On a CPU each worker loads the model runtime and sends back its readings (search vectors, class
probabilities, decoder latents): the encoder is most of a scan's work, and in the parent it
would run on one core. With a GPU the workers send float16 features and the parent encodes them
in batches on the device. Workers fork from the loader's forkserver (see `sampletool.audio`).
This module stays light (no torch unless the worker encodes).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sampletool.audio import AudioError, WorkerPool, _default_workers, load_clip, open_audio

if TYPE_CHECKING:
    from sampletool.features import AudioConfig

ENCODE_BATCH = 64  # segments featurised and encoded at a time: bounds a worker's memory
_QUICK_BLOCK = 1 << 16


def quick_hash(path: str | os.PathLike[str], size: int | None = None) -> str:
    """A content fingerprint that reads at most 128 KiB: size + first and last 64 KiB.

    Enough to recognise a moved file without re-reading the library; exact-duplicate reports
    confirm candidates with `full_hash`.
    """
    size = os.path.getsize(path) if size is None else size
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        h.update(f.read(_QUICK_BLOCK))
        if size > 2 * _QUICK_BLOCK:
            f.seek(size - _QUICK_BLOCK)
        h.update(f.read(_QUICK_BLOCK))
    return h.hexdigest()


@dataclass
class FileResult:
    """What a worker found in one file."""

    index: int
    hash: str | None = None
    info: dict | None = None
    onsets: list[float] = field(default_factory=list)  # where its segments start (if read)
    features: np.ndarray | None = None  # float16 [segments, ...] (when not encoded here)
    encoding: Any = None  # sampletool.models.runtime.Encoding of the segments (encoded here)
    error: str | None = None
    retry: bool = False  # the error is the system's (permission, I/O...), not the content's


_transform: Any = None
_audio: AudioConfig | None = None
_segment = False
_runtime: Any = None


def _init(
    frontend: Any, audio: AudioConfig, segment: bool, model_dir: str | None = None, kind: Any = None
) -> None:
    """Set up a worker: the model's per-clip frontend and, to encode here, its runtime. `kind`
    (a ModelKind, pickled by reference) is registered first, so a kind registered at run time
    in the parent (a plug-in's, a test's) is known here too."""
    global _transform, _audio, _segment, _runtime
    _audio, _segment = audio, segment
    _transform = frontend
    if hasattr(frontend, "init_worker"):
        frontend.init_worker()
    _runtime = None
    if model_dir is not None:
        from sampletool.models import kinds
        from sampletool.models.runtime import load_runtime

        if kind is not None:
            kinds.register(kind)
        _runtime = load_runtime(model_dir, device="cpu")


def process_file(task: tuple[int, str, int]) -> FileResult:
    """Probe, segment and featurise one file (in a worker, after `_init`)."""
    i, path, size = task
    assert _transform is not None and _audio is not None  # set by _init
    res = FileResult(i)
    try:
        res.hash = quick_hash(path, size)
        try:
            with open_audio(path) as f:  # (not sf.info: this keeps libmpg123's notes quiet)
                res.info = {
                    "duration": f.frames / f.samplerate,
                    "sample_rate": int(f.samplerate),
                    "channels": int(f.channels),
                }
        except Exception:
            res.info = None  # load_clip below gives the readable reason
        onsets = [0.0]
        if _segment and res.info and res.info["duration"] > _audio.seconds:
            from sampletool.segment import segment_file

            # The whole file, however long: the analysis streams it (about 2.5 kB of memory
            # per second of audio), and the segments are encoded a batch at a time below.
            onsets = segment_file(path, max_seconds=None) or [0.0]
        res.onsets = [float(t) for t in onsets]
        parts, encodings = [], []
        for start in range(0, len(onsets), ENCODE_BATCH):
            clips = [load_clip(path, t, _audio.seconds, _audio.sample_rate)
                     for t in onsets[start : start + ENCODE_BATCH]]  # fmt: skip
            feats = np.stack([_transform(c) for c in clips])
            if _runtime is not None:
                encodings.append(_runtime.encode(feats))
            else:
                parts.append(feats)
        if _runtime is not None:
            from sampletool.models.encoding import Encoding

            res.encoding = Encoding.concat(encodings)
        else:
            res.features = parts[0] if len(parts) == 1 else np.concatenate(parts)
    except AudioError as e:
        res.error = e.reason
    except OSError as e:  # from the system, not the content: the next scan tries again
        res.error = f"cannot be read ({e.strerror or e})"
        res.retry = True
    except Exception as e:  # a decoder bug must not end a scan of 100k files
        res.error = f"unexpected error while reading ({type(e).__name__}: {e})"
    return res


def _died(task: tuple[int, str, int], reason: str) -> FileResult:
    return FileResult(task[0], error=reason)


class ScanPool:
    """Worker processes for `process_file`; `workers=0` runs in the calling process."""

    def __init__(
        self,
        frontend: Any,
        audio: AudioConfig,
        segment: bool,
        workers: int | None = None,
        model_dir: str | None = None,
        kind: Any = None,
    ) -> None:
        """`frontend`: the model's picklable per-clip feature transform; `model_dir`: encode in
        the workers with this bundle (CPU, its `kind` registered there), or None to send
        features back."""
        self.workers = self.worker_count(workers)
        self.frontend, self.audio, self.segment = frontend, audio, segment
        self._pool = (
            WorkerPool(self.workers, _init, (frontend, audio, segment, model_dir, kind))
            if self.workers
            else None
        )

    @staticmethod
    def worker_count(workers: int | None) -> int:
        return _default_workers() if workers is None else max(0, workers)

    def imap(
        self, tasks: list[tuple[int, str, int]], cancel: threading.Event | None = None
    ) -> Iterator[FileResult]:
        """`process_file` over the tasks, in order. A file whose worker process dies is a
        failure with the reason; with `cancel` set the results stop (the files in hand are
        dropped).

        Raises:
            WorkerError: the worker processes cannot be started or set up.
        """
        if self._pool is None:
            _init(self.frontend, self.audio, self.segment, None)  # in-process: the parent encodes
            yield from map(process_file, tasks)
            return
        chunk = max(1, min(8, len(tasks) // (self.workers * 8) or 1))
        yield from self._pool.imap(process_file, tasks, chunk, _died, cancel)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> ScanPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
