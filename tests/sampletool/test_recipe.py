"""The default model's recipe, end to end on a tiny fake drum-kit package, and the shipped
default model itself."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sampletool.data import synth
from sampletool.models.bundle import CONFIG_FILE, resolve_model
from sampletool.models.runtime import load_runtime
from sampletool.training import recipe
from sampletool.training.soundfont import SoundFont

KIT_XML = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
  <name>TestKit</name>
  <instrumentList>
    <instrument><id>0</id><name>Kick Hard</name>
      <layer><filename>kick_a.wav</filename></layer>
      <layer><filename>kick_b.wav</filename></layer></instrument>
    <instrument><id>1</id><name>Snare Rock</name>
      <instrumentComponent><layer><filename>snare a.wav</filename></layer></instrumentComponent>
      <layer><filename>snare_b.wav</filename></layer></instrument>
    <instrument><id>2</id><name>Snare Roll</name>
      <layer><filename>roll.wav</filename></layer></instrument>
    <instrument><id>3</id><name>27</name></instrument>
    <instrument><id>4</id><name>Tom Hi</name>
      <layer><filename>missing.wav</filename></layer></instrument>
  </instrumentList>
</drumkit_info>
"""


def _fake_kits(root):
    kit = root / "usr/share/hydrogen/data/drumkits/TestKit"
    kit.mkdir(parents=True)
    (kit / "drumkit.xml").write_text(KIT_XML, encoding="utf-8")
    for i, (name, cls) in enumerate(
        [("kick_a", "kick"), ("kick_b", "kick"), ("snare a", "snare"), ("snare_b", "snare"),
         ("roll", "snare")]
    ):  # fmt: skip
        synth.write_sound(kit / f"{name}.wav", synth.synthesize(cls, 100 + i, 44100))
    return kit.parent


def _chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _write_sf2(path, samples: list[tuple[str, np.ndarray, int]], presets=()) -> None:
    """A minimal SoundFont 2 file: the sample data and the sample headers, and for each of
    `presets` ((name, bank, program, sample index, (lowest key, highest key), looped)) a preset
    of one instrument of one zone playing that sample (root key 60)."""
    pcm, headers, pos = [], b"", 0
    for name, audio, kind in samples:
        x = (np.clip(audio, -1, 1) * 32767).astype("<i2")
        headers += struct.pack("<20sIIIIIBbHH", name.encode(), pos, pos + len(x), pos,
                               pos + len(x), 44100, 60, 0, 0, kind)  # fmt: skip
        pcm.append(x)
        pcm.append(np.zeros(46, "<i2"))  # the spec's guard samples
        pos += len(x) + 46
    headers += struct.pack("<20sIIIIIBbHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    body = b"sfbk" + _chunk(b"LIST", b"sdta" + _chunk(b"smpl", np.concatenate(pcm).tobytes()))
    pdta = _chunk(b"shdr", headers)
    if presets:
        phdr = pbag = pgen = inst = ibag = igen = b""
        for i, (name, bank, program, sample, (lo, hi), looped) in enumerate(presets):
            phdr += struct.pack("<20sHHHIII", name.encode(), program, bank, i, 0, 0, 0)
            pbag += struct.pack("<HH", i, 0)
            pgen += struct.pack("<HH", 41, i)  # instrument i
            inst += struct.pack("<20sH", name.encode(), i)
            ibag += struct.pack("<HH", 3 * i, 0)
            igen += struct.pack("<HBB", 43, lo, hi) + struct.pack("<HH", 54, int(looped))
            igen += struct.pack("<HH", 53, sample)
        n = len(presets)
        phdr += struct.pack("<20sHHHIII", b"EOP", 0, 0, n, 0, 0, 0)
        pbag += struct.pack("<HH", n, 0)
        pgen += struct.pack("<HH", 0, 0)
        inst += struct.pack("<20sH", b"EOI", n)
        ibag += struct.pack("<HH", 3 * n, 0)
        igen += struct.pack("<HH", 0, 0)
        pdta += b"".join(
            _chunk(c, d)
            for c, d in (
                (b"phdr", phdr),
                (b"pbag", pbag),
                (b"pgen", pgen),
                (b"inst", inst),
                (b"ibag", ibag),
                (b"igen", igen),
            )
        )
    body += _chunk(b"LIST", b"pdta" + pdta)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_chunk(b"RIFF", body))


def _snd(cls: str, seed: int) -> np.ndarray:
    return synth.synthesize(cls, seed, 44100).audio.mean(1)


