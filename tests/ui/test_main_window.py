"""The main window's flows, offscreen, with a real (tiny) model, a real library on disk, SQLite,
hnswlib and Qt. Only the audio output device is faked (CI has no sound card)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.helpers import make_bundle, noise_burst, tone, write
from tests.ui.events import drop_event
from ui import workers
from ui.dnd import SampleRef
from ui.mainwindow import MainWindow
from ui.playback import Player


class RecordingOutput:
    """The fake audio output: records what it was asked to play."""

    def __init__(self) -> None:
        self.played: list[tuple[np.ndarray, int]] = []

    def play(self, audio, sample_rate) -> None:
        self.played.append((np.asarray(audio).copy(), sample_rate))

    def stop(self) -> None:
        pass


class NoDevice(RecordingOutput):
    def play(self, audio, sample_rate) -> None:
        raise OSError("PortAudio library not found")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))
    monkeypatch.setenv("SAMPLETOOL_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "Samples"
    for i, f in enumerate((60, 80, 100, 120)):
        write(root / "Kicks" / f"kick{i}.wav", tone(f, 0.5, decay=8))
    for i in range(4):
        write(root / "Hats" / f"hat{i}.wav", noise_burst(0.1 + 0.05 * i, seed=i))
    for i, f in enumerate((440, 660, 880)):
        write(root / "Keys" / f"key{i}.wav", tone(f, 1.0, decay=2))
    (root / "Hats" / "broken.wav").write_bytes(b"RIFF????WAVEjunk")
    return root


@pytest.fixture(autouse=True)
def _no_work_left_behind():
    """Each test's background work ends with the test (no CPU stolen from the next one)."""
    yield
    for w in QApplication.topLevelWidgets():
        if isinstance(w, MainWindow):
            w.cancel_all()
    workers.default_pool().wait()


def open_window(
    qtbot, model, library=None, output=None, refine_map=False
) -> tuple[MainWindow, RecordingOutput]:
    out = output or RecordingOutput()
    w = MainWindow(model=str(model), library=str(library) if library else None,
                   player=Player(backend=out), refine_map=refine_map)  # fmt: skip
    qtbot.addWidget(w)
    w.show()
    return w, out


def wait_ready(qtbot, w: MainWindow) -> None:
    with qtbot.waitSignal(w.library_ready, timeout=120_000):
        pass


def test_window_opens_before_the_model_and_loads_it_in_the_background(qtbot, tiny_bundle):
    w, _ = open_window(qtbot, tiny_bundle)
    assert w.isVisible() and w.runtime is None  # visible before the model is there
    with qtbot.waitSignal(w.engine_ready, timeout=60_000) as blocker:
        pass
    assert blocker.args == [True] and w.runtime is not None
    assert "tiny" in w.windowTitle()
    assert w.stack.currentIndex() == 0 and w.first_run.isVisible()  # no library yet: welcome


def test_bad_model_is_a_message_not_a_crash(qtbot, tmp_path):
    w, _ = open_window(qtbot, tmp_path)
    with qtbot.waitSignal(w.engine_ready, timeout=60_000) as blocker:
        pass
    assert blocker.args == [False]
    assert "not a Sample Tool model" in w.welcome.text()
    assert w.statusBar().currentMessage() == "No model loaded"


def test_library_is_indexed_shown_in_table_and_map_with_failures_listed(
    qtbot, tiny_bundle, library
):
    w, _ = open_window(qtbot, tiny_bundle, library, refine_map=True)
    wait_ready(qtbot, w)
    assert w.library_view.model.rowCount() == 11
    assert len(w.latent_map.ids()) == 11
    assert w.failures_button.isVisible() and "1 could not" in w.failures_button.text()
    assert w.count_label.text() == "11 samples"  # and the message says what the scan did
    assert w.statusBar().currentMessage() == "11 indexed"
    w.show_failures()
    assert "broken.wav" in w.failures_dialog.text.toPlainText()
    # The folder tree filters the table; the text filter too.
    tree = w.library_view.tree
    hats = next(tree.topLevelItem(0).child(i) for i in range(tree.topLevelItem(0).childCount())
                if tree.topLevelItem(0).child(i).text(0) == "Hats")  # fmt: skip
    tree.setCurrentItem(hats)
    assert w.library_view.model.rowCount() == 4
    tree.setCurrentItem(tree.topLevelItem(0))
    w.library_view.filter_edit.setText("key")
    assert w.library_view.model.rowCount() == 3
    # The map and the count follow the table's filters.
    assert w.latent_map.shown_count() == 3 and w.count_label.text() == "3 of 11 samples"
    w.library_view.filter_edit.clear()
    assert w.latent_map.shown_count() == 11 and w.count_label.text() == "11 samples"
    # The non-linear map arrives and is animated in.
    with qtbot.waitSignal(w.map_refined, timeout=180_000):
        pass
    assert np.isfinite(w.latent_map.positions()).all()


