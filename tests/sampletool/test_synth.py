"""The procedural synthesiser, the demo library and the name-based drum labels."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from sampletool import cli
from sampletool.audio import load_clip
from sampletool.data import synth
from sampletool.data.labels import drum_class, normalise_name
from sampletool.features import AudioConfig, log_mel
from sampletool.progress import Cancelled
from sampletool.segment import segment_file


@pytest.mark.parametrize("cls", synth.CLASSES)
def test_every_class_is_deterministic_finite_and_varied(cls):
    a = synth.synthesize(cls, 5)
    b = synth.synthesize(cls, 5)
    c = synth.synthesize(cls, 6)
    assert a.sample_rate == b.sample_rate and np.array_equal(a.audio, b.audio)
    assert a.audio.dtype == np.float32 and a.audio.ndim == 2 and a.audio.shape[1] in (1, 2)
    assert np.isfinite(a.audio).all() and np.abs(a.audio).max() <= 1.0
    assert np.abs(a.audio).max() > 0.1  # not silent
    assert a.cls == cls
    assert a.audio.shape != c.audio.shape or not np.array_equal(a.audio, c.audio)
    # Over a few seeds the generator uses more than one variant and more than one rate.
    many = [synth.synthesize(cls, s) for s in range(12)]
    assert len({m.variant for m in many}) > 1
    assert len({m.sample_rate for m in many}) > 1


def test_sample_rate_can_be_fixed_and_the_sound_is_resampled():
    s44 = synth.synthesize("snare", 1, 44100)
    s22 = synth.synthesize("snare", 1, 22050)
    assert s44.sample_rate == 44100 and s22.sample_rate == 22050
    assert abs(len(s44.audio) - 2 * len(s22.audio)) <= 2


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown class"):
        synth.synthesize("didgeridoo", 0)


def test_classes_differ_where_they_should():
    """Spectral centroid: hats and cymbals are bright, kicks and toms are dark."""
    cfg = AudioConfig()

    def centroid(cls: str) -> float:
        vals = []
        for seed in range(8):
            s = synth.synthesize(cls, seed, 16000)
            x = np.zeros(cfg.num_samples, np.float32)
            mono = s.audio.mean(1)[: cfg.num_samples]
            x[: len(mono)] = mono
            m = log_mel(x[None], cfg)[0].numpy()
            energy = m.mean(1)
            vals.append((energy * np.arange(len(energy))).sum() / energy.sum())
        return float(np.mean(vals))

    assert centroid("hihat") > centroid("snare") > centroid("kick")
    assert centroid("cymbal") > centroid("tom")


def test_loop_onsets_are_on_the_grid_and_found_by_segmentation(tmp_path):
    loop = synth.make_loop(3, bpm=120, bars=1)
    step = 60 / 120 / 4
    assert all(abs(o / step - round(o / step)) < 1e-3 for o in loop.onsets)
    assert len(loop.audio) / loop.sample_rate == pytest.approx(16 * step, abs=0.01)
    path = tmp_path / "loop.wav"
    synth.write_sound(path, loop, "PCM_24")
    found = segment_file(path)
    # Every detected onset is close to a true hit (within 30 ms).
    assert len(found) >= 4
    for f in found:
        assert min(abs(f - o) for o in loop.onsets) < 0.03


def test_write_class_folders_resumes_and_varies_formats(tmp_path):
    paths = synth.write_class_folders(tmp_path, 4, classes=("kick", "hihat"),
                                      formats=(".wav", ".flac", ".aiff"))  # fmt: skip
    assert len(paths) == 8 and all(p.is_file() for p in paths)
    assert {p.parent.name for p in paths} == {"kick", "hihat"}
    subtypes = {sf.info(str(p)).subtype for p in paths}
    assert len(subtypes) > 1
    before = {p: p.stat().st_mtime_ns for p in paths}
    paths[0].unlink()
    again = synth.write_class_folders(tmp_path, 4, classes=("kick", "hihat"),
                                      formats=(".wav", ".flac", ".aiff"))  # fmt: skip
    assert again == paths and paths[0].is_file()
    assert all(p.stat().st_mtime_ns == before[p] for p in paths[1:])  # kept, not rewritten


def test_demo_library_is_readable_and_refuses_a_folder_with_other_files(tmp_path):
    done: list[tuple[int, int]] = []
    paths = synth.write_demo_library(tmp_path / "demo", per_class=2, loops=2,
                                     progress=lambda d, t, _name: done.append((d, t)))  # fmt: skip
    assert len(paths) == 2 * len(synth.CLASSES) + 2
    assert done[-1] == (len(paths), len(paths))
    for p in paths:
        clip = load_clip(p, seconds=1.0, sample_rate=16000)
        assert np.abs(clip).max() > 0
    # Rerunning completes (and keeps) an earlier demo library.
    assert synth.write_demo_library(tmp_path / "demo", per_class=2, loops=2) == paths
    other = tmp_path / "mine"
    other.mkdir()
    (other / "my_kick.wav").write_bytes(b"")
    with pytest.raises(synth.DemoLibraryError, match="not empty"):
        synth.write_demo_library(other, per_class=1, loops=0)
    assert [p.name for p in other.iterdir()] == ["my_kick.wav"]


def test_demo_library_stops_on_cancel(tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(done, total, name):
        seen.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled) as stopped:
        synth.write_demo_library(tmp_path / "d", per_class=5, loops=1, progress=progress,
                                 cancel=cancel)  # fmt: skip
    assert len(stopped.value.partial) == 3
    assert len(synth.write_demo_library(tmp_path / "d", per_class=5, loops=1)) == 46  # completed


def test_cli_demo(tmp_path, capsys):
    assert cli.main(["demo", str(tmp_path / "d"), "--per-class", "1", "--loops", "1"]) == 0
    assert f"{len(synth.CLASSES) + 1} files" in capsys.readouterr().out
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    assert cli.main(["demo", str(tmp_path / "full")]) == cli.EXIT_USAGE
    assert "not empty" in capsys.readouterr().err
    assert cli.main(["demo", str(tmp_path / "e"), "--per-class", "0"]) == cli.EXIT_USAGE


@pytest.mark.parametrize(
    "name, cls",
    [
        ("Kick Hard 1", "kick"), ("BassDrum", "kick"), ("bd_haus.flac", "kick"),
        ("c3 - bass drum 1", "kick"), ("drum_bass_hard.flac", "kick"),
        ("snare_rim01.ogg", None), ("Pearl Snare Rimshot", "snare"), ("sn_dub", "snare"),
        ("hihat_closed02.ogg", "hihat"), ("Hi-Hat Open (Paiste 14\")", "hihat"),
        ("Closed HH", "hihat"), ("drum_cymbal_pedal.flac", "hihat"),
        ("tomhi2", "tom"), ("Floor Tom", "tom"), ("elec_fuzz_tom", "tom"),
        ("crash16inch", "cymbal"), ("Crash Left", "cymbal"), ("ride-crash20inch", "cymbal"),
        ("Ride Bell", "cymbal"), ("drum_splash_soft", "cymbal"), ("Cymbal", "cymbal"),
        ("Hand Clap", "clap"), ("clap03.ogg", "clap"),
        ("Cowbell", "percussion"), ("Side Stick", None), ("rim01.ogg", None),
        ("Djembe1 Bass", "percussion"), ("Zap 1", "fx"), ("054_Tombourine", "percussion"),
        ("Tom_Low_1", "tom"), ("Brass Tambourine", "percussion"),
        ("Snare Roll", None), ("drum_roll", None), ("Drum 1", None), ("27", None), ("", None),
    ],
)  # fmt: skip
def test_drum_class_from_names(name, cls):
    assert drum_class(name) == cls


def test_normalise_name():
    assert normalise_name("BassDrum_01.wav") == "bass drum"
    assert normalise_name("hihat_closed02") == "hihat closed"