def test_soundfont_samples_are_labelled_by_name_or_general_midi_key(tmp_path):
    _write_sf2(tmp_path / "sf" / "kit.sf2", [
        ("36-Ludwig26Kick-1", _snd("kick", 1), 1),
        ("41-Ludwig16FloorTo", _snd("tom", 2), 1),   # cut short: the GM key says tom
        ("808 Clap", _snd("clap", 3), 1),
        ("Std Kick (L)", _snd("kick", 4), 4),
        ("Std Kick (R)", _snd("kick", 4), 2),        # right half of a pair: skipped
        ("Violin C4", _snd("tonal", 5), 1),          # not a drum
    ])  # fmt: skip
    counts = recipe.label_soundfonts(tmp_path / "sf", tmp_path / "out")
    assert dict(counts) == {"kick": 2, "tom": 1, "clap": 1}
    got, rate = sf.read(tmp_path / "out" / "clap" / "kit__808_Clap.wav")
    assert rate == 44100 and np.abs(got - _snd("clap", 3)).max() < 1e-3
    assert recipe.label_soundfonts(tmp_path / "sf", tmp_path / "out") == counts  # rerun: same
    assert len(list((tmp_path / "out" / "kick").iterdir())) == 2
    (tmp_path / "bad.sf2").write_bytes(b"RIFF\0\0\0\0WAVE")
    with pytest.raises(ValueError, match="not a SoundFont"):
        list(recipe.soundfont_samples(tmp_path / "bad.sf2"))


def _pitch(x: np.ndarray, rate: int) -> float:
    """The fundamental of a steady tone, from its rising zero crossings."""
    up = np.flatnonzero((x[:-1] <= 0) & (x[1:] > 0))
    return rate * (len(up) - 1) / (up[-1] - up[0])


def test_soundfont_presets_render_notes_at_their_pitch_and_length(tmp_path):
    t = np.arange(4410) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 261.63 * t)  # C4 (key 60), 100 cycles: a clean loop
    _write_sf2(tmp_path / "gm.sf2", [("Tone", tone, 1), ("Seashore", _snd("fx", 1), 1)],
               presets=[("Bass", 0, 33, 0, (24, 72), True), ("Sea", 0, 122, 1, (0, 127), False),
                        ("Kit", 128, 0, 1, (0, 127), False)])  # fmt: skip
    font = SoundFont(tmp_path / "gm.sf2")
    presets = {(p.bank, p.program): p for p in font.presets()}
    assert set(presets) == {(0, 33), (0, 122), (128, 0)}
    bass = presets[(0, 33)]
    assert font.key_range(bass) == (24, 72)
    note = font.render(bass, 72, 127, hold=0.5, sample_rate=22050)  # an octave up, looped
    assert len(note) == pytest.approx(0.5 * 22050, abs=50)  # held 0.5 s, the release is short
    assert _pitch(note[:8000], 22050) == pytest.approx(523.25, rel=0.01)
    assert len(font.render(bass, 80, 127, 0.5, 22050)) == 0  # out of the zone's key range
    quiet = font.render(bass, 72, 40, 0.5, 22050)
    assert 0 < np.abs(quiet).max() < np.abs(note).max() / 5  # velocity sets the level

    counts = recipe.render_soundfonts(tmp_path, tmp_path / "out", seed=0)
    assert set(counts) == {"tonal", "fx"}  # the kit (bank 128) is out
    assert counts["tonal"] == recipe.NOTES_PER_PRESET["tonal"]
    # a note held shorter than the effect's leading silence is silent, and left out
    assert 0 < counts["fx"] == len(list((tmp_path / "out" / "fx").iterdir())) <= 12
    names = sorted(p.name for p in (tmp_path / "out" / "tonal").iterdir())
    assert all("__bass__k" in n for n in names) and len(names) == counts["tonal"]
    again = recipe.render_soundfonts(tmp_path, tmp_path / "out", seed=0)
    assert again == counts and sorted(p.name for p in (tmp_path / "out" / "tonal").iterdir()) \
        == names  # fmt: skip
    assert recipe.gm_family(0) == ("tonal", "keys") and recipe.gm_family(47) is None
    assert recipe.gm_family(127) == ("fx", "fx") and recipe.gm_family(115)[0] == "percussion"


