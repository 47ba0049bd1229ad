"""Audio in and out: one clip from any file at the model's rate, many clips in parallel, and
crash-safe WAV writing.

This module must stay light (numpy, soundfile, soxr; no torch): it is imported by the
worker processes of the batched loader, and their start-up time is paid on every scan.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sampletool.errors import AudioError
from sampletool.fileio import atomic_write
from sampletool.progress import Cancelled, Progress

__all__ = [
    "AudioError",
    "ClipBatch",
    "ClipLoader",
    "detect_format",
    "load_clip",
    "load_clips",
    "write_wav",
]

# What a file's first bytes say it is. libsndfile also probes content, but when it fails its
# message names no format; knowing what the bytes claim lets us say "this .ogg is really a WAV".
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"fLaC", "FLAC"),
    (0, b"OggS", "OGG"),
    (0, b"ID3", "MP3"),
    (0, b"caff", "CAF"),
    (0, b".snd", "AU"),
    (0, b"riff", "W64"),
)


def detect_format(head: bytes) -> str | None:
    """Name the container format from a file's first 12 bytes, or None if none is recognised."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "WAV"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    # An MPEG audio frame header: 11 sync bits, a valid layer, a bitrate index that is not "bad".
    if len(head) >= 3 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06):
        if (head[2] & 0xF0) != 0xF0:
            return "MP3"
    return None


_EXTENSIONS = {
    "WAV": {".wav", ".wave", ".bwf"},
    "AIFF": {".aif", ".aiff", ".aifc"},
    "FLAC": {".flac"},
    "OGG": {".ogg", ".oga", ".opus"},
    "MP3": {".mp3"},
}


def _open_reason(path: Path, head: bytes, error: Exception) -> str:
    """Turn a libsndfile failure into a sentence: what the content is and what is wrong."""
    claimed = detect_format(head)
    detail = str(error).split(": ", 1)[-1].strip() if str(error) else type(error).__name__
    detail = detail.replace(f"Error opening {str(path)!r}: ", "")
    if claimed is None:
        return "not an audio file (its content is no format we can read)"
    mislabel = ""
    exts = _EXTENSIONS.get(claimed)
    if exts and path.suffix.lower() not in exts:
        mislabel = f"; despite its '{path.suffix}' extension the content is {claimed}"
    return f"damaged or unsupported {claimed} file ({detail}){mislabel}"


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except OSError as e:
        raise AudioError(path, f"cannot be read ({e.strerror or e})") from None
    if path.is_dir():
        raise AudioError(path, "is a folder, not an audio file")
    if st.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except OSError as e:
        raise AudioError(path, f"cannot be read ({e.strerror or e})") from None
    return head, st.st_size


