"""Audio in and out: one clip from any file at the model's rate, many clips in parallel, and
crash-safe WAV writing.

This module must stay light (numpy, soundfile, soxr; no torch): it is imported by the
worker processes of the batched loader, and their start-up time is paid on every scan.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import signal
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from sampletool.errors import AudioError, WorkerError
from sampletool.fileio import atomic_write, native_path
from sampletool.progress import Cancelled, Progress

__all__ = [
    "AudioError",
    "ClipBatch",
    "ClipLoader",
    "WorkerError",
    "WorkerPool",
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


READABLE_FORMATS = "WAV, AIFF, FLAC, Ogg and MP3"  # what a scan reads, in words for messages

_EXTENSIONS = {
    "WAV": {".wav", ".wave", ".bwf"},
    "AIFF": {".aif", ".aiff", ".aifc"},
    "FLAC": {".flac"},
    "OGG": {".ogg", ".oga", ".opus"},
    "MP3": {".mp3"},
}


# WAV format tags (mmreg.h): what libsndfile reads, and the names of some it does not.
_WAV_READABLE = {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0040, 0xFFFE}
_WAV_CODECS = {
    0x0000: "unknown codec",
    0x0002: "Microsoft ADPCM",
    0x0010: "OKI ADPCM",
    0x0011: "IMA ADPCM",
    0x0014: "G.723 ADPCM",
    0x0020: "Yamaha ADPCM",
    0x0022: "DSP Group TrueSpeech",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0042: "G.723.1",
    0x0045: "G.726 ADPCM",
    0x0050: "MPEG audio",
    0x0055: "MPEG Layer 3 (MP3)",
    0x0064: "G.726 ADPCM",
    0x0092: "Dolby AC-3 (S/PDIF)",
    0x00FF: "AAC",
    0x0160: "Windows Media Audio 1",
    0x0161: "Windows Media Audio",
    0x0162: "Windows Media Audio Pro",
    0x0163: "Windows Media Audio Lossless",
    0x1610: "HE-AAC",
    0x2000: "Dolby AC-3",
    0x2001: "DTS",
    0x674F: "Ogg Vorbis",
    0x6750: "Ogg Vorbis",
    0x6751: "Ogg Vorbis",
    0x676F: "Ogg Vorbis",
    0x6770: "Ogg Vorbis",
    0x6771: "Ogg Vorbis",
    0xF1AC: "FLAC",
}


def _wav_chunks(f: BinaryIO) -> Iterator[tuple[bytes, int, int]]:
    """(id, offset of its body, size) of each top-level chunk of the RIFF/RF64 WAVE file open
    as `f`, in order; nothing for another file. Stops at the first truncated header. The caller
    may read from `f` between chunks."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return
    at = 12
    for _ in range(64):  # chunks before fmt and data (JUNK, bext, fact, ...) are few
        f.seek(at)
        header = f.read(8)
        if len(header) < 8:
            return
        size = struct.unpack("<I", header[4:])[0]
        yield header[:4], at + 8, size
        at += 8 + size + (size & 1)


def _fmt_tag(f: BinaryIO, at: int, size: int) -> int | None:
    """The format tag of the fmt chunk whose body is at `at` in `f` (the sub-format's, for
    WAVE_FORMAT_EXTENSIBLE); None if it is too short to hold one."""
    f.seek(at)
    body = f.read(min(size, 40))
    if len(body) < 2:
        return None
    tag = struct.unpack("<H", body[:2])[0]
    if tag == 0xFFFE and len(body) >= 26:  # the sub-format GUID starts with the tag
        tag = struct.unpack("<H", body[24:26])[0]
    return tag


def wav_format_tag(path: str | os.PathLike[str]) -> int | None:
    """The format tag of a RIFF/RF64 WAVE file's fmt chunk (the sub-format's, for
    WAVE_FORMAT_EXTENSIBLE), or None when the file has no readable fmt chunk."""
    try:
        with open(path, "rb") as f:
            for chunk, at, size in _wav_chunks(f):
                if chunk == b"fmt ":
                    return _fmt_tag(f, at, size)
    except OSError:
        return None
    return None


