"""The one way off the GUI thread: run_task, and task groups where the latest task wins."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QObject
from shiboken6 import isValid

from ui import workers
from ui.workers import SynchronousPool, TaskGroup


def test_run_task_delivers_result_error_and_progress(qtbot):
    got = {}

    def work(n, progress, cancel):
        for i in range(n):
            progress(i + 1, n, f"step {i}")
        return n * 2

    progress = []
    t = workers.run_task(work, 3, pass_control=True, on_result=lambda r: got.setdefault("r", r),
                         on_progress=lambda *a: progress.append(a))  # fmt: skip
    qtbot.waitUntil(lambda: "r" in got, timeout=10_000)
    assert got["r"] == 6 and progress[-1] == (3, 3, "step 2") and not t.cancelled

    def fail():
        raise ValueError("nope")

    workers.run_task(fail, on_error=lambda e: got.setdefault("e", e))
    qtbot.waitUntil(lambda: "e" in got, timeout=10_000)
    assert isinstance(got["e"], ValueError) and "nope" in got["e"].formatted_traceback


def _waiting(gate: threading.Event, value, cancel=None, progress=None):
    gate.wait(10)
    return value


def test_a_newer_task_of_a_name_supersedes_the_older_one(qtbot):
    owner = QObject()
    group = TaskGroup(owner)
    got = []
    gate = threading.Event()
    old = group.run("x", _waiting, gate, "old", pass_control=True, on_result=got.append)
    new = group.run("x", _waiting, gate, "new", pass_control=True, on_result=got.append)
    assert old.cancelled and not new.cancelled and group.task("x") is new
    gate.set()
    qtbot.waitUntil(lambda: got == ["new"], timeout=10_000)
    assert old.done_event.wait(10)
    qtbot.wait(50)  # the old result, queued too, is not delivered
    assert got == ["new"] and not group.running()


def test_cancel_still_delivers_and_drop_does_not(qtbot):
    group = TaskGroup(QObject())
    got = []
    gate = threading.Event()
    kept = group.run("a", _waiting, gate, "kept", pass_control=True, on_result=got.append)
    gone = group.run("b", _waiting, gate, "gone", pass_control=True, on_result=got.append)
    group.cancel("a")
    group.drop("b")
    assert kept.cancelled and gone.cancelled and group.running("a") and not group.running("b")
    gate.set()
    qtbot.waitUntil(lambda: got == ["kept"], timeout=10_000)
    assert gone.done_event.wait(10)
    qtbot.wait(50)
    assert got == ["kept"]


def test_nothing_is_delivered_once_the_owner_is_gone(qtbot):
    owner = QObject()
    group = TaskGroup(owner)
    got = []
    gate = threading.Event()
    task = group.run("x", _waiting, gate, 1, pass_control=True, on_result=got.append)
    owner.deleteLater()
    qtbot.waitUntil(lambda: not isValid(owner), timeout=10_000)
    gate.set()
    assert task.done_event.wait(10)
    qtbot.wait(50)
    assert got == []


def test_a_synchronous_pool_runs_inline_and_errors_reach_the_group_default():
    errors = []
    group = TaskGroup(QObject(), SynchronousPool(), on_error=errors.append)
    got = []
    group.run("x", lambda: 41 + 1, on_result=got.append)
    assert got == [42] and not group.running()  # before run() returned

    def fail():
        raise OSError("disk full")

    group.run("y", fail)
    assert [str(e) for e in errors] == ["disk full"]


# -- engine processes ----------------------------------------------------------------------------


def test_an_engine_process_brings_back_its_json_lines_and_its_end(qtbot, tmp_path):
    """The training worker's estimate on a file that is not audio: one event that says so,
    then a clean end; a line that is not JSON is skipped."""
    from ui.workers import EngineProcess

    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    proc = EngineProcess("sampletool.training.worker",
                         ["estimate", "--config", '{"dataset": "-", "batch_size": 2}',
                          "--classes", "2", "--device", "cpu", str(bad)])  # fmt: skip
    events = []
    proc.event.connect(events.append)
    with qtbot.waitSignal(proc.finished, timeout=120_000) as ended:
        proc.start()
        assert proc.running
    assert ended.args[0] == 0 and not proc.running
    assert len(events) == 1 and events[0]["event"] == "estimate"
    assert "could be read" in events[0]["error"]
    proc.send("ignored")  # after the end: dropped, no error


def test_an_engine_process_that_fails_says_why(qtbot):
    from ui.workers import EngineProcess

    proc = EngineProcess("sampletool.no_such_module", [])
    with qtbot.waitSignal(proc.finished, timeout=60_000) as ended:
        proc.start()
    code, stderr = ended.args
    assert code == 1 and "No module named sampletool.no_such_module" in stderr


def test_progress_reports_are_thinned_but_the_last_one_always_arrives(qtbot):
    """A call reporting each of 20,000 files must not queue 20,000 updates on the GUI thread."""
    got = []

    def work(progress, cancel):
        for i in range(20_000):
            progress(i + 1, 20_000, f"file {i}")
        progress(0, 0, "a message without a total")
        return "done"

    done = {}
    workers.run_task(work, pass_control=True, on_progress=lambda *a: got.append(a),
                     on_result=lambda r: done.setdefault("r", r))  # fmt: skip
    qtbot.waitUntil(lambda: "r" in done, timeout=30_000)
    qtbot.waitUntil(lambda: got and got[-1][2] == "a message without a total", timeout=10_000)
    assert got[-2] == (20_000, 20_000, "file 19999")
    assert 2 <= len(got) < 2_000  # a few per 50 ms, however fast the loop
    assert [d for d, _, _ in got[:-1]] == sorted(d for d, _, _ in got[:-1])