def test_drop_a_file_lists_similar_samples_nearest_first(qtbot, tiny_bundle, library, tmp_path):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    outside = write(tmp_path / "dropped.wav", tone(90, 0.5, decay=8))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(outside))])
    zone = w.similar.findChild(object, "similarDropZone")
    from PySide6.QtCore import Qt

    drop = drop_event(5, 5, mime, Qt.DropAction.CopyAction)
    zone.dropEvent(drop)
    qtbot.waitUntil(lambda: len(w.similar.results()) > 0, timeout=60_000)
    results = w.similar.results()
    distances = [d for _, d in results]
    assert distances == sorted(distances) and len(results) == 11  # the whole library
    assert all(r.path.startswith(str(library)) for r, _ in results)
    assert sorted(w.latent_map.highlighted_ids()) == sorted(
        int(w.snapshot.ids[w._row_of(r)]) for r, _ in results
    )


def test_same_kind_only_keeps_to_the_query_class_and_is_remembered(qtbot, library):
    from sampletool.models.bundle import resolve_model

    model = resolve_model(None)  # the built-in model: a classifier that tells these apart
    w, _ = open_window(qtbot, model, library)
    wait_ready(qtbot, w)
    # the class each sample is grouped by: the model's where it is sure (-1: unsure)
    kinds = dict(zip(w.snapshot.paths, w.snapshot.kinds.tolist(), strict=True))
    assert len(set(kinds.values()) - {-1}) > 1
    query = SampleRef(next(p for p, k in sorted(kinds.items()) if k >= 0))
    w.actions.find_similar.emit(query)
    qtbot.waitUntil(lambda: w.similar.query() == query, timeout=60_000)
    assert len(w.similar.results()) == 10  # the rest of the library
    w.similar.findChild(object, "similarSameKind").setChecked(True)  # searches again
    mine = w.snapshot.class_names[kinds[query.path]]
    qtbot.waitUntil(lambda: mine in w.similar.status.text(), timeout=60_000)
    same = [r.path for r, _ in w.similar.results()]
    assert same and all(kinds[p] == kinds[query.path] for p in same)
    assert len(same) == sum(k == kinds[query.path] for k in kinds.values()) - 1
    w.close()
    w2, _ = open_window(qtbot, model)
    assert w2.similar.same_kind()  # remembered
    with qtbot.waitSignal(w2.engine_ready, timeout=60_000):
        pass
    assert w2.similar.same_kind()


def test_same_kind_is_off_for_a_model_without_a_classifier(qtbot, tiny_bundle_no_classes):
    w, _ = open_window(qtbot, tiny_bundle_no_classes)
    with qtbot.waitSignal(w.engine_ready, timeout=60_000):
        pass
    box = w.similar.findChild(object, "similarSameKind")
    assert not box.isEnabled() and not w.similar.same_kind()


def test_a_dropped_file_that_is_not_audio_is_a_message(qtbot, tiny_bundle, library, tmp_path):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    w.actions.find_similar.emit(SampleRef(str(bad)))
    qtbot.waitUntil(lambda: "could not be searched" in w.similar.findChild(
        object, "similarStatus").text(), timeout=30_000)  # fmt: skip
    w.actions.find_similar.emit(SampleRef(str(tmp_path / "vanished.wav")))
    qtbot.waitUntil(lambda: "does not exist" in w.similar.findChild(
        object, "similarStatus").text(), timeout=30_000)  # fmt: skip