def test_synth_notes_are_notes_of_every_voice(tmp_path):
    assert recipe.write_synth_notes(tmp_path, 6, seed=0) == {"tonal": 6}
    kinds = {recipe._synth_voice(np.random.default_rng([0, 11, i]), 22050)[1] for i in range(40)}
    assert kinds == {"acid", "bass", "sub", "pluck", "lead", "stab", "drone"}
    x, _ = recipe._synth_voice(np.random.default_rng(5), 22050)
    assert np.isfinite(x).all() and np.abs(x).max() == pytest.approx(1.0)


def test_signals_are_plain_waveforms_and_noise(tmp_path):
    counts = recipe.write_signals(tmp_path, 40, seed=0)
    assert dict(counts) == {"tonal": 40, "fx": 10}
    lengths = [sf.info(p).frames for p in (tmp_path / "tonal").iterdir()]
    assert min(lengths) < 0.05 * recipe.RENDER_RATE < 1.0 * recipe.RENDER_RATE < max(lengths)


def test_label_kits_links_named_instruments_into_class_folders(tmp_path):
    kits = _fake_kits(tmp_path / "pkg")
    counts = recipe.label_kits(kits, tmp_path / "out")
    assert dict(counts) == {"kick": 2, "snare": 2}  # the roll, "27" and a missing file are out
    kicks = sorted(p.name for p in (tmp_path / "out" / "kick").iterdir())
    assert kicks == ["TestKit__kick_a.wav", "TestKit__kick_b.wav"]
    assert all(p.resolve().is_file() for p in (tmp_path / "out" / "snare").iterdir())
    assert recipe.label_kits(kits, tmp_path / "out") == counts  # a rerun is harmless


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def _fake_freepats(folder: Path) -> None:
    """A piano (GM program 0: tonal) and a kick (GM key 36) in freepats' layout."""
    from tests.sampletool.test_gus import _two_samples

    (folder / "Tone_000").mkdir(parents=True)
    (folder / "Drum_000").mkdir(parents=True)
    _two_samples(folder / "Tone_000" / "000_Acoustic_Grand_Piano.pat")
    _two_samples(folder / "Drum_000" / "036_Kick_2.pat")
    (folder / "Drum_000" / "035_Broken_Kick.pat").write_bytes(b"not a patch")


def test_freepats_patches_render_notes_and_drum_hits(tmp_path, capsys):
    _fake_freepats(tmp_path / "freepats")
    counts = recipe.render_freepats(tmp_path, tmp_path / "out", seed=0)
    assert counts == {"tonal": recipe.NOTES_PER_PRESET["tonal"],
                      "kick": recipe.DRUM_HITS_PER_PATCH}  # fmt: skip
    tonal = sorted((tmp_path / "out" / "tonal").iterdir())
    kicks = sorted((tmp_path / "out" / "kick").iterdir())
    assert len(tonal) == 6 and all("freepats__000_Acoustic_Grand_Piano__keys__k" in p.name
                                   for p in tonal)  # fmt: skip
    # the drum plays at its sample's root key (262.5 Hz: key 60), not at its GM key (36)
    assert len(kicks) == recipe.DRUM_HITS_PER_PATCH and all("__k60v" in p.name for p in kicks)
    for p in tonal + kicks:
        audio, rate = sf.read(p)
        assert rate == recipe.RENDER_RATE and 0.2 < np.abs(audio).max() <= 1.0
    assert "skipped 035_Broken_Kick.pat: " in capsys.readouterr().out  # the batch went on
    assert recipe.render_freepats(tmp_path, tmp_path / "out", seed=0) == counts  # kept


