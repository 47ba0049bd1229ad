"""Scanning a library folder: change detection, moves, encoding in worker processes, commits.

`scan_folder` brings one model's catalogue entries and vector index up to date with the folder,
incrementally; `scan_lock` keeps two scans of one catalogue (two processes, or the CLI beside
the app) from running at once. `Library.scan` is the way in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sampletool.data.dataset import find_audio_files
from sampletool.errors import LibraryError, WorkerError
from sampletool.fileio import LockHeld, exclusive_lock
from sampletool.library.catalogue import Catalogue
from sampletool.library.index import ModelIndex
from sampletool.library.scan_worker import FileResult, ScanPool, quick_hash
from sampletool.models.encoding import Encoding
from sampletool.models.kinds import get_kind
from sampletool.progress import Progress

if TYPE_CHECKING:
    from sampletool.models.runtime import ModelRuntime

COMMIT_FILES = 64  # files per transaction: a crash loses at most this much work


@dataclass
class ScanReport:
    """The outcome of a scan (also what `sampletool index --json` prints)."""

    indexed: int = 0
    skipped_unchanged: int = 0
    moved: int = 0
    removed: int = 0
    failed: list[dict] = field(default_factory=list)  # {"path", "reason"}
    segments: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@contextmanager
def scan_lock(path: Path, root: Path) -> Iterator[None]:
    """Hold the scan lock file at `path` for a scan of `root`.

    Raises:
        LibraryError: another scan holds it.
    """
    try:
        with exclusive_lock(path):
            yield
    except LockHeld:
        raise LibraryError(f"another scan of {root} is running; wait for it to finish") from None


def scan_folder(
    root: Path,
    catalogue: Catalogue,
    index: ModelIndex,
    runtime: ModelRuntime,
    segmentation: bool,
    workers: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ScanReport:
    """Bring the catalogue's entries of `index.model_id`, and the index, up to date with `root`.

    Unchanged files (size and mtime) are skipped; changed ones re-encoded; deleted ones
    removed; moved or renamed ones recognised by content and kept without re-encoding; files
    that failed for their content keep their reason and are retried only when they change,
    those that failed for the system's reasons (permission, I/O) at every scan; entries stored
    before the catalogue kept latents are re-encoded. Every `COMMIT_FILES` files are one
    transaction, so killing the process at any moment loses at most that batch. On cancel the
    work done is kept and the report says `cancelled`. Call it under `scan_lock`.

    Raises:
        LibraryError: the folder is gone or cannot be listed (nothing is removed then).
    """
    scan = _Scan(root, catalogue, index, runtime, segmentation, workers, progress, cancel)
    scan.run()
    return scan.report


class _Scan:
    """One scan's state, so its steps share it without long argument lists."""

    def __init__(
        self,
        root: Path,
        catalogue: Catalogue,
        index: ModelIndex,
        runtime: ModelRuntime,
        segmentation: bool,
        workers: int | None,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> None:
        self.root, self.catalogue, self.index, self.runtime = root, catalogue, index, runtime
        self.segmentation, self.workers = segmentation, workers
        self.progress, self.cancel = progress, cancel
        self.report = ScanReport()

    def run(self) -> None:
        report, cat = self.report, self.catalogue
        self.index.refresh()  # another process may have written since we loaded
        # A folder that is gone (an unplugged drive) or cannot be listed must not read as
        # "every file was deleted": that would drop the whole catalogue.
        if not self.root.is_dir():
            raise LibraryError(f"library folder {self.root} is not there any more (moved, "
                               "deleted, or on a drive that is not connected)")  # fmt: skip
        try:
            os.listdir(self.root)
        except OSError as e:
            raise LibraryError(
                f"library folder {self.root} cannot be read ({e.strerror})"
            ) from None
        walk_errors: list[tuple[str, str]] = []
        found = find_audio_files(self.root, walk_errors)
        report.failed += [{"path": p, "reason": r} for p, r in walk_errors]
        rows = cat.files()
        complete = cat.has_vectors(self.index.model_id)
        seen: set[str] = set()
        # (rel, size, mtime_ns, file id, changed): changed files lose their old segments; an
        # unchanged file only lacking this model's vectors keeps them (other models' too).
        todo: list[tuple[str, int, int, int | None, bool]] = []
        new: list[tuple[str, int, int]] = []
        for path in found:
            rel = cat.relpath(path)
            try:
                st = os.stat(path)
            except OSError as e:
                report.failed.append({"path": str(path), "reason": "vanished or unreadable "
                                      f"during the scan ({e.strerror})"})  # fmt: skip
                continue
            seen.add(rel)
            row = rows.get(rel)
            if row is None:
                new.append((rel, st.st_size, st.st_mtime_ns))
            elif (
                row.size == st.st_size
                and row.mtime_ns == st.st_mtime_ns
                and (row.error is not None or row.segmented == self.segmentation)
                and not row.retry
            ):
                if row.error is not None or row.id in complete:
                    report.skipped_unchanged += 1
                else:
                    todo.append((rel, st.st_size, st.st_mtime_ns, row.id, False))
            else:
                todo.append((rel, st.st_size, st.st_mtime_ns, row.id, True))

        missing = {rel: row for rel, row in rows.items() if rel not in seen}
        moves: list[tuple[int, str, int]] = []
        if missing and new:
            by_content: dict[tuple[str, int], list] = {}
            for row in missing.values():
                if row.hash:
                    by_content.setdefault((row.hash, row.size), []).append(row)
            still_new = []
            for rel, size, mtime in new:
                try:
                    h = quick_hash(cat.abspath(rel), size)
                except OSError:
                    h = None
                match = by_content.get((h, size)) if h else None
                if match:
                    row = match.pop()
                    moves.append((row.id, rel, mtime))
                    del missing[row.path]
                    if row.error is None and row.segmented != self.segmentation:
                        todo.append((rel, size, mtime, row.id, True))  # re-segment
                    elif row.error is None and row.id not in complete:
                        todo.append((rel, size, mtime, row.id, False))
                else:
                    still_new.append((rel, size, mtime))
            new = still_new
        todo += [(rel, size, mtime, None, True) for rel, size, mtime in new]

        if moves or missing:
            removed_ids: list[int] = []
            with cat.transaction() as db:
                for file_id, rel, mtime in moves:
                    cat.move_file(db, file_id, rel, mtime)
                for row in missing.values():
                    removed_ids += cat.delete_file(db, row.id)
                cat.bump_generation(db)
            self.index.remove(removed_ids)
            report.moved, report.removed = len(moves), len(missing)

        if todo and self.cancel is not None and self.cancel.is_set():
            report.cancelled = True
        elif todo:
            self._encode(todo)
        self.index.save()

    def _encode(self, todo: list[tuple[str, int, int, int | None, bool]]) -> None:
        import torch

        # The workers keep the cores busy; torch's own threads on top of them would spin-wait
        # against each other (OpenMP), so the parent's torch runs on the cores they leave.
        threads = torch.get_num_threads()
        n_workers = ScanPool.worker_count(self.workers)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - n_workers))
        try:
            self._encode_files(todo, n_workers)
        finally:
            torch.set_num_threads(threads)

    def _encode_files(self, todo: list[tuple[str, int, int, int | None, bool]], n_workers: int):
        cat, rt = self.catalogue, self.runtime
        tasks = [(i, str(cat.abspath(t[0])), t[1]) for i, t in enumerate(todo)]
        total = len(tasks)
        pending: list[FileResult] = []
        model_dir = str(rt.path) if rt.device.type == "cpu" and n_workers > 0 else None
        with ScanPool(rt.frontend(), rt.audio, self.segmentation, self.workers, model_dir,
                      get_kind(rt.kind)) as pool:  # fmt: skip
            try:
                # On cancel the pool stops handing out results at once (not after the files in
                # hand, which a long file with segments can make minutes).
                for done, res in enumerate(pool.imap(tasks, self.cancel), start=1):
                    pending.append(res)
                    last = done == total
                    stop = self.cancel is not None and self.cancel.is_set()
                    if len(pending) >= COMMIT_FILES or last or stop:
                        self._commit(pending, todo)
                        pending = []
                    if self.progress is not None:
                        self.progress(done, total, tasks[res.index][1])
                    if stop:
                        break
            except WorkerError:  # the workers cannot go on: keep what they did
                self._commit(pending, todo)
                raise
            if pending:  # cancelled while waiting for a result
                self._commit(pending, todo)
        if self.cancel is not None and self.cancel.is_set():
            self.report.cancelled = True

    def _commit(self, results: list[FileResult], todo) -> None:
        cat, report = self.catalogue, self.report
        ok = [r for r in results if r.error is None]
        if ok and ok[0].encoding is not None:  # encoded by the workers
            encoding = Encoding.concat([r.encoding for r in ok])
        else:  # features from the workers (or nothing read): encoded here
            features = [r.features for r in ok if r.features is not None]
            stacked = np.concatenate(features).astype(np.float32) if features else np.empty(0)
            encoding = self.runtime.encode(stacked)
        new_ids, new_vecs, old_ids = [], [], []
        row = 0
        with cat.transaction() as db:
            for r in results:
                rel, size, mtime, file_id, changed = todo[r.index]
                report_path = str(cat.abspath(rel))
                if r.error is not None and not changed:
                    # An unchanged file another model has indexed: keep its row and the other
                    # models' vectors; this model tries again next scan.
                    report.failed.append({"path": report_path, "reason": r.error})
                    continue
                if file_id is not None and changed:
                    old_ids += cat.delete_segments(db, file_id)
                if r.error is not None:
                    cat.upsert_file(db, rel, size, mtime, r.hash, r.info, r.error, retry=r.retry)
                    report.failed.append({"path": report_path, "reason": r.error})
                    continue
                fid = cat.upsert_file(db, rel, size, mtime, r.hash, r.info, None, self.segmentation)
                for onset in r.onsets:
                    v = encoding.vectors[row]
                    p = None if encoding.probs is None else encoding.probs[row]
                    lat = encoding.latents[row]
                    new_ids.append(cat.add_segment(db, fid, onset, self.index.model_id, v, p, lat))
                    new_vecs.append(v)
                    row += 1
                report.indexed += 1
                report.segments += len(r.onsets)
            cat.bump_generation(db)
        self.index.remove(old_ids)
        if new_ids:
            self.index.add(np.asarray(new_ids, np.int64), np.stack(new_vecs))
