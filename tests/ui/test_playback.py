"""The Player: what reaches the output, the position clock, and machines without sound.

The audio output device is the one thing faked here (CI has no sound card): a backend that
records what it was asked to play, and one that fails the way PortAudio does.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import ui.playback as playback
from tests.helpers import tone, write
from ui.playback import NO_DEVICE, Player

try:
    from sounddevice import PortAudioError
except (ImportError, OSError):  # no sounddevice or no PortAudio here: an error of that name

    class PortAudioError(Exception):  # type: ignore[no-redef]
        pass


class RecordingOutput:
    def __init__(self) -> None:
        self.played: list[tuple[np.ndarray, int]] = []
        self.stops = 0

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        self.played.append((audio.copy(), sample_rate))

    def stop(self) -> None:
        self.stops += 1


class NoDeviceOutput(RecordingOutput):
    """Fails like sounddevice.play on a machine with no output device."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.error = error or PortAudioError("Error querying device -1")
        self.attempts = 0

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        self.attempts += 1
        raise self.error


def recorder(player: Player) -> dict[str, list]:
    got: dict[str, list] = {"state": [], "unavailable": [], "error": [], "position": []}
    player.state_changed.connect(got["state"].append)
    player.unavailable.connect(got["unavailable"].append)
    player.error.connect(got["error"].append)
    player.position.connect(got["position"].append)
    return got


def test_play_sends_clipped_float32_frames_from_start(qtbot):
    out = RecordingOutput()
    player = Player(backend=out)
    got = recorder(player)
    audio = np.linspace(-2, 2, 1000)  # float64, mono, overshooting
    audio[700] = np.nan
    assert player.play(audio, 1000, start=0.5)
    assert player.is_playing and got["state"] == [True]
    sent, sr = out.played[0]
    assert sr == 1000 and sent.dtype == np.float32 and sent.shape == (500, 1)
    assert sent.flags.c_contiguous
    np.testing.assert_allclose(sent[:, 0], np.clip(np.nan_to_num(audio[500:]), -1, 1), atol=1e-6)
    assert got["position"][0] == 0.5
    player.stop()
    assert out.stops == 1 and not player.is_playing
    assert got["state"] == [True, False] and got["position"][-1] == -1.0


def test_position_follows_playback_and_the_sound_ends_by_itself(qtbot):
    out = RecordingOutput()
    player = Player(backend=out)
    got = recorder(player)
    stereo = np.zeros((8000, 2), np.float32)  # 0.5 s
    assert player.play(stereo, 16000, start=0.25)
    assert got["state"] == [True]
    qtbot.waitUntil(lambda: not player.is_playing, timeout=20_000)
    assert got["state"] == [True, False]
    times = got["position"]
    assert times[0] == 0.25 and times[-1] == -1.0
    ticks = times[1:-1]
    assert ticks, "no position while playing"
    assert all(0.25 <= t < 0.5 for t in ticks)
    assert ticks == sorted(ticks)
    assert out.stops == 0  # a sound that ends is not cut off (its tail may still be in the buffer)


def test_a_new_play_replaces_the_current_one_without_stopping(qtbot):
    out = RecordingOutput()
    player = Player(backend=out)
    got = recorder(player)
    assert player.play(tone(440, 1.0), 16000)
    assert player.play(tone(220, 1.0), 16000)
    assert len(out.played) == 2 and got["state"] == [True]
    player.stop()


def test_an_excerpt_read_off_the_gui_thread_plays_in_file_time(qtbot, tmp_path):
    """What the window does to audition a sample: read from the onset on a worker
    (only those frames), then play it with the playhead in file time."""
    from ui.mainwindow.jobs import read_for_playback

    ramp = np.linspace(-1, 1, 32000, dtype=np.float32)
    path = write(tmp_path / "ramp.wav", np.stack([ramp, -ramp], axis=1), 16000, subtype="FLOAT")
    audio, sr = read_for_playback(str(path), 1.0)
    assert sr == 16000 and audio.shape == (16000, 2)  # from 1 s to the end, not the whole file
    np.testing.assert_array_equal(audio[:, 0], ramp[16000:])
    out = RecordingOutput()
    player = Player(backend=out)
    got = recorder(player)
    assert player.play_excerpt(audio, sr, at=1.0)
    sent, rate = out.played[0]
    assert rate == 16000 and sent.shape == (16000, 2)
    assert got["position"][0] == 1.0  # the playhead speaks file time
    player.stop()