def test_recipe_end_to_end_writes_a_described_bundle(tmp_path):
    args = []
    for package in recipe.HYDROGEN_PACKAGES + recipe.SOUNDFONT_PACKAGES + (recipe.GUS_PACKAGE,):
        pkg = tmp_path / package
        if package == "hydrogen-drumkits":
            _fake_kits(pkg)
        elif package == recipe.GUS_PACKAGE:
            _fake_freepats(pkg / "usr/share/midi/freepats")
        elif package == "avldrums.lv2-soundfont":
            claps = [("39-HandClap-1", _snd("clap", 7), 1), ("39-HandClap-2", _snd("clap", 8), 1)]
            _write_sf2(pkg / "usr/share/sounds/sf2/kit.sf2", claps)
        (pkg / "DEBIAN").mkdir(parents=True)
        (pkg / "DEBIAN" / "control").write_text(
            f"Package: {package}\nVersion: 1.0\nArchitecture: all\n"
            "Maintainer: test <t@example.com>\nDescription: fake\n"
        )
        deb = tmp_path / f"{package}_1.0_all.deb"
        subprocess.run(["dpkg-deb", "--build", str(pkg), str(deb)], check=True, capture_output=True)
        args += ["--deb", str(deb)]
    out = tmp_path / "bundle"
    argv = ["--work", str(tmp_path / "work"), "--out", str(out), *args, "--per-class", "3",
            "--synth-notes", "4", "--steps", "2", "--finetune-steps", "2"]  # fmt: skip
    assert recipe.main(argv) == 0
    doc = json.loads((out / CONFIG_FILE).read_text())
    meta = doc["metadata"]
    assert meta["name"] == "default"
    real = meta["data"]["real_drums"]
    assert real["hydrogen-drumkits"] == {"kick": 2, "snare": 2}
    assert real["avldrums.lv2-soundfont"] == {"clap": 2}
    assert real["hydrogen-data"] == {} and real["fluid-soundfont-gm"] == {}
    assert real["timgm6mb-soundfont"] == {}
    # freepats is held out of training, to judge the neighbours and the calibration on
    assert meta["data"]["held_out"] == {recipe.GUS_PACKAGE: {"kick": 4, "tonal": 6}}
    assert recipe.GUS_PACKAGE not in meta["data"]["soundfont_notes"]
    manifest = (tmp_path / "work" / "dataset" / "manifest.csv").read_text()
    assert "freepats" not in manifest and "kick" in manifest
    assert meta["neighbours"]["judged_on"].startswith(f"every clip of {recipe.HELD_OUT}, ")
    assert meta["calibration"]["fitted_on"].startswith(f"every clip of {recipe.HELD_OUT} (10 ")
    assert meta["data"]["synthesised_per_class"] == 3
    assert "val_loss" in meta["metrics"]
    assert meta["trained_steps"] == {"stage_1_steps": 2, "stage_2_steps": 2}
    # the trainer fitted the confidence's temperature on the validation split
    assert meta["calibration"]["temperature"] > 0 and "ece_after" in meta["calibration"]
    assert "through the training augmentation" in meta["calibration"]["fitted_on"]
    assert set(meta["data"]["signals"]) == {"tonal", "fx", "synth notes"}
    assert meta["data"]["signals"]["synth notes"] == {"tonal": 4}
    # and a bundle can be calibrated again afterwards, on its run's own dataset
    from sampletool.training.calibrate import calibrate_bundle

    again = calibrate_bundle(tmp_path / "work" / "finetune")
    assert again["fitted_on"].startswith("the validation split")
    stored = json.loads((tmp_path / "work" / "finetune" / CONFIG_FILE).read_text())
    assert stored["metadata"]["calibration"] == again
    # Stage 2 started from stage 1 and drew the synthesised files at their weight.
    stage2 = json.loads((tmp_path / "work" / "finetune" / "train_config.json").read_text())
    assert stage2["init_from"] == str((tmp_path / "work" / "run").resolve())
    assert stage2["source_weights"] == {
        str((tmp_path / "work" / "data" / d).resolve()): recipe.SYNTH_WEIGHT
        for d in ("synth", "signals")
    }
    assert "weight" in meta["data"]["fine_tune"]
    assert doc["model"]["neighbour_weight"] == recipe.NEIGHBOUR_WEIGHT
    assert doc["model"]["classifier_input"] == "latent" and doc["model"]["prior"] == "class"
    assert set(doc["class_names"]) == set(synth.CLASSES)

    from sampletool.tool import SoundSampleTool

    tool = SoundSampleTool(out)
    probs, name = tool.predict(synth.synthesize("kick", 5, 16000).audio.mean(1))
    assert name in synth.CLASSES and probs.sum() == pytest.approx(1.0, abs=1e-4)
    # A work folder whose dataset trains on freepats (an older recipe's --freepats) cannot be
    # calibrated on it: refused, in one line.
    manifest_path = tmp_path / "work" / "dataset" / "manifest.csv"
    manifest_path.write_text(
        manifest + "/x/notes/tonal/freepats__000_Piano__keys__k60.wav,tonal,train\n"
    )
    assert recipe.main(argv) == 2


# -- the shipped default model ----------------------------------------------------------------


