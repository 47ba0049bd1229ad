"""Progress and cancellation: one convention for every long engine call.

A long call takes `progress: Progress | None` and `cancel: threading.Event | None`. It calls
`progress(done, total, message)` as it goes (total 0: not known yet) and checks `cancel` between
steps; once it is set, the call keeps what it has finished (committed batches, written files)
and raises `Cancelled`, carrying any partial outcome worth reporting in `partial`. Nothing here
knows about Qt: the GUI's workers pass a signal's `emit` as `progress` and their own event as
`cancel`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sampletool.errors import SampleToolError

Progress = Callable[[int, int, str], None]


class Cancelled(SampleToolError):
    """A long call stopped because its cancel event was set.

    Attributes:
        partial: what the call had done when it stopped (for a scan, its `ScanReport`), or None.
    """

    def __init__(self, message: str = "cancelled", partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


def check_cancel(cancel: threading.Event | None, message: str = "cancelled") -> None:
    """Raise `Cancelled(message)` if `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(message)
