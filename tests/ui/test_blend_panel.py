"""The blend panel with a real (tiny) model: slots, latents, coalesced re-generation, results."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.ui.events import drag_enter_event, drop_event

pytest.importorskip("PySide6")

import soundfile as sf

from PySide6.QtCore import QMimeData, QPoint, QSettings, Qt, QThreadPool, QUrl
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QSlider,
    QSpinBox,
    QWidget,
)

from ui.blend import MAX_SLOTS, BlendPanel
from ui.dnd import SampleRef, samples_from_mime
from ui.settings import app_settings

WAIT_MS = 120_000  # a generous ceiling for a loaded machine; never a speed requirement


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "cfg"))


@pytest.fixture(scope="module")
def runtime(tiny_bundle):
    from sampletool.models.runtime import load_runtime

    return load_runtime(tiny_bundle, device="cpu")


def latent(runtime, path) -> np.ndarray:
    return runtime.read(str(path)).latents[0]


def _wait_idle(qtbot, panel: BlendPanel) -> None:
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=WAIT_MS)


@pytest.fixture
def make_panel(qtbot):
    def make(runtime=None) -> BlendPanel:
        p = BlendPanel()  # tasks run on real threads: results arrive through the event loop
        qtbot.addWidget(p)
        p.resize(340, 640)
        p.show()
        if runtime is not None:
            p.set_model(runtime)
        return p

    yield make
    # pytest-qt has closed the panels by now; no task of this test may land in the next one.
    QThreadPool.globalInstance().waitForDone()
    QApplication.processEvents()  # deliver late results to the (guarded) deleted panels


class Recorder:
    """Collects `generated` emissions."""

    def __init__(self, panel: BlendPanel) -> None:
        self.audio: list[np.ndarray] = []
        self.rates: list[int] = []
        panel.generated.connect(self._got)

    def _got(self, audio, rate) -> None:
        self.audio.append(np.asarray(audio))
        self.rates.append(rate)

    @property
    def last(self) -> np.ndarray:
        return self.audio[-1]


def direct(runtime, vectors, weights, normalize=True, variance=0.0, seed=0) -> np.ndarray:
    """What the panel should produce (the decoded blend, its silent tail trimmed), computed
    here without it."""
    from sampletool.export import trim_tail

    lat = np.stack(vectors) if len(vectors) else np.empty((0, runtime.vector_dim), np.float32)
    z = runtime.blend(lat, weights, normalize, variance, seed)
    return trim_tail(runtime.decode(z, seed=seed)[0], runtime.sample_rate)


def as_saved(runtime, audio: np.ndarray, rate: int = 44100) -> np.ndarray:
    """A result as its WAV file holds it: at a DAW's rate, 16-bit."""
    from sampletool.export import resample

    return resample(audio, runtime.sample_rate, rate)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, atol=1e-5)


def assert_differs(a: np.ndarray, b: np.ndarray) -> None:
    # Ten times assert_same's tolerance, so no pair passes both. The tiny decoder has random
    # weights and hears a weight's move faintly: some moves change its output by 1e-3 only.
    assert a.shape == b.shape and np.abs(a - b).max() > 1e-4


