"""Crafted audio files and names that once broke Sample Tool (issue 24), written on demand.

Each maker writes into the folder it is given and returns the path(s). `KillOnMarker` is the
one helper that is not a file: a clip transform that kills its own worker process when it
reads the clip of `decoder_killer`, the way a crash in a decoder or the OOM killer ends one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

# The first samples of `decoder_killer`'s audio: exact in a float WAV at 16 kHz, so a clip
# read from offset 0 at the model's rate carries them unchanged. No natural sound starts so.
MARKER = np.array([0.5, -0.5, 0.25, -0.25, 0.125, -0.125, 0.0625, -0.0625], np.float32)


def random_bytes_mp3(
    folder: Path, name: str = "noise.mp3", size: int = 5000, seed: int = 0
) -> Path:
    """Random bytes named .mp3: libsndfile hands them to libmpg123 (by the extension), which
    used to print "Illegal Audio-MPEG-Header" and "Trying to resync..." on the terminal."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    # A zero first byte: no MPEG frame starts there by chance, so the content claims nothing.
    path.write_bytes(b"\0" + np.random.default_rng(seed).bytes(size - 1))
    return path


def wav_with_unsupported_codec(
    folder: Path, name: str = "harpsichord01.ogg", tag: int = 0x674F
) -> Path:
    """A RIFF/WAVE file whose fmt chunk names a codec libsndfile cannot decode, like Debian
    lmms-common's instruments/harpsichord01.ogg (format 0x674F, Ogg Vorbis in WAV, with an .ogg
    name). The fmt chunk is 26 bytes (cbSize 8 and 8 bytes of extension), as in that file."""
    fmt = struct.pack("<HHIIHH", tag, 1, 44100, 44100 * 2, 2, 16) + struct.pack("<H", 8) + bytes(8)
    data = np.zeros(4410, "<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def decoder_killer(folder: Path, name: str = "killer.wav", seconds: float = 0.5) -> Path:
    """A readable WAV whose clip makes `KillOnMarker` kill the process that decodes it."""
    audio = np.zeros(round(16000 * seconds), np.float32)
    audio[: MARKER.size] = MARKER
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, 16000, subtype="FLOAT")
    return path


class KillOnMarker:
    """A picklable clip transform (see `sampletool.audio.ClipLoader`): `inner(clip)`, except
    that in a worker process a clip that starts with `MARKER` kills that process (SIGKILL),
    so a test sees a worker die for real. In the calling process it never kills."""

    def __init__(self, inner: Any = None, sig: int = signal.SIGKILL) -> None:
        self.inner = inner
        self.sig = sig

    def init_worker(self) -> None:
        if self.inner is not None and hasattr(self.inner, "init_worker"):
            self.inner.init_worker()

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        marked = clip.size >= MARKER.size and np.array_equal(clip[: MARKER.size], MARKER)
        if marked and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), self.sig)
        return clip if self.inner is None else self.inner(clip)


class HangOnMarker(KillOnMarker):
    """Like `KillOnMarker`, but the worker that reads the marked clip never finishes it (a
    decoder stuck in a loop, or an hour-long file): stopping must not wait for it."""

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        marked = clip.size >= MARKER.size and np.array_equal(clip[: MARKER.size], MARKER)
        if marked and multiprocessing.parent_process() is not None:
            threading.Event().wait()
        return clip if self.inner is None else self.inner(clip)


def names_with_control_characters(folder: Path) -> list[Path]:
    """Readable WAVs whose names hold a newline, a tab and a carriage return."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 16000
    paths = []
    for i, name in enumerate(["new\nline.wav", "tab\there.wav", "carriage\rreturn.wav"]):
        path = folder / name
        sf.write(str(path), (0.5 * np.sin(2 * np.pi * (200 + 300 * i) * t)).astype(np.float32),
                 16000)  # fmt: skip
        paths.append(path)
    return paths


class HalfResultOnMarker(KillOnMarker):
    """Like `KillOnMarker`, but the worker dies halfway through sending a result: it writes the
    start of a message into the pool's shared result pipe and kills itself, as the OOM killer
    can end a worker that is sending back the readings of a long file. The pool's reader then
    waits for the rest of that message, which no process will ever write."""

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        marked = clip.size >= MARKER.size and np.array_equal(clip[: MARKER.size], MARKER)
        if marked and multiprocessing.parent_process() is not None:
            import gc
            from multiprocessing.queues import SimpleQueue

            # The executor's result queue is the worker's one SimpleQueue (its task queue is
            # a Queue); its lock is taken as a real sender would.
            [results] = [o for o in gc.get_objects() if type(o) is SimpleQueue]
            results._wlock.acquire()
            results._writer._send(struct.pack("!i", 1 << 20) + b"\0" * 64)
            os.kill(os.getpid(), signal.SIGKILL)
        return clip if self.inner is None else self.inner(clip)
