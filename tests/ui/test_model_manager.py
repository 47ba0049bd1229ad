"""The model manager and the Tools menu, offscreen, with real bundles, real runs and the real
training process; and the app closed in the middle of a training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QApplication

from sampletool.training.runs import run_state
from tests.helpers import make_bundle, make_class_folders
from ui import messages, workers
from ui.mainwindow import MainWindow
from ui.models import ModelManager
from ui.playback import Player
from ui.training.wizard import FINISH, TRAINING
from ui.workers import SynchronousPool

TIMEOUT = 180_000


class SilentOutput:
    def play(self, audio, sample_rate) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))
    monkeypatch.setenv("SAMPLETOOL_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(autouse=True)
def _no_work_left_behind():
    yield
    for w in QApplication.topLevelWidgets():
        if isinstance(w, MainWindow):
            w.cancel_all()
    workers.default_pool().wait()


@pytest.fixture
def models(tmp_path) -> Path:
    folder = tmp_path / "data" / "models"
    folder.mkdir(parents=True)
    return folder


def open_manager(qtbot, active=None) -> ModelManager:
    m = ModelManager(active=lambda: active, pool=SynchronousPool())
    qtbot.addWidget(m)
    m.show()
    return m


def row_of(m: ModelManager, name: str) -> int:
    return next(i for i, r in enumerate(m.rows) if r.name == name)


def test_lists_every_model_with_its_facts_and_confusion_matrix(qtbot, models, tmp_path,
                                                               monkeypatch):  # fmt: skip
    kit = make_bundle(models / "kit", num_classes=3)
    (kit / "confusion_matrix.json").write_text(json.dumps(
        {"classes": ["class0", "class1", "class2"], "matrix": [[3, 1, 0], [0, 4, 0], [1, 0, 3]],
         "step": 40}))  # fmt: skip
    elsewhere = tmp_path / "shared"
    make_bundle(elsewhere / "team", num_classes=0)
    monkeypatch.setenv("SAMPLETOOL_MODEL_PATH", str(elsewhere))
    from sampletool.models.bundle import resolve_model

    m = open_manager(qtbot, active=str(resolve_model(None)))
    names = [r.name for r in m.rows]
    assert names[0] == "default" and {"kit", "team"} <= set(names)
    default = m.table.item(0, 1).text()
    assert "Built-in" in default and "In use" in default
    m.table.selectRow(row_of(m, "kit"))
    assert m.table.item(row_of(m, "kit"), 3).text() == "3"
    assert m.confusion.matrix.sum() == 12 and "class1" in m.details.text()
    assert m.rename_button.isEnabled() and m.delete_button.isEnabled()
    assert "votes" not in m.details.text()  # read by its classifier alone
    m.table.selectRow(0)  # the built-in model: neither renamed nor deleted
    assert not m.rename_button.isEnabled() and not m.delete_button.isEnabled()
    assert "from the votes of its" in m.details.text()  # and of its training sounds
    assert m.export_button.isEnabled()
    assert not m.use_button.isEnabled()  # it is the model in use
    with qtbot.assertNotEmitted(m.activate):
        m._use()  # as a double-click on its row: nothing to switch to
    m.table.selectRow(row_of(m, "kit"))
    assert m.use_button.isEnabled()
    with qtbot.waitSignal(m.activate) as used:
        m.use_button.click()
    assert used.args == [str(kit)]
    # The confusion matrix asks for room to label each row and column legibly.
    assert m.confusion.minimumSizeHint().height() >= 3 * 14 and m.confusion.height() >= 3 * 14


def test_import_of_a_folder_that_is_not_a_bundle_is_refused_with_the_reason(qtbot, models,
                                                                            tmp_path):  # fmt: skip
    plain = tmp_path / "Downloads" / "some folder"
    plain.mkdir(parents=True)
    (plain / "kick.wav").write_bytes(b"RIFF")
    m = open_manager(qtbot)
    before = len(m.rows)
    m.import_from(plain)
    assert m.message.text().startswith("Not imported:") and "holds no config.json" in (
        m.message.text()
    )
    assert len(m.rows) == before and list(models.iterdir()) == []
    good = make_bundle(tmp_path / "Downloads" / "Their kit", num_classes=3)
    with qtbot.waitSignal(m.changed):
        m.import_from(good)
    assert "Imported Their kit" in m.message.text()
    assert (models / "Their kit" / "weights.safetensors").is_file()
    assert m.rows[m.table.currentRow()].name == "Their kit"
    # Export, then the archive imports as a second copy under a free name.
    m.export_to(models / "Their kit", tmp_path / "out.zip")
    assert (tmp_path / "out.zip").is_file()
    m.import_from(tmp_path / "out.zip")
    assert "Imported Their kit-2" in m.message.text()


def test_delete_asks_first_and_rename_renames(qtbot, models, monkeypatch):
    make_bundle(models / "old kit", num_classes=0)
    m = open_manager(qtbot)
    m.table.selectRow(row_of(m, "old kit"))
    asked = []
    monkeypatch.setattr(messages, "confirm", lambda *a, **k: asked.append(a[2]) or False)
    m.delete_button.click()
    assert asked and "old kit" in asked[0] and (models / "old kit").is_dir()  # kept: said no
    monkeypatch.setattr(messages, "ask_text", lambda *a, **k: "New kit")
    with qtbot.waitSignal(m.renamed) as renamed:
        m.rename_button.click()
    assert renamed.args == [str(models / "old kit"), str(models / "New kit")]
    assert m.rows[m.table.currentRow()].name == "New kit"
    monkeypatch.setattr(messages, "confirm", lambda *a, **k: True)
    m.delete_button.click()
    assert not (models / "New kit").exists()
    assert all(r.name != "New kit" for r in m.rows)


def _train_in_window(qtbot, w: MainWindow, data: Path) -> None:
    wizard = w.train_wizard()
    w.open_train_wizard()
    wizard.data_page.add_folders([str(data)])
    qtbot.waitUntil(lambda: wizard.data_page.isComplete(), timeout=30_000)
    wizard.next()
    qtbot.waitUntil(lambda: wizard.setup_page.isComplete(), timeout=30_000)
    page = wizard.setup_page
    page.name.setText("Long run")
    page.start_from.setCurrentIndex(0)
    page.size_buttons["small"].click()
    page.advanced_toggle.setChecked(True)
    page.batch.setValue(8)
    page.max_steps.setValue(100_000)
    page.eval_every.setValue(10)
    wizard.next()
    qtbot.waitUntil(lambda: wizard.session is not None and bool(wizard.session.history.validations),
                    timeout=TIMEOUT)  # fmt: skip


def test_the_app_closed_mid_training_offers_to_resume_it_and_resuming_works(
    qtbot, tiny_bundle, tmp_path, monkeypatch
):
    data = make_class_folders(tmp_path / "Drums", per_class=8)
    w = MainWindow(model=str(tiny_bundle), player=Player(backend=SilentOutput()))
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.engine_ready, timeout=60_000):
        pass
    _train_in_window(qtbot, w, data)
    assert w.training_button.isVisible() and "Long run" in w.training_button.text()
    logdir = w.train_wizard().run_dir()
    asked = []
    monkeypatch.setattr(messages, "confirm", lambda *a, **k: asked.append(a[1]) or False)
    w.close()  # asked, and the answer is no: still open, still training
    assert asked == ["Quit while training?"] and w.isVisible() and w.train_wizard().training
    monkeypatch.setattr(messages, "confirm", lambda *a, **k: True)
    w.close()
    assert not w.train_wizard().training
    state = run_state(logdir)
    assert state.status == "interrupted" and state.incomplete and state.has_model
    stopped_at = state.step

    # Next start: the status bar says so, and the model manager offers Resume.
    w2 = MainWindow(model=str(tiny_bundle), player=Player(backend=SilentOutput()))
    qtbot.addWidget(w2)
    w2.show()
    with qtbot.waitSignal(w2.engine_ready, timeout=60_000):
        pass
    w2._check_runs()
    qtbot.waitUntil(lambda: "did not finish" in w2.statusBar().currentMessage(), timeout=30_000)
    manager = w2.model_manager()
    w2.open_model_manager()
    qtbot.waitUntil(lambda: any(r.name == "Long run" for r in manager.rows), timeout=30_000)
    row = row_of(manager, "Long run")
    assert "Cut short at step" in manager.table.item(row, 1).text()
    manager.table.selectRow(row)
    assert manager.resume_button.isEnabled()
    cfg = json.loads((logdir / "train_config.json").read_text())
    cfg["max_steps"] = stopped_at + 20  # a nearer end, for the test's sake
    (logdir / "train_config.json").write_text(json.dumps(cfg))
    manager.resume_button.click()
    wizard = w2.train_wizard()
    assert wizard.isVisible() and wizard.currentId() == TRAINING
    qtbot.waitUntil(lambda: wizard.currentId() == FINISH, timeout=TIMEOUT)
    assert run_state(logdir).status in ("max_steps", "converged")
    assert run_state(logdir).step > stopped_at
    with qtbot.waitSignal(w2.engine_ready, timeout=60_000):
        wizard.finish_page.use_button.click()  # "Use it now" loads it in the window
    assert w2.runtime.path == logdir and w2.runtime.class_names == ["high", "low", "noise"]