# Ogg Vorbis in WAV (the old Vorbis ACM codec's tags): the data chunk holds a whole Ogg
# stream, which libsndfile reads on its own. LMMS ships samples like this (kick04.ogg).
_WAV_OGG_TAGS = {0x674F, 0x6750, 0x6751, 0x676F, 0x6770, 0x6771}
_EMBEDDED_MAX = 256 * 2**20  # bytes: a larger wrapped stream is refused, not read into memory


def _embedded_ogg(path: Path) -> sf.SoundFile | None:
    """The Ogg stream an Ogg-Vorbis-in-WAV file wraps, opened; None if it wraps none. One
    walk over the chunks: the fmt chunk's tag, then the data chunk's stream."""
    try:
        with open(path, "rb") as f:
            tag = None
            for chunk, at, size in _wav_chunks(f):
                if chunk == b"fmt ":
                    tag = _fmt_tag(f, at, size)
                if chunk != b"data":
                    continue
                f.seek(at)
                if tag not in _WAV_OGG_TAGS or size > _EMBEDDED_MAX or f.read(4) != b"OggS":
                    return None
                f.seek(at)
                return sf.SoundFile(io.BytesIO(f.read(size)))
    except Exception:  # damaged inside: the caller reports the WAV's own failure
        return None
    return None


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
    if claimed == "WAV":
        tag = wav_format_tag(path)
        if tag is not None and tag not in _WAV_READABLE:
            codec = _WAV_CODECS.get(tag, "an unknown codec")
            return f"WAV with an unsupported codec: {codec} (format 0x{tag:04X}){mislabel}"
    return f"damaged or unsupported {claimed} file ({detail}){mislabel}"


# libmpg123 (libsndfile's MP3 decoder) writes "Note: Illegal Audio-MPEG-Header ..." and
# "Trying to resync..." straight to file descriptor 2 while it probes a file that is not MP3.
# Those lines mean nothing to a user (the file's failure is reported in words), so fd 2 points
# at /dev/null while such a file is opened. fd 2 is shared by the whole process: the lock and
# count keep overlapping openings (threads of the app) from restoring it too early, and the
# window is one open() call long.
_MPEG_SUFFIXES = {".mp3", ".mp2", ".mpeg", ".mpga"}
_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_stderr = -1


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    global _quiet_depth, _saved_stderr
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                sys.stderr.flush()
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    _saved_stderr = os.dup(2)
                    os.dup2(devnull, 2)
                finally:
                    os.close(devnull)
            except (OSError, ValueError, AttributeError):
                _saved_stderr = -1  # no fd 2 to silence (or none we may touch): carry on
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_stderr >= 0:
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)
                _saved_stderr = -1


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
    claimed = detect_format(head)
    mpeg = claimed == "MP3" or (claimed is None and path.suffix.lower() in _MPEG_SUFFIXES)
    try:
        with _quiet_stderr() if mpeg else contextlib.nullcontext():
            f = sf.SoundFile(native_path(path))  # a name that is not UTF-8 opens too
    except Exception as e:  # libsndfile raises LibsndfileError, RuntimeError or TypeError
        wrapped = _embedded_ogg(path) if claimed == "WAV" else None
        if wrapped is None:
            raise AudioError(path, _open_reason(path, head, e)) from None
        f = wrapped
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
_worker_setup_error: str | None = None


def _quit_with_parent() -> None:
    """Make this worker end, quietly, as soon as the process that started it ends.

    A worker outlives a parent that was killed or crashed (its forkserver stays up while any
    worker lives); it would finish its file and print a BrokenPipeError traceback writing a
    result nobody reads. multiprocessing gives each child a sentinel that becomes readable when
    the parent is gone; a thread waits on it."""
    parent = mp.parent_process()
    if parent is None:  # not a worker (tasks run in the calling process)
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="quit-with-parent", daemon=True).start()


def _setup_worker(initializer: Callable[..., object] | None, initargs: tuple) -> None:
    """A pool worker's start: tie it to its parent, then run the caller's set-up. A set-up that
    fails is remembered and raised (as a WorkerError) by every task, so the parent hears why."""
    global _worker_setup_error
    _quit_with_parent()
    if initializer is None:
        return
    try:
        initializer(*initargs)
    except Exception as e:
        _worker_setup_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _run_tasks(fn: Callable[[Any], Any], tasks: list) -> list:
    if _worker_setup_error is not None:
        raise WorkerError(f"the worker processes could not be set up ({_worker_setup_error})")
    return [fn(t) for t in tasks]


