"""Drag and drop of samples, one format everywhere.

A drag carries file URLs (so a DAW, file manager or desktop understands it) and, between our
own widgets, a JSON list of {"path", "onset"} under MIME_TYPE (so a segment of a long file keeps
its position). Drops accept either: our own format first, else local file URLs (onset 0).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from PySide6.QtCore import QByteArray, QMimeData, QUrl

from sampletool.paths import display_path

MIME_TYPE = "application/x-sampletool-samples"


@dataclass(frozen=True)
class SampleRef:
    """A sample: a file and where in it the sound starts (seconds; 0 for a whole file)."""

    path: str
    onset: float = 0.0

    @property
    def name(self) -> str:
        """The file's name as shown (a byte that is not UTF-8 shows as U+FFFD)."""
        name = display_path(Path(self.path).name)
        return f"{name} @ {self.onset:.2f} s" if self.onset else name


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def file_url(path: str) -> QUrl:
    """A file URL that names exactly this file, whatever bytes its name holds."""
    if not _has_surrogates(path):
        return QUrl.fromLocalFile(path)
    return QUrl.fromEncoded(QByteArray(b"file://" + quote(os.fsencode(os.path.abspath(path)))
                                       .encode("ascii")))  # fmt: skip


def url_path(url: QUrl) -> str:
    """The local path a file URL names, its bytes kept (the inverse of `file_url`)."""
    encoded = bytes(url.toEncoded(QUrl.ComponentFormattingOption.FullyEncoded).data())
    if not encoded.startswith(b"file://"):
        return url.toLocalFile()
    raw = unquote_to_bytes(url.path(QUrl.ComponentFormattingOption.FullyEncoded))
    return os.fsdecode(raw)


def make_mime(samples: Iterable[SampleRef]) -> QMimeData:
    samples = list(samples)
    mime = QMimeData()
    mime.setUrls([file_url(s.path) for s in samples])
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
    return [SampleRef(url_path(u)) for u in mime.urls() if u.isLocalFile()]


def can_accept(mime: QMimeData) -> bool:
    return mime.hasFormat(MIME_TYPE) or any(u.isLocalFile() for u in mime.urls())
