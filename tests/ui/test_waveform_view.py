"""The waveform view: what it draws for a real file, clicks, stale loads, errors, spectrogram."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, QThreadPool
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from sampletool.errors import AudioError
from sampletool.waveform import envelope_of, read_envelope, spectrogram_db
from tests.helpers import tone, write
from ui.widgets.waveform_view import EMPTY_TEXT, WaveformView, _read_sound
from ui.workers import SynchronousPool

SR = 16000


@pytest.fixture
def sync_workers():
    """Views made with view_for in this test run their reads inline."""
    return SynchronousPool()


@pytest.fixture
def drum(tmp_path):
    """2 s of stereo: a loud decaying tone at 0.5 s, a quiet one at 1.2 s, silence between."""
    audio = np.zeros((2 * SR, 2), np.float32)
    audio[SR // 2 : SR // 2 + 8000, 0] = tone(200, 0.5, decay=6) * 1.6
    audio[SR // 2 : SR // 2 + 8000, 1] = tone(200, 0.5, decay=6) * 1.2
    audio[round(1.2 * SR) : round(1.2 * SR) + 4000] = tone(900, 0.25, decay=10)[:, None] * 0.4
    return write(tmp_path / "drum.wav", audio, SR, subtype="FLOAT")


def view_for(qtbot, pool=None) -> WaveformView:
    view = WaveformView(pool=pool)
    qtbot.addWidget(view)
    view.resize(800, 250)
    view.show()
    qtbot.waitExposed(view)
    return view


def finish_all_tasks() -> None:
    """Let every worker finish and deliver its (queued) results."""
    QThreadPool.globalInstance().waitForDone()
    for _ in range(3):
        QApplication.processEvents()


def x_range(view: WaveformView) -> list[float]:
    return view.plot.getPlotItem().getViewBox().viewRange()[0]


def y_range(view: WaveformView) -> list[float]:
    return view.plot.getPlotItem().getViewBox().viewRange()[1]


def test_load_reads_off_the_gui_thread_and_draws_the_envelope(qtbot, drum):
    view = view_for(qtbot)
    view.load(str(drum), onsets=[0.5, 1.2, 1.9])
    assert view.message_text.startswith("Loading drum.wav")
    assert view.envelope is None  # the result arrives later, through the event loop
    qtbot.waitUntil(lambda: view.envelope is not None, timeout=60_000)

    expected = read_envelope(drum)
    x, lows = view._min_curve.getData()
    _, highs = view._max_curve.getData()
    np.testing.assert_array_equal(lows, expected.mins)
    np.testing.assert_array_equal(highs, expected.maxs)
    np.testing.assert_allclose(x, expected.times)
    assert highs.max() == pytest.approx(0.7, abs=0.01)  # the mono mix of 0.8 and 0.6 peaks
    assert view.message_text == ""
    assert view.title.full_text() == "drum.wav"
    assert view.info.text().startswith("2.00 s")
    lines = [it for it in view.plot.getPlotItem().items if isinstance(it, pg.InfiniteLine)]
    assert len(view.onset_lines) == 3
    assert len(lines) == 4  # the onsets and the (hidden) playhead
    assert [line.value() for line in view.onset_lines] == [0.5, 1.2, 1.9]
    assert x_range(view) == pytest.approx([0.0, 2.0], abs=1e-6)
    assert y_range(view)[0] == pytest.approx(-1.0, abs=0.1)
    assert y_range(view)[1] == pytest.approx(1.0, abs=0.1)


def test_click_emits_the_time_under_the_mouse(qtbot, drum, sync_workers):
    view = view_for(qtbot, sync_workers)
    view.load(str(drum))
    vb = view.plot.getPlotItem().getViewBox()
    scene = vb.mapViewToScene(QPointF(1.25, 0.0))
    pos = view.plot.mapFromScene(scene)
    seconds_per_pixel = 2.0 / vb.sceneBoundingRect().width()
    with qtbot.waitSignal(view.play_from, timeout=10_000) as blocker:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args[0] == pytest.approx(1.25, abs=2 * seconds_per_pixel)

    # On the axis, not on the sound: nothing.
    got = []
    view.play_from.connect(got.append)
    below = view.plot.mapFromScene(vb.sceneBoundingRect().bottomLeft()) + QPoint(40, 15)
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=below)
    assert got == []


def test_a_newer_load_wins_over_an_older_one(qtbot, tmp_path, drum):
    long = write(tmp_path / "long.wav", tone(100, 40.0, sr=8000), 8000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio " * 50)
    view = view_for(qtbot)
    view.load(str(long), onsets=[1, 2, 3, 4, 5], title="Long one")
    long_task = view.tasks.task("sound")
    view.load(str(bad))
    bad_task = view.tasks.task("sound")
    view.load(str(drum), onsets=[0.5], title="Drum")
    assert long_task.cancelled and bad_task.cancelled
    finish_all_tasks()
    qtbot.waitUntil(lambda: view.envelope is not None, timeout=60_000)

    def shows_the_drum() -> None:
        assert view.envelope.duration == pytest.approx(2.0)
        assert view.title.full_text() == "Drum" and view.path == str(drum)
        assert len(view.onset_lines) == 1
        assert view.message_text == ""

    shows_the_drum()
    # Results of the older loads arriving after the newest one (threads finish in any order)
    # change nothing.
    long_task.signals.result.emit(_read_sound(str(long), False))
    bad_task.signals.error.emit(AudioError(bad, "not an audio file"))
    shows_the_drum()


def test_an_unreadable_file_shows_its_reason_inside_the_view(qtbot, tmp_path, drum):
    bad = tmp_path / "notes.wav"
    bad.write_text("shopping list\n" * 40)
    view = view_for(qtbot)
    windows_before = set(QApplication.topLevelWidgets())
    view.load(str(bad))
    qtbot.waitUntil(lambda: "not an audio file" in view.message_text, timeout=60_000)
    assert view.message_text.startswith("Cannot show notes.wav: ")
    assert "Traceback" not in view.message_text
    assert view.message.isVisible() and not view.plot.isVisible()
    assert view.envelope is None
    visible = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w is not view]
    assert set(visible) <= windows_before  # no dialog popped up

    view.load(str(tmp_path / "gone.wav"))
    qtbot.waitUntil(lambda: "file not found" in view.message_text, timeout=60_000)
    view.load(str(drum))  # and it recovers
    qtbot.waitUntil(lambda: view.envelope is not None, timeout=60_000)
    assert view.plot.isVisible() and view.message_text == ""


def test_spectrogram_toggle_shows_the_spectrogram_image(qtbot, drum, sync_workers):
    view = view_for(qtbot, sync_workers)
    view.load(str(drum), onsets=[0.5])
    button = view.spectrogram_button
    assert button.objectName() == "spectrogramToggle" and button.isCheckable()
    assert not view.image.isVisible() and view._max_curve.isVisible()

    button.click()
    mono = sf.read(str(drum), dtype="float32")[0].mean(axis=1)
    db, times, freqs = spectrogram_db(mono, SR)
    assert view.image.isVisible() and not view._max_curve.isVisible()
    assert view.image.image.shape == db.T.shape == (len(times), len(freqs))
    np.testing.assert_allclose(view.image.image, db.T, atol=1e-4)
    assert y_range(view) == pytest.approx([0.0, SR / 2])
    rect = view.image.mapRectToView(view.image.boundingRect())
    half_hop = 256 / SR / 2  # frames are centred on 0, hop, 2 hop... up to the end
    assert rect.left() == pytest.approx(-half_hop) and rect.right() == pytest.approx(2 + half_hop)
    assert rect.top() == pytest.approx(-SR / 1024 / 2)
    assert rect.bottom() == pytest.approx(SR / 2 + SR / 1024 / 2)
    assert len(view.onset_lines) == 1 and view.onset_lines[0].isVisible()

    button.click()
    assert not view.image.isVisible() and view._max_curve.isVisible()
    assert y_range(view)[1] == pytest.approx(1.0, abs=0.1)


def test_a_load_while_the_spectrogram_is_on_shows_the_new_spectrogram(qtbot, tmp_path, drum):
    view = view_for(qtbot)
    view.show_spectrogram(True)
    other = write(tmp_path / "other.wav", tone(3000, 0.7, sr=22050), 22050)
    view.load(str(drum))
    view.load(str(other))
    qtbot.waitUntil(lambda: view.image.image is not None, timeout=60_000)
    finish_all_tasks()
    db, _, _ = spectrogram_db(tone(3000, 0.7, sr=22050), 22050)
    assert view.image.image.shape == db.T.shape
    assert view.image.isVisible()
    assert y_range(view) == pytest.approx([0.0, 22050 / 2])


def test_spectrogram_toggled_on_during_a_load_appears_when_it_is_done(qtbot, drum):
    view = view_for(qtbot)
    view.load(str(drum))
    view.show_spectrogram(True)  # nothing to compute yet: the sound is still loading
    assert view.image.image is None
    qtbot.waitUntil(lambda: view.image.image is not None, timeout=60_000)
    assert view.image.isVisible() and view.image.image.shape[1] == 513


def test_set_audio_shows_an_in_memory_sound_at_once(qtbot):
    view = view_for(qtbot)
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (30_000, 2)).astype(np.float32)
    view.set_audio(stereo, 24000, onsets=[0.2, 0.9], title="Blend")
    expected = envelope_of(stereo, 24000, 2000)
    _, highs = view._max_curve.getData()
    np.testing.assert_array_equal(highs, expected.maxs)
    assert view.envelope.duration == pytest.approx(1.25)
    assert view.path is None and view.title.full_text() == "Blend"
    assert len(view.onset_lines) == 2 and view.message_text == ""
    view.show_spectrogram(True)  # computed from the sound in memory
    qtbot.waitUntil(lambda: view.image.image is not None, timeout=60_000)
    assert view.image.image.shape[1] == 513


def test_playhead_and_clear(qtbot):
    view = view_for(qtbot)
    view.set_audio(tone(440, 1.0), SR, onsets=[0.3])
    view.set_playhead(0.4)
    assert view.playhead.isVisible() and view.playhead.value() == pytest.approx(0.4)
    view.set_playhead(-1.0)
    assert not view.playhead.isVisible()

    view.set_playhead(0.5)
    view.clear()
    assert view.envelope is None and view.message_text == EMPTY_TEXT
    assert not view.playhead.isVisible()
    lines = [it for it in view.plot.getPlotItem().items if isinstance(it, pg.InfiniteLine)]
    assert lines == [view.playhead] and view.onset_lines == []


def test_the_wheel_zooms_time_only(qtbot):
    view = view_for(qtbot)
    view.set_audio(tone(440, 4.0), SR)
    viewport = view.plot.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    wheel = QWheelEvent(
        centre,
        viewport.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 480),  # four notches towards "zoom in"
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, wheel)
    left, right = x_range(view)
    assert right - left < 3.0 and left >= 0.0 and right <= 4.0
    assert y_range(view)[0] == pytest.approx(-1.0, abs=0.1)
    assert y_range(view)[1] == pytest.approx(1.0, abs=0.1)