def test_right_click_classify_shows_the_probabilities(qtbot, tiny_bundle, library, tmp_path):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    ref = w.library_view.model.ref(0)
    menu = w.actions.build_menu([ref], w)
    classify = next(a for a in menu.actions() if a.text() == "Classify")
    classify.trigger()
    bars = w.classify_popup.findChild(object, "classProbabilities").bars()
    row = w._row_of(ref)
    expected = sorted(zip(w.snapshot.class_names, w.snapshot.probs[row].tolist(), strict=True),
                      key=lambda x: -x[1])  # fmt: skip
    assert [n for n, _ in bars] == [n for n, _ in expected]
    assert [p for _, p in bars] == pytest.approx([p for _, p in expected], abs=1e-6)
    # A file from outside the library is classified by the model (in the background).
    outside = write(tmp_path / "o.wav", noise_burst())
    w.actions.classify.emit(SampleRef(str(outside)))
    view = w.classify_popup.findChild(object, "classProbabilities")
    qtbot.waitUntil(lambda: view.sample() == SampleRef(str(outside)) and len(view.bars()) > 0,
                    timeout=30_000)  # fmt: skip
    probs = [p for _, p in w.classify_popup.findChild(object, "classProbabilities").bars()]
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)


def test_moving_a_weight_slider_plays_new_audio(qtbot, tiny_bundle, library):
    w, out = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    refs = [w.library_view.model.ref(r) for r in (0, 5)]
    for ref in refs:
        w.actions.add_to_blend.emit(ref)
    qtbot.waitUntil(lambda: len(out.played) >= 1, timeout=60_000)
    first = out.played[-1][0]
    slider = w.blend.findChild(object, "blendWeight0")
    slider.setValue(slider.maximum())
    qtbot.waitUntil(lambda: not np.array_equal(out.played[-1][0], first), timeout=60_000)
    assert out.played[-1][1] == w.runtime.sample_rate
    assert np.abs(out.played[-1][0]).max() > 0


def test_audition_plays_the_file_and_shows_its_waveform(qtbot, tiny_bundle, library):
    w, out = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    table = w.library_view.table
    table.setFocus()
    table.selectRow(2)
    qtbot.waitUntil(lambda: len(out.played) == 1, timeout=30_000)  # moving to a row auditions it
    ref = w.library_view.model.ref(2)
    title = w.waveform.findChild(object, "waveformTitle")
    qtbot.waitUntil(lambda: ref.name in title.full_text(), timeout=30_000)
    selected = w.latent_map.selected_ids()
    assert selected == [int(w.snapshot.ids[w._row_of(ref)])]


def test_no_audio_device_is_a_status_message_and_the_rest_works(qtbot, tiny_bundle, library):
    w, _ = open_window(qtbot, tiny_bundle, library, output=NoDevice())
    wait_ready(qtbot, w)
    w.actions.audition.emit(w.library_view.model.ref(0))
    qtbot.waitUntil(lambda: not w.player.available, timeout=30_000)  # read, then refused
    assert w.audio_label.isVisible() and "playback" in w.audio_label.toolTip().lower()
    w.actions.find_similar.emit(w.library_view.model.ref(1))
    qtbot.waitUntil(lambda: len(w.similar.results()) > 0, timeout=60_000)


def test_cancel_indexing_keeps_what_was_done_and_a_rescan_finishes(qtbot, tiny_bundle, tmp_path):
    root = tmp_path / "Big"
    for i in range(300):
        write(root / f"s{i:03d}.wav", tone(50 + 7 * i, 0.3, decay=6))
    w, _ = open_window(qtbot, tiny_bundle, root)
    qtbot.waitUntil(lambda: w.cancel_button.isVisible(), timeout=60_000)
    w.rescan()  # F5 while indexing: one scan at a time
    assert w.statusBar().currentMessage() == "Already indexing"
    w.cancel_button.click()
    wait_ready(qtbot, w)
    assert w.library_view.model.rowCount() < 300
    assert not w.cancel_button.isVisible()
    w.rescan()
    wait_ready(qtbot, w)
    assert w.library_view.model.rowCount() == 300


def test_switch_model_reindexes_and_keeps_both_models_vectors(
    qtbot, tiny_bundle, library, tmp_path
):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    first = w.snapshot.vectors.copy()
    other = make_bundle(tmp_path / "other-model", num_classes=2, seed=5)
    w.switch_model(str(other))
    wait_ready(qtbot, w)
    assert w.runtime.name == "other-model" and w.snapshot.class_names == ["class0", "class1"]
    assert w.library_view.class_combo.count() == 3  # "All classes" + 2
    assert not np.allclose(w.snapshot.vectors, first)
    w.switch_model(str(tiny_bundle))
    wait_ready(qtbot, w)
    np.testing.assert_allclose(w.snapshot.vectors, first, atol=1e-6)


