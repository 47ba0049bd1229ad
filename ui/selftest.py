"""`sampletool-gui --self-test`: the whole app, offscreen, on a demo library in a temporary
folder: the model loads, the library is indexed, a similar search, a classification and a blend
are made, the train wizard's first page and the model manager open. One line says it passed
(exit 0) or which step failed and why (exit 1). Nothing of the user's is read or written: the
data folder and the settings live in the temporary folder too, and the audio output is silent.

It answers "does this install work?" for a wheel, an app bundle or a source checkout.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QTimer

STEP_TIMEOUT_S = 300.0  # a first scan on a slow machine; nothing here should take minutes


class StepFailed(Exception):
    """A step of the self-test did not do what it should (the message says what)."""


class _SilentOutput:
    """An audio output that plays nothing: the self-test must not need (or use) a device."""

    def play(self, audio, sample_rate) -> None:
        pass

    def stop(self) -> None:
        pass


def wait_until(done: Callable[[], bool], what: str, timeout: float = STEP_TIMEOUT_S) -> None:
    """Run the event loop until `done()` holds; StepFailed naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(loop.quit)
    timer.start()
    try:
        while not done():
            if time.monotonic() > deadline:
                raise StepFailed(f"{what}: nothing after {timeout:.0f} s")
            loop.exec()
    finally:
        timer.stop()


def run_self_test(model: str | None = None) -> tuple[bool, str]:
    """Returns (passed, the one-line summary)."""
    start = time.monotonic()
    step = "setting up"
    with tempfile.TemporaryDirectory(prefix="sampletool-self-test-") as tmp:
        os.environ["SAMPLETOOL_DATA_DIR"] = str(Path(tmp) / "data")
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(tmp)))
        window = None
        try:
            from sampletool.data.synth import write_demo_library
            from ui.mainwindow import MainWindow
            from ui.playback import Player

            step = "writing a demo library"
            library = Path(tmp) / "Demo Library"
            write_demo_library(library, per_class=4, loops=1)

            step = "loading the model"
            window = MainWindow(model=model, library=str(library), refine_map=False,
                                player=Player(backend=_SilentOutput()))  # fmt: skip
            window.show()
            ready: list[bool] = []
            window.engine_ready.connect(ready.append)
            wait_until(lambda: bool(ready), step)
            if not ready[0]:
                raise StepFailed(window.welcome.text().replace("<p>", " ").split("</h2>")[-1])
            runtime = window.runtime

            step = "indexing the demo library"
            stuck: list[str] = []
            window.stuck.connect(stuck.append)
            wait_until(lambda: stuck or (window.snapshot is not None
                                         and len(window.latent_map.ids()) > 0), step)  # fmt: skip
            if stuck:
                raise StepFailed(stuck[0])
            snapshot = window.snapshot
            indexed = len(snapshot)
            ref = window.library_view.model.ref(0)

            step = "finding similar samples"
            window.find_similar(ref)
            wait_until(lambda: bool(window.latent_map.highlighted_ids()), step)
            similar = len(window.latent_map.highlighted_ids())

            step = "classifying a sample"
            classified = "no classifier"
            if runtime.class_names:
                window.classify(ref)
                bars = window.classify_popup.probabilities.bars
                wait_until(lambda: bool(bars()), step)
                classified = f"{ref.name} as {bars()[0][0]}"
                window.classify_popup.hide()

            step = "generating a blend"
            blend = "no decoder"
            if runtime.can_generate:
                for r in range(min(2, window.library_view.model.rowCount())):
                    window.blend.add_sample(window.library_view.model.ref(r))
                if not window.blend.live:
                    filled = [i for i, s in enumerate(window.blend.slots) if s.ref is not None]
                    wait_until(lambda: all(window.blend.slot_latent(i) is not None
                                           for i in filled), step)  # fmt: skip
                    window.blend.regenerate_now()
                wait_until(lambda: bool(window.blend.results), step)
                audio = window.blend.results[-1].audio
                if not len(audio) or not np.isfinite(audio).all():
                    raise StepFailed("the blend is empty or not finite")
                blend = f"blend of {len(audio) / window.blend.results[-1].sample_rate:.2f} s"

            step = "opening the train wizard"
            window.open_train_wizard()
            wizard = window.train_wizard()
            wait_until(lambda: wizard.isVisible() and wizard.currentId() >= 0, step)
            wizard.hide()

            step = "opening the model manager"
            window.open_model_manager()
            manager = window.model_manager()
            wait_until(manager.isVisible, step)
            manager.hide()
        except StepFailed as e:
            return False, f"self-test failed {step}: {e}"
        except Exception as e:  # anything else is a failure of the step, said in one line
            return False, f"self-test failed {step}: {type(e).__name__}: {e}"
        finally:
            if window is not None:
                window.cancel_all()
                window.close()
            QCoreApplication.processEvents()
    took = time.monotonic() - start
    return True, (
        f"self-test passed in {took:.1f} s: model {runtime.name} ({runtime.kind}, "
        f"{len(runtime.class_names)} classes), {indexed} demo samples indexed, {similar} similar "
        f"found, {classified}, {blend}, train wizard and model manager opened"
    )
