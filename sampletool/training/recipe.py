"""The recipe that builds the built-in default model (sampletool/resources/models/default).

    python -m sampletool.training.recipe --work /tmp/default-model \
        [--out sampletool/resources/models/default]

What the model sees, all of it made or fetched here, nothing committed but the result:
1. Synthesised one-shots (`sampletool.data.synth`): `--per-class` of each of the nine classes.
2. Real drum recordings from Debian packages, fetched with `apt-get download` (or `--deb`) and
   unpacked into the work folder: the Hydrogen kits of `hydrogen-drumkits` and `hydrogen-data`
   (16 acoustic and electronic kits, multi-velocity), labelled from each instrument's name in
   drumkit.xml; and the drum samples of four SoundFont packages, `avldrums.lv2-soundfont` (two
   acoustic kits), `fluid-soundfont-gm` (FluidR3's GM kits, 808 included),
   `musescore-general-soundfont-lossless` and `timgm6mb-soundfont` (MuseScore's GM kits),
   labelled from each sample's name (or its General MIDI key). Names are labelled by
   `sampletool.data.labels.drum_class`.
3. Notes rendered from the melodic and sound-effect presets of three of those SoundFonts
   (labelled by General MIDI program).
4. Plain waveforms, noise and subtractive-synthesiser notes (`write_signals`,
   `write_synth_notes`).
It then makes a dataset (90/10 stratified split; the 10 % is the only thing model selection
looks at) and trains in two stages:
1. the VAE from scratch on all of it, with on-the-fly additive noise and feature augmentation
   (`--steps`);
2. a fine-tune of stage 1's best checkpoint (`--finetune-steps`, half the learning rate) that
   draws the synthesised files at `SYNTH_WEIGHT`, so real recordings make up about half of each
   batch, retunes clips by up to 3 semitones and stretches their decay, trains the latent means
   (the search vectors) to have same-class neighbours, and validates and saves an exponential
   moving average of the weights: stage 1 learns the space of sounds from
   the varied synthetic material, stage 2 moves it towards what real recordings sound like.
It then gives the model its training sounds as neighbours that vote on a sound's class
(`sampletool.training.neighbours`) and calibrates it, both judged on recordings it never
trained on: notes and drum hits of the `freepats` patches (another sampler's recordings,
rendered by `sampletool.training.gus`). The validation split cannot stand in for a user's
sounds: its clips come from the kits and instruments the model trained on, it reads them
truer than anything else, and a confidence fitted there is surer than it should be.
The bundle is copied to `--out` with a description of the data and its validation metrics in
the metadata.
`benchmarks/eval_default_model.py --write-metadata` adds the real-drum evaluation.

The recipe is resumable: every stage keeps what it finished in the work folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np

from sampletool.data.labels import drum_class
from sampletool.training.soundfont import SoundFont, soundfont_samples

# Debian packages of real drum recordings (none overlaps the evaluation's lmms / Sonic Pi sets).
HYDROGEN_PACKAGES = ("hydrogen-drumkits", "hydrogen-data")  # Hydrogen kits (drumkit.xml)
SOUNDFONT_PACKAGES = (  # SF2 files whose drum samples are used
    "avldrums.lv2-soundfont",
    "fluid-soundfont-gm",
    "musescore-general-soundfont-lossless",
    "timgm6mb-soundfont",
)
# SF2 files whose melodic and sound-effect presets are rendered as notes (avldrums holds kits).
MELODIC_SOUNDFONT_PACKAGES = SOUNDFONT_PACKAGES[1:]
# Gravis UltraSound patches (another sampler, other recordings): notes of its 72 instruments and
# hits of its 56 drums and percussion, held out of training to judge the neighbours and the
# calibration on.
GUS_PACKAGE = "freepats"
HELD_OUT = "held-out-freepats"  # the work folder's dataset of them (audio under held_out/)
DRUM_HITS_PER_PATCH = 4
SIGNALS = 300  # plain waveforms ("tonal"); a quarter as many noises ("fx")
SYNTH_NOTES = 900  # subtractive synthesiser notes ("tonal": basses, plucks, leads, stabs...)
DATA_FOLDERS = ("synth", "real", "notes", "signals")
CALIBRATION_FOLDERS = ("real", "notes")  # recordings, not synthesised: what calibration sees
DEFAULT_STEPS = 4000
DEFAULT_FINETUNE_STEPS = 1500
DEFAULT_PER_CLASS = 300  # what the shipped model was trained with
SYNTH_WEIGHT = 0.35  # stage 2's draw weight of a synthesised file (a real one weighs 1)
AUGMENT = {
    "mode": "additive",
    "noise": "gaussian",
    "snr_db": [15.0, 45.0],
    "gain_db": [0.0, 0.0],
    "max_shift": 0.02,
    "mel_shift": 4,
    "tilt_db": 12.0,
    "truncate": 0.3,
}
# Stage 2 retunes the audio as a sampler does instead of rolling the mel axis (at the low end,
# where a mel band is about 14 Hz wide, a 4-band roll moves a 50 Hz kick up an octave, into
# the toms), and stretches time. It leaves four clips in five clean of the added noise: the files
# a producer classifies are clean, and a model that only heard a noise floor took the silence
# above a clean bass's harmonics for a hi-hat's (64 % of the real melodic files read as tonal
# clean, 76 % with noise added at 30 dB, before this; 69 % with half the clips clean, 72 % with
# four in five).
# (Putting a quarter of the clips through drive, a quarter through reverb and a sixth through
# chorus as well, whatever their class, did not help: drums 0.84, melodic files heard as a drum
# 26 %, waveforms 11 %; `AugmentConfig.drive_p` and the others stay for users' own training.)
STAGE_2_AUGMENT = {"mel_shift": 0, "pitch": 3.0, "stretch": 0.25, "noise_p": 0.2}
# Stage 2 adds a soft-nearest-neighbour loss on the latent means, the vectors similarity search
# uses: the class prior alone leaves classes overlapping among 64 dimensions of timbre.
NEIGHBOUR_WEIGHT = 60.0
EMA_DECAY = 0.998  # stage 2 validates and saves this moving average of the weights

# General MIDI percussion keys, for SF2 samples whose names are cut short ("41-Ludwig16FloorTo").
GM_DRUMS = {35: "kick", 36: "kick", 37: "percussion", 38: "snare", 39: "clap", 40: "snare",
            41: "tom", 42: "hihat", 43: "tom", 44: "hihat", 45: "tom", 46: "hihat", 47: "tom",
            48: "tom", 49: "cymbal", 50: "tom", 51: "cymbal", 52: "cymbal", 53: "cymbal",
            54: "percussion", 55: "cymbal", 56: "percussion", 57: "cymbal",
            59: "cymbal"}  # fmt: skip


def fetch_package(work: Path, package: str, debs: dict[str, Path] | None = None) -> Path:
    """Download (unless a .deb for it is in `debs`) and unpack a Debian package; returns the
    folder it was unpacked into (kept, so a rerun does nothing)."""
    unpacked = work / "packages" / package
    if unpacked.is_dir():
        return unpacked
    deb = (debs or {}).get(package)
    if deb is None:
        folder = work / "debs"
        folder.mkdir(parents=True, exist_ok=True)
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            print(f"downloading {package} with apt-get download", flush=True)
            subprocess.run(["apt-get", "download", package], cwd=folder, check=True)
            found = sorted(folder.glob(f"{package}_*.deb"))
        deb = found[-1]
    tmp = unpacked.with_name(package + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
    tmp.rename(unpacked)
    return unpacked


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def label_kits(kits: Path, out: Path) -> Counter:
    """Link every labelled instrument sample of every Hydrogen kit under `kits` (folders with
    a drumkit.xml) into out/<class>/. Returns counts per class."""
    counts: Counter = Counter()
    for xml in sorted(kits.rglob("drumkit.xml")):
        kit = xml.parent
        for inst in ET.parse(xml).getroot().iter():
            if _local(inst.tag) != "instrument":
                continue
            name = next((c.text or "" for c in inst if _local(c.tag) == "name"), "")
            cls = drum_class(name)
            if cls is None:
                continue
            for el in inst.iter():
                if _local(el.tag) != "filename" or not el.text or not (kit / el.text).is_file():
                    continue
                safe = f"{kit.name}__{el.text}".replace("/", "_").replace(" ", "_")
                dst = out / cls / safe
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not dst.exists():
                    dst.symlink_to((kit / el.text).resolve())
                counts[cls] += 1
    return counts


def label_soundfonts(folder: Path, out: Path) -> Counter:
    """Write each drum sample of every .sf2 under `folder` to out/<class>/ as WAV, labelled by
    its name (or, when the name is cut short, its General MIDI key prefix "36-...")."""
    import re

    import soundfile as sf

    counts: Counter = Counter()
    for sf2 in sorted(folder.rglob("*.sf2")):
        if sf2.is_symlink():
            continue
        for name, rate, pcm in soundfont_samples(sf2):
            cls = drum_class(name)
            key = re.match(r"(\d+)-", name)
            if cls is None and key:
                cls = GM_DRUMS.get(int(key.group(1)))
            if cls is None or len(pcm) < rate // 50:
                continue
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{sf2.stem}__{name}")
            dst = out / cls / f"{safe}.wav"
            n = 1
            while dst.exists() and dst.stat().st_size != 44 + 2 * len(pcm):
                n += 1
                dst = out / cls / f"{safe}_{n}.wav"
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                sf.write(dst, pcm, rate, subtype="PCM_16")
            counts[cls] += 1
    return counts


# General MIDI programs (bank 0 and the variation banks) -> (class, family). The family is the
# folder a producer would keep the sound in; it is written into each file name, for measuring
# whether the model could tell families apart. Programs whose sound is ambiguous between a drum
# and a note (timpani, steel drums, taiko, melodic tom, synth drum) are left out.
GM_FAMILIES = [
    (range(0, 8), "tonal", "keys"), (range(8, 16), "tonal", "keys"),  # pianos, mallets
    (range(16, 24), "tonal", "keys"), (range(24, 32), "tonal", "plucked"),  # organs, guitars
    (range(32, 40), "tonal", "bass"), (range(40, 47), "tonal", "strings-pads"),
    (range(48, 52), "tonal", "strings-pads"), (range(52, 55), "tonal", "vocal"),
    (range(55, 56), "tonal", "strings-pads"), (range(56, 80), "tonal", "brass-wind"),
    (range(80, 88), "tonal", "lead"), (range(88, 104), "tonal", "strings-pads"),
    (range(104, 109), "tonal", "plucked"), (range(109, 112), "tonal", "brass-wind"),
    (range(112, 113), "tonal", "keys"), (range(113, 114), "percussion", "percussion"),
    (range(115, 116), "percussion", "percussion"), (range(119, 128), "fx", "fx"),
]  # fmt: skip
# Notes rendered per preset: fx and percussion have few programs, so each gets more notes.
NOTES_PER_PRESET = {"tonal": 6, "percussion": 8, "fx": 12}
NOTES_PER_VARIATION = 2  # per preset of a variation bank (GM2 / GS sounds)
RENDER_RATE = 22050


def gm_family(program: int) -> tuple[str, str] | None:
    """(class, family) of a General MIDI program, or None for one left out."""
    for programs, cls, family in GM_FAMILIES:
        if program in programs:
            return cls, family
    return None


def render_soundfonts(folder: Path, out: Path, seed: int) -> Counter:
    """Render notes of every melodic and sound-effect preset of every .sf2 under `folder`
    into out/<class>/ as WAV: keys across the preset's range (basses low), velocities 40-127,
    held 0.08-1.8 s then released, each at a random peak level. Returns counts per class."""
    import re
    import zlib

    import soundfile as sf

    counts: Counter = Counter()
    for sf2 in sorted(folder.rglob("*.sf2")):
        if sf2.is_symlink():
            continue
        font = SoundFont(sf2)
        for preset in font.presets():
            found = gm_family(preset.program) if preset.bank != 128 else None
            if found is None:
                continue
            cls, family = found
            n = NOTES_PER_PRESET[cls] if preset.bank == 0 else NOTES_PER_VARIATION
            lo, hi = font.key_range(preset)
            lo, hi = max(lo, 24), min(hi, 60 if family == "bass" else 96)
            if lo > hi:
                continue
            tag = re.sub(r"[^A-Za-z0-9]+", "_", f"{sf2.stem}__b{preset.bank}p{preset.program}_"
                         f"{preset.name}").strip("_")  # fmt: skip
            rng = np.random.default_rng([seed, zlib.crc32(tag.encode())])
            for _ in range(n):
                key, vel = int(rng.integers(lo, hi + 1)), int(rng.integers(40, 128))
                # one-shots in libraries are mostly short: half the notes held under 0.4 s
                hold = float(
                    rng.uniform(0.05, 0.4) if rng.random() < 0.5 else rng.uniform(0.4, 1.8)
                )
                level = 10 ** (-rng.uniform(0, 12) / 20)
                dst = out / cls / f"{tag}__{family}__k{key}v{vel}h{round(hold * 100)}.wav"
                counts[cls] += 1
                if dst.exists():
                    continue
                audio = font.render(preset, key, vel, hold, RENDER_RATE, release_cap=1.5)
                peak = float(np.abs(audio).max()) if len(audio) else 0.0
                if peak < 1e-4:
                    counts[cls] -= 1
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                sf.write(dst, audio * (level / peak), RENDER_RATE, subtype="PCM_16")
    return counts


def render_freepats(folder: Path, out: Path, seed: int) -> Counter:
    """Render notes of every instrument patch (`Tone_*/NNN_Name.pat`, NNN its General MIDI
    program) and hits of every drum patch (`Drum_*/NNN_Name.pat`, NNN its GM key) under
    `folder` into out/<class>/ as WAV, as `render_soundfonts` does for SoundFonts. A drum is
    played at its sample's own root key (its recorded pitch: freepats roots some drums at
    middle C, so their GM key would play them two octaves down), at several velocities."""
    import re
    import zlib

    import soundfile as sf

    from sampletool.training.gus import GusPatch

    counts: Counter = Counter()
    for pat in sorted(folder.rglob("*.pat")):
        found = re.match(r"(\d+)_", pat.name)
        drum = pat.parent.name.lower().startswith("drum")
        if found is None or pat.is_symlink():
            continue
        number = int(found.group(1))
        family = None
        if drum:
            cls = GM_DRUMS.get(number) or drum_class(pat.stem)
        else:
            cls, family = gm_family(number) or (None, None)
        if cls is None:
            continue
        try:
            patch = GusPatch(pat)
        except ValueError as e:
            print(f"skipped {pat.name}: {e}", flush=True)
            continue
        tag = "freepats__" + re.sub(r"[^A-Za-z0-9]+", "_", pat.stem).strip("_")
        rng = np.random.default_rng([seed, zlib.crc32(tag.encode())])
        lo, hi = patch.key_range()
        if not drum:
            lo, hi = max(lo, 24), min(hi, 60 if family == "bass" else 96)
        if lo > hi:
            continue
        n = DRUM_HITS_PER_PATCH if drum else NOTES_PER_PRESET[cls]
        for _ in range(n):
            if drum:
                sample = patch.samples[0] if patch.samples else None
                key = int(np.clip(round(sample.root_key), 0, 127)) if sample else 60
                hold = float(rng.uniform(0.3, 1.5))
            else:
                key = int(rng.integers(lo, hi + 1))
                hold = float(
                    rng.uniform(0.05, 0.4) if rng.random() < 0.5 else rng.uniform(0.4, 1.8)
                )
            vel = int(rng.integers(40, 128))
            level = 10 ** (-rng.uniform(0, 12) / 20)
            name = f"{tag}__{family or cls}__k{key}v{vel}h{round(hold * 100)}.wav"
            dst = out / cls / name
            counts[cls] += 1
            if dst.exists():
                continue
            audio = patch.render(key, vel, hold, RENDER_RATE, release_cap=1.5)
            peak = float(np.abs(audio).max()) if len(audio) else 0.0
            if peak < 1e-4 or len(audio) < RENDER_RATE // 50:
                counts[cls] -= 1
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            sf.write(dst, audio * (level / peak), RENDER_RATE, subtype="PCM_16")
    return +counts


def write_signals(out: Path, per_class: int, seed: int) -> Counter:
    """Things that are no instrument, which a producer still keeps (and which must not read as
    drums): plain and single-cycle waveforms, gated tones and LFO shapes as "tonal"; steady
    white, pink and brown noise as "fx". Written to out/<class>/ as WAV at 22.05 kHz."""
    import soundfile as sf

    from sampletool.data.synth import _noise

    sr = RENDER_RATE
    counts: Counter = Counter()
    rng = np.random.default_rng([seed, 7])
    for i in range(per_class):
        dst = out / "tonal" / f"signal_{i:04d}.wav"
        shape = rng.choice(["sine", "saw", "square", "triangle", "pulse", "harmonics", "lfo"])
        if shape == "lfo":  # a control shape: a few cycles a second, mostly DC
            f0, seconds = rng.uniform(1, 40), rng.uniform(0.1, 0.5)
        else:
            f0 = 27.5 * 2 ** rng.uniform(0, 6.5)
            # single cycles (a few ms) up to held tones
            seconds = rng.choice([rng.uniform(1, 12) / f0, rng.uniform(0.05, 2.0)])
        t = np.arange(max(int(seconds * sr), 8)) / sr
        ph = (f0 * t + rng.uniform()) % 1.0
        if shape in ("sine", "lfo") and rng.uniform() < 0.5:
            x = np.sin(2 * np.pi * ph)
        elif shape in ("saw", "lfo"):
            x = 2 * ph - 1
        elif shape == "square":
            x = np.where(ph < 0.5, 1.0, -1.0)
        elif shape == "triangle":
            x = 1 - 4 * np.abs(ph - 0.5)
        elif shape == "pulse":
            x = np.where(ph < rng.uniform(0.05, 0.4), 1.0, -1.0)
        else:
            amps = rng.uniform(0, 1, 12) / np.arange(1, 13) ** rng.uniform(0.5, 2)
            x = (amps[:, None] * np.sin(2 * np.pi * np.arange(1, 13)[:, None] * ph)).sum(0)
        if shape == "lfo" and rng.uniform() < 0.5:
            x = (x + 1) / 2  # unipolar, as a gate
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, (x / max(np.abs(x).max(), 1e-9) * 0.8).astype(np.float32), sr,
                 subtype="PCM_16")  # fmt: skip
        counts["tonal"] += 1
    for i in range(per_class // 4):
        dst = out / "fx" / f"noise_{i:04d}.wav"
        n = int(rng.uniform(0.3, 2.0) * sr)
        x = _noise(rng, n, colour=float(rng.choice([0.0, 1.0, 2.0])))
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, (x * 0.5).astype(np.float32), sr, subtype="PCM_16")
        counts["fx"] += 1
    return counts


def _synth_voice(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    """One note of a subtractive synthesiser, made additively: saw or square harmonics under a
    resonant low-pass whose cutoff follows its own envelope, an amplitude envelope, optional
    drive, vibrato and detuned voices. The acid, rave and sub basses, plucks, leads, stabs and
    drones a producer's library is full of, which General MIDI's two synth basses do not
    cover."""
    kind = str(rng.choice(["acid", "bass", "sub", "pluck", "lead", "stab", "drone"]))
    low, high = {"acid": (28, 55), "bass": (24, 52), "sub": (24, 45), "pluck": (45, 80),
                 "lead": (50, 86), "stab": (45, 75), "drone": (30, 70)}[kind]  # fmt: skip
    hold = {"acid": (0.08, 0.6), "bass": (0.1, 1.2), "sub": (0.2, 1.5), "pluck": (0.05, 0.4),
            "lead": (0.3, 1.8), "stab": (0.1, 0.5), "drone": (1.2, 2.0)}[kind]  # fmt: skip
    held = float(rng.uniform(*hold))
    release = float(rng.uniform(0.02, 0.4 if kind != "drone" else 0.8))
    n = int((held + release) * sr)
    t = np.arange(n) / sr
    keys = [int(rng.integers(low, high + 1))]
    if kind == "stab":  # a chord
        keys += [keys[0] + int(i) for i in rng.choice([3, 4, 7, 10, 12], 2, replace=False)]
    square = rng.random() < 0.4
    voices = int(rng.integers(2, 4)) if kind in ("drone", "lead", "stab") else 1
    vibrato = rng.uniform(0, 0.004) * np.sin(2 * np.pi * rng.uniform(4, 7) * t) if kind in (
        "lead", "drone") else 0.0  # fmt: skip
    # the filter: cutoff (in Hz) from a peak down to a floor, at its own speed
    f_ref = 440 * 2 ** ((keys[0] - 69) / 12)
    floor = f_ref * rng.uniform(1.0, 4.0)
    peak = f_ref * rng.uniform(6, 40) if kind != "sub" else f_ref * rng.uniform(1.5, 3)
    tau = rng.uniform(0.03, 0.3) if kind in ("acid", "pluck", "stab", "bass") else rng.uniform(
        0.5, 3.0)  # fmt: skip
    if kind == "drone":
        cutoff = floor + (peak - floor) * (0.5 - 0.5 * np.cos(2 * np.pi * t / rng.uniform(1, 4)))
    else:
        cutoff = floor + (peak - floor) * np.exp(-t / tau)
    resonance = rng.uniform(0, 6) if kind in ("acid", "lead", "pluck") else rng.uniform(0, 1.5)
    x = np.zeros(n)
    for key in keys:
        f0 = 440 * 2 ** ((key - 69) / 12)
        n_harm = max(1, min(48, int(min(sr / 2 - 500, 12000) / f0)))
        for _ in range(voices):
            f = f0 * (1 + rng.uniform(-0.006, 0.006) * (voices > 1)) * (1 + vibrato)
            phase = 2 * np.pi * np.cumsum(f) / sr
            for h in range(1, n_harm + 1):
                if square and h % 2 == 0:
                    continue
                ratio = h * f0 / cutoff
                gain = (
                    1 / np.sqrt(1 + ratio**8) * (1 + resonance * np.exp(-((ratio - 1) ** 2) * 20))
                )
                if kind == "sub" and h > 3:
                    break
                x += gain * np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h
    attack = rng.uniform(0.001, 0.01) if kind != "drone" else rng.uniform(0.2, 0.8)
    decay_to = rng.uniform(0.3, 1.0) if kind not in ("pluck", "acid") else rng.uniform(0.0, 0.6)
    env = np.minimum(t / attack, 1.0) * (decay_to + (1 - decay_to) * np.exp(-t / rng.uniform(
        0.05, 0.5)))  # fmt: skip
    env = np.where(t > held, env * np.exp(-(t - held) / max(release / 4, 1e-3)), env)
    x = x * env
    if rng.random() < 0.4:  # drive
        drive = rng.uniform(1.5, 8)
        x = np.tanh(drive * x / max(np.abs(x).max(), 1e-9)) / np.tanh(drive)
    return x / max(np.abs(x).max(), 1e-9), kind


def write_synth_notes(out: Path, count: int, seed: int) -> Counter:
    """`count` notes of `_synth_voice` into out/tonal/ as WAV at 22.05 kHz (kept if there)."""
    import soundfile as sf

    counts: Counter = Counter()
    for i in range(count):
        dst = out / "tonal" / f"synthnote_{i:04d}.wav"
        counts["tonal"] += 1
        if dst.exists():
            continue
        x, _kind = _synth_voice(np.random.default_rng([seed, 11, i]), RENDER_RATE)
        level = 10 ** (-np.random.default_rng([seed, 12, i]).uniform(0, 12) / 20)
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, (x * level).astype(np.float32), RENDER_RATE, subtype="PCM_16")
    return counts


def build_data(work: Path, per_class: int, seed: int, debs: dict[str, Path] | None = None,
               synth_notes: int = SYNTH_NOTES) -> dict:  # fmt: skip
    """Synthesise and fetch the training audio into work/data/<folder>/<class>/, and the
    held-out freepats renders into work/held_out/freepats/<class>/."""
    from sampletool.data.synth import CLASSES, write_class_folders

    data = work / "data"
    print(f"synthesising {per_class} one-shots of each of {len(CLASSES)} classes", flush=True)
    write_class_folders(data / "synth", per_class, seed=seed, formats=(".wav",))
    real = data / "real"
    sources = {}
    for package in HYDROGEN_PACKAGES:
        sources[package] = dict(
            sorted(label_kits(fetch_package(work, package, debs), real).items())
        )
    for package in SOUNDFONT_PACKAGES:
        found = label_soundfonts(fetch_package(work, package, debs), real)
        sources[package] = dict(sorted(found.items()))
    melodic = {}
    for package in MELODIC_SOUNDFONT_PACKAGES:
        print(f"rendering notes of {package}'s melodic and effect presets", flush=True)
        found = render_soundfonts(fetch_package(work, package, debs), data / "notes", seed)
        melodic[package] = dict(sorted(found.items()))
    print(f"rendering notes and hits of {GUS_PACKAGE}'s patches (held out)", flush=True)
    held_out = render_freepats(fetch_package(work, GUS_PACKAGE, debs),
                               work / "held_out" / GUS_PACKAGE, seed)  # fmt: skip
    signals = dict(sorted(write_signals(data / "signals", SIGNALS, seed).items()))
    signals |= {"synth notes": dict(write_synth_notes(data / "signals", synth_notes, seed))}
    for package, counts in (sources | {f"{k} (notes)": v for k, v in melodic.items()}).items():
        print(f"{package}: {sum(counts.values())} samples {counts}", flush=True)
    print(f"plain waveforms and noise: {signals}", flush=True)
    print(f"held out of training, {GUS_PACKAGE}: {dict(sorted(held_out.items()))}", flush=True)
    return {"synthesised_per_class": per_class, "synth_seed": seed, "real_drums": sources,
            "soundfont_notes": melodic, "signals": signals,
            "held_out": {GUS_PACKAGE: dict(sorted(held_out.items()))}}  # fmt: skip


def make_default_dataset(work: Path, seed: int = 0) -> Path:
    """The dataset folder (90/10 split) over what `build_data` wrote; kept if already there."""
    from sampletool.data.dataset import make_dataset

    dataset = work / "dataset"
    if not (dataset / "manifest.csv").is_file():
        folders = [work / "data" / d for d in DATA_FOLDERS]  # those that got any audio
        folders = [f for f in folders if f.is_dir() and any(f.iterdir())]
        make_dataset(folders, "default", out=dataset,
                     classes_from_subfolders=True, seed=seed, warn=print)  # fmt: skip
    return dataset


def make_held_out_dataset(work: Path, seed: int = 0) -> Path | None:
    """The dataset of the held-out freepats renders (all of it is judged, whatever its split);
    kept if already there. None where they gave too few files for one."""
    from sampletool.data.dataset import make_dataset
    from sampletool.errors import SampleToolError

    dataset = work / HELD_OUT
    if not (dataset / "manifest.csv").is_file():
        try:
            make_dataset([work / "held_out" / GUS_PACKAGE], HELD_OUT, out=dataset,
                         classes_from_subfolders=True, seed=seed, warn=print)  # fmt: skip
        except SampleToolError as e:
            print(f"no held-out dataset ({e}): judging on the validation recordings", flush=True)
            return None
    return dataset


def description_text(held_out: bool = True) -> str:
    """The built-in model's one-paragraph description (its metadata's "description")."""
    return (
        "Sample Tool's built-in model: a VAE with IAF posterior, a class-conditional prior and a "
        "classifier on the latent mean, trained by sampletool/training/recipe.py on "
        "synthesised one-shots, subtractive-synthesiser notes, plain waveforms and noise, real "
        "drum recordings from Debian packages (" + ", ".join(HYDROGEN_PACKAGES + SOUNDFONT_PACKAGES)
        + ") and notes rendered from the melodic and sound-effect presets of "
        + ", ".join(MELODIC_SOUNDFONT_PACKAGES)
        + ("; calibrated on notes and hits of " + GUS_PACKAGE + ", which it never trained on"
           if held_out else "; calibrated on its validation recordings")
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, type=Path, help="work folder (data, cache, run)")
    p.add_argument("--out", type=Path, default=None, help="where to copy the finished bundle")
    p.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                   help="synthesised one-shots per class")  # fmt: skip
    p.add_argument(
        "--deb",
        type=Path,
        action="append",
        default=[],
        metavar="DEB",
        help="use this .deb instead of downloading its package (repeatable)",
    )
    p.add_argument("--synth-notes", type=int, default=SYNTH_NOTES,
                   help="subtractive synthesiser notes (tonal)")  # fmt: skip
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="stage 1's training steps")
    p.add_argument("--finetune-steps", type=int, default=DEFAULT_FINETUNE_STEPS,
                   help="stage 2's fine-tuning steps (0: no stage 2)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    from sampletool.models.bundle import CONFIG_FILE, WEIGHTS_FILE
    from sampletool.training.trainer import TrainConfig, Trainer

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    debs = {d.name.split("_", 1)[0]: d.resolve() for d in args.deb}
    description = build_data(work, args.per_class, args.seed, debs, args.synth_notes)
    dataset = make_default_dataset(work, args.seed)
    if "freepats__" in (dataset / "manifest.csv").read_text(encoding="utf-8"):
        print(f"error: {dataset} trains on freepats (an older recipe's --freepats), which "
              "this recipe holds out to calibrate on; use a new work folder",
              file=sys.stderr)  # fmt: skip
        return 2
    held_out = make_held_out_dataset(work, args.seed)
    model = {"kind": "vae", "classifier_input": "latent", "prior": "class", "prior_scale": 4.0}

    def progress(step: int, m: dict) -> None:
        if "val_loss" in m:
            print(
                f"step {step}: val loss {m['val_loss']:.1f}, accuracy "
                f"{m.get('val_accuracy', 0):.3f}, {m['samples_per_s']:.0f} samples/s",
                flush=True,
            )

    def train(run: Path, config: TrainConfig, steps: int):
        resuming = (run / "train_config.json").exists()
        result = Trainer(run, None if resuming else config, max_steps=steps, device=args.device,
                         on_metrics=progress, log=print).run()  # fmt: skip
        print(f"{run.name}: training ended ({result.reason}) at step {result.step}")
        return result

    print("stage 1: training on everything", flush=True)
    run = work / "run"
    result = train(run, TrainConfig(dataset=str(dataset), model=model, augment=AUGMENT,
                                    batch_size=64, lr=1e-3, max_steps=args.steps, eval_every=250,
                                    patience=2, seed=args.seed), args.steps)  # fmt: skip
    trained = {"stage_1_steps": result.step}
    if args.finetune_steps > 0:
        print("stage 2: fine-tuning towards the real recordings", flush=True)
        stage1 = run
        run = work / "finetune"
        result = train(run, TrainConfig(
            dataset=str(dataset), model=model | {"neighbour_weight": NEIGHBOUR_WEIGHT},
            augment=AUGMENT | STAGE_2_AUGMENT,
            batch_size=64, lr=5e-4, max_steps=args.finetune_steps, eval_every=250, patience=2,
            seed=args.seed, init_from=str(stage1), ema=EMA_DECAY,
            source_weights={str(work / "data" / d): SYNTH_WEIGHT for d in ("synth", "signals")},
        ), args.finetune_steps)  # fmt: skip
        trained["stage_2_steps"] = result.step

    # Give it its training sounds as neighbours that vote on a sound's class beside the head
    # (how many, and the head's share, chosen on the held-out freepats recordings) and
    # calibrate it on the same clips, each read twice through stage 2's augmentation. Without
    # them (a tiny test recipe), on the validation clips of real recordings (kits and
    # SoundFont notes): the synthesised ones are easier than what the model meets, and would
    # make it surer than it should be.
    from sampletool.errors import SampleToolError
    from sampletool.training.neighbours import add_neighbours

    device = args.device if args.device != "auto" else "cpu"
    recordings = [str(work / "data" / d) for d in CALIBRATION_FOLDERS]
    augment = AUGMENT | STAGE_2_AUGMENT
    print("choosing its neighbours and calibrating its confidence", flush=True)
    chosen, judged_held_out = None, False
    if held_out is not None:
        try:
            chosen = add_neighbours(run, dataset, device, augment=augment, judge=held_out)
            judged_held_out = True
        except SampleToolError as e:  # say, none of its clips in the model's classes
            print(f"not judged on {held_out.name} ({e}): on the validation recordings")
    if chosen is None:
        try:
            chosen = add_neighbours(run, dataset, device, sources=recordings, augment=augment)
        except SampleToolError:  # no validation clip is a recording (a tiny test recipe)
            chosen = add_neighbours(run, dataset, device, augment=augment)
    print(f"the {chosen['k']} nearest of {chosen['count']} vote, the head's share "
          f"{chosen['head_share']:g}" if chosen["k"] else "the head alone reads best")  # fmt: skip
    doc = json.loads((run / CONFIG_FILE).read_text(encoding="utf-8"))
    meta = doc.setdefault("metadata", {})
    meta["name"] = "default"
    meta["description"] = description_text(judged_held_out)
    if not judged_held_out:
        description.pop("held_out", None)
    meta["data"] = description | {
        "dataset": meta.get("dataset"),
        "never_seen": "the lmms and Sonic Pi samples used by benchmarks/eval_default_model.py",
    }
    meta["recipe"] = (
        f"python -m sampletool.training.recipe --work WORK --per-class {args.per_class} "
        f"--synth-notes {args.synth_notes} --steps {args.steps} "
        f"--finetune-steps {args.finetune_steps} --seed {args.seed}"
    )
    meta["trained_steps"] = trained
    if args.finetune_steps > 0:
        meta["data"]["fine_tune"] = (
            f"stage 2 draws each synthesised file at weight {SYNTH_WEIGHT} against 1 for a real "
            f"recording, retunes clips by up to {STAGE_2_AUGMENT['pitch']:g} semitones (as a "
            "sampler: faster is higher) instead of rolling the mel axis, stretches time up to "
            f"{1 + STAGE_2_AUGMENT['stretch']:g}x either way, leaves "
            f"{1 - STAGE_2_AUGMENT['noise_p']:.0%} of the clips clean of the added noise, adds a "
            "soft-nearest-neighbour loss "
            f"on the latent means (weight {NEIGHBOUR_WEIGHT}), and keeps an exponential moving "
            f"average of the weights (decay {EMA_DECAY})"
        )
    if args.out is not None:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / WEIGHTS_FILE, out / WEIGHTS_FILE)
        (out / CONFIG_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        size = sum(f.stat().st_size for f in out.iterdir())
        print(f"bundle written to {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
