"""The window opens (offscreen) before the model is loaded, then shows the model."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from ui import workers
from ui.main_window import MainWindow


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))


def test_window_opens_and_loads_model_in_background(qtbot, tiny_bundle):
    w = MainWindow(model=str(tiny_bundle))
    qtbot.addWidget(w)
    w.show()
    assert w.isVisible() and w.tool is None  # visible before the model is there
    with qtbot.waitSignal(w.engine_ready, timeout=60_000) as blocker:
        pass
    assert blocker.args == [True]
    assert w.tool is not None and "tiny" in w.welcome.text()


def test_bad_model_is_a_message_not_a_crash(qtbot, tmp_path):
    w = MainWindow(model=str(tmp_path))
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.engine_ready, timeout=60_000) as blocker:
        w.show()
    assert blocker.args == [False]
    assert "not a Sample Tool model" in w.welcome.text()
    assert w.statusBar().currentMessage() == "No model loaded"


def test_run_task_delivers_result_error_and_progress(qtbot):
    got = {}

    def work(n, progress, cancel):
        for i in range(n):
            progress(i + 1, n, f"step {i}")
        return n * 2

    progress = []
    t = workers.run_task(
        work,
        3,
        pass_control=True,
        on_result=lambda r: got.setdefault("r", r),
        on_progress=lambda *a: progress.append(a),
    )
    qtbot.waitUntil(lambda: "r" in got, timeout=10_000)
    assert got["r"] == 6 and progress[-1] == (3, 3, "step 2") and not t.cancelled

    def fail():
        raise ValueError("nope")

    workers.run_task(fail, on_error=lambda e: got.setdefault("e", e))
    qtbot.waitUntil(lambda: "e" in got, timeout=10_000)
    assert isinstance(got["e"], ValueError) and "nope" in got["e"].formatted_traceback
