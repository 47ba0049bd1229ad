"""A sample library: a folder, its catalogue, and one vector index per model.

    lib = Library("~/Samples", runtime)      # runtime: sampletool.models.runtime.load_runtime()
    report = lib.scan(progress=..., cancel=...)
    found = lib.find_similar("kick.wav", 10)  # .paths, .onsets, .distances, .query_class
    latent = lib.latent("kick.wav")           # stored for an entry: no audio is read

The parts: `catalogue` (SQLite, the source of truth), `index` (hnswlib search, and the
per-model index kept in step with the catalogue) with `index_file` (its file format), `scan`
(change detection, moves, commits) with `scan_worker` (the per-file work in worker processes),
and `duplicates`. The library takes a model runtime, never the `SoundSampleTool` facade.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import numpy as np

from sampletool.errors import LibraryError, ModelError
from sampletool.library.catalogue import Catalogue, CatalogueError, damage, rebuild_catalogue
from sampletool.library.duplicates import Duplicates, find_duplicates
from sampletool.library.index import ModelIndex, VectorIndex
from sampletool.library.scan import ScanReport, scan_folder, scan_lock
from sampletool.models.calibration import SILENT, UNSURE_BELOW, ClassReading, read_class
from sampletool.models.encoding import AudioInput
from sampletool.progress import Cancelled, Progress

if TYPE_CHECKING:  # the runtime module loads torch; the library itself needs none of it
    from sampletool.models.runtime import ModelRuntime

__all__ = [
    "CATALOGUE_FILE",
    "CatalogueError",
    "Duplicates",
    "Library",
    "LibraryError",
    "ScanReport",
    "Similar",
    "Snapshot",
    "default_db_path",
]

log = logging.getLogger(__name__)
CATALOGUE_FILE = "catalogue.sqlite"  # its default name, in a folder of its own
ONSET_TOLERANCE = 1e-3  # seconds: an offset this close to an entry's onset means that entry


P = ParamSpec("P")
R = TypeVar("R")


def _damage_reported(
    method: Callable[Concatenate[Library, P], R],
) -> Callable[Concatenate[Library, P], R]:
    """Raise damage SQLite finds in the catalogue while `method` reads it (a page that went
    bad after the library was opened) as the CatalogueError that says what to do."""

    @functools.wraps(method)
    def checked(self: Library, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            found = damage(e, self.db_path)
            if found is None:
                raise
            raise found from None

    return checked


def default_db_path(root: Path) -> Path:
    """The catalogue's default home: the user's data folder, keyed by the library's root."""
    from sampletool.paths import user_data_dir

    root = Path(root).resolve()
    key = hashlib.sha1(os.fsencode(root)).hexdigest()[:10]  # any name, UTF-8 or not
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
        vectors: float32 [n, vector_dim], the search vectors.
        probs: class probabilities float32 [n, classes], or None without a classifier.
        class_names: the model's classes (empty without a classifier).
        failures: (path, reason) of every file that could not be read.
        labels: the class the user gave each entry's file, or None (see `Library.set_class`).
        unsure_below: the model's confidence under which its class reads as unsure.
    """

    ids: np.ndarray
    paths: list[str]
    onsets: np.ndarray
    durations: np.ndarray
    vectors: np.ndarray
    probs: np.ndarray | None
    class_names: list[str]
    failures: list[tuple[str, str]]
    labels: list[str | None] = field(default_factory=list)
    unsure_below: float = UNSURE_BELOW

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def silent(self) -> np.ndarray:
        """Entries in which the model heard nothing (every class alike: a silent clip, or no
        probabilities stored), bool [n]."""
        if self.probs is None or not len(self.ids):
            return np.ones(len(self.ids), bool)
        return np.ptp(self.probs, axis=1) < SILENT

    @property
    def predicted(self) -> np.ndarray:
        """Index of each entry's most likely class by the model, int64 [n] (-1 without a
        classifier, or where it heard nothing)."""
        if self.probs is None or not len(self.ids):
            return np.full(len(self.ids), -1, np.int64)
        return np.where(self.silent, -1, self.probs.argmax(1))

    @property
    def confidence(self) -> np.ndarray:
        """The model's probability of each entry's likeliest class, float64 [n] (0 without a
        classifier)."""
        if self.probs is None or not len(self.ids):
            return np.zeros(len(self.ids))
        return self.probs.max(1).astype(np.float64)

    @property
    def user_set(self) -> np.ndarray:
        """Whether the user gave each entry's file its class, bool [n]."""
        return np.array([lab is not None for lab in self._labels()], bool)

    @property
    def classes(self) -> np.ndarray:
        """The class each entry shows (map colours, the class filter): the user's where set,
        else the model's likeliest, sure or not; int64 [n], -1 for none (or a user class the
        model does not have)."""
        out = self.predicted.copy()
        for i, lab in enumerate(self._labels()):
            if lab is not None:
                out[i] = self.class_names.index(lab) if lab in self.class_names else -1
        return out

    @property
    def kinds(self) -> np.ndarray:
        """The class "Same kind only" groups each entry by: as `classes`, but -1 where the
        model is unsure and the user set nothing."""
        out = self.classes
        unsure = (self.confidence < self.unsure_below) & ~self.user_set
        out[unsure] = -1
        return out

    def one_shot_readings(self, longest: float = 4.0) -> list[tuple[str, str, float]]:
        """(path, the model's likeliest class, its probability) of each file's first entry,
        for files no longer than `longest` seconds (a loop's first clip says little of it)."""
        if self.probs is None or not len(self.ids):
            return []
        best, confidence, silent = self.probs.argmax(1), self.probs.max(1), self.silent
        return [(p, self.class_names[int(best[i])], float(confidence[i]))
                for i, p in enumerate(self.paths)
                if self.onsets[i] == 0 and not self.durations[i] > longest
                and not silent[i]]  # fmt: skip

    def reading(self, row: int) -> ClassReading:
        """Entry `row`'s class as shown (see `sampletool.models.calibration.ClassReading`)."""
        probs = self.probs[row] if self.probs is not None else np.empty(0)
        return read_class(probs, self.class_names, self.unsure_below, self._labels()[row])

    def _labels(self) -> list[str | None]:
        return self.labels if len(self.labels) == len(self.ids) else [None] * len(self.ids)


