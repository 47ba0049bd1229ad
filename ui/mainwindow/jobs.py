"""The engine work the main window runs off the GUI thread: plain functions, no Qt.

Each runs as a task of a `ui.workers.TaskGroup` and returns everything the GUI thread then only
has to swap in (a snapshot with its table columns and lookups, a map layout...).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ui.dnd import SampleRef


def load_model(model: str | None):
    """The model runtime of `model` (None: the built-in default)."""
    import gc

    from sampletool.models.runtime import load_runtime

    runtime = load_runtime(model)
    # The map's hover lookup needs scipy's KD-tree as soon as a library shows; importing it
    # here costs the window nothing.
    import scipy.spatial  # noqa: F401

    # torch brings a few million long-lived objects; a full garbage collection walks them all
    # (100-500 ms with the global lock held: the window froze). Freeze what exists now so the
    # collector skips it from here on.
    gc.freeze()
    return runtime


def find_models():
    """The installed model bundles (the Model menu)."""
    from sampletool.models.bundle import find_bundles

    return find_bundles()


def interrupted_runs() -> list:
    """Training runs in the user's models folder that were cut short (the app closed while
    they trained, or crashed): not the ones the user stopped."""
    from sampletool.paths import user_models_dir
    from sampletool.training.runs import find_runs

    return [r for r in find_runs([user_models_dir()]) if r.status == "interrupted"]


def open_library(runtime, root: str, rebuild: bool = False):
    from sampletool.library import Library

    return Library(root, runtime, rebuild=rebuild)


@dataclass
class Lookups:
    """What the window looks up in a snapshot, built once per snapshot (off the GUI thread)."""

    row_of: dict[tuple[str, float], int]  # (path, onset) -> row
    row_of_id: dict[int, int]  # entry id -> row
    labels: list[str]  # the map's hover text
    onsets_of: dict[str, list[float]]  # path -> its entries' onsets, sorted

    @classmethod
    def empty(cls) -> Lookups:
        return cls({}, {}, [], {})

    @classmethod
    def of(cls, snapshot) -> Lookups:
        onsets = snapshot.onsets.tolist()
        onsets_of: dict[str, list[float]] = {}
        for p, o in zip(snapshot.paths, onsets, strict=True):
            onsets_of.setdefault(p, []).append(float(o))
        for v in onsets_of.values():
            v.sort()
        return cls(
            row_of={(p, float(o)): i for i, (p, o) in
                    enumerate(zip(snapshot.paths, onsets, strict=True))},
            row_of_id={int(i): k for k, i in enumerate(snapshot.ids.tolist())},
            labels=[Path(p).name for p in snapshot.paths],
            onsets_of=onsets_of,
        )  # fmt: skip


@dataclass
class Scanned:
    """A scan's outcome and everything the window shows of the library after it."""

    report: object  # sampletool.library.ScanReport (its `cancelled` says if it was stopped)
    snapshot: object  # sampletool.library.Snapshot
    columns: object  # ui.widgets.library_view.TableColumns
    lookups: Lookups


def scan_library(library, progress=None, cancel=None) -> Scanned:
    """Scan (a cancelled scan keeps what it did), then read the snapshot and prepare the table's
    columns and the lookups."""
    from sampletool.progress import Cancelled
    from ui.widgets.library_view import table_columns

    try:
        report = library.scan(progress=progress, cancel=cancel)
    except Cancelled as stopped:
        report = stopped.partial
    snapshot = library.snapshot()
    known = {p for p, _ in snapshot.failures}
    snapshot.failures += [(f["path"], f["reason"]) for f in report.failed
                          if f["path"] not in known]  # fmt: skip
    columns = table_columns(snapshot.paths, snapshot.onsets, library.root)
    return Scanned(report, snapshot, columns, Lookups.of(snapshot))


def close_when_idle(library, done: threading.Event | None) -> None:
    """Close a library once the scan using it (if any) has stopped."""
    if done is not None:
        done.wait(600)
    library.close()


def read_for_playback(path: str, onset: float):
    from sampletool.waveform import read_excerpt

    return read_excerpt(path, onset, 30.0)


def fast_projection(vectors: np.ndarray) -> np.ndarray:
    from sampletool.projection import pca_2d

    return pca_2d(vectors)


def slow_projection(vectors: np.ndarray, progress=None, cancel=None) -> np.ndarray:
    from sampletool.projection import umap_2d_isolated

    return umap_2d_isolated(vectors, progress=progress, cancel=cancel)


def search(library, ref: SampleRef, k: int, same_kind: bool = False):
    """(the k entries nearest to `ref` as (sample, distance), the class they were kept to, a
    note when "same kind" was asked for and not applied)."""
    from sampletool.errors import LibraryError

    if not Path(ref.path).exists():
        raise LibraryError(f"{ref.path} does not exist (moved or deleted?)")
    found = library.find_similar(ref.path, k, ref.onset, same_kind=same_kind)
    results = [(SampleRef(f, o), d) for f, o, d in
               zip(found.paths, found.onsets, found.distances, strict=True)]  # fmt: skip
    note = ""
    if same_kind and found.query_unsure:
        note = f"all kinds: the model is unsure it is a {found.query_class}"
    return results, found.query_class if found.same_kind else None, note


def set_class(library, paths: list[str], cls: str | None) -> None:
    """Give these library files the user's class (None: back to the model's)."""
    library.set_class(paths, cls)


def classify(runtime, ref: SampleRef) -> np.ndarray:
    """Class probabilities of a sound from outside the library."""
    return runtime.read(ref.path, ref.onset).probs[0]


def write_demo(folder: Path, progress=None, cancel=None) -> list[Path]:
    from sampletool.data.synth import write_demo_library

    return write_demo_library(folder, progress=progress, cancel=cancel)
