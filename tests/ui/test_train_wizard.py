"""The train wizard, offscreen, with real folders, the real survey and the real training process
(the same Trainer as the CLI), training small models on synthetic classes."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QUrl

from sampletool.training.runs import run_state
from tests.helpers import class_sound, make_class_folders, write
from tests.ui.events import drop_event
from ui.training import TrainWizard
from ui.training.wizard import FINISH, SETUP, TRAINING
from ui.workers import SynchronousPool

TIMEOUT = 180_000


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))
    monkeypatch.setenv("SAMPLETOOL_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def samples(tmp_path) -> Path:
    return make_class_folders(tmp_path / "My Drums", per_class=10)


def open_wizard(qtbot) -> TrainWizard:
    w = TrainWizard(pool=SynchronousPool())
    qtbot.addWidget(w)
    w.start_new()
    return w


def to_setup(qtbot, w: TrainWizard, folders: list[Path], labels: str = "subfolders") -> None:
    w.data_page.set_labels(labels)
    w.data_page.add_folders([str(f) for f in folders])
    qtbot.waitUntil(lambda: w.data_page.isComplete(), timeout=30_000)
    w.next()
    assert w.currentId() == SETUP
    qtbot.waitUntil(lambda: w.setup_page.isComplete(), timeout=30_000)


def small_run(w: TrainWizard, max_steps: int = 60, eval_every: int = 10) -> None:
    """The small size, with a short run: what a test can afford on two cores."""
    page = w.setup_page
    page.start_from.setCurrentIndex(0)  # a fresh model
    page.size_buttons["small"].click()
    page.advanced_toggle.setChecked(True)
    page.batch.setValue(8)
    page.max_steps.setValue(max_steps)
    page.eval_every.setValue(eval_every)


def test_the_wizard_trains_a_model_that_classifies_and_offers_it(qtbot, samples):
    w = open_wizard(qtbot)
    to_setup(qtbot, w, [samples])
    page = w.setup_page
    assert page.name.text() == "My Drums" and page.isComplete()
    assert page.kind.currentData()[0] == "vae"
    assert w.data_page.table.rowCount() == 3
    # 120 steps: every one of 40 seeds then classifies all 15 (at 60, 3 of 40 fell short).
    small_run(w, max_steps=120, eval_every=20)
    w.next()  # "Train": the dataset is written, the training process starts
    assert w.currentId() == TRAINING
    qtbot.waitUntil(lambda: w.session is not None and bool(w.session.history.validations),
                    timeout=TIMEOUT)  # fmt: skip
    assert "Step" in w.training_page.status.text() or "Reading" in w.training_page.status.text()
    qtbot.waitUntil(lambda: w.currentId() == FINISH, timeout=TIMEOUT)
    session = w.session
    assert session.outcome == "max_steps" and session.current_step == 120
    train_points, val_points = w.training_page.charts.points
    assert train_points >= 5 and val_points == 6
    assert w.training_page.charts.confusion.matrix.sum() == 3  # the 10 % held out
    assert "validation samples classified right" in w.finish_page.figures.text()
    # The model is installed, where the CLI and the app find it by name, and it classifies.
    from sampletool.models.runtime import load_runtime

    runtime = load_runtime("My Drums", device="cpu")
    assert runtime.class_names == ["high", "low", "noise"]
    rng = np.random.default_rng(42)
    right = sum(runtime.class_names[int(runtime.read(class_sound(c, rng)).probs[0].argmax())] == c
                for c in ("high", "low", "noise") for _ in range(5))  # fmt: skip
    assert right >= 12  # of 15 sounds it never saw
    with qtbot.waitSignal(w.use_model) as used:
        w.finish_page.use_button.click()
    assert used.args == [str(runtime.path)]
    # The copied command gives the CLI the very run the wizard trained.
    from sampletool.cli import build_parser
    from sampletool.cli.train import _new_run

    lines = dict(w.command_lines())
    train = shlex.split(lines["Train the same model from a terminal:"])
    again = _new_run(build_parser().parse_args(train[1:]))
    saved = json.loads((runtime.path / "train_config.json").read_text())
    assert json.loads(json.dumps(asdict(again))) == saved
    assert train[train.index("--logdir") + 1] == str(runtime.path)
    make = shlex.split(lines[next(k for k in lines if k.startswith("Make its dataset"))])
    assert make[:3] == ["sampletool", "make-dataset", str(samples)]
    assert "--classes-from-subfolders" in make


def test_stop_keeps_a_usable_model_and_resume_trains_to_the_end(qtbot, samples):
    w = open_wizard(qtbot)
    to_setup(qtbot, w, [samples])
    small_run(w, max_steps=100_000, eval_every=10)
    w.next()
    qtbot.waitUntil(lambda: w.session is not None and bool(w.session.history.validations),
                    timeout=TIMEOUT)  # fmt: skip
    pause = w.training_page.pause_button
    pause.click()
    qtbot.waitUntil(lambda: w.session.is_paused and pause.text() == "&Resume", timeout=30_000)
    pause.click()
    qtbot.waitUntil(lambda: not w.session.is_paused, timeout=30_000)
    w.training_page.stop_button.click()
    qtbot.waitUntil(lambda: w.currentId() == FINISH, timeout=TIMEOUT)
    logdir = w.run_dir()
    state = run_state(logdir)
    assert w.session.outcome == "stopped" and state.status == "stopped" and state.incomplete
    stopped_at = state.step
    assert (logdir / "weights.safetensors").is_file()  # Stop gives a usable model
    w.accept()
    # Resume it (as the model manager does) to a nearer end.
    cfg = json.loads((logdir / "train_config.json").read_text())
    cfg["max_steps"] = stopped_at + 20
    (logdir / "train_config.json").write_text(json.dumps(cfg))
    assert w.resume(logdir)
    assert w.currentId() == TRAINING
    qtbot.waitUntil(lambda: w.currentId() == FINISH, timeout=TIMEOUT)
    assert w.session.outcome in ("max_steps", "converged")
    assert run_state(logdir).status == w.session.outcome
    steps = [json.loads(line)["step"] for line in
             (logdir / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert steps == sorted(steps) and steps[-1] > stopped_at
    # The charts show the whole run, the part before the stop included.
    assert w.training_page.charts.points[1] == len(steps)


def said(page) -> str:
    return (page.problem.text() + page.summary.text()).lower()


def test_page_one_says_what_is_wrong_and_next_stays_off(qtbot, tmp_path):
    w = open_wizard(qtbot)
    page = w.data_page
    empty = tmp_path / "Empty"
    empty.mkdir()
    one = make_class_folders(tmp_path / "One", per_class=4, classes=("kick",))
    broken = tmp_path / "Broken"
    for i in range(3):
        (broken / "kick").mkdir(parents=True, exist_ok=True)
        (broken / "kick" / f"{i}.wav").write_bytes(os.urandom(300))
        (broken / "snare").mkdir(exist_ok=True)
        (broken / "snare" / f"{i}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + os.urandom(64))
    gone = make_class_folders(tmp_path / "Gone", per_class=3)
    cases = [
        ([], None, "Add a folder"),
        ([empty], "subfolders", "has no sub-folders"),
        ([empty], "none", "no audio files"),
        ([one], "subfolders", "at least 2 classes"),
        ([broken], "subfolders", "none of the 6 audio files could be read"),
        ([gone], "subfolders", "does not exist"),
    ]
    for folders, labels, expected in cases:
        page.folders.clear()
        if labels:
            page.set_labels(labels)
        if folders == [gone]:
            page.add_folders([str(gone)])
            import shutil

            shutil.rmtree(gone)  # it vanishes while the user looks
            page.set_labels("subfolders")
        else:
            page.add_folders([str(f) for f in folders])
        qtbot.waitUntil(lambda e=expected: e.lower() in said(page), timeout=30_000)
        assert not page.isComplete() and not w.button(w.WizardButton.NextButton).isEnabled()
    page.folders.clear()
    page.add_folders([str(broken)])
    qtbot.waitUntil(lambda: page.survey is not None, timeout=30_000)
    assert page.failures_button.isVisible()
    assert "1.wav" in page.failures_dialog.text.toPlainText()


def test_page_one_shows_counts_warnings_repeats_and_takes_dropped_folders(qtbot, tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "Pack"
    for i in range(12):
        write(root / "Kicks" / f"Kick_{i:02d}.wav", class_sound("low", rng))
    for i in range(2):
        write(root / "Snares" / f"SD Tight {i}.wav", class_sound("noise", rng))
    write(root / "Loops" / "groove.wav", class_sound("high", rng))
    w = open_wizard(qtbot)
    page = w.data_page
    page.set_labels("names")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(root)), QUrl.fromLocalFile(str(root / "Kicks"))])
    page.eventFilter(page.folders.viewport(), drop_event(5, 5, mime))
    assert page.folder_list() == [str(root), str(root / "Kicks")]
    qtbot.waitUntil(lambda: page.survey is not None, timeout=30_000)
    assert page.isComplete()
    assert page.survey.counts == {"kick": 12, "snare": 2}
    summary = page.summary.text()
    assert "14 files in 2 classes" in summary and "12 found in more than one folder" in summary
    warnings = page.warnings.text()
    assert "unbalanced" in warnings and "no drum word" in warnings
    # Drum classes: fine-tuning the built-in model is offered first.
    w.next()
    qtbot.waitUntil(lambda: w.setup_page.isComplete(), timeout=30_000)
    assert w.setup_page.start_from.currentText().startswith("Fine-tune default")
    assert not w.setup_page.size_buttons["small"].isEnabled()  # its size is the built-in's
    assert w.setup_page.lr.value() == pytest.approx(3e-4)


def test_fine_tuning_the_built_in_model_is_offered_for_its_own_classes_only(qtbot, tmp_path):
    kit = make_class_folders(tmp_path / "Kit", per_class=3, classes=("kick", "fx", "percussion"))
    w = open_wizard(qtbot)
    to_setup(qtbot, w, [kit])  # "fx" and "percussion" name no drum, but are its classes
    assert w.setup_page.start_from.currentText().startswith("Fine-tune default")
    other = make_class_folders(tmp_path / "Mine", per_class=3, classes=("kick", "vox"))
    w = open_wizard(qtbot)
    to_setup(qtbot, w, [other])  # a class it does not have: a fresh model
    assert w.setup_page.start_from.currentData() is None


def test_setup_checks_the_name_and_measures_each_size(qtbot, samples, tmp_path):
    from tests.helpers import make_bundle

    make_bundle(tmp_path / "data" / "models" / "Taken", num_classes=0)
    w = open_wizard(qtbot)
    to_setup(qtbot, w, [samples])
    page = w.setup_page
    page.name.setText("taken")
    assert "exists already" in page.name_note.text() and not page.isComplete()
    page.name.setText("a/b")
    assert not page.isComplete()
    page.name.setText("Fresh")
    assert page.isComplete()
    qtbot.waitUntil(lambda: {"small", "medium", "large"} <= set(page.measurements),
                    timeout=TIMEOUT)  # fmt: skip
    steps = {s: page.measurements[s]["measurement"]["step"] for s in ("small", "large")}
    assert steps["small"] < steps["large"]
    for size in ("small", "medium", "large"):
        assert page.size_notes[size].text().startswith("about ")
    assert page.estimate_seconds("small") < page.estimate_seconds("large")
    page.advanced_toggle.setChecked(True)
    before = page.estimate_seconds("small")
    page.max_steps.setValue(4 * page.schedule()[0])  # no new measurement needed
    assert page.estimate_seconds("small") > 3 * before - 1
    page.augment.setCurrentIndex(page.augment.findData("both"))
    page.noise.setCurrentIndex(page.noise.findData("gmm"))
    cfg = page.config()
    assert cfg["augment"]["mode"] == "both" and cfg["augment"]["noise"] == "gmm"


def test_without_classes_it_trains_a_model_for_search_and_blending(qtbot, samples):
    w = open_wizard(qtbot)
    to_setup(qtbot, w, [samples], labels="none")
    assert not w.data_page.table.isVisible() and "30 files" in w.data_page.summary.text()
    page = w.setup_page
    page._select_kind("wavenet-encoder")  # learns from classes only: said here, Next stays off
    assert not page.isComplete() and "learns from classes only" in page.kind_note.text()
    assert not any(note.text() for note in page.size_notes.values())  # said once, not per size
    page._select_kind("wavenet-autoencoder")
    assert page.isComplete() and "✖" not in page.kind_note.text()
    page._select_kind("vae")
    small_run(w, max_steps=20, eval_every=10)
    w.next()
    qtbot.waitUntil(lambda: w.currentId() == FINISH, timeout=TIMEOUT)
    charts = w.training_page.charts
    assert not charts._acc_shown and charts.no_classes.isVisibleTo(w.training_page)
    assert "No classes" in w.finish_page.confusion._note
    from sampletool.models.runtime import load_runtime

    runtime = load_runtime(w.run_dir(), device="cpu")
    assert runtime.class_names == [] and runtime.read(
        class_sound("low", np.random.default_rng(0))
    ).vectors.shape == (1, runtime.vector_dim)


def test_every_registered_kind_is_offered_and_trains_in_the_process(qtbot, samples):
    """A kind registered at run time (a plug-in) is listed, and the training process (which
    imports only the engine's kinds) learns it from the app."""
    from sampletool.models import kinds
    from tests import second_kind

    kinds.register(second_kind.KIND)
    try:
        w = open_wizard(qtbot)
        to_setup(qtbot, w, [samples])
        page = w.setup_page
        names = [page.kind.itemData(i)[0] for i in range(page.kind.count())]
        assert names == sorted(kinds.kind_names()) and second_kind.NAME in names
        page.start_from.setCurrentIndex(0)
        page._select_kind(second_kind.NAME)
        assert page.kind_note.text() == second_kind.KIND.description
        qtbot.waitUntil(lambda: "" in page.measurements or "medium" in page.measurements,
                        timeout=TIMEOUT)  # fmt: skip
        assert "error" not in page.measurements.get("medium", {})
        page.advanced_toggle.setChecked(True)
        page.batch.setValue(8)
        page.lr.setValue(0.05)
        page.max_steps.setValue(40)
        page.eval_every.setValue(20)
        w.next()
        qtbot.waitUntil(lambda: w.currentId() == FINISH, timeout=TIMEOUT)
    finally:
        kinds.unregister(second_kind.NAME)
    from sampletool.models.runtime import load_runtime

    kinds.register(second_kind.KIND)
    try:
        runtime = load_runtime(w.run_dir(), device="cpu")
    finally:
        kinds.unregister(second_kind.NAME)
    assert type(runtime).__name__ == "MeanLinearRuntime"
    assert runtime.class_names == ["high", "low", "noise"]


def test_improve_the_active_model_with_my_corrections_fine_tunes_it_and_switches(
    qtbot, samples, tmp_path
):
    from sampletool.data import synth
    from sampletool.library import Library
    from sampletool.models.runtime import load_runtime
    from ui.training.wizard import CORRECTIONS

    # A library holds sounds the model is sure of (drums like those it trained on), whose
    # readings keep what it knows; the test tones alone it is rarely sure of.
    for cls in ("kick", "snare", "hihat"):
        for seed in range(1000, 1006):
            write(samples / "kit" / f"{cls}{seed}.wav", synth.synthesize(cls, seed, 16000).audio)
    runtime = load_runtime(None, device="cpu")  # the built-in model, as the app has it
    lib = Library(samples, runtime, db_path=tmp_path / "db" / "catalogue.sqlite")
    lib.scan(workers=0)
    snapshot = lib.snapshot()
    w = TrainWizard(pool=SynchronousPool(), corrections_source=lambda: (lib, snapshot, runtime))
    qtbot.addWidget(w)
    w.start_new()
    w.data_page.set_labels(CORRECTIONS)
    qtbot.waitUntil(lambda: w.data_page.problem.text() != "" or w.data_page.isComplete(),
                    timeout=30_000)  # fmt: skip
    assert "no corrections yet" in w.data_page.problem.text().lower()  # nothing corrected
    assert not w.data_page.folders.isEnabled()  # no folders to choose here
    fixed = sorted(str(p) for p in (samples / "low").iterdir())[:3]
    lib.set_class(fixed, "tonal")
    lib.set_class(sorted(str(p) for p in (samples / "noise").iterdir())[:2], "fx")
    w.data_page.set_labels(CORRECTIONS)  # look again
    qtbot.waitUntil(lambda: w.data_page.isComplete(), timeout=30_000)
    assert "Fine-tunes default" in w.data_page.summary.text()
    assert "5 corrected (3 tonal, 2 fx)" in w.data_page.warnings.text()
    w.next()
    assert w.currentId() == SETUP
    page = w.setup_page
    qtbot.waitUntil(lambda: page.isComplete(), timeout=30_000)
    assert page.name.text() == "default-corrected"
    assert not page.start_from.isEnabled() and page.start_from.currentData() == str(runtime.path)
    page.advanced_toggle.setChecked(True)
    page.batch.setValue(8)
    # The page says the schedule the run will have: the corrections' own (every 50 of 400),
    # validating at least four times when cut short (it said "every 10" and validated at 50).
    assert page.config()["max_steps"] == 400 and page.config()["eval_every"] == 50
    page.max_steps.setValue(40)
    assert (page.config()["max_steps"], page.config()["eval_every"]) == (40, 10)
    assert page.plan.text() == "At most 40 steps of 8 samples, validating every 10."
    page.max_steps.setValue(20)
    page.eval_every.setValue(10)
    with qtbot.waitSignal(w.use_model, timeout=TIMEOUT) as used:  # switches by itself
        w.next()
    qtbot.waitUntil(lambda: w.currentId() == FINISH, timeout=TIMEOUT)
    assert used.args == [str(w.run_dir())] and w.finish_page.use_button.text() == "In use"
    improved = load_runtime("default-corrected", device="cpu")
    assert improved.class_names == runtime.class_names  # every class kept, in its order
    # its confidence keeps the built-in model's calibration (its validation split is made of
    # the model's own sure readings: it cannot judge confidence): its head's, since its vectors
    # moved and the built-in model's neighbours would vote on the wrong sounds
    kept = improved.metadata["calibration"]
    assert runtime.neighbours is not None and improved.neighbours is None
    assert kept["temperature"] == runtime.metadata["head_calibration"]["temperature"]
    assert kept["kept_from"] == str(runtime.path)
    cfg = json.loads((improved.path / "train_config.json").read_text())
    assert cfg["init_from"] == str(runtime.path)
    assert set(fixed) < set(cfg["source_weights"]) and min(cfg["source_weights"].values()) >= 1
    rows = (Path(cfg["dataset"]) / "manifest.csv").read_text().splitlines()[1:]
    split = {r.rsplit(",", 2)[0]: r.rsplit(",", 1)[1] for r in rows}
    assert all(split[p] == "train" for p in fixed) and "val" in split.values()
    lib.close()


def test_add_folder_starts_in_the_library_then_at_the_last_folder(qtbot, samples, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    asked = []

    def dialog(parent, caption, start):  # the modal dialog, answered as a user would
        asked.append(start)
        return str(samples / "low")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(dialog))
    library = type("Lib", (), {"root": samples})()
    w = TrainWizard(pool=SynchronousPool(), corrections_source=lambda: (library, None, None))
    qtbot.addWidget(w)
    w.start_new()
    w.data_page._choose_folder()
    assert asked == [str(samples)] and w.data_page.folder_list() == [str(samples / "low")]
    w.data_page._choose_folder()
    assert asked[-1] == str(samples / "low")