def test_settings_are_remembered(qtbot, tiny_bundle, library):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    w.main_split.setSizes([500, 500, 400])
    sizes = w.main_split.sizes()
    w.library_view.table.horizontalHeader().resizeSection(1, 133)
    w.close()
    again, _ = open_window(qtbot, tiny_bundle)
    assert again.library == str(library)
    header = again.library_view.table.horizontalHeader()
    assert header.sectionSize(1) == 133
    assert header.sectionResizeMode(0) == header.ResizeMode.Stretch  # the name takes the rest
    restored = again.main_split.sizes()  # the same proportions (offscreen windows may differ
    assert np.allclose(np.array(restored) / sum(restored), np.array(sizes) / sum(sizes),
                       atol=0.05)  # in size)  # fmt: skip


def test_first_run_offers_a_demo_library_and_remembers_it(qtbot, tiny_bundle, tmp_path):
    w, _ = open_window(qtbot, tiny_bundle)
    assert w.first_run.isVisible()
    target = tmp_path / "demo"
    with qtbot.waitSignal(w.library_changed, timeout=120_000) as blocker:
        w.create_demo_library(str(target))
    assert blocker.args == [str(target)]
    assert w.stack.currentIndex() == 1 and not w.progress.isVisible()
    assert len(list(target.rglob("*.wav"))) > 100
    w.close()
    again, _ = open_window(qtbot, tiny_bundle)
    assert again.library == str(target)


