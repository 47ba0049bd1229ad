"""The one way to run engine work off the GUI thread.

`run_task(fn, ...)` runs `fn(*args, progress=..., cancel=...)` on a QThreadPool thread and
brings back its result or its exception, and its progress, as Qt signals delivered on the GUI
thread. Engine functions take a plain `progress(done, total, message)` callable and a
`threading.Event` for cancel; they never see Qt. Tests call `set_synchronous(True)` to run
tasks inline.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class TaskSignals(QObject):
    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(object)  # the exception; its traceback is in .__traceback__
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
            kwargs["progress"] = self.signals.progress.emit
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


_synchronous = False
_live: set[Task] = set()


def wait_for_all(msecs: int = -1) -> bool:
    """Wait for every running task (-1: as long as it takes); True if all finished. Call
    `cancel()` on the tasks first to make it quick."""
    return QThreadPool.globalInstance().waitForDone(msecs)


def set_synchronous(value: bool) -> None:
    """Run tasks inline on the calling thread (for tests)."""
    global _synchronous
    _synchronous = value


def run_task(
    fn: Callable[..., Any],
    *args: Any,
    on_result: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    pass_control: bool = False,
    **kwargs: Any,
) -> Task:
    """Run `fn(*args, **kwargs)` off the GUI thread.

    Args:
        on_result, on_error, on_progress: called on the GUI thread.
        pass_control: also pass `progress=` and `cancel=` keyword arguments to `fn`.
    """
    task = Task(fn, args, kwargs, pass_control)
    if on_result is not None:
        task.signals.result.connect(on_result)
    if on_error is not None:
        task.signals.error.connect(on_error)
    if on_progress is not None:
        task.signals.progress.connect(on_progress)
    _live.add(task)  # keep the Python object (and its signals) alive until it has finished
    task.signals.finished.connect(lambda: _live.discard(task))
    if _synchronous:
        task.run()
    else:
        pool = QThreadPool.globalInstance()
        # A scan or a map projection can run for minutes: leave threads for the short work
        # (waveforms, searches, blends) that must not queue behind them.
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 8))
        pool.start(task)
    return task