def drop_files(panel: BlendPanel, paths) -> bool:
    """Drop plain file URLs (as a file manager does); True if the drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = drag_enter_event(20, 20, mime, Qt.DropAction.CopyAction)
    QApplication.sendEvent(panel, enter)
    if not enter.isAccepted():
        return False
    drop = drop_event(20, 20, mime, Qt.DropAction.CopyAction)
    QApplication.sendEvent(panel, drop)
    return drop.isAccepted()


def slider(panel: BlendPanel, index: int) -> QSlider:
    return panel.findChild(QSlider, f"blendWeight{index}")


@pytest.fixture
def two(make_panel, runtime, sounds, qtbot):
    """A panel with low.wav and high.wav in slots 0 and 1, their first blend generated."""
    panel = make_panel(runtime)
    rec = Recorder(panel)
    assert drop_files(panel, sounds[:2])
    _wait_idle(qtbot, panel)
    assert rec.audio, panel.status_text()
    vecs = [latent(runtime, p) for p in sounds[:2]]
    return panel, rec, vecs


# -- slots and latents ---------------------------------------------------------------------------


def test_dropped_files_get_their_latents_and_a_blend(two, runtime, sounds):
    panel, rec, vecs = two
    assert panel.samples()[:2] == [SampleRef(str(sounds[0])), SampleRef(str(sounds[1]))]
    assert panel.samples()[2:] == [None] * (MAX_SLOTS - 2)
    for i in range(2):
        np.testing.assert_allclose(panel.slot_latent(i), vecs[i], atol=1e-5)
        assert panel.findChild(object, f"blendSlot{i}").isVisible()
    assert not panel.findChild(object, "blendSlot2").isVisible()
    assert rec.rates[-1] == runtime.sample_rate
    assert_same(rec.last, direct(runtime, vecs, [1.0, 1.0]))


def test_text_drops_are_refused(make_panel):
    panel = make_panel()
    mime = QMimeData()
    mime.setText("hello")
    enter = drag_enter_event(5, 5, mime, Qt.DropAction.CopyAction)
    QApplication.sendEvent(panel, enter)
    assert not enter.isAccepted()
    assert panel.samples() == [None] * MAX_SLOTS


def test_slots_hold_decoder_latents_not_search_vectors(make_panel, runtime, sounds, qtbot):
    # The library's stored vectors are read before the flows; decoding them loses the sound.
    panel = make_panel(runtime)
    panel.add_sample(SampleRef(str(sounds[0]), onset=0.0))
    _wait_idle(qtbot, panel)
    got = panel.slot_latent(0)
    np.testing.assert_allclose(got, latent(runtime, sounds[0]), atol=1e-5)
    assert np.abs(got - runtime.read(str(sounds[0])).vectors[0]).max() > 1e-3


def test_ninth_sample_is_refused_with_a_message(make_panel, sounds):
    panel = make_panel()  # no model: slots still fill, vectors wait for it
    refs = [SampleRef(str(sounds[0]), onset=0.01 * i) for i in range(MAX_SLOTS)]
    assert all(panel.add_sample(r) for r in refs)
    assert panel.samples() == refs
    assert not panel.add_sample(SampleRef(str(sounds[1])))
    assert "full" in panel.status_text()
    assert panel.samples() == refs
    assert not panel.findChild(QLabel, "blendHint").isVisible()


def test_unreadable_file_shows_its_reason_and_the_others_still_blend(
    make_panel, runtime, sounds, tmp_path, qtbot
):
    broken = tmp_path / "broken.wav"
    broken.write_text("this is not audio")
    panel = make_panel(runtime)
    rec = Recorder(panel)
    refs = [sounds[0], broken, sounds[1], tmp_path / "missing.wav"]
    assert panel.add_samples([SampleRef(str(p)) for p in refs]) == 4
    _wait_idle(qtbot, panel)
    assert "not an audio file" in panel.slot_error(1)
    assert "not found" in panel.slot_error(3)
    state = panel.findChild(QLabel, "blendSlotState1")
    assert state.isVisible() and "not an audio file" in state.text()
    assert not slider(panel, 1).isEnabled()
    vecs = [latent(runtime, sounds[0]), latent(runtime, sounds[1])]
    assert_same(rec.last, direct(runtime, vecs, [1.0, 1.0]))
    assert "broken.wav" not in panel.results[0].label


def test_removing_a_slot_blends_the_rest(two, runtime, qtbot):
    panel, rec, vecs = two
    n = len(rec.audio)
    qtbot.mouseClick(panel.findChild(object, "blendRemove0"), Qt.MouseButton.LeftButton)
    assert panel.samples()[0] is None and not panel.findChild(object, "blendSlot0").isVisible()
    _wait_idle(qtbot, panel)
    assert len(rec.audio) == n + 1
    assert_same(rec.last, direct(runtime, vecs[1:], [1.0]))
    panel.clear_slot(1)
    assert panel.findChild(QLabel, "blendHint").isVisible()


# -- re-generation -------------------------------------------------------------------------------


def test_moving_a_weight_makes_a_new_sound(two, runtime, qtbot):
    panel, rec, vecs = two
    before = rec.last
    assert (slider(panel, 1).minimum(), slider(panel, 1).maximum()) == (-100, 200)
    slider(panel, 1).setValue(50)
    assert panel.findChild(QLabel, "blendWeightValue1").text() == "0.50"
    _wait_idle(qtbot, panel)
    assert_differs(rec.last, before)
    assert_same(rec.last, direct(runtime, vecs, [1.0, 0.5]))


def test_quick_moves_coalesce_and_the_latest_wins(two, runtime, qtbot):
    panel, rec, vecs = two
    started, shown = panel.generations_started, len(rec.audio)
    moves = [90, 70, 50, -30, 10]
    for v in moves:
        slider(panel, 0).setValue(v)
    _wait_idle(qtbot, panel)
    assert 1 <= panel.generations_started - started < len(moves)
    assert 1 <= len(rec.audio) - shown < len(moves)
    assert_same(rec.last, direct(runtime, vecs, [0.1, 1.0]))


def test_changes_while_generating_keep_only_the_newest_and_drop_the_stale_result(
    two, runtime, qtbot
):
    panel, rec, vecs = two
    started, shown, history = panel.generations_started, len(rec.audio), len(panel.results)
    slider(panel, 1).setValue(20)
    panel.regenerate_now()  # in flight now; its result can only arrive through the event loop
    assert panel.generations_started == started + 1
    for v in (40, 60, 80):  # newer requests while it runs: remembered, not started
        slider(panel, 1).setValue(v)
        panel.regenerate_now()
    assert panel.generations_started == started + 1
    _wait_idle(qtbot, panel)
    assert panel.generations_started == started + 2  # the running one, then only the newest
    assert len(rec.audio) == shown + 1  # the stale result was never shown
    assert len(panel.results) == history + 1
    assert_same(rec.last, direct(runtime, vecs, [1.0, 0.8]))
    assert_same(panel.current.audio, rec.last)


def test_moving_back_to_the_running_settings_cancels_the_pending_request(two, runtime, qtbot):
    panel, rec, vecs = two
    started, shown = panel.generations_started, len(rec.audio)
    slider(panel, 1).setValue(20)
    panel.regenerate_now()
    slider(panel, 1).setValue(40)
    panel.regenerate_now()
    slider(panel, 1).setValue(20)
    panel.regenerate_now()
    _wait_idle(qtbot, panel)
    assert panel.generations_started == started + 1
    assert len(rec.audio) == shown + 1
    assert_same(rec.last, direct(runtime, vecs, [1.0, 0.2]))


def test_random_changes_the_seed_and_the_sound(two, runtime, qtbot):
    panel, rec, vecs = two
    seed_box = panel.findChild(QSpinBox, "blendSeed")
    seed0, before = seed_box.value(), rec.last
    qtbot.mouseClick(panel.findChild(object, "blendRandom"), Qt.MouseButton.LeftButton)
    seed = seed_box.value()
    assert seed != seed0
    _wait_idle(qtbot, panel)
    assert_differs(rec.last, before)
    assert_same(rec.last, direct(runtime, vecs, [1.0, 1.0], seed=seed))


def test_random_with_no_slots_decodes_a_prior_draw(make_panel, runtime, qtbot):
    panel = make_panel(runtime)
    rec = Recorder(panel)
    qtbot.mouseClick(panel.findChild(object, "blendRandom"), Qt.MouseButton.LeftButton)
    _wait_idle(qtbot, panel)
    seed = panel.findChild(QSpinBox, "blendSeed").value()
    assert len(rec.audio) == 1
    assert_same(rec.last, direct(runtime, [], None, seed=seed))
    assert panel.results[0].label == f"blend 1 — random (seed {seed})"


def test_variance_slider_adds_seeded_variation(two, runtime, qtbot):
    panel, rec, vecs = two
    before = rec.last
    panel.findChild(QSlider, "blendVariance").setValue(50)
    assert panel.findChild(QLabel, "blendVarianceValue").text() == "0.50"
    _wait_idle(qtbot, panel)
    assert_differs(rec.last, before)
    assert_same(rec.last, direct(runtime, vecs, [1.0, 1.0], variance=0.5))


def test_normalize_toggle_changes_weights_that_do_not_sum_to_one(two, runtime, qtbot):
    panel, rec, vecs = two
    before = rec.last  # weights 1 + 1, normalised to 0.5 + 0.5
    box = panel.findChild(QCheckBox, "normalizeWeights")
    assert box.isChecked()
    box.setChecked(False)
    _wait_idle(qtbot, panel)
    assert_differs(rec.last, before)
    assert_same(rec.last, direct(runtime, vecs, [1.0, 1.0], normalize=False))


def test_weights_summing_to_zero_are_explained(two, runtime, qtbot):
    panel, rec, vecs = two
    slider(panel, 0).setValue(10)  # far from the equal weights a zero sum falls back to
    _wait_idle(qtbot, panel)
    before = rec.last
    slider(panel, 0).setValue(100)
    slider(panel, 1).setValue(-100)  # 1 - 1 = 0 cannot be normalised: equal weights
    with pytest.warns(UserWarning, match="sum to zero"):
        direct(runtime, vecs, [1.0, -1.0])
    _wait_idle(qtbot, panel)
    assert "sum to zero" in panel.status_text()
    assert_differs(rec.last, before)
    assert_same(rec.last, direct(runtime, vecs, [0.5, 0.5]))


# -- results -------------------------------------------------------------------------------------


def test_history_grows_newest_first_and_a_click_replays(two, qtbot):
    panel, rec, _ = two
    first = rec.last
    slider(panel, 1).setValue(50)
    _wait_idle(qtbot, panel)
    second = rec.last
    history = panel.history
    assert history.objectName() == "blendHistory" and history.count() == 2
    assert history.item(0).text() == "blend 2 — low.wav 0.67 + high.wav 0.33, seed 0"
    assert history.item(1).text() == "blend 1 — low.wav 0.50 + high.wav 0.50, seed 0"
    rect = history.visualItemRect(history.item(1))
    with qtbot.waitSignal(panel.generated, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(history.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    np.testing.assert_array_equal(blocker.args[0], first)
    assert panel.current.number == 1 and history.count() == 2
    assert_differs(first, second)
    plot = panel.findChild(QWidget, "blendResult")  # a click on the waveform plays it too
    with qtbot.waitSignal(panel.generated, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(30, 20))
    np.testing.assert_array_equal(blocker.args[0], first)


def test_save_writes_a_readable_wav_and_remembers_the_folder(two, runtime, tmp_path, qtbot):
    panel, rec, _ = two
    asked = []
    out_dir = tmp_path / "exports"

    def provider(parent, caption, start, filters):
        asked.append(start)
        return str(out_dir / "my blend")

    panel.save_path_provider = provider
    with qtbot.waitSignal(panel.saved, timeout=WAIT_MS) as blocker:  # written off the GUI thread
        qtbot.mouseClick(panel.findChild(object, "saveBlend"), Qt.MouseButton.LeftButton)
    target = out_dir / "my blend.wav"
    assert blocker.args == [target] and target.is_file(), panel.status_text()
    data, rate = sf.read(str(target), dtype="float32")
    assert rate == 44100  # a DAW's rate, not the model's 16 kHz
    np.testing.assert_allclose(data, as_saved(runtime, rec.last), atol=1e-4)
    assert Path(app_settings().value("blend/saveDir")) == out_dir
    assert "Saved" in panel.status_text()
    panel.save_path_provider = lambda *a: asked.append(a[2]) or ""  # cancelled
    with qtbot.assertNotEmitted(panel.saved, wait=200):
        panel.save()
    assert Path(asked[-1]).parent == out_dir and "Saved my blend.wav" == panel.status_text()
    assert Path(asked[-1]).name == "low+high blend 1.wav"  # what the history calls it


def test_result_mime_is_a_local_url_to_an_existing_wav(two, runtime, qtbot):
    panel, rec, _ = two
    mime = panel.result_mime()
    (url,) = mime.urls()
    assert url.isLocalFile()
    path = Path(url.toLocalFile())
    # Named by its samples, as a DAW shows the clip; a folder of its own keeps it apart.
    assert path.is_file() and path.name == "low+high blend.wav"
    assert re.fullmatch(r"\d+", path.parent.name)
    data, rate = sf.read(str(path), dtype="float32")
    assert rate == 44100
    np.testing.assert_allclose(data, as_saved(runtime, rec.last), atol=1e-4)
    assert samples_from_mime(mime) == [SampleRef(str(path))]
    slider(panel, 0).setValue(30)
    _wait_idle(qtbot, panel)
    older = panel.history_entry(panel.history.item(1))
    older_path = panel.result_mime(older).urls()[0].toLocalFile()
    assert older_path == str(path)  # written once, reused
    assert panel.result_mime().urls()[0].toLocalFile() != older_path


def test_no_model_is_a_message_not_a_crash(make_panel, runtime, sounds, qtbot):
    panel = make_panel()
    rec = Recorder(panel)
    assert panel.status_text() == "Loading the model..."
    assert panel.add_sample(SampleRef(str(sounds[0])))
    assert "waiting for the model" in panel.findChild(QLabel, "blendSlotState0").text()
    qtbot.mouseClick(panel.findChild(object, "blendRandom"), Qt.MouseButton.LeftButton)
    slider(panel, 0).setValue(40)
    panel.regenerate_now()
    assert panel.generations_started == 0 and not rec.audio
    assert panel.result_mime() is None
    with qtbot.assertNotEmitted(panel.saved, wait=100):
        panel.save()
    assert "Nothing to save" in panel.status_text()
    assert not panel.findChild(object, "saveBlend").isEnabled()
    panel.set_model(None)
    assert "No model" in panel.status_text()
    panel.regenerate_now()
    assert "No model" in panel.status_text()
    panel.set_model(runtime)  # a model arrives later: the waiting sample is read and blended
    _wait_idle(qtbot, panel)
    assert rec.audio and panel.slot_latent(0) is not None


def test_an_indexed_sample_takes_its_stored_latent_and_reads_no_audio(
    make_panel, runtime, sounds, tmp_path, qtbot
):
    from sampletool.library import Library

    lib = Library(sounds[0].parent, runtime, db_path=tmp_path / "db" / "c.sqlite")
    try:
        lib.scan(workers=0)
        expected = latent(runtime, sounds[1])
        panel = make_panel(runtime)
        panel.set_library(lib)
        rec = Recorder(panel)
        reads = []
        real_clip = runtime.clip
        runtime.clip = lambda *a: reads.append(a) or real_clip(*a)
        try:
            panel.add_sample(SampleRef(str(sounds[1])))
            _wait_idle(qtbot, panel)
            assert reads == [] and rec.audio  # from the catalogue, and blended
            np.testing.assert_allclose(panel.slot_latent(0), expected, atol=1e-5)
            panel.add_sample(SampleRef(str(tmp_path / "elsewhere.wav")))  # not in it: read
            _wait_idle(qtbot, panel)
            assert len(reads) == 1 and "not found" in panel.slot_error(1)
        finally:
            del runtime.clip
    finally:
        lib.close()


# -- a decoder too slow to follow the sliders (NSynth's WaveNet) ---------------------------------


def wavenet_runtime(folder: Path, kind: str):
    import torch

    from sampletool.features import AudioConfig
    from sampletool.models.bundle import save_bundle
    from sampletool.models.runtime import load_runtime
    from sampletool.models.wavenet import WaveNetAutoencoder, WaveNetConfig

    torch.manual_seed(0)
    cfg = WaveNetConfig(kind=kind, enc_channels=4, enc_layers=2, enc_block=2, latent=4, hop=64,
                        dec_channels=4, dec_layers=2, dec_block=2, skip_channels=4,
                        train_crop=0, num_classes=2)  # fmt: skip
    save_bundle(folder, WaveNetAutoencoder(cfg), cfg, AudioConfig(seconds=0.25), ["a", "b"])
    return load_runtime(folder, device="cpu")


def test_a_slow_decoder_renders_on_request_with_progress_and_cancel(make_panel, sounds, qtbot,
                                                                   tmp_path):  # fmt: skip
    runtime = wavenet_runtime(tmp_path / "wn", "wavenet-autoencoder")
    panel = make_panel(runtime)
    got = Recorder(panel)
    assert not panel.live and panel.render_row.isVisibleTo(panel)
    assert "press Generate" in panel.status_text()
    assert drop_files(panel, sounds[:2])
    qtbot.waitUntil(lambda: all(panel.slot_latent(i) is not None for i in range(2)),
                    timeout=WAIT_MS)  # fmt: skip
    slider(panel, 0).setValue(slider(panel, 0).value() + 20)
    qtbot.wait(400)  # longer than the debounce: nothing starts by itself
    _wait_idle(qtbot, panel)
    assert panel.generations_started == 0 and not got.audio
    reports = []
    panel.render_progress.valueChanged.connect(reports.append)
    qtbot.mouseClick(panel.render_button, Qt.MouseButton.LeftButton)
    assert panel.render_progress.isVisibleTo(panel) and panel.cancel_button.isVisibleTo(panel)
    qtbot.waitUntil(lambda: len(got.audio) == 1, timeout=WAIT_MS)
    assert got.last.shape == (4000,) and np.isfinite(got.last).all()
    assert reports and panel.render_progress.maximum() == 4000
    assert not panel.render_progress.isVisibleTo(panel) and panel.render_button.isVisibleTo(panel)
    # A new request, cancelled at once: a message, no sound, the Generate button back.
    panel.seed.setValue(panel.seed.value() + 1)
    panel.regenerate_now()
    panel.cancel_generation()
    _wait_idle(qtbot, panel)
    assert panel.status_text() == "Generation cancelled" and len(got.audio) == 1
    assert panel.render_button.isVisibleTo(panel)


def test_a_model_without_decoder_says_so_and_generates_nothing(make_panel, sounds, qtbot,
                                                               tmp_path):  # fmt: skip
    panel = make_panel(wavenet_runtime(tmp_path / "enc", "wavenet-encoder"))
    assert "makes no sounds" in panel.status_text() and "wavenet-autoencoder" in panel.status_text()
    assert not panel.render_button.isEnabled()
    assert drop_files(panel, sounds[:1])
    qtbot.waitUntil(lambda: panel.slot_latent(0) is not None, timeout=WAIT_MS)
    panel.regenerate_now()
    _wait_idle(qtbot, panel)
    assert panel.generations_started == 0 and "makes no sounds" in panel.status_text()


# -- issue 24: the window (add to blend off the GUI thread, output for a DAW, history) -----------


def test_adding_to_the_blend_does_its_work_on_worker_threads(make_panel, runtime, sounds, qtbot,
                                                             monkeypatch):  # fmt: skip
    """Reading the sample, decoding the blend and writing its WAV: none on the GUI thread."""
    import threading

    from sampletool import audio, export

    threads: dict[str, set[str]] = {}

    def on_thread(name, fn):
        def wrapper(*args, **kwargs):
            threads.setdefault(name, set()).add(threading.current_thread().name)
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(runtime, "read", on_thread("read", runtime.read))
    monkeypatch.setattr(runtime, "decode", on_thread("decode", runtime.decode))
    monkeypatch.setattr(export, "trim_tail", on_thread("trim", export.trim_tail))
    monkeypatch.setattr(export, "resample", on_thread("resample", export.resample))
    monkeypatch.setattr(audio, "write_wav", on_thread("write", audio.write_wav))
    panel = make_panel(runtime)
    rec = Recorder(panel)
    assert panel.add_sample(SampleRef(str(sounds[0])))  # what right-click > Add to blend does
    _wait_idle(qtbot, panel)
    assert rec.audio, panel.status_text()
    assert set(threads) == {"read", "decode", "trim", "resample", "write"}
    gui = threading.main_thread().name
    assert all(gui not in names for names in threads.values()), threads


def test_the_blend_loses_its_silent_tail_and_is_written_at_a_daws_rate(two, runtime, qtbot,
                                                                       tmp_path):  # fmt: skip
    from sampletool.export import trim_tail

    panel, rec, vecs = two
    z = runtime.blend(np.stack(vecs), [1.0, 1.0], True, 0.0, 0)
    full = runtime.decode(z, seed=0)[0]
    np.testing.assert_allclose(rec.last, trim_tail(full, runtime.sample_rate), atol=1e-5)
    assert abs(rec.last[-1]) < 1e-6  # faded out: no click where it was cut
    assert panel.findChild(QComboBox, "exportRate").currentData() == 44100
    dragged = Path(panel.result_mime().urls()[0].toLocalFile())
    panel.save_path_provider = lambda *a: str(tmp_path / "saved.wav")
    with qtbot.waitSignal(panel.saved, timeout=WAIT_MS):
        panel.save()
    drag_data, drag_rate = sf.read(str(dragged), dtype="float32")
    save_data, save_rate = sf.read(str(tmp_path / "saved.wav"), dtype="float32")
    assert drag_rate == save_rate == 44100
    np.testing.assert_array_equal(drag_data, save_data)  # the same file either way
    assert abs(len(save_data) - len(rec.last) * 44100 / runtime.sample_rate) <= 2


def test_trimming_cuts_a_sound_that_ends_early(make_panel, runtime, qtbot, monkeypatch):
    """A decoder whose sound is over after 0.2 s of its 2 s: the file ends there (+ a fade)."""
    decode = runtime.decode

    def short_sound(*args, **kwargs):
        audio = decode(*args, **kwargs)
        audio[:, round(0.2 * runtime.sample_rate) :] = 0.0
        return audio

    monkeypatch.setattr(runtime, "decode", short_sound)
    panel = make_panel(runtime)
    panel.set_export_rate(48000)
    rec = Recorder(panel)
    panel.randomize()
    _wait_idle(qtbot, panel)
    assert len(rec.last) <= round(0.21 * runtime.sample_rate)
    data, rate = sf.read(str(panel.current.wav_path), dtype="float32")
    assert rate == 48000 and len(data) <= round(0.21 * 48000) + 2


def test_the_export_rate_is_remembered_and_rewrites_the_current_drag_file(two, make_panel, qtbot):
    panel, rec, _ = two
    box = panel.findChild(QComboBox, "exportRate")
    box.setCurrentIndex(box.findData(48000))
    qtbot.waitUntil(lambda: panel.current.wav_rate == 48000, timeout=WAIT_MS)
    path = Path(panel.result_mime().urls()[0].toLocalFile())
    _, rate = sf.read(path)
    assert rate == 48000 and path.name == "low+high blend.wav"
    assert make_panel().export_rate == 48000  # the next session's panel


def test_the_save_dialog_opens_in_the_folder_last_saved_to(two, make_panel, runtime, tmp_path,
                                                           qtbot, monkeypatch):  # fmt: skip
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QFileDialog

    from ui.blend import panel as panel_module

    panel, rec, _ = two
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    seen: dict[int, Path] = {}

    def answer_the_dialog():
        shown = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QFileDialog) and w.isVisible()]  # fmt: skip
        if not shown:  # not open yet
            QTimer.singleShot(50, answer_the_dialog)
            return
        dialog = shown[0]
        seen[len(seen)] = Path(dialog.directory().absolutePath())
        dialog.selectFile(str(out_dir / f"kick{len(seen)}.wav"))  # new: no "replace it?"
        dialog.accept()

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    QTimer.singleShot(0, answer_the_dialog)
    with qtbot.waitSignal(panel.saved, timeout=WAIT_MS):
        panel.save()  # the real dialog, answered as a user would
    assert seen[0] == tmp_path / "home"  # nothing saved before: the home folder
    later = make_panel(runtime)  # the next session
    later._current = panel.current
    QTimer.singleShot(0, answer_the_dialog)
    with qtbot.waitSignal(later.saved, timeout=WAIT_MS):
        later.save()
    assert seen[1] == out_dir
    assert panel_module._ask_save_path is later.save_path_provider


def test_random_rerolls_are_told_apart_in_the_history(two, qtbot):
    panel, rec, _ = two
    for _ in range(2):
        qtbot.mouseClick(panel.findChild(object, "blendRandom"), Qt.MouseButton.LeftButton)
        _wait_idle(qtbot, panel)
    texts = [panel.history.item(i).text() for i in range(3)]
    assert len(set(texts)) == 3
    assert texts[0].endswith(f"seed {panel.seed.value()}")


def test_a_history_click_restores_the_slots_weights_variance_and_seed(two, runtime, sounds, qtbot):
    panel, rec, vecs = two
    slider(panel, 1).setValue(-40)
    panel.findChild(QSlider, "blendVariance").setValue(30)
    panel.seed.setValue(7)
    _wait_idle(qtbot, panel)
    wanted = panel.current
    # Then something else: another sample, other weights, no variance, another seed.
    panel.clear_slot(0)
    panel.add_sample(SampleRef(str(sounds[2])))
    slider(panel, 1).setValue(150)
    panel.findChild(QSlider, "blendVariance").setValue(0)
    panel.seed.setValue(9)
    _wait_idle(qtbot, panel)
    started = panel.generations_started
    item = next(panel.history.item(i) for i in range(panel.history.count())
                if panel.history_entry(panel.history.item(i)) is wanted)  # fmt: skip
    rect = panel.history.visualItemRect(item)
    with qtbot.waitSignal(panel.generated, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(panel.history.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    np.testing.assert_array_equal(blocker.args[0], wanted.audio)
    assert panel.samples()[:3] == [SampleRef(str(sounds[0])), SampleRef(str(sounds[1])), None]
    assert (panel.weight(0), panel.weight(1)) == (1.0, -0.4)
    assert panel.findChild(QSlider, "blendVariance").value() == 30 and panel.seed.value() == 7
    assert panel.normalize.isChecked()
    _wait_idle(qtbot, panel)
    assert panel.generations_started == started and panel.current is wanted  # not re-made
    slider(panel, 0).setValue(50)  # and it goes on from there
    _wait_idle(qtbot, panel)
    assert_same(rec.last, direct(runtime, vecs, [0.5, -0.4], variance=0.3, seed=7))


def test_normalising_negative_weights_is_explained_beside_the_checkbox(two, qtbot):
    panel, rec, _ = two
    note = panel.findChild(QLabel, "normalizeNote")
    assert not note.isVisible()
    slider(panel, 1).setValue(-50)  # 1 and -0.5 sum to 0.5: normalised, 2 and -1
    assert note.isVisible() and "2.00, -1.00" in note.text() and "sum" in note.text()
    panel.normalize.setChecked(False)  # used as set: nothing to explain
    assert not note.isVisible()
    panel.normalize.setChecked(True)
    slider(panel, 1).setValue(30)
    assert not note.isVisible()
    _wait_idle(qtbot, panel)


def test_a_dropped_non_audio_file_is_refused_with_a_message(make_panel, runtime, sounds, tmp_path,
                                                            qtbot):  # fmt: skip
    text = tmp_path / "notes.txt"
    text.write_text("not a sound")
    panel = make_panel(runtime)
    assert not drop_files(panel, [text])
    assert panel.samples() == [None] * MAX_SLOTS
    assert "notes.txt is not an audio file" in panel.status_text()
    assert drop_files(panel, [sounds[0], text])  # the sound goes in, the text does not
    assert panel.samples()[:2] == [SampleRef(str(sounds[0])), None]
    assert "notes.txt" in panel.status_text()
    _wait_idle(qtbot, panel)


def test_a_blends_file_name_says_what_is_in_it():
    from ui.blend.history import blend_file_name

    def slots(*named):
        return tuple((SampleRef(f"/lib/{n}"), w) for n, w in named)

    assert blend_file_name(slots(("kick01.wav", 1.0), ("snare 2.aiff", 0.5)), 3) == (
        "kick01+snare 2 blend 3.wav"
    )
    assert blend_file_name(slots(("kick01.wav", 1.0), ("muted.wav", 0.0)), None) == (
        "kick01 blend.wav"  # a sample weighted 0 is not in it
    )
    many = slots(*((f"s{i}.wav", 1.0) for i in range(5)))
    assert blend_file_name(many, 1) == "s0+s1+s2+2 more blend 1.wav"
    assert blend_file_name(slots(('a:b?"c".flac', 1.0)), 2) == "a_b__c_ blend 2.wav"
    assert blend_file_name(slots(("x" * 40 + ".wav", 1.0)), 2) == "x" * 24 + " blend 2.wav"
    assert blend_file_name((), 4) == "blend 4.wav"  # a random sound
