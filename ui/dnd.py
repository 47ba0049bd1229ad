"""Drag and drop of samples, one format everywhere.

A drag carries file URLs (so a DAW, file manager or desktop understands it) and, between our
own widgets, a JSON list of {"path", "onset"} under MIME_TYPE (so a segment of a long file keeps
its position). Drops accept either: our own format first, else local file URLs (onset 0).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QMimeData, QUrl

MIME_TYPE = "application/x-sampletool-samples"


@dataclass(frozen=True)
class SampleRef:
    """A sample: a file and where in it the sound starts (seconds; 0 for a whole file)."""

    path: str
    onset: float = 0.0

    @property
    def name(self) -> str:
        name = Path(self.path).name
        return f"{name} @ {self.onset:.2f} s" if self.onset else name


def make_mime(samples: Iterable[SampleRef]) -> QMimeData:
    samples = list(samples)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(s.path) for s in samples])
    payload = json.dumps([{"path": s.path, "onset": s.onset} for s in samples])
    mime.setData(MIME_TYPE, payload.encode("utf-8"))
    return mime


def samples_from_mime(mime: QMimeData) -> list[SampleRef]:
    """The samples a drop carries (empty if none: text, remote URLs...)."""
    if mime.hasFormat(MIME_TYPE):
        try:
            items = json.loads(bytes(mime.data(MIME_TYPE)).decode("utf-8"))
            return [SampleRef(str(i["path"]), float(i.get("onset", 0.0))) for i in items]
        except (ValueError, KeyError, TypeError):
            pass
    return [SampleRef(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


def can_accept(mime: QMimeData) -> bool:
    return mime.hasFormat(MIME_TYPE) or any(u.isLocalFile() for u in mime.urls())
