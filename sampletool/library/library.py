"""A sample library: a folder, its catalogue and one vector index per model.

lib = Library("~/Samples", tool)        # tool: a SoundSampleTool (the model)
report = lib.scan(progress=..., cancel=...)
files, onsets, distances = lib.find_similar("kick.wav", 10)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from sampletool.data.dataset import find_audio_files
from sampletool.errors import ModelError, SampleToolError
from sampletool.fileio import atomic_write_text
from sampletool.library.catalogue import Catalogue, CatalogueError, rebuild_aside
from sampletool.library.index import IndexFileError, VectorIndex
from sampletool.library.scanner import ScanPool, full_hash, quick_hash

if TYPE_CHECKING:
    from sampletool.tool import SoundSampleTool

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]
COMMIT_FILES = 64  # files per transaction: a crash loses at most this much work
CATALOGUE_FILE = "catalogue.sqlite"  # its default name, in a folder of its own


class LibraryError(SampleToolError):
    """A library that cannot be opened or scanned, said in one sentence."""


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


@dataclass
class Duplicates:
    """Exact duplicates (same bytes) and near-duplicates (vectors closer than `threshold`)."""

    exact: list[list[str]]
    near: list[list[dict]]  # {"path", "onset"}
    threshold: float


def default_db_path(root: Path) -> Path:
    """The catalogue's default home: the user's data folder, keyed by the library's root."""
    from sampletool.paths import user_data_dir

    root = Path(root).resolve()
    key = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in root.name)[:40] or "root"
    return user_data_dir() / "libraries" / f"{name}-{key}" / CATALOGUE_FILE


@dataclass
class Snapshot:
    """Everything a browser shows of a library under one model, in segment-id order.

    Attributes:
        ids: segment ids, int64 [n] (also the vector index's item ids).
        paths: absolute path of each entry's file.
        onsets: where each entry starts in its file, seconds, float64 [n].
        durations: each entry's file duration, seconds (NaN if unknown), float64 [n].
        vectors: float32 [n, latent].
        probs: class probabilities float32 [n, classes], or None without a classifier.
        class_names: the model's classes (empty without a classifier).
        failures: (path, reason) of every file that could not be read.
    """

    ids: np.ndarray
    paths: list[str]
    onsets: np.ndarray
    durations: np.ndarray
    vectors: np.ndarray
    probs: np.ndarray | None
    class_names: list[str]
    failures: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def predicted(self) -> np.ndarray:
        """Index of each entry's most likely class, int64 [n] (-1 without a classifier)."""
        if self.probs is None or not len(self.ids):
            return np.full(len(self.ids), -1, np.int64)
        return self.probs.argmax(1)