def test_demo_library_in_a_folder_with_other_files_is_a_message(qtbot, tiny_bundle, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    w, _ = open_window(qtbot, tiny_bundle)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    w.create_demo_library(str(tmp_path))
    qtbot.waitUntil(lambda: any("could not be created" in m for m in said), timeout=30_000)
    assert any("not empty" in m for m in said) and w.demo_button.isEnabled()
    # It stays on the page too, whatever the status line says next (the model loading...).
    qtbot.waitUntil(lambda: w.runtime is not None, timeout=60_000)
    assert "could not be created" in w.welcome.text() and "not empty" in w.welcome.text()
    assert w.library is None and (tmp_path / "mine.txt").read_text() == "keep me"


def test_a_library_folder_that_vanished_is_a_message(qtbot, tiny_bundle, tmp_path):
    w, _ = open_window(qtbot, tiny_bundle, tmp_path / "gone")
    qtbot.waitUntil(lambda: "does not exist" in w.welcome.text(), timeout=60_000)
    assert w.stack.currentIndex() == 0


def test_a_damaged_catalogue_offers_a_rebuild_beside_open(qtbot, tiny_bundle, library):
    from sampletool.library import default_db_path

    db = default_db_path(library)
    db.parent.mkdir(parents=True)
    db.write_bytes(b"left by a crash" * 100)
    w, _ = open_window(qtbot, tiny_bundle, library)
    qtbot.waitUntil(lambda: w.rebuild_button.isVisible(), timeout=60_000)
    text = w.welcome.text()
    assert "is not a catalogue" in text and "sampletool index" not in text  # no CLI advice
    assert "is not a catalogue" in w.statusBar().currentMessage()
    assert "sampletool index" not in w.statusBar().currentMessage()
    assert w.open_button.isVisible() and w.open_button.text() == "Open sample folder..."
    with qtbot.waitSignal(w.library_ready, timeout=120_000):
        w.rebuild_button.click()
    assert w.stack.currentIndex() == 1 and not w.rebuild_button.isVisible()
    assert w.count_label.text() == "11 samples" and list(db.parent.glob("*.damaged-*"))
    # A folder that fails to open leaves no count of the last library behind.
    w.set_library(str(library.parent / "gone"))
    qtbot.waitUntil(lambda: "does not exist" in w.welcome.text(), timeout=60_000)
    assert w.count_label.text() == "" and not w.failures_button.isVisible()
    assert not w.rebuild_button.isVisible()


def test_drag_mime_from_the_table_carries_files_and_onsets(qtbot, tiny_bundle, library):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    model = w.library_view.model
    mime = model.mimeData([model.index(0, 0), model.index(1, 0)])
    assert len(mime.urls()) == 2 and all(u.isLocalFile() for u in mime.urls())
    assert mime.hasFormat("application/x-sampletool-samples")


def test_a_bad_model_switch_keeps_the_current_model_and_library(qtbot, tiny_bundle, library,
                                                                 tmp_path):  # fmt: skip
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    runtime, rows = w.runtime, w.library_view.model.rowCount()
    w.switch_model(str(tmp_path))  # not a model
    qtbot.waitUntil(lambda: "could not be loaded" in w.statusBar().currentMessage(),
                    timeout=60_000)  # fmt: skip
    assert w.runtime is runtime and w.lib is not None
    assert w.library_view.model.rowCount() == rows
    assert w.settings.value("model") in (None, str(tiny_bundle))
    w.switch_model(str(tiny_bundle))  # the model in use: nothing to do
    assert not w.controller.tasks.running("model") and w.lib is not None


def test_a_second_model_kind_works_in_the_app(qtbot, library, tmp_path):
    """A kind defined outside the engine (tests/second_kind.py): the app indexes, maps,
    searches, classifies and blends with it, with no change anywhere else."""
    import torch

    from sampletool.features import AudioConfig
    from sampletool.models import kinds
    from sampletool.models.bundle import save_bundle
    from tests import second_kind

    kinds.register(second_kind.KIND)
    try:
        torch.manual_seed(0)
        config = second_kind.MeanLinearConfig(num_classes=2)
        audio = AudioConfig()
        bundle = save_bundle(tmp_path / "mean", second_kind.build(config, audio), config, audio,
                             ["dull", "bright"])  # fmt: skip
        w, out = open_window(qtbot, bundle, library)
        wait_ready(qtbot, w)
        assert type(w.runtime) is second_kind.MeanLinearRuntime
        assert w.library_view.model.rowCount() == 11 and len(w.latent_map.ids()) == 11
        assert w.snapshot.vectors.shape == (11, 6) and w.snapshot.class_names == ["dull", "bright"]
        ref = w.library_view.model.ref(0)
        w.actions.find_similar.emit(ref)
        qtbot.waitUntil(lambda: len(w.similar.results()) == 10, timeout=60_000)
        w.actions.classify.emit(ref)
        bars = w.classify_popup.findChild(object, "classProbabilities").bars()
        assert sorted(n for n, _ in bars) == ["bright", "dull"]
        for r in (ref, w.library_view.model.ref(5)):
            w.actions.add_to_blend.emit(r)
        qtbot.waitUntil(lambda: len(out.played) >= 1, timeout=60_000)
        assert np.isfinite(out.played[-1][0]).all() and np.abs(out.played[-1][0]).max() > 0
    finally:
        kinds.unregister(second_kind.NAME)


def test_adding_an_indexed_sample_to_the_blend_reads_no_audio(qtbot, tiny_bundle, library):
    w, out = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    runtime, reads = w.runtime, []
    real_clip = runtime.clip
    runtime.clip = lambda *a: reads.append(a) or real_clip(*a)
    try:
        refs = [w.library_view.model.ref(r) for r in (0, 5)]
        for ref in refs:
            w.actions.add_to_blend.emit(ref)
        qtbot.waitUntil(lambda: len(w.blend.results) >= 1, timeout=60_000)  # a blend of both
        assert all(w.blend.slot_latent(i) is not None for i in (0, 1))
        assert reads == []  # both latents came from the catalogue
    finally:
        del runtime.clip


def test_the_model_menu_is_listed_in_the_background(qtbot, tiny_bundle, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_bundle, tmp_path / "models" / "drums")
    monkeypatch.setenv("SAMPLETOOL_MODEL_PATH", str(tmp_path / "models"))
    w, _ = open_window(qtbot, tiny_bundle)
    with qtbot.waitSignal(w.engine_ready, timeout=60_000):
        pass

    def names() -> list[str]:
        return [a.text() for a in w.model_menu.actions()]

    qtbot.waitUntil(lambda: "drums" in names(), timeout=30_000)
    shutil.copytree(tiny_bundle, tmp_path / "models" / "keys")
    w.model_menu.aboutToShow.emit()  # opening the menu lists again, off the GUI thread
    assert "keys" not in names()
    qtbot.waitUntil(lambda: "keys" in names(), timeout=30_000)
    # The model in use was opened from a folder outside the model path: it is listed, checked.
    checked = [a.text() for a in w.model_menu.actions() if a.isChecked()]
    assert checked == [w.runtime.name]


def test_an_unreadable_file_to_play_is_a_message_and_playback_stays_on(
    qtbot, tiny_bundle, library, tmp_path
):
    w, out = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    for ref, reason in ((SampleRef(str(bad)), "not an audio file"),
                        (SampleRef(str(tmp_path / "gone.flac")), "file not found")):  # fmt: skip
        w.audition(ref)
        line = f"Cannot play {Path(ref.path).name}: {reason}"
        qtbot.waitUntil(lambda line=line: any(m.startswith(line) for m in said), timeout=30_000)
    assert w.player.available and not out.played
    assert not any("Traceback" in m or str(tmp_path) in m for m in said)  # a reason, not a path
    w.audition(w.library_view.model.ref(0))
    qtbot.waitUntil(lambda: len(out.played) == 1, timeout=30_000)  # still plays


def test_right_click_class_corrects_the_model_everywhere_and_ctrl_z_undoes_it(qtbot, library):
    from sampletool.models.bundle import resolve_model

    w, _ = open_window(qtbot, resolve_model(None), library)
    wait_ready(qtbot, w)
    snap, table = w.snapshot, w.library_view.model
    names = snap.class_names
    row = table.rows.tolist().index(snap.paths.index(str(library / "Keys" / "key0.wav")))
    ref = table.ref(row)
    other = SampleRef(str(library / "Keys" / "key1.wav"))
    said = names[snap.predicted[w._row_of(ref)]]
    mine = next(c for c in ("fx", "percussion", "tom") if c != said)
    menu = w.actions.build_menu([ref, other], w)
    sub = next(
        a.menu() for a in menu.actions() if a.menu() and a.menu().objectName() == "classMenu"
    )
    assert [a.text() for a in sub.actions() if a.isCheckable()] == names
    next(a for a in sub.actions() if a.text() == mine).trigger()
    qtbot.waitUntil(lambda: table.data(table.index(row, 2)) == "you", timeout=30_000)
    assert table.data(table.index(row, 1)) == mine
    assert table.data(table.index(row, 1), Qt.ItemDataRole.FontRole).bold()
    assert f"the model says {said}" in table.data(table.index(row, 1), Qt.ItemDataRole.ToolTipRole)
    qtbot.waitUntil(lambda: w.lib.corrections() == {ref.path: mine, other.path: mine},
                    timeout=30_000)  # written to the catalogue in the background  # fmt: skip
    w.classify(ref)  # the probability bars stay the model's; the note says who set the class
    assert w.classify_popup.note.text() == f"Set by you: {mine} (the model says {said})"
    w.classify_popup.close()
    index = names.index(mine)
    i = w._row_of(ref)
    assert w.latent_map._classes[i] == index  # the map's colour
    w.library_view.class_combo.setCurrentText(mine)  # the class filter
    assert ref.path in [table.ref(r).path for r in range(table.rowCount())]
    w.library_view.class_combo.setCurrentIndex(0)
    # Same kind only: the two corrected samples find each other
    w.similar.findChild(object, "similarSameKind").setChecked(True)
    w.actions.find_similar.emit(ref)
    qtbot.waitUntil(lambda: w.similar.query() == ref and mine in w.similar.status.text(),
                    timeout=60_000)  # fmt: skip
    assert [r.path for r, _ in w.similar.results()] == [other.path]
    menu = w.actions.build_menu([ref], w)
    sub = next(
        a.menu() for a in menu.actions() if a.menu() and a.menu().objectName() == "classMenu"
    )
    assert next(a for a in sub.actions() if a.text() == mine).isChecked()
    # Ctrl+Z puts the model's class back
    assert w.undo_class_action.isEnabled()
    w.undo_class_action.trigger()
    qtbot.waitUntil(lambda: table.data(table.index(row, 2)) != "you", timeout=30_000)
    qtbot.waitUntil(lambda: w.lib.corrections() == {}, timeout=30_000)
    assert w.latent_map._classes[i] == snap.predicted[i]
    assert not w.undo_class_action.isEnabled()
    # kept across a rescan and a fresh window
    w.set_class([ref], mine)
    qtbot.waitUntil(lambda: table.data(table.index(row, 2)) == "you", timeout=30_000)
    w.close()
    w2, _ = open_window(qtbot, resolve_model(None), library)
    wait_ready(qtbot, w2)
    assert w2.snapshot.labels[w2._row_of(ref)] == mine


def test_a_rescan_that_changes_nothing_keeps_the_map_and_the_results(
    qtbot, tiny_bundle, library, tmp_path
):
    w, _ = open_window(qtbot, tiny_bundle, library, refine_map=True)
    with qtbot.waitSignal(w.map_refined, timeout=180_000):
        pass
    refined = w.latent_map.positions()
    shown = w.latent_map.ids()
    w.latent_map.highlight(shown[:3])
    w.rescan()  # F5
    wait_ready(qtbot, w)
    assert not w.controller.tasks.running("umap") and not w.controller.tasks.running("pca")
    np.testing.assert_array_equal(w.latent_map.positions(), refined)
    assert sorted(w.latent_map.highlighted_ids()) == sorted(shown[:3].tolist())
    # Another model, then back: its layout comes back at once.
    w.switch_model(str(make_bundle(tmp_path / "other-model", num_classes=2, seed=5)))
    wait_ready(qtbot, w)
    w.switch_model(str(tiny_bundle))
    wait_ready(qtbot, w)
    assert not w.controller.tasks.running("umap")
    np.testing.assert_array_equal(w.latent_map.positions(), refined)


def test_switching_library_clears_the_old_one_and_an_empty_folder_says_so(
    qtbot, tiny_bundle, library, tmp_path
):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    assert w.windowTitle().startswith("Samples — model tiny")
    w.library_view.table.selectRow(0)  # auditions it: the waveform shows it
    qtbot.waitUntil(lambda: w.waveform.path is not None, timeout=10_000)
    empty = tmp_path / "Empty Folder"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not audio")
    w.set_library(str(empty))
    # At once, nothing of the old library is left on screen.
    assert w.waveform.path is None and w.library_view.model.rowCount() == 0
    assert len(w.latent_map.ids()) == 0 and w.count_label.text() == ""
    assert w.windowTitle().startswith("Empty Folder")
    wait_ready(qtbot, w)
    assert "No audio files in" in w.latent_map.note.text() and w.latent_map.note.isVisible()
    assert "No audio files in" in w.library_view.table.placeholder()
    assert "No audio files" in w.statusBar().currentMessage()
    assert not w.latent_map.legend.isVisible()  # no empty legend box
    assert w.count_label.text() == "0 samples"
    # Back to a library with samples: the note goes.
    w.set_library(str(library))
    wait_ready(qtbot, w)
    assert not w.latent_map.note.isVisible() and w.library_view.table.placeholder() == ""


def test_show_in_folder_without_a_file_manager_says_so(qtbot, tiny_bundle, library):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    ref = w.library_view.model.ref(0)
    menu = w.actions.build_menu([ref], w)
    show = next(a for a in menu.actions() if a.text() == "Show in folder")
    show.trigger()  # the offscreen platform has no file manager to open
    assert "No file manager" in w.statusBar().currentMessage()
    assert QApplication.clipboard().text() == str(Path(ref.path).parent)


@pytest.mark.parametrize("size", [(1280, 720), (1366, 768), (1400, 860)])
def test_the_layout_fits_laptop_screens(qtbot, tiny_bundle, library, size):
    w, _ = open_window(qtbot, tiny_bundle, library)
    w.resize(*size)
    wait_ready(qtbot, w)
    qtbot.waitUntil(lambda: w.width() == size[0] and w.height() == size[1], timeout=5000)
    table = w.library_view.table
    shown = [c for c in range(table.model().columnCount()) if not table.isColumnHidden(c)]
    assert sum(table.columnWidth(c) for c in shown) <= table.viewport().width()  # no side-scroll
    assert table.columnWidth(0) >= 120  # names are readable
    assert w.waveform.height() >= 130
    # Short screens show the similar results and the blend panel as tabs, each whole.
    assert w.compact == (size[1] < 820)
    if w.compact:
        assert w.right_tabs.count() == 2 and w.blend.height() > 400
        # Only the current tab is drawn (the blend panel was drawn over the similar results).
        assert w.right_tabs.currentWidget() is w.similar and w.blend.isHidden()
        w.actions.add_to_blend.emit(w.library_view.model.ref(0))
        assert w.right_tabs.currentWidget() is w.blend and w.similar.isHidden()
        w.resize(1400, 860)  # back to one above the other: both shown
        qtbot.waitUntil(lambda: not w.compact, timeout=5000)
        assert w.similar.isVisible() and w.blend.isVisible()
    else:
        assert not table.isColumnHidden(4)  # the Folder column fits at the default size


def test_a_name_that_is_not_utf8_is_shown_played_and_dragged_as_itself(qtbot, tiny_bundle, library):
    import os

    from ui.dnd import samples_from_mime

    raw = os.path.join(os.fsencode(str(library)), b"Kicks", b"kick_caf\xe9.wav")
    os.rename(os.fsencode(str(library / "Kicks" / "kick0.wav")), raw)
    path = os.fsdecode(raw)  # 'kick_caf\udce9.wav'
    w, out = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    assert "kick_caf\ufffd.wav" in [w.library_view.model.names[i] for i in range(11)]
    row = next(r for r in range(w.library_view.model.rowCount())
               if w.library_view.model.ref(r).path == path)  # fmt: skip
    mime = w.library_view.model.mimeData([w.library_view.model.index(row, 0)])
    url = mime.urls()[0]
    assert url.isLocalFile() and b"kick_caf%E9.wav" in bytes(url.toEncoded().data())
    mime.removeFormat("application/x-sampletool-samples")  # as a drop from a file manager
    assert samples_from_mime(mime)[0].path == path
    w.audition(w.library_view.model.ref(row))
    qtbot.waitUntil(lambda: len(out.played) == 1, timeout=10_000)


def test_a_folder_that_cannot_be_opened_replaces_the_library_shown(
    qtbot, tiny_bundle, library, tmp_path
):
    w, _ = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    not_a_folder = tmp_path / "samples.zip"
    not_a_folder.write_bytes(b"PK")
    with qtbot.waitSignal(w.stuck, timeout=60_000):
        w.set_library(str(not_a_folder))
    # The message takes the window, not one status line over the previous library.
    assert w.stack.currentIndex() == 0 and "is not a folder" in w.welcome.text()
    assert w.library_view.model.rowCount() == 0 and len(w.latent_map.ids()) == 0


def test_a_first_start_opens_the_demo_library_by_itself(qtbot, tiny_bundle, tmp_path, monkeypatch):
    w = MainWindow(model=str(tiny_bundle), player=Player(backend=RecordingOutput()),
                   refine_map=False, demo_when_empty=True)  # fmt: skip
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.library_changed, timeout=120_000) as blocker:
        pass
    assert blocker.args == [str(tmp_path / "data" / "Demo Library")]
    wait_ready(qtbot, w)
    assert w.library_view.model.rowCount() > 100
    w.close()
    again, _ = open_window(qtbot, tiny_bundle)  # remembered: opened, not made again
    assert again.library == blocker.args[0]