def _death_cause(processes: Iterable[Any]) -> str:
    """How a pool's dead worker ended, in words ("signal 9, SIGKILL"), from the exit codes of
    its processes; "" when none is known."""
    codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
    # Once one worker has died the pool terminates the others (SIGTERM): prefer another code.
    own = [c for c in codes if c != -signal.SIGTERM] or codes
    if not own:
        return ""
    code = own[0]
    if code > 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"
    hint = ": killed, perhaps by the system for lack of memory" if -code == signal.SIGKILL else ""
    return f"signal {-code}, {name}{hint}"


class WorkerPool:
    """Worker processes that run one function over many tasks, in order, and outlive a worker
    that dies.

    `multiprocessing.Pool` waits forever for the result of a worker that was killed (the OOM
    killer, a crash in a decoder), so this is built on `ProcessPoolExecutor`, which says so
    (BrokenProcessPool). The pool is then restarted and the tasks that were in flight are run
    again one at a time: the one that kills its worker again is the culprit, and becomes a
    failure with the reason (`fail(task, reason)`); the others succeed.

    Args:
        workers: worker processes (>= 1).
        initializer, initargs: each worker's set-up.

    Raises (from `imap` and the constructor):
        WorkerError: the workers cannot be started or set up.
    """

    in_flight_chunks = 2  # chunks queued per worker: workers never wait, and a stop leaves little
    death_grace = 1.0  # seconds a dead worker goes unreported before the pool is called broken

    def __init__(
        self, workers: int, initializer: Callable[..., object] | None = None, initargs: tuple = ()
    ) -> None:
        self.workers = max(1, int(workers))
        self._initializer, self._initargs = initializer, initargs
        self._executor: ProcessPoolExecutor | None = None
        self._running: set[Future] = set()
        self._worked = False  # some task has succeeded: the workers can run at all
        self._deaths = 0  # deaths in a row, before any task succeeded

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers, _context(), _setup_worker, (self._initializer, self._initargs)
            )
        return self._executor

    def _submit(self, fn: Callable[[Any], Any], tasks: list) -> Future:
        try:
            future = self._pool().submit(_run_tasks, fn, tasks)
        except BrokenProcessPool:
            raise  # a worker died before this call: the caller recovers
        except (OSError, EOFError, RuntimeError) as e:
            # The processes cannot start: no interpreter to run, no helper processes
            # (multiprocessing's resource tracker or forkserver gone: BrokenPipeError), a
            # limit on processes or memory.
            self._discard()
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise WorkerError(f"the worker processes could not be started ({reason})") from None
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future

    def _discard(self) -> str:
        """Shut a broken (or unwanted) pool down; returns how its dead worker ended."""
        executor, self._executor = self._executor, None
        if executor is None:
            return ""
        # The executor keeps its processes in a private dict; their exit codes are the only
        # way to say how a worker died. Without it the reason just names no signal.
        processes = list((getattr(executor, "_processes", None) or {}).values())
        if not self._running:
            executor.shutdown(wait=True)
            return _death_cause(processes)
        # Work nobody will read (a cancel, an error): stop it now, not after the file in hand,
        # which may take minutes or never end. A worker killed while writing its result leaves
        # half a message in the shared result pipe, and the executor's thread then waits for
        # the rest forever; with every worker dead, closing our copy of the pipe's write end
        # (the last one) ends that wait with EOF.
        results = getattr(executor, "_result_queue", None)
        manager = getattr(executor, "_executor_manager_thread", None)
        cause = _death_cause(processes)  # before the others are killed below
        # (No cancel_futures: Python 3.11's executor, breaking, fails on a cancelled future.)
        executor.shutdown(wait=False)
        for p in processes:
            with contextlib.suppress(Exception):
                p.kill()
        for p in processes:
            with contextlib.suppress(Exception):
                p.join()
        if results is not None:
            with contextlib.suppress(Exception):
                results._writer.close()
        if manager is not None:
            manager.join()
        self._running.clear()
        return cause

    def _dead_worker(self) -> bool:
        # By their sentinels, not their exit codes: reading an exit code consumes it, and the
        # executor's own thread may be reading it at the same time.
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        sentinels = [p.sentinel for p in processes if getattr(p, "_popen", None) is not None]
        return bool(sentinels) and bool(mp_connection.wait(sentinels, timeout=0))

    def _result(self, future: Future, cancel: threading.Event | None) -> list | None:
        """The future's results; None when `cancel` was set first.

        Raises:
            BrokenProcessPool: a worker died (the executor said so, or it has not said so
                `death_grace` seconds after: it is waiting for the rest of a result that
                the dead worker was halfway through sending, and will wait forever).
        """
        dead_since = None
        while True:
            if cancel is not None and cancel.is_set():
                return None
            if future.done():
                break
            wait_futures([future], timeout=0.1)
            if future.done() or not self._dead_worker():
                continue
            dead_since = dead_since or time.monotonic()
            if time.monotonic() - dead_since > self.death_grace:
                raise BrokenProcessPool("a worker died while sending its result")
        result = future.result()
        self._worked = True
        self._deaths = 0
        return result

    def _alone(self, fn: Callable[[Any], Any], task: Any, fail: Callable[[Any, str], Any],
               cancel: threading.Event | None) -> tuple[bool, Any]:  # fmt: skip
        """Run one task with nothing else in flight, so a worker's death is its own.
        Returns (done, result); done is False when `cancel` was set first."""
        while True:
            try:
                results = self._result(self._submit(fn, [task]), cancel)
            except BrokenProcessPool:
                how = self._discard()
                self._deaths += 1
                if not self._worked and self._deaths >= 3:
                    raise WorkerError("the worker processes die before finishing any file"
                                      + (f" ({how})" if how else "")) from None  # fmt: skip
                reason = "the decoder process died" + (f" ({how})" if how else "")
                return True, fail(task, f"{reason} reading this file")
            return (False, None) if results is None else (True, results[0])

    def imap(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Any],
        chunk: int,
        fail: Callable[[Any, str], Any],
        cancel: threading.Event | None = None,
    ) -> Iterator[Any]:
        """`fn(task)` for every task, in order, `chunk` tasks per hand-over. A task whose worker
        dies yields `fail(task, reason)` instead. Stops early (yielding no more) once `cancel`
        is set, without waiting for the file in hand."""
        it = iter(tasks)
        window: deque[tuple[Future | None, list]] = deque()

        def fill() -> None:
            while len(window) < self.workers * self.in_flight_chunks:
                part = list(itertools.islice(it, chunk))
                if not part:
                    return
                try:
                    window.append((self._submit(fn, part), part))
                except BrokenProcessPool:  # a worker died since the last result: recover
                    window.append((None, part))
                    return

        fill()
        try:
            while window:
                future, part = window[0]
                try:
                    if future is None:
                        raise BrokenProcessPool("a worker died")
                    results = self._result(future, cancel)
                except BrokenProcessPool:
                    # The pool is gone and with it every task in flight. Keep what finished,
                    # then run the rest one by one on a fresh pool to find the one that killed
                    # its worker.
                    held = list(window)
                    window.clear()
                    self._discard()
                    for f, p in held:
                        if f is not None and f.done() and f.exception() is None:
                            yield from f.result()
                            continue
                        for task in p:
                            done, result = self._alone(fn, task, fail, cancel)
                            if not done:
                                return
                            yield result
                    fill()
                    continue
                if results is None:
                    return
                window.popleft()
                fill()
                yield from results
        finally:
            # A caller that stops early leaves at most the window's work running; close()
            # stops it. (Cancelling queued futures here would save little, and Python 3.11's
            # executor fails on a cancelled future if a worker then dies.)
            window.clear()

    def close(self) -> None:
        """Stop the workers: at once if tasks are still running (their results are not
        wanted), else after they exit."""
        self._discard()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
            WorkerPool(self.workers, _init_worker, (transform,)) if self.workers > 0 else None
        )

    def __enter__(self) -> ClipLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def iter_clips(
        self,
        paths: Sequence[str | os.PathLike[str]],
        offsets: Sequence[float] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[tuple[int, np.ndarray | str]]:
        """Yield (input position, clip (transformed, if so set) or failure reason) for every
        path, in input order; with `cancel` set, stop (without waiting for the files that
        workers have in hand).

        Raises:
            WorkerError: the worker processes cannot be started.
        """
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
        yield from self._pool.imap(_load_task, tasks, chunk, lambda t, why: (t[0], why), cancel)

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
        for done, (i, result) in enumerate(self.iter_clips(paths, offsets, cancel), start=1):
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