def test_default_model_ships_with_its_description_and_measured_metrics():
    model = resolve_model(None)
    size = sum(f.stat().st_size for f in model.iterdir())
    assert size < 10e6
    doc = json.loads((model / CONFIG_FILE).read_text())
    names = set(doc["class_names"])
    assert {"kick", "snare", "hihat", "tom", "cymbal", "clap", "percussion", "tonal", "fx"} <= names
    meta = doc["metadata"]
    assert meta["data"]["real_drums"]["hydrogen-drumkits"] and meta["data"]["synthesised_per_class"]
    assert meta["metrics"]["val_accuracy"] > 0.8
    # The real-drum evaluation is recorded (benchmarks/eval_default_model.py --write-metadata),
    # and the model beats the classic MFCC baseline on both counts.
    ev = meta["evaluation"]
    c, sim = ev["classification"], ev["similarity"]
    assert c["balanced_accuracy"] > c["baseline_mfcc_logreg"]["balanced_accuracy"]
    assert sim["precision_at_10"] > sim["baseline_mfcc_precision_at_10"]
    # Its training sounds vote on a sound's class beside the head, as chosen on recordings it
    # never trained on (freepats), and its confidence is calibrated on them (on the real clips
    # the calibration error is under the baseline's); waveforms and test signals are rarely
    # drums (22 of 38 were, before).
    assert doc["neighbours"]["count"] > 5000 and 0 < doc["neighbours"]["head_share"] < 1
    assert meta["neighbours"]["k"] == doc["neighbours"]["k"]
    assert meta["neighbours"]["judged_on"].startswith("every clip of held-out-freepats")
    assert meta["head_calibration"]["temperature"] > 1
    assert meta["calibration"]["fitted_on"].startswith("every clip of held-out-freepats (608")
    assert sum(meta["data"]["held_out"]["freepats"].values()) == 608
    assert "freepats" not in meta["data"]["soundfont_notes"]
    cal = ev["calibration"]
    assert cal["ece_after"] < cal["baseline_mfcc_logreg_ece"]
    melodic = ev["melodic"]
    assert melodic["model"]["drum"] < melodic["baseline_mfcc_logreg"]["drum"] / 2
    signals = ev["no_instrument"]
    assert signals["model"]["drum"] < min(0.1, signals["baseline_mfcc_logreg"]["drum"])
    assert meta["data"]["soundfont_notes"]["fluid-soundfont-gm"]["tonal"] > 500


def test_default_model_classifies_fresh_synthesised_sounds():
    """Seeds the recipe never used (it used 0..per_class-1): the model must still know them."""
    tool = load_runtime()
    classes = tool.class_names
    clips, truth = [], []
    for cls in synth.CLASSES:
        for seed in range(50_000, 50_006):
            mono = synth.synthesize(cls, seed, tool.audio.sample_rate).audio.mean(1)
            clip = np.zeros(tool.audio.num_samples, np.float32)
            clip[: min(len(mono), len(clip))] = mono[: len(clip)]
            clips.append(clip)
            truth.append(cls)
    pred = [classes[i] for i in tool.encode_clips(np.stack(clips)).probs.argmax(1)]
    accuracy = np.mean([p == t for p, t in zip(pred, truth, strict=True)])
    assert accuracy >= 0.8, list(zip(truth, pred, strict=True))


def test_default_model_rebuilds_fresh_sounds_from_their_latent_not_their_search_vector():
    """Generation decodes `latent` (after the flows, where the decoder was trained); decoding
    the search vector (before the flows) is far worse. Features are compared, so no vocoder."""
    import torch

    tool = load_runtime(device="cpu")
    clips = []
    for cls in ("kick", "snare", "hihat", "tom", "clap", "tonal"):
        mono = synth.synthesize(cls, 70_000, tool.audio.sample_rate).audio.mean(1)
        clip = np.zeros(tool.audio.num_samples, np.float32)
        clip[: min(len(mono), len(clip))] = mono[: len(clip)]
        clips.append(clip)
    x = tool.features(np.stack(clips))
    with torch.no_grad():
        post = tool.module.encode(x)
        latent = tool.module.decoder_latent(post)
        err_latent = (tool.module.decode(latent) - x).square().sum((1, 2))
        err_search = (tool.module.decode(post.mean) - x).square().sum((1, 2))
    assert (err_latent < err_search).all(), (err_latent, err_search)
    assert np.allclose(np.stack([tool.read(c).latents[0] for c in clips]), latent.numpy(),
                       atol=1e-4)  # fmt: skip


def test_cli_and_api_use_the_default_model_when_none_is_named(tmp_path, capsys):
    from sampletool import cli
    from sampletool.tool import SoundSampleTool

    path = tmp_path / "k.wav"
    synth.write_sound(path, synth.synthesize("kick", 60_001, 44100))
    assert cli.main(["classify", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["class"] in synth.CLASSES
    assert SoundSampleTool().runtime.path == resolve_model(None)