@dataclass
class Similar:
    """What `Library.find_similar` found.

    Attributes:
        paths, onsets, distances: the entries nearest the query, nearest first (onsets in
            seconds; Euclidean distances between search vectors).
        query_class: the query's class: the user's for a library file they gave one, else the
            one the model puts it in (a library entry's stored prediction, else the classifier
            run in the same pass as its search vector); None for a model without a classifier.
        same_kind: the list was kept to entries of `query_class`.
        query_unsure: the model is unsure of `query_class`, so "same kind" was not applied.
    """

    paths: list[str]
    onsets: list[float]
    distances: list[float]
    query_class: str | None = None
    same_kind: bool = False
    query_unsure: bool = False

    def __len__(self) -> int:
        return len(self.paths)


class Library:
    """A folder of samples indexed with one model.

    Args:
        root: the library folder.
        runtime: the model runtime whose readings the library stores and searches.
        db_path: the catalogue file (default: in the user's data folder, keyed by root); the
            vector index of each model lives beside it.
        segmentation: split files longer than a clip at onsets into separate entries; the
            library remembers it (None: as last set for this catalogue, off for a new one).
        rebuild: move a damaged catalogue aside and start a fresh one instead of failing,
            carrying over every row still readable in it (see `rebuild_catalogue`); the next
            scan reads what was lost again.

    Raises:
        LibraryError: the folder does not exist or is not a folder.
        CatalogueError: the catalogue is damaged or from a newer version (`rebuildable`), of
            another library folder, read-only or locked. Damage found later, by a query or
            a scan, is raised as a CatalogueError too.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        runtime: ModelRuntime,
        db_path: str | os.PathLike[str] | None = None,
        segmentation: bool | None = None,
        rebuild: bool = False,
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        if not self.root.exists():
            raise LibraryError(f"library folder {self.root} does not exist")
        if not self.root.is_dir():
            raise LibraryError(f"{self.root} is not a folder")
        self.runtime = runtime
        self.model_id = runtime.model_id
        self.db_path = Path(db_path) if db_path is not None else default_db_path(self.root)
        try:
            self.catalogue = Catalogue(self.db_path, self.root)
        except CatalogueError as e:
            if not (rebuild and e.rebuildable):
                raise
            self.catalogue, rebuilt = rebuild_catalogue(self.db_path, self.root, e)
            log.warning("unusable catalogue moved to %s; started a fresh one with what could be "
                        "read of it: %d files, %d readings, %d classes you set",
                        rebuilt.aside, rebuilt.files, rebuilt.vectors, rebuilt.labels)  # fmt: skip
        self._asked_segmentation = segmentation  # saved by the next scan (which holds the lock)
        self.segmentation = self._stored_segmentation() if segmentation is None else segmentation
        # The index files and scan lock sit beside the catalogue and, unless it has the default
        # name (kept for the libraries that already exist), are named after it: two catalogues
        # in one folder (`--db`) must not share an index.
        side = "" if self.db_path.name == CATALOGUE_FILE else f"{self.db_path.name}."
        self._lock_path = self.db_path.with_name(f"{side}scan.lock")
        self._index = ModelIndex(
            self.catalogue,
            self.model_id,
            runtime.vector_dim,
            self.db_path.with_name(f"{side}index-{self.model_id}.hnsw"),
        )
        self._kinds_lock = threading.Lock()
        # ((generation, labels generation), ids, kinds, the model's likeliest classes)
        self._kinds: tuple[tuple[int, int], np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def index(self) -> VectorIndex:
        """This model's vector index, as it is now (brought up to date with the catalogue)."""
        self._index.refresh()
        return self._index.vectors

    @property
    def index_path(self) -> Path:
        return self._index.path

    @property
    def state_path(self) -> Path:
        return self._index.state_path

    def close(self) -> None:
        self.catalogue.close()

    # -- scanning -------------------------------------------------------------------------------

    def _stored_segmentation(self) -> bool:
        """The segmentation the catalogue remembers; for one from before it did, whether it
        holds segmented files."""
        value = self.catalogue.setting("segmentation")
        return self.catalogue.any_segmented() if value is None else value == "on"

    @_damage_reported
    def scan(
        self,
        workers: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        """Bring the catalogue and index up to date with the folder, incrementally (see
        `sampletool.library.scan.scan_folder`). Safe to kill at any moment: the next scan
        carries on with no duplicates and no orphan vectors.

        Raises:
            LibraryError: another scan is running, or the folder is gone or unreadable.
            Cancelled: `cancel` was set; the batches done are kept, and `partial` is the
                report (its `cancelled` is True).
        """
        t0 = time.perf_counter()
        with scan_lock(self._lock_path, self.root):
            asked = self._asked_segmentation
            self.segmentation = self._stored_segmentation() if asked is None else asked
            value = "on" if self.segmentation else "off"
            if self.catalogue.setting("segmentation") != value:
                self.catalogue.set_setting("segmentation", value)
            report = scan_folder(self.root, self.catalogue, self._index, self.runtime,
                                 self.segmentation, workers, progress, cancel)  # fmt: skip
        listed = {f["path"] for f in report.failed}
        report.failed += [
            {"path": p, "reason": r} for p, r in self.catalogue.failures() if p not in listed
        ]
        report.seconds = round(time.perf_counter() - t0, 3)
        if report.cancelled:
            raise Cancelled("the scan was cancelled; the next scan carries on", partial=report)
        return report

    # -- queries --------------------------------------------------------------------------------

    @_damage_reported
    def snapshot(self) -> Snapshot:
        """Every entry with its search vector and class probabilities under this model."""
        rows = self.catalogue.snapshot_rows(self.model_id)
        labels = self.catalogue.labels()
        dim = self.runtime.vector_dim
        names = self.runtime.class_names
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
            labels=[labels.get(r[1]) for r in rows],
            unsure_below=self.runtime.calibration.unsure_below,
        )

    @_damage_reported
    def find_similar(
        self,
        target: AudioInput,
        num_similar: int = 10,
        offset: float = 0.0,
        *,
        same_kind: bool = False,
    ) -> Similar:
        """The library entries nearest to `target`: a library entry (the one nearest `offset`;
        itself excluded), any audio file, or an audio array at the model's rate. An entry's
        stored reading is used; anything else is read once, for its vector and class together.

        Args:
            same_kind: only entries the classifier puts in the target's class; fewer than
                `num_similar` come back when that class has fewer entries.

        Raises:
            ModelError: same_kind with a model that has no classifier.
            AudioError: the target is not in the library and cannot be read.
        """
        if same_kind and not self.runtime.class_names:
            raise ModelError(
                f"model {self.runtime.name!r} has no classifier, so it cannot tell which "
                "sounds are of the same kind"
            )
        names = self.runtime.class_names
        sid = self._entry(target, offset)
        vector = None if sid is None else self.catalogue.vector_of(sid, self.model_id)
        stored = self._stored_kind(sid) if vector is not None else None
        if vector is None or (stored is None and names):
            reading = self.runtime.read(target, offset)
            vector = reading.vectors[0]
            if reading.probs is not None:
                r = self.runtime.read_class(reading.probs[0])
                stored = (-1 if r.kind is None else names.index(r.kind),
                          names.index(r.model) if r.model else -1)  # fmt: skip
        kind, best = stored if stored is not None else (-1, -1)
        filtered = same_kind and kind >= 0
        only = None
        if filtered:
            ids, kinds, _best = self._entry_kinds()
            only = ids[kinds == kind]
        ids, dists = self._index.query(
            vector, num_similar, exclude=() if sid is None else (sid,), only=only
        )
        info = self.catalogue.segment_info(ids[0])
        shown = kind if kind >= 0 else best
        # A user's class the model lacks is no uncertainty of the model's.
        unsure = kind < 0 <= best and (sid is None or self.catalogue.label_of_segment(sid) is None)
        found = Similar([], [], [], names[shown] if shown >= 0 else None, filtered,
                        query_unsure=unsure)  # fmt: skip
        for i, d in zip(ids[0].tolist(), dists[0].tolist(), strict=True):
            if i in info:
                found.paths.append(info[i][0])
                found.onsets.append(info[i][1])
                found.distances.append(float(d))
        return found

    @_damage_reported
    def set_class(self, paths: list[str | os.PathLike[str]], cls: str | None) -> None:
        """Give these library files the class `cls` (the user correcting the model), or take
        the user's class away with None. Safe to call while a scan runs on another thread.
        Kept by file path in the catalogue, apart from any model's readings: it outlives
        rescans and model switches, and a move found by a scan takes it along. Search, the
        class filter and the map use it in place of the model's.

        Raises:
            LibraryError: a path outside the library, or a class the model does not have.
        """
        names = self.runtime.class_names
        if cls is not None and cls not in names:
            known = ", ".join(names) or "none: the model has no classifier"
            raise LibraryError(f"{cls!r} is not a class of model {self.runtime.name!r} "
                               f"(its classes: {known})")  # fmt: skip
        rels = []
        for p in paths:
            rel = self.catalogue.relpath(Path(p).expanduser().absolute())
            if rel.startswith("..") or rel in ("", "."):
                raise LibraryError(f"{p} is not in the library {self.root}")
            rels.append(rel)
        # Its own connection: a scan may be writing through the library's on another thread,
        # and one connection holds one transaction at a time (SQLite serialises the two).
        own = Catalogue(self.db_path, self.root, check=False)  # checked when the library opened
        try:
            own.set_labels(rels, cls)
        finally:
            own.close()

    @_damage_reported
    def corrections(self) -> dict[str, str]:
        """Absolute path -> the class the user gave that file (files no longer in the library
        included: their class comes back if they do)."""
        labels = self.catalogue.labels()
        return {str(self.catalogue.abspath(rel)): cls for rel, cls in labels.items()}

    @_damage_reported
    def latent(self, target: AudioInput, offset: float = 0.0) -> np.ndarray:
        """A sound's decoder latent, float32 [*latent_shape], for blending: the one stored for a
        library entry starting at `offset` (no audio is read), else read from the sound.

        Raises:
            AudioError: the target is not an indexed entry and cannot be read.
        """
        sid = self._entry(target, offset, ONSET_TOLERANCE)
        stored = None if sid is None else self.catalogue.latent_of(sid, self.model_id)
        if stored is not None:
            return stored.reshape(self.runtime.latent_shape)
        return self.runtime.read(target, offset).latents[0]

    @_damage_reported
    def duplicates(self, threshold: float | None = None) -> Duplicates:
        """Exact and near duplicates among this model's entries (see `find_duplicates`)."""
        return find_duplicates(self.catalogue, self._index, threshold)

    # -- internals ------------------------------------------------------------------------------

    def _entry(self, target: AudioInput, offset: float, tolerance: float | None = None):
        """The segment id of a library file's entry nearest `offset` (within `tolerance`
        seconds, if given); None for anything else."""
        if isinstance(target, np.ndarray):
            return None
        p = Path(target).expanduser().absolute()
        try:
            rel = self.catalogue.relpath(p)
        except ValueError:  # another drive (Windows)
            return None
        if not rel or rel.startswith(".."):
            return None
        nearest = self.catalogue.nearest_segment(rel, offset)
        if nearest is None:
            return None
        sid, onset = nearest
        return sid if tolerance is None or abs(onset - offset) <= tolerance else None

    def _entry_kinds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment ids, the class "Same kind only" groups each by, the model's likeliest
        class), read again only after the catalogue or the user's classes changed. The first
        class is the user's where set, else the model's when it is sure, else -1."""
        generation = (self.catalogue.generation(), self.catalogue.labels_generation())
        with self._kinds_lock:
            if self._kinds is None or self._kinds[0] != generation:
                ids, best, confidence = self.catalogue.kinds(self.model_id)
                kinds = np.where(confidence >= self.runtime.calibration.unsure_below, best, -1)
                names = self.runtime.class_names
                for sid, cls in self.catalogue.segment_labels().items():
                    at = int(np.searchsorted(ids, sid))
                    if at < len(ids) and ids[at] == sid:
                        kinds[at] = names.index(cls) if cls in names else -1
                self._kinds = (generation, ids, kinds, best)
            return self._kinds[1], self._kinds[2], self._kinds[3]

    def _stored_kind(self, sid: int) -> tuple[int, int] | None:
        """An entry's (kind as `_entry_kinds` gives it, the model's likeliest class); None
        without a classifier or stored probabilities."""
        if not self.runtime.class_names:
            return None
        ids, kinds, best = self._entry_kinds()
        at = int(np.searchsorted(ids, sid))
        if at < len(ids) and ids[at] == sid and best[at] >= 0:
            return int(kinds[at]), int(best[at])
        return None