class Library:
    """A folder of samples indexed with one model.

    Args:
        root: the library folder.
        tool: the SoundSampleTool whose model embeds the samples.
        db_path: the catalogue file (default: in the user's data folder, keyed by root); the
            vector index of each model lives beside it.
        segmentation: split files longer than a clip at onsets into separate entries; the
            library remembers it (None: as last set for this catalogue, off for a new one).
        rebuild: move a damaged catalogue aside and start a fresh one instead of failing.

    Raises:
        LibraryError: the folder does not exist or is not a folder.
        CatalogueError: the catalogue is damaged or from a newer version (`rebuildable`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        tool: SoundSampleTool,
        db_path: str | os.PathLike[str] | None = None,
        segmentation: bool | None = None,
        rebuild: bool = False,
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        if not self.root.exists():
            raise LibraryError(f"library folder {self.root} does not exist")
        if not self.root.is_dir():
            raise LibraryError(f"{self.root} is not a folder")
        self.tool = tool
        self.model_id = tool.model_id
        self.db_path = Path(db_path) if db_path is not None else default_db_path(self.root)
        try:
            self.catalogue = Catalogue(self.db_path, self.root)
        except CatalogueError as e:
            if not (rebuild and e.rebuildable):
                raise
            aside = rebuild_aside(self.db_path)
            log.warning("damaged catalogue moved to %s; starting a fresh one", aside)
            self.catalogue = Catalogue(self.db_path, self.root)
        self._asked_segmentation = segmentation  # saved by the next scan (which holds the lock)
        self.segmentation = self._stored_segmentation() if segmentation is None else segmentation
        # The index files and scan lock sit beside the catalogue and, unless it has the default
        # name (kept for the libraries that already exist), are named after it: two catalogues
        # in one folder (`--db`) must not share an index.
        side = "" if self.db_path.name == CATALOGUE_FILE else f"{self.db_path.name}."
        self.index_path = self.db_path.with_name(f"{side}index-{self.model_id}.hnsw")
        self.state_path = self.db_path.with_name(f"{side}index-{self.model_id}.state.json")
        self._lock_path = self.db_path.with_name(f"{side}scan.lock")
        self._lock = threading.RLock()
        self._saved_generation = -1
        self._kinds: tuple[int, np.ndarray, np.ndarray] | None = None  # (generation, ids, kinds)
        self._last_reading: tuple[tuple, tuple[np.ndarray, np.ndarray | None]] | None = None
        self.index = self._open_index()

    # -- the index ------------------------------------------------------------------------------

    def _open_index(self) -> VectorIndex:
        dim = self.tool.latent_dim
        try:
            if not self.index_path.exists():
                raise FileNotFoundError(self.index_path)
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                raise ValueError("the index state file is damaged")
            index = VectorIndex.load(self.index_path, dim)
            generation = self.catalogue.generation()
            expected = self.catalogue.vector_ids(self.model_id)
            if state.get("generation") == generation and len(index) == len(expected):
                self._saved_generation = generation
                return index
            # Another model's scan moves the generation on without touching this model's
            # vectors: the same ids (never reused) mean the same vectors.
            if np.array_equal(np.sort(index.ids()), expected):
                self._save_state(generation, len(index))
                return index
            reason = "behind the catalogue"
        except FileNotFoundError:
            reason = "missing"
        except (IndexFileError, ValueError, OSError) as e:
            reason = f"unusable ({e})"
        ids, vecs = self.catalogue.vectors(self.model_id)
        if len(ids):
            log.info("vector index %s is %s: rebuilt from the catalogue", self.index_path, reason)
            index = VectorIndex.build(ids, vecs)
        else:
            index = VectorIndex(dim)
        self._save_index(index)
        return index

    def _save_index(self, index: VectorIndex | None = None) -> None:
        index = index if index is not None else self.index
        generation = self.catalogue.generation()
        index.save(self.index_path)
        self._save_state(generation, len(index))

    def _save_state(self, generation: int, items: int) -> None:
        self._saved_generation = generation
        atomic_write_text(self.state_path, json.dumps({"generation": generation, "items": items}))

    def close(self) -> None:
        self.catalogue.close()

    # -- scanning -------------------------------------------------------------------------------

    def _stored_segmentation(self) -> bool:
        """The segmentation the catalogue remembers; for one from before it did, whether it
        holds segmented files."""
        value = self.catalogue.setting("segmentation")
        return self.catalogue.any_segmented() if value is None else value == "on"

    def _acquire_scan_lock(self):
        lock = open(self._lock_path, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise LibraryError(
                f"another scan of {self.root} is running; wait for it to finish"
            ) from None
        return lock

    def scan(
        self,
        workers: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        """Bring the catalogue and index up to date with the folder, incrementally.

        Unchanged files (size and mtime) are skipped; changed ones re-embedded; deleted ones
        removed; moved or renamed ones recognised by content and kept without re-embedding;
        files that failed keep their reason and are retried only when they change. Safe to kill
        at any moment: the next scan carries on with no duplicates and no orphan vectors.
        """
        t0 = time.perf_counter()
        report = ScanReport()
        lock = self._acquire_scan_lock()
        try:
            asked = self._asked_segmentation
            self.segmentation = self._stored_segmentation() if asked is None else asked
            value = "on" if self.segmentation else "off"
            if self.catalogue.setting("segmentation") != value:
                self.catalogue.set_setting("segmentation", value)
            self._scan(report, workers, progress, cancel)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
        listed = {f["path"] for f in report.failed}
        report.failed += [
            {"path": p, "reason": r} for p, r in self.catalogue.failures() if p not in listed
        ]
        report.seconds = round(time.perf_counter() - t0, 3)
        return report

    def _scan(self, report, workers, progress, cancel) -> None:
        cat = self.catalogue
        with self._lock:
            if self._saved_generation != cat.generation():
                self.index = self._open_index()  # another process wrote since we loaded
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
        complete = cat.has_vectors(self.model_id)
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
                report.failed.append({"path": str(path), "reason": f"vanished or unreadable "
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
            with self._lock:
                self.index.remove(removed_ids)
            report.moved, report.removed = len(moves), len(missing)

        if todo and cancel is not None and cancel.is_set():
            report.cancelled = True
        elif todo:
            self._embed(todo, report, workers, progress, cancel)
        with self._lock:
            self._save_index()

    def _embed(self, todo, report, workers, progress, cancel) -> None:
        cat = self.catalogue
        tasks = [(i, str(cat.abspath(t[0])), t[1]) for i, t in enumerate(todo)]
        pending = []
        total = len(tasks)
        # The workers keep the cores busy; torch's own threads on top of them would spin-wait
        # against each other (OpenMP), so the parent's torch runs on the cores they leave.
        threads = torch.get_num_threads()
        n_workers = ScanPool.worker_count(workers)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - n_workers))
        try:
            self._embed_with(tasks, todo, report, workers, progress, cancel, total, pending)
        finally:
            torch.set_num_threads(threads)

    def _embed_with(self, tasks, todo, report, workers, progress, cancel, total, pending) -> None:
        in_workers = self.tool.device.type == "cpu" and ScanPool.worker_count(workers) > 0
        model_dir = str(self.tool.bundle.path) if in_workers else None
        with ScanPool(self.tool.audio, self.segmentation, workers, model_dir) as pool:
            for done, res in enumerate(pool.imap(tasks), start=1):
                pending.append(res)
                last = done == total
                stop = cancel is not None and cancel.is_set()
                if len(pending) >= COMMIT_FILES or last or stop:
                    self._commit(pending, todo, report)
                    pending = []
                if progress is not None:
                    progress(done, total, tasks[res.index][1])
                if stop:
                    report.cancelled = True
                    break

    def _commit(self, results, todo, report) -> None:
        cat = self.catalogue
        ok = [r for r in results if r.error is None]
        vectors = probs = None
        if ok and ok[0].vectors is not None:  # embedded by the workers
            vectors = np.concatenate([r.vectors for r in ok])
            if ok[0].probs is not None:
                probs = np.concatenate([r.probs for r in ok])
        elif ok:
            stacked = np.concatenate([r.features for r in ok]).astype(np.float32)
            vectors, probs = self.tool.embed_features(stacked)
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
                    cat.upsert_file(db, rel, size, mtime, r.hash, r.info, r.error)
                    report.failed.append({"path": report_path, "reason": r.error})
                    continue
                fid = cat.upsert_file(db, rel, size, mtime, r.hash, r.info, None, self.segmentation)
                for onset in r.onsets:
                    v = vectors[row]
                    p = None if probs is None else probs[row]
                    new_ids.append(cat.add_segment(db, fid, onset, self.model_id, v, p))
                    new_vecs.append(v)
                    row += 1
                report.indexed += 1
                report.segments += len(r.onsets)
            cat.bump_generation(db)
        with self._lock:
            self.index.remove(old_ids)
            if new_ids:
                self.index.add(np.asarray(new_ids, np.int64), np.stack(new_vecs))

    # -- queries --------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every entry with its vector and class probabilities under this library's model."""
        rows = self.catalogue.snapshot_rows(self.model_id)
        dim = self.tool.latent_dim
        names = list(self.tool.class_names)
        n = len(rows)
        vectors = np.empty((n, dim), np.float32)
        probs = np.zeros((n, len(names)), np.float32) if names else None
        for i, row in enumerate(rows):
            vectors[i] = np.frombuffer(row[4], np.float32)
            if probs is not None and row[5] is not None:
                probs[i] = np.frombuffer(row[5], np.float32)
        return Snapshot(
            ids=np.fromiter((r[0] for r in rows), np.int64, n),
            paths=[str(self.catalogue.abspath(r[1])) for r in rows],
            onsets=np.fromiter((r[2] for r in rows), np.float64, n),
            durations=np.fromiter((np.nan if r[3] is None else r[3] for r in rows), np.float64, n),
            vectors=vectors,
            probs=probs,
            class_names=names,
            failures=self.catalogue.failures(),
        )

    def find_similar(
        self,
        target: str | os.PathLike[str] | np.ndarray,
        num_similar: int = 10,
        offset: float = 0.0,
        *,
        same_kind: bool = False,
    ) -> tuple[list[str], list[float], list[float]]:
        """The library entries nearest to `target`: a library entry (itself excluded), any
        audio file, or an audio array at the model's rate.

        Args:
            same_kind: only entries the classifier puts in the target's class (`kind_of`);
                fewer than `num_similar` come back when that class has fewer entries.

        Returns:
            (files, onsets in seconds, distances), nearest first.

        Raises:
            ModelError: same_kind with a model that has no classifier.
            AudioError: the target is not in the library and cannot be read.
        """
        sid = self._entry(target, offset)
        vector = None if sid is None else self.catalogue.vector_of(sid, self.model_id)
        if vector is None:
            vector = self._reading(target, offset)[0]
        only = None
        if same_kind:
            ids, kinds = self._entry_kinds()
            only = ids[kinds == self._kind_index(target, offset, sid)]
        with self._lock:
            ids, dists = self.index.query(
                vector, num_similar, exclude=() if sid is None else (sid,), only=only
            )
        info = self.catalogue.segment_info(ids[0])
        files, onsets, distances = [], [], []
        for sid, d in zip(ids[0].tolist(), dists[0].tolist(), strict=True):
            if sid in info:
                files.append(info[sid][0])
                onsets.append(info[sid][1])
                distances.append(float(d))
        return files, onsets, distances

    def kind_of(self, target: str | os.PathLike[str] | np.ndarray, offset: float = 0.0) -> str:
        """The class the model puts `target` in: a library entry's stored prediction, else
        the classifier run on the sound.

        Raises:
            ModelError: the model has no classifier.
            AudioError: the target is not in the library and cannot be read.
        """
        return self.tool.class_names[self._kind_index(target, offset, self._entry(target, offset))]

    def _entry(self, target, offset: float) -> int | None:
        """The segment id of a library file's entry nearest `offset` (None for anything else)."""
        if isinstance(target, np.ndarray):
            return None
        p = Path(target).expanduser().absolute()
        try:
            rel = self.catalogue.relpath(p)
        except ValueError:  # another drive (Windows)
            return None
        segs = self.catalogue.segments_of(rel) if rel and not rel.startswith("..") else []
        return min(segs, key=lambda s: abs(s[1] - offset))[0] if segs else None

    def _entry_kinds(self) -> tuple[np.ndarray, np.ndarray]:
        """`Catalogue.kinds` of this model, read again only after the catalogue changed."""
        generation = self.catalogue.generation()
        with self._lock:
            if self._kinds is None or self._kinds[0] != generation:
                self._kinds = (generation, *self.catalogue.kinds(self.model_id))
            return self._kinds[1], self._kinds[2]

    def _kind_index(self, target, offset: float, sid: int | None) -> int:
        if not self.tool.class_names:
            raise ModelError(
                f"model {self.tool.bundle.name!r} has no classifier, so it cannot tell which "
                "sounds are of the same kind"
            )
        if sid is not None:
            ids, kinds = self._entry_kinds()
            at = int(np.searchsorted(ids, sid))
            if at < len(ids) and ids[at] == sid and kinds[at] >= 0:
                return int(kinds[at])
        return int(np.argmax(self._reading(target, offset)[1]))

    def _reading(self, target, offset: float) -> tuple[np.ndarray, np.ndarray | None]:
        """A sound's (search vector, class probabilities) from one read. The last file's is
        kept, so a search and then `kind_of` on a file from outside (as the app does) read it
        once; a file changed or replaced since is read again."""
        try:
            path = Path(target).expanduser().absolute()  # type: ignore[arg-type]
            st = path.stat()
            # ctime too: a copy that keeps the old mtime (cp -p, rsync -a, unzip) still has a
            # new ctime, and nothing can set it back.
            key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                   offset)  # fmt: skip
        except (TypeError, OSError):  # an array; or unreadable, and the read below says why
            return self.tool.embed_and_predict(target, offset)
        last = self._last_reading
        if last is None or last[0] != key:
            last = self._last_reading = (key, self.tool.embed_and_predict(target, offset))
        return last[1]

    def duplicates(self, threshold: float | None = None) -> Duplicates:
        """Exact duplicates (byte-identical files) and near-duplicate groups.

        Near-duplicates are entries whose vectors lie within `threshold` of each other (default:
        a quarter of the median distance between an entry and its nearest neighbour, so the
        default adapts to the model's scale); groups are the connected pairs.
        """
        cat = self.catalogue
        groups: dict[tuple[str, int], list[str]] = {}
        for row in cat.files().values():
            if row.error is None and row.hash:
                groups.setdefault((row.hash, row.size), []).append(row.path)
        exact: list[list[str]] = []
        for paths in groups.values():
            if len(paths) < 2:
                continue
            by_full: dict[str, list[str]] = {}
            for rel in paths:
                try:
                    by_full.setdefault(full_hash(cat.abspath(rel)), []).append(rel)
                except OSError:
                    continue
            exact += [
                sorted(str(cat.abspath(r)) for r in g) for g in by_full.values() if len(g) > 1
            ]
        exact.sort()
        exact_of = {p: i for i, g in enumerate(exact) for p in g}

        ids, vecs = cat.vectors(self.model_id)
        near: list[list[dict]] = []
        if len(ids) < 2:
            return Duplicates(exact, near, threshold or 0.0)
        with self._lock:
            nn_ids, nn_d = self.index.query(vecs, min(11, len(ids)))
        info = cat.segment_info(ids)
        if threshold is None:
            first = [d[1] if len(d) > 1 and n[0] == i else d[0]
                     for i, n, d in zip(ids, nn_ids, nn_d, strict=True)]  # fmt: skip
            positive = np.asarray([x for x in first if x > 0])
            threshold = 0.25 * float(np.median(positive)) if len(positive) else 0.0
        parent = {int(i): int(i) for i in ids}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, row_ids, row_d in zip(ids.tolist(), nn_ids.tolist(), nn_d.tolist(), strict=True):
            for j, d in zip(row_ids, row_d, strict=True):
                if j == i or d > threshold or j not in parent:
                    continue
                a, b = info.get(i), info.get(j)
                if not a or not b or a[0] == b[0]:
                    continue  # repeated hits inside one loop are not duplicates
                if a[0] in exact_of and exact_of.get(a[0]) == exact_of.get(b[0]):
                    continue  # already reported as exact duplicates
                parent[find(i)] = find(j)
        clusters: dict[int, list[int]] = {}
        for i in parent:
            clusters.setdefault(find(i), []).append(i)
        for members in clusters.values():
            if len(members) > 1:
                entries = sorted(info[m] for m in members if m in info)
                near.append([{"path": p, "onset": o} for p, o in entries])
        near.sort(key=lambda g: g[0]["path"])
        return Duplicates(exact, near, float(threshold))
