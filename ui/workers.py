"""The one way to run engine work off the GUI thread.

`TaskGroup.run(name, fn, ...)` runs `fn(*args, progress=..., cancel=...)` on a worker thread and
brings back its result or its exception, and its progress, as Qt signals delivered on the GUI
thread. A newer task of the same name supersedes the older one (it is cancelled and its result
dropped: latest wins), and nothing is delivered once the group's owner is deleted. Every widget
that runs work has its own group; the groups share a pool, which tests inject: a
`SynchronousPool` runs each task inline. Work that would stall the window even on a thread
(training: the GIL and torch's threads) runs as an `EngineProcess` instead: an engine module
in its own process, talking in JSON lines.

Engine functions take a plain `progress(done, total, message)` callable and a
`threading.Event` for cancel (see `sampletool.progress`); they never see Qt.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from PySide6.QtCore import QObject, QProcess, QRunnable, QThreadPool, Signal
from shiboken6 import isValid


class TaskSignals(QObject):
    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(object)  # the exception; its traceback text is in .formatted_traceback
    finished = Signal()


class Task(QRunnable):
    """A unit of engine work. Keep a reference to call `cancel()`."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, pass_control: bool):
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.pass_control = pass_control
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()  # set once fn has returned or raised
        self.signals = TaskSignals()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def run(self) -> None:
        kwargs = dict(self.kwargs)
        if self.pass_control:
            kwargs["progress"] = Throttled(self.signals.progress.emit)
            kwargs["cancel"] = self.cancel_event
        try:
            result = self.fn(*self.args, **kwargs)
        except BaseException as e:  # reported to the GUI as a value, never a crash
            e.formatted_traceback = traceback.format_exc()  # type: ignore[attr-defined]
            self._emit(self.signals.error, e)
        else:
            self._emit(self.signals.result, result)
        finally:
            self.done_event.set()
            self._emit(self.signals.finished)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the receiver is gone (the app is shutting down): nothing to do
            pass


class Throttled:
    """A task's progress callback: passes a report on at most every `interval` seconds (the
    last one, done == total, and those without a total always), so a call that reports each
    of 100k files does not queue 100k updates (and repaints) on the GUI thread."""

    def __init__(self, emit: Callable[[int, int, str], None], interval: float = 0.05) -> None:
        self.emit, self.interval = emit, interval
        self.last = -float("inf")

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done >= total or total <= 0 or now - self.last >= self.interval:
            self.last = now
            self.emit(done, total, message)


class Pool(Protocol):
    """Where tasks run."""

    def start(self, task: Task) -> None: ...

    def wait(self, msecs: int = -1) -> bool:
        """Wait for every task started here (-1: as long as it takes); True if all ended."""
        ...


class ThreadPool:
    """Qt's global thread pool, with room for short work beside long work."""

    def __init__(self) -> None:
        self._pool = QThreadPool.globalInstance()
        # A scan or a map projection can run for minutes: leave threads for the short work
        # (waveforms, searches, blends) that must not queue behind them.
        self._pool.setMaxThreadCount(max(self._pool.maxThreadCount(), 8))

    def start(self, task: Task) -> None:
        self._pool.start(task)

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)


class SynchronousPool:
    """Runs each task inline, on the calling thread, before `start` returns (tests)."""

    def start(self, task: Task) -> None:
        task.run()

    def wait(self, msecs: int = -1) -> bool:
        return True


_default_pool: ThreadPool | None = None
_live: set[Task] = set()  # keeps each task's Python object (and its signals) alive until done


def default_pool() -> ThreadPool:
    global _default_pool
    if _default_pool is None:
        _default_pool = ThreadPool()
    return _default_pool


def run_task(
    fn: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    pass_control: bool = False,
    pool: Pool | None = None,
    **kwargs: Any,
) -> Task:
    """Run `fn(*args, **kwargs)` off the GUI thread, once, with no bookkeeping (a `TaskGroup`
    adds names that supersede each other).

    Args:
        on_result, on_error, on_progress: called on the GUI thread.
        pass_control: also pass `progress=` and `cancel=` keyword arguments to `fn`.
        pool: where to run it (default: Qt's thread pool).
    """
    task = Task(fn, args, kwargs, pass_control)
    if on_result is not None:
        task.signals.result.connect(on_result)
    if on_error is not None:
        task.signals.error.connect(on_error)
    if on_progress is not None:
        task.signals.progress.connect(on_progress)
    _live.add(task)
    task.signals.finished.connect(lambda: _live.discard(task))
    (pool or default_pool()).start(task)
    return task