def test_the_filter_box_hands_the_keyboard_on_to_the_table(qtbot, tiny_bundle, library):
    w, out = open_window(qtbot, tiny_bundle, library)
    wait_ready(qtbot, w)
    view = w.library_view
    stops = []
    w.player.stop = lambda: stops.append(1)  # what the window's Esc does with no filter text
    w.activateWindow()
    view.focus_filter()
    QTest.keyClicks(view.filter_edit, "kick")
    assert view.model.rowCount() == 4
    QTest.keyClick(view.filter_edit, Qt.Key.Key_Escape)  # clears the filter, not playback
    assert view.filter_edit.text() == "" and view.model.rowCount() == 11 and not stops
    assert view.filter_edit.hasFocus()
    QTest.keyClick(view.filter_edit, Qt.Key.Key_Escape)  # nothing to clear: the window's Esc
    assert stops == [1]
    QTest.keyClicks(view.filter_edit, "key")
    QTest.keyClick(view.filter_edit, Qt.Key.Key_Down)  # on to the first match, heard
    assert view.table.hasFocus() and view.current_ref() == view.model.ref(0)
    qtbot.waitUntil(lambda: len(out.played) == 1, timeout=10_000)
    QTest.keyClick(view.table, Qt.Key.Key_Down)
    assert view.current_ref() == view.model.ref(1)
    view.focus_filter()
    QTest.keyClicks(view.filter_edit, "hat")  # replaces the selected text
    QTest.keyClick(view.filter_edit, Qt.Key.Key_Return)
    assert view.table.hasFocus() and view.current_ref().path.endswith("hat0.wav")
