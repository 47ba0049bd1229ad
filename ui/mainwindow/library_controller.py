"""The model and the library through their lifecycles, for the main window.

Model -> library (open, scan in the background, incremental) -> snapshot -> map (PCA at once,
UMAP in the background). The controller holds the engine objects, runs every step as a task of
its group, drops what a newer step made stale (a library opened for a model since replaced, a
map of an older snapshot), and says what happened through signals; it touches no widget. The
window shows what the signals carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from PySide6.QtCore import QObject, Signal

from ui.mainwindow import jobs
from ui.mainwindow.jobs import Lookups, Scanned
from ui.messages import message_of
from ui.workers import Pool, TaskGroup


@dataclass
class Layout:
    """A map layout of a library's vectors under one model, kept for the session: a rescan
    that changed nothing, or switching back to a model, shows it again at once instead of
    the quick layout and a new non-linear one (ten seconds at 300 samples, minutes at 100k)."""

    ids: np.ndarray
    vectors: np.ndarray
    xy: np.ndarray
    refined: bool  # the non-linear layout (else the quick PCA one)

    def fits(self, snapshot) -> bool:
        return np.array_equal(self.ids, snapshot.ids) and np.array_equal(
            self.vectors, snapshot.vectors)  # fmt: skip


class LibraryController(QObject):
    """The engine side of the window: one model runtime and one library at a time.

    Args:
        model: the model to load (a folder or an installed model's name; None: built-in).
        refine_map: compute the non-linear (UMAP) map after the quick PCA one.
        pool: where the tasks run (tests pass a synchronous pool).

    Signals:
        model_loading(): a model started loading.
        model_ready(runtime): a model is loaded and in use (any library is reopened with it).
        model_failed(message, kept): it could not be loaded; `kept`: the previous one is still
            in use.
        library_opening(folder): a library is being opened (the previous one is retired).
        library_failed(error): it could not be opened (a CatalogueError says if rebuilding
            would help).
        scan_started(): indexing began (progress follows as scan_progress(done, total, msg)).
        scanned(Scanned): the scan ended (maybe cancelled) and the snapshot is ready.
        scan_failed(message): the scan failed.
        map_ready(snapshot, xy): the quick layout of a snapshot's map.
        map_refined(snapshot, xy): its non-linear layout.
        map_failed(message): the non-linear layout failed (the quick one stays).
        demo_progress(done, total), demo_ready(folder, files), demo_failed(message).
        message(text, msecs): a status line (0: until replaced).
    """

    model_loading = Signal()
    model_ready = Signal(object)
    model_failed = Signal(str, bool)
    library_opening = Signal(str)
    library_failed = Signal(object)
    scan_started = Signal()
    scan_progress = Signal(int, int, str)
    scanned = Signal(object)
    scan_failed = Signal(str)
    map_ready = Signal(object, object)
    map_refined = Signal(object, object)
    map_failed = Signal(str)
    demo_progress = Signal(int, int)
    demo_ready = Signal(str, int)
    demo_failed = Signal(str)
    message = Signal(str, int)

    def __init__(
        self,
        parent: QObject | None = None,
        model: str | None = None,
        refine_map: bool = True,
        pool: Pool | None = None,
    ) -> None:
        super().__init__(parent)
        self.tasks = TaskGroup(self, pool, on_error=lambda e: self.message.emit(message_of(e),
                                                                                10000))  # fmt: skip
        self.model_name = model
        self._previous_model = model
        self.refine_map = refine_map
        self.runtime = None  # sampletool.models.runtime.ModelRuntime, once loaded
        self.lib = None  # sampletool.library.Library
        self.folder: str | None = None  # the library folder asked for (maybe not open yet)
        self.snapshot = None  # sampletool.library.Snapshot
        self.lookups = Lookups.empty()
        self._layouts: dict[tuple[str, str], Layout] = {}  # (model id, library root) -> layout

    def busy(self) -> bool:
        return self.tasks.running()

    def cancel_all(self) -> None:
        """Ask every task to stop (a scan stops after its batch in flight)."""
        self.tasks.cancel()

    # -- model -----------------------------------------------------------------------------------

    def load_model(self, model: str | None = None) -> None:
        self.model_loading.emit()
        self.tasks.run("model", jobs.load_model, model if model is not None else self.model_name,
                       on_result=self._model_loaded, on_error=self._model_failed)  # fmt: skip

    def switch_model(self, model: str) -> None:
        """Load another model; the library is re-indexed with it in the background (each
        model's vectors are kept, so switching back is quick)."""
        if self.runtime is not None:
            try:
                if Path(model).resolve() == self.runtime.path.resolve():
                    return  # already in use
            except OSError:
                pass
        self._previous_model, self.model_name = self.model_name, model
        self.load_model(model)

    def _model_loaded(self, runtime) -> None:
        if self.runtime is not None:
            self.retire_library()
        self.runtime = runtime
        self.model_ready.emit(runtime)
        if self.folder:
            self.open_library(self.folder)

    def _model_failed(self, error: BaseException) -> None:
        kept = self.runtime is not None
        if kept:
            self.model_name = self._previous_model
        self.model_failed.emit(message_of(error), kept)

    # -- library ---------------------------------------------------------------------------------

    def set_library(self, folder: str) -> None:
        """Use this sample folder (opened as soon as a model is loaded)."""
        self.folder = folder
        if self.runtime is not None:
            self.open_library(folder)

    def open_library(self, folder: str, rebuild: bool = False) -> None:
        self.retire_library()
        self.folder = folder
        self.library_opening.emit(folder)
        self.tasks.run("open", jobs.open_library, self.runtime, folder, rebuild,
                       on_result=self._library_opened,
                       on_error=self.library_failed.emit)  # fmt: skip

    def _library_opened(self, lib) -> None:
        if lib.runtime is not self.runtime:  # opened for a model that has since been replaced
            self.tasks.run(("close", id(lib)), lib.close)
            return
        self.lib = lib
        self.rescan()

    def retire_library(self) -> None:
        """Stop using the current library: cancel its work, close it once its scan (which
        finishes its batch in flight) is over, and forget what was shown of it."""
        scan = self.tasks.task("scan")
        self.tasks.drop("open", "scan", "pca", "umap")
        lib, self.lib = self.lib, None
        self.snapshot = None
        self.lookups = Lookups.empty()
        if lib is not None:
            self.tasks.run(("close", id(lib)), jobs.close_when_idle, lib,
                           scan.done_event if scan is not None else None)  # fmt: skip

    def rescan(self) -> None:
        if self.lib is None:
            return
        if self.tasks.running("scan"):
            self.message.emit("Already indexing", 3000)
            return
        self.scan_started.emit()
        self.tasks.run("scan", jobs.scan_library, self.lib, pass_control=True,
                       on_result=self._scanned, on_progress=self.scan_progress.emit,
                       on_error=lambda e: self.scan_failed.emit(message_of(e)))  # fmt: skip

    def cancel_scan(self) -> bool:
        """Ask the scan to stop after its batch in flight; False if none is running."""
        if not self.tasks.running("scan"):
            return False
        self.tasks.cancel("scan")
        return True

    def _scanned(self, result: Scanned) -> None:
        self.snapshot, self.lookups = result.snapshot, result.lookups
        self.scanned.emit(result)
        snapshot = result.snapshot
        kept = self._layouts.get(self._layout_key())
        if kept is not None and kept.fits(snapshot):
            self._laid_out(snapshot, kept.xy, kept.refined)
        elif len(snapshot):
            self.tasks.run("pca", jobs.fast_projection, snapshot.vectors,
                           on_result=lambda xy: self._laid_out(snapshot, xy))  # fmt: skip
        else:
            self.map_ready.emit(snapshot, np.zeros((0, 2), np.float32))

    def _layout_key(self) -> tuple[str, str]:
        return (
            self.runtime.model_id if self.runtime else "",
            str(self.lib.root if self.lib else ""),
        )

    def _keep_layout(self, snapshot, xy, refined: bool) -> None:
        self._layouts[self._layout_key()] = Layout(snapshot.ids, snapshot.vectors, xy, refined)

    def _laid_out(self, snapshot, xy, refined: bool = False) -> None:
        if snapshot is not self.snapshot:
            return
        self._keep_layout(snapshot, xy, refined)
        self.map_ready.emit(snapshot, xy)
        if self.refine_map and not refined:
            self.tasks.run("umap", jobs.slow_projection, snapshot.vectors, pass_control=True,
                           on_result=lambda xy2: self._refined(snapshot, xy2),
                           on_error=lambda e: self.map_failed.emit(message_of(e)))  # fmt: skip

    def _refined(self, snapshot, xy) -> None:
        if snapshot is self.snapshot:
            self._keep_layout(snapshot, xy, True)
            self.map_refined.emit(snapshot, xy)

    def create_demo_library(self, folder: Path) -> None:
        """Synthesise the demo library in the background, then open it."""
        self.tasks.run("demo", jobs.write_demo, folder, pass_control=True,
                       on_progress=lambda d, t, _m: self.demo_progress.emit(d, t),
                       on_result=lambda paths: self.demo_ready.emit(str(folder), len(paths)),
                       on_error=lambda e: self.demo_failed.emit(message_of(e)))  # fmt: skip
