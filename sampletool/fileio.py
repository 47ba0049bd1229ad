"""Crash-safe files: writes that replace a file whole, and locks that die with their process.

A crash at any moment leaves either the old file or the new one, never half of one; a lock
held by a process that crashed is free again (the kernel drops it).
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` on a temporary path beside `path` (same suffix, so writers that infer
    the format from it still do), then rename it to `path`. The temp file is removed on error."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        write(Path(tmp))
        # mkstemp makes the file private (0600); the result should have the permissions any
        # new file of the user's gets (a saved WAV must open in a DAW run by a group...).
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and (not tmp or e.filename == tmp):
            # Say the file the user named, not the temporary one beside it (".v.npy.x1y2.npy").
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    return path


def native_path(path: str | os.PathLike[str]) -> str | bytes:
    """`path` as the operating system names it, for libraries that take a name and encode it
    strictly (soundfile): on POSIX its bytes, so a name that is not valid UTF-8 (held by Python
    with surrogates, '\\udce9' for the byte 0xe9) still opens; elsewhere the text."""
    return os.fsencode(path) if os.name == "posix" else os.fspath(path)


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before threads start.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


class LockHeld(OSError):
    """Another process (or another open of the file) holds the lock."""


@contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the file at `path` (created if missing) while inside.

    Raises:
        LockHeld: someone else holds it; nothing waits.
    """
    lock = open(path, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise LockHeld(errno.EAGAIN, "locked by another process", str(path)) from None
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def is_locked(path: str | os.PathLike[str]) -> bool:
    """Whether a live process holds `exclusive_lock(path)` now (a missing file: no)."""
    if not os.path.exists(path):
        return False
    try:
        with exclusive_lock(path):
            return False
    except LockHeld:
        return True
    except OSError:  # cannot even open it: nobody we could tell about
        return False
