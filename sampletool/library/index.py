"""Nearest-neighbour search over a library's latent vectors: an hnswlib graph, Euclidean distance.

Why Euclidean (L2): the vectors are the VAE's posterior means, and its prior is an isotropic
Gaussian, so the latent space is meant to be measured with a plain ruler: nearby means similar,
in every direction alike. Cosine similarity would divide out each vector's length, and with it
the distance from the prior mean, which encodes how typical or unusual a sound is: a plain kick
and an extreme, distorted one in the same direction would become "the same". `query` reports
true Euclidean distances (hnswlib works with squared ones; we take the square root).

Items are keyed by the catalogue's vector ids (non-negative int64). Removing an item marks it
deleted: it stays in the graph as a waypoint and its slot is reused by the next new id, and
re-adding a removed or present id replaces its vector in place.

The default parameters (`DEFAULT_M`, `DEFAULT_EF_CONSTRUCTION`, `DEFAULT_EF_SEARCH`) were chosen
by measurement with benchmarks/query.py (goals: recall@10 >= 0.95 against exact search at 1M
clustered 64-d vectors, median single-query latency under 0.5 ms on one core). On a 2-core AMD
EPYC, M=24, ef_construction=200, ef_search=128 gave recall@10 0.986-0.988 and p50 0.16-0.19 ms
at 1M (build about 2 minutes on 2 cores, 470 MB file, 560 MB in memory). M=16 reached only 0.970
at ef_search 128; M=16 with ef_construction=400 matched M=24 but built 2.6x slower. ef_search is
the knob for harder data (`set_ef`, also after `load`): recall rises and latency grows with it.

Files: `save` and `load` go through `sampletool.library.index_file`, which writes hnswlib's
file with a checked JSON description beside it.

Thread safety: every method takes the same re-entrant lock, so a GUI thread may query while a
scan thread adds. hnswlib releases the GIL while it searches and builds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Collection, Iterable
from pathlib import Path

import hnswlib
import numpy as np

from sampletool.fileio import atomic_write_text
from sampletool.library.catalogue import Catalogue
from sampletool.library.index_file import IndexFileError, read_index, write_index

log = logging.getLogger(__name__)

DEFAULT_M = 24
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 128

_INT64_MAX = np.iinfo(np.int64).max


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class VectorIndex:
    """hnswlib index of float32 vectors keyed by int64 ids (the catalogue's vector ids).

    Args:
        dim: the vectors' dimension.
        capacity: how many items to make room for at first; `add` grows it as needed.
        m: graph degree (hnswlib's M): higher gives better recall, more memory, slower builds.
        ef_construction: search breadth while building: higher gives a better graph, slower.
        ef_search: search breadth while querying (at least k is used); see `set_ef`.
        seed: seed of hnswlib's level generator.
    """

    SPACE = "l2"
    # Exclusion sets up to this size are handled by asking for k + len(exclude) neighbours
    # and dropping the excluded ones; larger ones by hnswlib's filter callback, which calls
    # back into Python for every candidate. Measured at 1M items (benchmarks/query.py
    # --exclude): over-fetching is 15-25% faster for 1-64 ids, the two are about even at 128,
    # and the callback wins beyond (256 ids: 0.31 vs 0.40 ms; 1024: 0.39 vs 0.94 ms).
    OVERFETCH_MAX_EXCLUDE = 128

    def __init__(
        self,
        dim: int,
        capacity: int = 1024,
        *,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        seed: int = 0,
    ) -> None:
        for name, value, low in (
            ("dim", dim, 1),
            ("capacity", capacity, 1),
            ("m", m, 2),
            ("ef_construction", ef_construction, 1),
            ("ef_search", ef_search, 1),
            ("seed", seed, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, not {value!r}")
        self._dim = int(dim)
        self._index = hnswlib.Index(space=self.SPACE, dim=self._dim)
        self._index.init_index(
            max_elements=int(capacity),
            M=int(m),
            ef_construction=int(ef_construction),
            random_seed=int(seed),
            allow_replace_deleted=True,
        )
        self._index.set_ef(int(ef_search))
        self._ef = int(ef_search)
        self._seed = int(seed)
        self._threads = _cpu_count()
        # Every label hnswlib holds as deleted is in _deleted. A deleted slot may later be
        # reused for a new id, which drops the old label from hnswlib without telling us, so
        # _deleted may also hold such stale labels; _tombstones counts the real ones exactly.
        self._deleted: set[int] = set()
        self._tombstones = 0
        self._lock = threading.RLock()

    # -- properties -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def capacity(self) -> int:
        """Items the index has room for before it must grow (removed ones' slots included)."""
        with self._lock:
            return int(self._index.max_elements)

    @property
    def m(self) -> int:
        return int(self._index.M)

    @property
    def ef_construction(self) -> int:
        return int(self._index.ef_construction)

    @property
    def ef_search(self) -> int:
        return self._ef

    def set_ef(self, ef: int) -> None:
        """Set the search breadth for later queries (hnswlib uses at least k)."""
        if isinstance(ef, bool) or not isinstance(ef, (int, np.integer)) or ef < 1:
            raise ValueError(f"ef must be a positive integer, not {ef!r}")
        with self._lock:
            self._index.set_ef(int(ef))
            self._ef = int(ef)

    # -- contents -------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.element_count) - self._tombstones

    def __contains__(self, id: object) -> bool:
        if isinstance(id, bool) or not isinstance(id, (int, np.integer)):
            return False
        with self._lock:
            return self._has(int(id))

    def __repr__(self) -> str:
        return (
            f"VectorIndex(dim={self._dim}, items={len(self)}, capacity={self.capacity}, "
            f"m={self.m}, ef_construction={self.ef_construction}, ef_search={self._ef})"
        )

    def ids(self) -> np.ndarray:
        """The live ids, ascending, as int64."""
        with self._lock:
            labels = np.asarray(self._index.get_ids_list(), dtype=np.uint64).astype(np.int64)
            if self._deleted:
                self._prune_deleted(labels)
                labels = labels[~np.isin(labels, self._deleted_array())]
            labels.sort()
            return labels

    def get(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """The vectors of `ids`, as float32 [n, dim], in the order given.

        Raises:
            KeyError: an id is not in the index (or was removed).
        """
        arr = _as_ids(ids)
        with self._lock:
            if len(arr) == 0:
                return np.empty((0, self._dim), np.float32)
            try:
                out = self._index.get_items(arr.astype(np.uint64), return_type="numpy")
            except RuntimeError:
                missing = next(int(i) for i in arr if not self._has(int(i)))
                raise KeyError(f"vector id {missing} is not in the index") from None
        return np.asarray(out, dtype=np.float32).reshape(len(arr), self._dim)

    # -- changes --------------------------------------------------------------------------------

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under `ids`, replacing the vector of any id already present.

        Args:
            ids: non-negative integer ids [n]; if one appears twice, its last vector wins.
            vectors: float32 (or convertible) [n, dim], all finite.

        Raises:
            ValueError: shapes or dimension do not match, a negative id, or a NaN/inf value.
        """
        arr = _as_ids(ids)
        vecs = self._as_vectors(vectors, "vectors")
        if len(vecs) != len(arr):
            raise ValueError(f"{len(arr)} ids for {len(vecs)} vectors")
        if len(arr) == 0:
            return
        if len(np.unique(arr)) != len(arr):  # keep the last occurrence of each id
            _, first_in_reversed = np.unique(arr[::-1], return_index=True)
            keep = np.sort(len(arr) - 1 - first_in_reversed)
            arr, vecs = arr[keep], vecs[keep]
        with self._lock:
            existing = np.zeros(len(arr), dtype=bool)
            removed = _isin(arr, self._deleted) if self._deleted else existing
            for i in np.flatnonzero(removed).tolist():
                label = int(arr[i])
                self._deleted.discard(label)
                try:  # revive it; the add below gives it the new vector
                    self._index.unmark_deleted(label)
                except RuntimeError:  # its slot went to a newer id: it is new again
                    continue
                self._tombstones -= 1
                existing[i] = True
            unknown = ~existing
            existing[unknown] = self._live(arr[unknown])
            n_new = int(np.count_nonzero(~existing))
            needed = int(self._index.element_count) + max(0, n_new - self._tombstones)
            if needed > self._index.max_elements:
                self._index.resize_index(max(needed, 2 * int(self._index.max_elements)))
            if existing.any():
                self._index.add_items(
                    vecs[existing], arr[existing].astype(np.uint64), num_threads=self._threads
                )
            if n_new:
                self._index.add_items(
                    vecs[~existing],
                    arr[~existing].astype(np.uint64),
                    num_threads=self._threads,
                    replace_deleted=True,
                )
                self._tombstones -= min(n_new, self._tombstones)

    def remove(self, ids: Iterable[int] | np.ndarray) -> None:
        """Remove `ids` from search results; ids that are not present are ignored."""
        arr = _as_ids(ids, strict=False)
        with self._lock:
            for label in np.unique(arr).tolist():
                if label < 0 or label in self._deleted:
                    continue
                try:
                    self._index.mark_deleted(label)
                except RuntimeError:  # not present
                    continue
                self._deleted.add(label)
                self._tombstones += 1

    # -- search ---------------------------------------------------------------------------------

    def query(
        self,
        vectors: np.ndarray,
        k: int,
        exclude: Collection[int] | None = None,
        only: Collection[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest live items to each query vector.

        Args:
            vectors: one query [dim] or several [q, dim].
            k: neighbours wanted per query.
            exclude: ids never to return (for example the query's own entry).
            only: if given, return only these ids (for example the entries of one class);
                searched with hnswlib's filter callback, so a small share of a large index
                costs more per query than an unfiltered search.

        Returns:
            (ids int64 [q, k'], distances float32 [q, k']), nearest first, with Euclidean
            distances; k' = min(k, live items not excluded), so 0 for an empty index. A single
            query vector still gives a [1, k'] result.

        Raises:
            ValueError: a negative k, or vectors of the wrong shape or with NaN/inf.
        """
        q = self._as_vectors(vectors, "query vectors")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be a non-negative integer, not {k!r}")
        excl = _exclusion(exclude)
        allowed = None if only is None else _exclusion(only) - excl
        with self._lock:
            live = len(self)
            if allowed is not None:
                kk = self._count_live(allowed, up_to=int(k))
            elif not excl or live - len(excl) >= k:
                kk = min(int(k), live)
            else:
                kk = min(int(k), live - self._count_live(excl))
            if kk <= 0 or len(q) == 0:
                return np.empty((len(q), 0), np.int64), np.empty((len(q), 0), np.float32)
            try:
                if allowed is not None:
                    labels, d2 = self._index.knn_query(
                        q, k=kk, num_threads=self._threads, filter=allowed.__contains__
                    )
                elif not excl:
                    labels, d2 = self._index.knn_query(q, k=kk, num_threads=self._threads)
                elif len(excl) <= self.OVERFETCH_MAX_EXCLUDE:
                    fetch = min(kk + len(excl), live)
                    labels, d2 = self._index.knn_query(q, k=fetch, num_threads=self._threads)
                    labels = labels.astype(np.int64)
                    dropped = _isin(labels, excl)
                    order = np.argsort(dropped, axis=1, kind="stable")[:, :kk]
                    labels = np.take_along_axis(labels, order, axis=1)
                    d2 = np.take_along_axis(d2, order, axis=1)
                else:
                    labels, d2 = self._index.knn_query(
                        q, k=kk, num_threads=self._threads, filter=lambda i: i not in excl
                    )
            except RuntimeError:
                # hnswlib found fewer than kk items: a graph the deletions cut apart. Rare;
                # exact search over the live items is always right.
                return self._exact_query(q, kk, excl, allowed)
        return labels.astype(np.int64), np.sqrt(np.maximum(d2, 0)).astype(np.float32)

    # -- files ----------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to `path` and its description beside it, each atomically.

        Raises:
            OSError: the folder cannot be written.
        """
        with self._lock:
            if len(self._deleted) != self._tombstones:
                labels = np.asarray(self._index.get_ids_list(), dtype=np.uint64)
                self._prune_deleted(labels.astype(np.int64))
            write_index(
                Path(path),
                self._index,
                {
                    "space": self.SPACE,
                    "dim": self._dim,
                    "items": len(self),
                    "elements": int(self._index.element_count),
                    "capacity": int(self._index.max_elements),
                    "m": self.m,
                    "ef_construction": self.ef_construction,
                    "ef_search": self._ef,
                    "seed": self._seed,
                    "removed": sorted(self._deleted),
                },
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> VectorIndex:
        """Read an index that `save` wrote, checking it fully before hnswlib sees it.

        Raises:
            IndexFileError: the file or its description is missing, truncated, damaged, from a
                newer Sample Tool, or holds vectors of another dimension or distance. One
                sentence says which.
        """
        path = Path(path)
        raw, doc = read_index(path, int(dim), cls.SPACE)
        index = cls.__new__(cls)
        index._dim = int(dim)
        index._index = raw
        index._ef = doc["ef_search"]
        index._index.set_ef(index._ef)
        index._seed = doc["seed"]
        index._threads = _cpu_count()
        index._deleted = set(doc["removed"])
        index._tombstones = len(index._deleted)
        index._lock = threading.RLock()
        if int(index._index.element_count) != doc["elements"] or len(index) != doc["items"]:
            raise IndexFileError(path, "the index file does not match its description")
        return index

    @classmethod
    def build(
        cls, ids: Iterable[int] | np.ndarray, vectors: np.ndarray, **params: int
    ) -> VectorIndex:
        """A new index holding `vectors` under `ids`, built with all cores.

        Args:
            ids: non-negative integer ids [n].
            vectors: float32 [n, dim]; the dimension is taken from here.
            **params: `VectorIndex` keyword arguments (m, ef_construction, ef_search, seed,
                capacity; capacity defaults to n).
        """
        vecs = np.asarray(vectors)
        if vecs.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array [n, dim], not of shape {vecs.shape}")
        params.setdefault("capacity", max(1, len(vecs)))
        index = cls(int(vecs.shape[1]), **params)
        index.add(ids, vecs)
        return index

    # -- internals ------------------------------------------------------------------------------

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self._dim:
            got = arr.shape[-1] if arr.ndim else 0
            raise ValueError(
                f"{what} have {got} dimensions (shape {np.shape(vectors)}) but this index holds "
                f"{self._dim}-dimensional vectors"
            )
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        return arr

    def _has(self, label: int) -> bool:
        if not 0 <= label <= _INT64_MAX:
            return False
        try:
            self._index.get_items([label])
        except RuntimeError:  # not present, or removed
            return False
        return True

    def _live(self, labels: np.ndarray) -> np.ndarray:
        """Which of `labels` (none of them in _deleted) hnswlib holds."""
        count = int(self._index.element_count)
        if len(labels) == 0 or count == 0:
            return np.zeros(len(labels), dtype=bool)
        if len(labels) * 16 <= count:  # a few ids: ask about each one
            return np.fromiter((self._has(i) for i in labels.tolist()), bool, len(labels))
        held = np.asarray(self._index.get_ids_list(), dtype=np.uint64).astype(np.int64)
        return np.isin(labels, held)

    def _count_live(self, ids: frozenset[int], up_to: int | None = None) -> int:
        """How many of `ids` the index holds (at most `up_to`), asking about one id at a time
        while that is cheaper than listing the whole index."""
        few = len(ids) * 16 <= len(self)
        if few or up_to is not None:
            found = 0
            for n, i in enumerate(ids):
                if not few and up_to is not None and n == 16 * up_to:  # many missing: list all
                    break
                found += self._has(i)
                if found == up_to:
                    return found
            else:
                return found
        count = int(np.count_nonzero(np.isin(self.ids(), np.fromiter(ids, np.int64, len(ids)))))
        return count if up_to is None else min(count, up_to)

    def _deleted_array(self) -> np.ndarray:
        return np.fromiter(self._deleted, np.int64, len(self._deleted))

    def _prune_deleted(self, held: np.ndarray) -> None:
        """Forget removed labels whose slot a newer id took (held: every label hnswlib has)."""
        deleted = self._deleted_array()
        self._deleted = set(deleted[np.isin(deleted, held)].tolist())

    def _exact_query(
        self, q: np.ndarray, k: int, excl: frozenset[int], allowed: frozenset[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = self.ids()
        if allowed is not None:
            ids = ids[np.isin(ids, np.fromiter(allowed, np.int64, len(allowed)))]
        elif excl:
            ids = ids[~np.isin(ids, np.fromiter(excl, np.int64, len(excl)))]
        x = self.get(ids).astype(np.float64)
        d2 = (
            (q.astype(np.float64) ** 2).sum(1)[:, None]
            - 2 * q.astype(np.float64) @ x.T
            + (x**2).sum(1)[None, :]
        )
        top = np.argsort(d2, axis=1, kind="stable")[:, :k]
        dist = np.sqrt(np.maximum(np.take_along_axis(d2, top, axis=1), 0))
        return ids[top], dist.astype(np.float32)


class ModelIndex:
    """One model's vector index over one catalogue, kept in step with it.

    The index file (hnswlib's, written by `VectorIndex.save`) and a small state file (the
    catalogue generation it was saved at) sit beside the catalogue. Opening reuses the file when
    it matches the catalogue; a missing, damaged, stale or other-dimension file is rebuilt from
    the catalogue's stored vectors (the catalogue is the source of truth). Changes go through
    `add` and `remove` (under one lock, so a GUI may search while a scan adds) and reach disk
    with `save`.

    Another process (or another `Library` on the same catalogue) may scan while this one is
    open: every query first compares the catalogue's generation with the one the index in
    memory matches (one indexed read of a row) and, when they differ, brings the index up to
    date from the catalogue (`refresh`).

    Args:
        catalogue: the library's catalogue.
        model_id: whose vectors (`Catalogue.vectors(model_id)`).
        dim: the vectors' length.
        path: the index file; its state file is `path` with ".state.json" for ".hnsw".
    """

    def __init__(self, catalogue: Catalogue, model_id: str, dim: int, path: Path) -> None:
        self.catalogue = catalogue
        self.model_id = model_id
        self.dim = dim
        self.path = path
        self.state_path = path.with_name(path.name.removesuffix(".hnsw") + ".state.json")
        self._lock = threading.RLock()
        self._saved_generation = -1
        self._generation = -1  # the catalogue generation the index in memory matches
        self.vectors = self._open()

    def _open(self) -> VectorIndex:
        cat = self.catalogue
        generation = cat.generation()
        self._generation = generation
        try:
            if not self.path.exists():
                raise FileNotFoundError(self.path)
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                raise ValueError("the index state file is damaged")
            index = VectorIndex.load(self.path, self.dim)
            expected = cat.vector_ids(self.model_id)
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
        ids, vecs = cat.vectors(self.model_id)
        if len(ids):
            log.info("vector index %s is %s: rebuilt from the catalogue", self.path, reason)
            index = VectorIndex.build(ids, vecs)
        else:
            index = VectorIndex(self.dim)
        self._save(index)
        return index

    def refresh(self) -> None:
        """Bring the index in memory up to date if the catalogue changed since (another
        process's scan): the vectors it lacks are read from the catalogue and those gone are
        removed. Ids are never reused, so an id it holds still has its vector."""
        with self._lock:
            generation = self.catalogue.generation()
            if generation == self._generation:
                return
            expected = self.catalogue.vector_ids(self.model_id)
            held = self.vectors.ids()
            self.vectors.remove(held[~np.isin(held, expected)])
            new = expected[~np.isin(expected, held)]
            if len(new):
                ids, vecs = self.catalogue.vectors(self.model_id, new)
                self.vectors.add(ids, vecs)
            self._generation = generation

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add what a write to the catalogue, just committed, added (see `remove`)."""
        with self._lock:
            self.vectors.add(ids, vectors)
            self._generation = self.catalogue.generation()

    def remove(self, ids: Iterable[int]) -> None:
        """Remove what a write to the catalogue, just committed, removed. The index then
        matches the catalogue's generation: the caller holds the scan lock, so that write was
        the only one since the index last matched."""
        with self._lock:
            self.vectors.remove(list(ids))
            self._generation = self.catalogue.generation()

    def query(
        self,
        vectors: np.ndarray,
        k: int,
        exclude: Collection[int] | None = None,
        only: Collection[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`VectorIndex.query` on the index, brought up to date first (`refresh`)."""
        with self._lock:
            self.refresh()
            return self.vectors.query(vectors, k, exclude=exclude, only=only)

    def save(self) -> None:
        """Write the index and the catalogue generation it matches."""
        with self._lock:
            self._save(self.vectors)

    def _save(self, index: VectorIndex) -> None:
        generation = self.catalogue.generation()
        index.save(self.path)
        self._save_state(generation, len(index))

    def _save_state(self, generation: int, items: int) -> None:
        self._saved_generation = generation
        atomic_write_text(self.state_path, json.dumps({"generation": generation, "items": items}))


# -- helpers --------------------------------------------------------------------------------------


def _as_ids(ids: Iterable[int] | np.ndarray, strict: bool = True) -> np.ndarray:
    """ids as a 1-D int64 array; `strict` rejects negative ones (`remove` just skips them)."""
    if not isinstance(ids, np.ndarray) and not isinstance(ids, (list, tuple, range)):
        ids = list(ids) if isinstance(ids, Iterable) else [ids]
    arr = np.atleast_1d(np.asarray(ids))
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-D sequence of integers, not of shape {arr.shape}")
    if len(arr) == 0:
        return np.empty(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers, not {arr.dtype}")
    if arr.dtype.kind == "u" and int(arr.max()) > _INT64_MAX:
        raise ValueError(f"id {int(arr.max())} does not fit in int64")
    arr = arr.astype(np.int64)
    if strict and (arr < 0).any():
        raise ValueError(f"ids must not be negative (got {int(arr.min())})")
    return arr


def _exclusion(exclude: Collection[int] | None) -> frozenset[int]:
    """`exclude` as a set of ints, without ids that cannot be in any index (negative ones)."""
    if exclude is None:
        return frozenset()
    if isinstance(exclude, np.ndarray) and exclude.dtype.kind in "iu":
        arr = exclude.ravel()
        return frozenset(arr[arr >= 0].tolist() if arr.dtype.kind == "i" else arr.tolist())
    if isinstance(exclude, np.ndarray):
        exclude = exclude.ravel().tolist()
    return frozenset(i for i in map(int, exclude) if 0 <= i <= _INT64_MAX)


def _isin(labels: np.ndarray, ids: Collection[int]) -> np.ndarray:
    """np.isin(labels, ids), without np.isin's sorting overhead for a few labels."""
    if labels.size > 4096:
        return np.isin(labels, np.fromiter(ids, np.int64, len(ids)))
    flat = labels.ravel().tolist()
    return np.fromiter((i in ids for i in flat), bool, len(flat)).reshape(labels.shape)