class TaskGroup:
    """The named tasks of one widget: the latest task of a name wins.

    Args:
        owner: results are dropped once this object has been deleted.
        pool: where tasks run (default: Qt's thread pool; tests pass a `SynchronousPool`).
        on_error: called with errors of tasks run without their own `on_error`.
    """

    def __init__(
        self,
        owner: QObject,
        pool: Pool | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.owner = owner
        self.pool: Pool = pool or default_pool()
        self._on_error = on_error
        self._tasks: dict[Hashable, Task] = {}

    def run(
        self,
        name: Hashable,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        pass_control: bool = False,
        **kwargs: Any,
    ) -> Task:
        """Run `fn` as task `name`, superseding (cancelling and dropping) a task of that name
        still running. Handlers are called on the GUI thread, only while this task is the
        current one of its name."""
        self.drop(name)
        task = Task(fn, args, kwargs, pass_control)
        error_handler = on_error or self._on_error

        def current() -> bool:
            return isValid(self.owner) and self._tasks.get(name) is task

        def result(value: Any) -> None:
            if current():
                del self._tasks[name]
                if on_result is not None:
                    on_result(value)

        def error(e: BaseException) -> None:
            if current():
                del self._tasks[name]
                if error_handler is not None:
                    error_handler(e)

        def progress(done: int, total: int, message: str) -> None:
            if current() and on_progress is not None:
                on_progress(done, total, message)

        task.signals.result.connect(result)
        task.signals.error.connect(error)
        task.signals.progress.connect(progress)
        self._tasks[name] = task  # before start: a synchronous pool finishes inside it
        _live.add(task)
        task.signals.finished.connect(lambda: _live.discard(task))
        self.pool.start(task)
        return task

    def task(self, name: Hashable) -> Task | None:
        """The task running under `name`, if any."""
        return self._tasks.get(name)

    def running(self, *names: Hashable) -> bool:
        """Whether any of these (any at all, without names) is running."""
        return any(n in self._tasks for n in names) if names else bool(self._tasks)

    def cancel(self, *names: Hashable) -> None:
        """Ask these tasks (all, without names) to stop; what they return is still delivered."""
        for name in names or tuple(self._tasks):
            task = self._tasks.get(name)
            if task is not None:
                task.cancel()

    def drop(self, *names: Hashable) -> None:
        """Cancel these tasks and forget them: nothing they return is delivered."""
        for name in names:
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()

    def drop_all(self) -> None:
        self.drop(*tuple(self._tasks))


class EngineProcess(QObject):
    """An engine module run as a separate Python process (`python -m MODULE ARGS`), for work
    that would stall the window even on a thread (training: the GIL and torch's threads).

    The process writes one JSON object per line on stdout (each becomes an `event`) and reads
    one command per line on stdin (`send`). Reading happens in the event loop as output
    arrives; nothing blocks the GUI thread.

    Signals:
        event(dict): one line of the process's output.
        finished(int, str): it ended: its exit status (-1 if it crashed or was killed) and
            the end of what it wrote on stderr.
    """

    event = Signal(object)
    finished = Signal(int, str)

    def __init__(self, module: str, args: list[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.module, self.args = module, list(args)
        self._stderr = b""
        self._done = False
        self.proc = QProcess(self)
        self.proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.readyReadStandardError.connect(self._read_stderr)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._failed)

    def start(self) -> None:
        self.proc.start(sys.executable, ["-u", "-m", self.module, *self.args])

    @property
    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def send(self, command: str) -> None:
        """One command line to the process (dropped once it has ended)."""
        if self.running:
            self.proc.write((command + "\n").encode())

    def close_input(self) -> None:
        """End the process's stdin: our processes take that as "stop"."""
        if self.running:
            self.proc.closeWriteChannel()

    def wait(self, msecs: int) -> bool:
        """Block until the process ends (True) or `msecs` pass; for quitting only."""
        if not self.running:
            return True
        ended = self.proc.waitForFinished(msecs)
        self._read()
        return ended

    def kill(self) -> None:
        """Kill the process now, without waiting for it (`finished` follows)."""
        if self.running:
            self.proc.kill()

    def _read(self) -> None:
        while self.proc.canReadLine():
            line = bytes(self.proc.readLine().data()).strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue  # not ours (a library printing to stdout)
            if isinstance(doc, dict):
                self.event.emit(doc)

    def _read_stderr(self) -> None:
        self._stderr = (self._stderr + bytes(self.proc.readAllStandardError().data()))[-8192:]

    def _finished(self, code: int, status) -> None:
        self._read()
        self._read_stderr()
        crashed = status == QProcess.ExitStatus.CrashExit
        self._end(-1 if crashed else int(code))

    def _failed(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._stderr += f"\ncould not start {self.module}: {self.proc.errorString()}".encode()
            self._end(-1)

    def _end(self, code: int) -> None:
        if not self._done:
            self._done = True
            self.finished.emit(code, self._stderr.decode(errors="replace").strip())