def open_audio(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open an audio file for reading, by its content, or say in words why it cannot be.

    Returns:
        An open `soundfile.SoundFile` with a valid rate and at least one frame (close it, or
        use it as a context manager).

    Raises:
        AudioError: missing, unreadable, empty, not audio, damaged, or without frames.
    """
    path = Path(path)
    head, _ = _read_head(path)
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # libsndfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioError(path, _open_reason(path, head, e)) from None
    if f.samplerate <= 0 or f.frames <= 0:
        f.close()
        reason = "contains no audio (0 frames)" if f.frames <= 0 else "invalid sample rate"
        raise AudioError(path, reason)
    return f


def load_clip(
    path: str | os.PathLike[str],
    offset: float = 0.0,
    seconds: float = 2.0,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Read `seconds` of audio starting at `offset`, as mono float32 at `sample_rate`.

    Only the frames needed are decoded (the file is seeked, so an offset one hour into a long
    file costs the same as offset 0). Channels are averaged; the rate is converted with a
    band-limited resampler (soxr, high quality); short files are zero-padded and long ones
    cropped. The format comes from the file's content, never its extension. NaN or infinite
    samples become zeros.

    Args:
        path: an audio file (wav, aiff, flac, ogg, mp3 and whatever else libsndfile reads).
        offset: start, in seconds from the beginning of the file. Must be inside the file.
        seconds: length of the clip.
        sample_rate: rate of the returned clip in Hz.

    Returns:
        Float32 array of shape [round(sample_rate * seconds)].

    Raises:
        AudioError: the file is missing, unreadable, empty, not audio, damaged, or `offset`
            is past its end.
        ValueError: a negative offset or a non-positive length or rate (a caller's bug).
    """
    if not (offset >= 0.0 and math.isfinite(offset)):
        raise ValueError(f"offset must be a finite number >= 0, got {offset}")
    if not seconds > 0 or sample_rate <= 0:
        raise ValueError(f"seconds and sample_rate must be positive, got {seconds}, {sample_rate}")
    path = Path(path)
    n_out = round(sample_rate * seconds)
    with open_audio(path) as f:
        sr = f.samplerate
        frames = f.frames
        start = round(offset * sr)
        if start >= frames:
            raise AudioError(
                path, f"offset {offset:.3f} s is past the end (the file lasts {frames / sr:.3f} s)"
            )
        # 10 ms of context either side, so the resampler's filter sees the real signal at the
        # clip's edges (not silence), then crop it away after resampling.
        context = math.ceil(0.01 * sr) if sr != sample_rate else 0
        lead = min(start, context)
        n_in = min(math.ceil(seconds * sr) + context + lead, frames - start + lead)
        try:
            if start - lead:
                f.seek(start - lead)
            data = f.read(n_in, dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioError(path, f"decoding failed ({e})") from None
    if data.shape[0] <= lead:
        raise AudioError(path, "no audio could be decoded (the file is truncated)")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")[round(lead * sample_rate / sr) :]
    out = np.zeros(n_out, dtype=np.float32)
    n = min(n_out, mono.shape[0])
    out[:n] = mono[:n]
    return out


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV through a temporary file, so a crash never leaves half a file.

    Raises:
        OSError: the folder cannot be written (or `path` is a folder).
    """
    return atomic_write(
        path, lambda p: sf.write(str(p), audio, sample_rate, subtype="PCM_16", format="WAV")
    )


@dataclass
class ClipBatch:
    """Clips loaded from many files.

    Attributes:
        audio: float32 array [n_ok, samples], one row per readable file, in input order (with a
            loader transform: the stacked transformed clips).
        indices: for each row of `audio`, the position of its file in the input.
        failures: (input position, path, reason) for every file that could not be read.
    """

    audio: np.ndarray
    indices: list[int] = field(default_factory=list)
    failures: list[tuple[int, str, str]] = field(default_factory=list)


Transform = Callable[[np.ndarray], np.ndarray]
_worker_transform: Transform | None = None


def _init_worker(transform: Transform | None) -> None:
    global _worker_transform
    _worker_transform = transform
    if transform is not None and hasattr(transform, "init_worker"):
        transform.init_worker()


def _load_task(
    task: tuple[int, str, float, float, int], transform: Transform | None = None
) -> tuple[int, np.ndarray | str]:
    i, path, offset, seconds, sample_rate = task
    transform = transform or _worker_transform
    try:
        clip = load_clip(path, offset, seconds, sample_rate)
        return i, transform(clip) if transform is not None else clip
    except AudioError as e:
        return i, e.reason
    except Exception as e:  # a decoder bug must not end a scan of 100k files
        return i, f"unexpected error while decoding ({type(e).__name__}: {e})"


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _context() -> mp.context.BaseContext:
    # forkserver: workers fork from a clean server process, not from a parent that may hold
    # torch's thread pools or a Qt event loop (forking those can deadlock).
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        # Workers fork from the server with these already imported. Without "__main__", every
        # new pool's workers re-import the caller's script (and often torch, ~0.6 s) before
        # their first file; sampletool.features (torch) serves loaders with a LogMelTransform.
        # Importing torch starts no threads, so forking after it is safe.
        ctx.set_forkserver_preload(["__main__", "sampletool.audio", "sampletool.features"])
    return ctx


def windowed_imap(pool, fn: Callable, tasks: Iterable, workers: int, chunk: int) -> Iterator:
    """`pool.imap(fn, tasks)` in order, with tasks handed over a window at a time.

    Two windows are in flight (the next is queued before this one is drained), so workers
    never wait; a caller that stops early (cancel) leaves at most two windows of work for the
    pool's close() to wait for, not the whole list.
    """
    it = iter(tasks)
    size = workers * chunk * 4
    current = pool.imap(fn, list(itertools.islice(it, size)), chunksize=chunk)
    while current is not None:
        window = list(itertools.islice(it, size))
        following = pool.imap(fn, window, chunksize=chunk) if window else None
        yield from current
        current = following


class ClipLoader:
    """A pool of worker processes that decode clips; reuse one across calls to save start-up.

    With `workers=0` everything runs in the calling process (useful for a handful of files).
    Use as a context manager, or call `close()`.

    Args:
        workers: worker processes (default: one per core, at most 8); 0 for none.
        seconds, sample_rate: the clips' length and rate.
        transform: a picklable callable applied to each clip inside the worker (for example
            `sampletool.features.LogMelTransform`): per-clip work then runs in parallel, and
            only its (smaller) result crosses the pipe. It may define `init_worker()`.
    """

    def __init__(
        self,
        workers: int | None = None,
        seconds: float = 2.0,
        sample_rate: int = 16000,
        transform: Transform | None = None,
    ) -> None:
        self.workers = _default_workers() if workers is None else max(0, int(workers))
        self.seconds = seconds
        self.sample_rate = sample_rate
        self.transform = transform
        self._pool = (
            _context().Pool(self.workers, _init_worker, (transform,)) if self.workers > 0 else None
        )

    def __enter__(self) -> ClipLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            # Let the workers finish the few tasks they were given (see iter_clips) and exit.
            # terminate() would kill them mid-write, and a worker killed while holding the
            # result queue's lock deadlocks the pool's shutdown (close() never returns).
            self._pool.close()
            self._pool.join()
            self._pool = None

    def iter_clips(
        self,
        paths: Sequence[str | os.PathLike[str]],
        offsets: Sequence[float] | None = None,
    ) -> Iterator[tuple[int, np.ndarray | str]]:
        """Yield (input position, clip (transformed, if so set) or failure reason) for every
        path, in input order."""
        if offsets is not None and len(offsets) != len(paths):
            raise ValueError("offsets must have one entry per path")
        tasks: Iterable[tuple[int, str, float, float, int]] = (
            (i, os.fspath(p), float(offsets[i]) if offsets is not None else 0.0,
             self.seconds, self.sample_rate)
            for i, p in enumerate(paths)
        )  # fmt: skip
        if self._pool is None:
            yield from (_load_task(t, self.transform) for t in tasks)
            return
        # Small chunks keep every worker busy and progress smooth; large ones cut IPC overhead.
        chunk = max(1, min(16, len(paths) // (self.workers * 8) or 1))
        yield from windowed_imap(self._pool, _load_task, tasks, self.workers, chunk)

    def load(
        self,
        paths: Sequence[str | os.PathLike[str]],
        offsets: Sequence[float] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ClipBatch:
        """Load every path; bad files are listed in `failures` and the rest carry on.

        Raises:
            Cancelled: `cancel` was set; its `partial` is the batch loaded so far.
        """
        n_samples = round(self.sample_rate * self.seconds)
        rows: list[np.ndarray] = []
        batch = ClipBatch(audio=np.empty((0, n_samples), np.float32))
        if self.transform is not None:
            batch.audio = np.empty((0,), np.float32)
        total = len(paths)
        for done, (i, result) in enumerate(self.iter_clips(paths, offsets), start=1):
            if isinstance(result, str):
                batch.failures.append((i, os.fspath(paths[i]), result))
            else:
                rows.append(result)
                batch.indices.append(i)
            if progress is not None:
                progress(done, total, os.fspath(paths[i]))
            if cancel is not None and cancel.is_set():
                break
        if rows:
            batch.audio = np.stack(rows)
        if cancel is not None and cancel.is_set():
            raise Cancelled("loading cancelled", partial=batch)
        return batch


def load_clips(
    paths: Sequence[str | os.PathLike[str]],
    offsets: Sequence[float] | None = None,
    seconds: float = 2.0,
    sample_rate: int = 16000,
    workers: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ClipBatch:
    """Load clips from many files with several worker processes, skipping bad files.

    A one-off convenience around `ClipLoader`; for repeated calls keep a `ClipLoader` open.
    A handful of files is read in this process, where a pool would cost more than it saves.
    """
    if workers is None and len(paths) < 8:
        workers = 0
    with ClipLoader(workers, seconds, sample_rate) as loader:
        return loader.load(paths, offsets, progress, cancel)
