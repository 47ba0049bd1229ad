"""Latest wins: at most one job at a time, and only the newest request waiting behind it.

The blend panel asks for a new sound whenever a control moves. Decoding takes longer than a
slider step, so requests pile up faster than they can be served: this keeps one job running,
replaces the waiting request with each newer one, and says when a finished job's result is no
longer wanted because something newer waits. A quick drag then never plays a backlog of stale
sounds. Qt-free, so it is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

R = TypeVar("R")


class LatestWins(Generic[R]):
    """Requests, one running at a time.

    Args:
        key: what makes two requests the same (a request equal to the running one waits for
            nothing: its result is on its way).
    """

    def __init__(self, key: Callable[[R], Hashable]) -> None:
        self._key = key
        self.running: R | None = None
        self.waiting: R | None = None
        self._discarded: R | None = None  # running, but its result no longer wanted

    @property
    def busy(self) -> bool:
        return self.running is not None or self.waiting is not None

    def submit(self, request: R) -> R | None:
        """A new request. Returns it when it should start now; otherwise it waits (in place of
        any request that was waiting) and None is returned."""
        if self.running is None:
            self.running = request
            return request
        same = self._key(request) == self._key(self.running) and self.running is not self._discarded
        self.waiting = None if same else request
        return None

    def finish(self, request: R) -> tuple[bool, R | None]:
        """`request`'s job has ended. Returns (whether its result is wanted: it is the running
        request and nothing newer waits, the request to start now or None)."""
        if request is not self.running:
            return False, None  # from before a `reset`
        discarded = request is self._discarded
        self.running, self.waiting, self._discarded = self.waiting, None, None
        return self.running is None and not discarded, self.running

    def discard(self) -> None:
        """Nothing waits any more and the running job's result will not be wanted; the job
        still counts as running until it ends, so nothing new starts beside it (a runtime
        serves one thread at a time)."""
        self.waiting = None
        self._discarded = self.running

    def reset(self) -> None:
        """Forget everything: the running job's result will not be wanted."""
        self.running = self.waiting = self._discarded = None
