"""The main window. For now: the model status and a welcome text; the library browser, map,
waveform, similarity and blend panels arrive with the GUI issue.

The window is shown before torch is imported; the model loads on a worker thread.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

from sampletool.errors import SampleToolError
from ui.workers import run_task

ORG, APP = "SampleTool", "Sample Tool"


def load_tool(model: str | None, library: str | None):
    """Engine side of start-up (runs on a worker thread): import torch, load the model."""
    from sampletool.tool import SoundSampleTool

    return SoundSampleTool(model, library_dir=library)


class MainWindow(QMainWindow):
    engine_ready = Signal(bool)  # emitted once start-up work is done: True if a model loaded

    def __init__(self, model: str | None = None, library: str | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP)
        self.tool = None
        self.settings = QSettings(ORG, APP)
        self.library = library or self.settings.value("library", None)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        self.welcome = QLabel(self)
        self.welcome.setObjectName("welcome")
        self.welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.welcome.setWordWrap(True)
        self.welcome.setText("<h2>Sample Tool</h2><p>Loading the model...</p>")
        layout.addWidget(self.welcome)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Loading the model...")

        self.setMinimumSize(640, 400)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1100, 700)
        # Start loading once the event loop runs, so the window paints first.
        QTimer.singleShot(0, lambda: self._start_loading(model))

    def _start_loading(self, model: str | None) -> None:
        self.load_task = run_task(
            load_tool, model, self.library, on_result=self._loaded, on_error=self._failed
        )

    def _loaded(self, tool) -> None:
        self.tool = tool
        b = tool.bundle
        classes = ", ".join(b.class_names) if b.class_names else "no classifier"
        self.welcome.setText(
            f"<h2>Sample Tool</h2><p>Model <b>{b.name}</b> ({b.config.kind}, "
            f"{tool.latent_dim}-d latent; classes: {classes}) on {tool.device}.</p>"
            "<p>The library browser arrives in a coming version; meanwhile the "
            "<code>sampletool</code> command classifies, embeds and blends sounds.</p>"
        )
        self.statusBar().showMessage(f"Model {b.name} loaded", 5000)
        self.engine_ready.emit(True)

    def _failed(self, error: BaseException) -> None:
        msg = (
            str(error) if isinstance(error, SampleToolError) else f"{type(error).__name__}: {error}"
        )
        self.welcome.setText(
            f"<h2>Sample Tool</h2><p>The model could not be loaded:</p><p>{msg}</p>"
        )
        self.statusBar().showMessage("No model loaded")
        self.engine_ready.emit(False)

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        super().closeEvent(event)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sampletool-gui", description="Sample Tool desktop app")
    p.add_argument("--library", metavar="DIR", help="sample folder to open")
    p.add_argument("--model", metavar="DIR", help="model bundle folder or installed model name")
    p.add_argument(
        "--screenshot", metavar="PNG", help="save a screenshot of the window once loaded, then quit"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    window = MainWindow(model=args.model, library=args.library)
    window.show()
    if args.screenshot:
        out = Path(args.screenshot)

        def shoot(*_: object) -> None:
            QTimer.singleShot(200, lambda: (window.grab().save(str(out)), app.quit()))

        window.engine_ready.connect(shoot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
