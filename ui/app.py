"""The app's entry point: `sampletool-gui [--library DIR] [--model DIR]` (or `python app.py`)."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ui.mainwindow import MainWindow
from ui.settings import APP, ORG
from ui.workers import default_pool


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sampletool-gui", description="Sample Tool desktop app")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="a sample folder to open, or an audio file (its folder is opened): what "
                        "a file manager's Open with passes")  # fmt: skip
    p.add_argument("--library", metavar="DIR", help="sample folder to open")
    p.add_argument("--model", metavar="DIR", help="model bundle folder or installed model name")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a screenshot of the window once loaded, then quit")  # fmt: skip
    p.add_argument("--wait-indexed", action="store_true",
                   help="with --screenshot: wait until the library is indexed and the map "
                        "refined")  # fmt: skip
    p.add_argument("--self-test", action="store_true",
                   help="check this install offscreen (a demo library in a temporary folder: "
                        "index, similar, classify, blend, train wizard, model manager), print "
                        "one line and exit 0, or 1 naming the step that failed")  # fmt: skip
    p.add_argument("--version", action="version", version=f"sampletool-gui {_version()}")
    args = p.parse_args(argv)
    if args.library is None and args.paths:
        first = Path(args.paths[0]).expanduser()
        args.library = str(first if first.is_dir() or not first.exists() else first.parent)
    return args


def app_icon() -> QIcon:
    """The app's icon (ui/resources: the SVG and its PNG sizes, from packaging/make_icons.py),
    package data found wherever the app is installed."""
    from importlib.resources import files

    folder = Path(str(files("ui") / "resources"))
    icon = QIcon()
    for png in sorted((folder / "icons").glob("sampletool-*.png")):
        icon.addFile(str(png))
    icon.addFile(str(folder / "sampletool.svg"))
    return icon


def _version() -> str:
    from sampletool import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display needed, none shown
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setDesktopFileName("sampletool")  # Wayland and docks match the window to its entry
    app.setWindowIcon(app_icon())
    if args.self_test:
        from PySide6.QtCore import qInstallMessageHandler

        from ui.selftest import run_self_test

        # The offscreen platform's notes ("This plugin does not support raise()") are not news.
        qInstallMessageHandler(lambda *_: None)

        passed, summary = run_self_test(args.model)
        print(summary, flush=True)
        default_pool().wait(3000)
        return 0 if passed else 1
    library = str(Path(args.library).expanduser().absolute()) if args.library else None
    # A first start (no library given or remembered) opens the demo library, made once in the
    # user's data folder; File > Open sample folder... opens theirs.
    window = MainWindow(model=args.model, library=library, demo_when_empty=not args.screenshot)
    window.show()
    if args.screenshot:
        _screenshot_when_ready(app, window, Path(args.screenshot), args.wait_indexed)
    code = app.exec()
    window.cancel_all()
    # A scan stops within a batch; a map projection cannot be interrupted: give the work a
    # moment, then leave without waiting for it (the catalogue commits batch by batch, so
    # nothing is lost).
    if not default_pool().wait(3000):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _screenshot_when_ready(app, window: MainWindow, out: Path, wait_indexed: bool) -> None:
    """Save a PNG of the window once it has loaded (and, with `wait_indexed`, indexed and
    refined its map), then quit."""
    shot = threading.Event()

    def shoot(*_: object) -> None:
        if not shot.is_set():
            shot.set()
            QTimer.singleShot(300, lambda: (window.grab().save(str(out)), app.quit()))

    if wait_indexed and window.library:
        window.map_refined.connect(shoot)
        window.engine_ready.connect(lambda ok: None if ok else shoot())
        window.stuck.connect(shoot)  # the library could not be opened or indexed
        window.library_ready.connect(
            lambda: None if window.controller.refine_map and len(window.snapshot or ()) else shoot()
        )
        QTimer.singleShot(900_000, shoot)  # whatever happens, do not hang
    else:
        window.engine_ready.connect(shoot)


if __name__ == "__main__":
    sys.exit(main())