def test_start_past_the_end_plays_nothing(qtbot):
    out = RecordingOutput()
    player = Player(backend=out)
    assert not player.play(tone(440, 0.5), 16000, start=0.6)
    assert not out.played and not player.is_playing and player.available


def test_no_output_device_turns_playback_off_once_and_quietly(qtbot, tmp_path):
    out = NoDeviceOutput()
    player = Player(backend=out)
    got = recorder(player)
    assert player.available
    assert not player.play(tone(440, 0.2), 16000)
    assert not player.available and player.reason == NO_DEVICE
    assert got["unavailable"] == [NO_DEVICE]
    assert not player.play(tone(440, 0.2), 16000)
    assert not player.play_excerpt(tone(440, 0.2), 16000, at=1.0)
    player.stop()
    assert out.attempts == 1  # later plays do not knock on the missing device again
    assert got["unavailable"] == [NO_DEVICE] and got["error"] == [] and got["state"] == []


def test_an_unsupported_rate_is_an_error_not_the_end_of_playback(qtbot):
    out = NoDeviceOutput(PortAudioError("Error opening OutputStream: Invalid sample rate", -9997))
    player = Player(backend=out)
    got = recorder(player)
    assert not player.play(tone(440, 0.2, sr=7000), 7000)
    assert player.available and got["unavailable"] == []
    assert got["error"] == ["The audio output cannot play sound at 7000 Hz"]


def test_missing_portaudio_library_turns_playback_off(qtbot, monkeypatch):
    def no_portaudio():
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(playback, "_import_sounddevice", no_portaudio)
    player = Player()
    got = recorder(player)
    assert not player.play(tone(440, 0.1), 16000)
    assert not player.play(tone(440, 0.1), 16000)
    assert got["unavailable"] == ["Audio playback is off: the PortAudio library is not installed"]
    assert not player.available


def test_bad_audio_is_an_error_message(qtbot):
    player = Player(backend=RecordingOutput())
    got = recorder(player)
    assert not player.play(np.zeros((2, 2, 2), np.float32), 16000)
    assert not player.play(tone(440, 0.1), 0)
    assert len(got["error"]) == 2 and all(e.startswith("Cannot play") for e in got["error"])


def _default_output() -> tuple[bool, str]:
    """Whether PortAudio itself reports a default output device here, and if not, why."""
    try:
        import sounddevice
    except (ImportError, OSError) as e:
        return False, f"no PortAudio ({e})"
    try:
        sounddevice.query_devices(kind="output")
    except Exception as e:  # PortAudioError, or ValueError without any device
        return False, str(e)
    return True, ""


def test_the_real_output_of_this_machine_agrees_with_portaudio(qtbot):
    """With or without a sound card (or PortAudio), play() answers what PortAudio says of the
    default output device, and never raises."""
    has_output, why = _default_output()
    player = Player()
    got = recorder(player)
    started = player.play(tone(440, 0.05) * 0.1, 16000)
    assert started == has_output, (why, player.reason)
    if started:
        assert player.is_playing and player.available
        player.stop()
        assert not player.is_playing
    else:
        assert not player.available and player.reason
        if "querying device" in why.lower():  # no device at all (this is CI)
            assert player.reason == NO_DEVICE
        assert got["unavailable"] == [player.reason]
        assert not player.play(tone(440, 0.05), 16000)
        assert len(got["unavailable"]) == 1
    assert got["error"] == []


@pytest.fixture(autouse=True)
def _no_sound_left_playing():
    yield
    try:
        playback._import_sounddevice().stop()
    except Exception:
        pass


def test_importing_the_player_and_waveform_view_loads_neither_torch_nor_sounddevice():
    code = (
        "import sys, ui.playback, ui.widgets.waveform_view\n"
        "sys.exit(sorted({'torch', 'sounddevice'} & set(sys.modules)) or 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_play_excerpt_reports_file_time(qtbot):
    out = RecordingOutput()
    player = Player(backend=out)
    got = recorder(player)
    audio = np.zeros(1600, np.float32)
    assert player.play_excerpt(audio, 16000, at=2.5)
    assert out.played and got["position"][0] == pytest.approx(2.5)
    player.stop()
