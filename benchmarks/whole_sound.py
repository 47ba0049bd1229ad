"""Should a long sound's class be read from more of it than its first two seconds?

The model hears 2 s. A pad, a held e-piano chord or a distorted guitar note that rings for six
seconds may start like a hit; what follows tells them apart. This reads every sound longer
than 2.25 s twice, and compares the readings:
- first: its first 2 s, as the app reads it;
- whole: the mean of the calibrated probabilities of its first 2 s and of the 2-4 s and 4-6 s
  windows that hold more than a quarter of a second of it and are no more than 40 dB quieter
  than the first.

On three sets: the validation split of the recipe's dataset (its kits' long cymbals and toms,
its SoundFonts' notes: clips the model never trained on, from sources it did), the held-out
freepats recordings (`WORK/held-out-freepats`: never trained on, from elsewhere), and the real
recordings of `benchmarks/eval_default_model.py` (the test: melodic files heard as a drum,
drums' balanced accuracy; every file, short ones read the same both ways). Decide on the first
two; the third is for the record.

Usage:
    .venv/bin/python benchmarks/whole_sound.py REAL_SAMPLES --work WORK [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from eval_default_model import DRUM_LIKE, melodic_files, test_files

LONG = 2.25  # seconds: a sound this long has a second window worth reading
QUIETER_DB = 40.0


def windows(path: str, seconds: float, rate: int) -> tuple[np.ndarray, float]:
    """The clips of `path` the whole reading reads [n, samples], and the file's duration."""
    from sampletool.audio import load_clip, open_audio

    with open_audio(path) as f:
        duration = f.frames / f.samplerate
    first = load_clip(path, 0.0, seconds, rate)
    clips = [first]
    floor = np.sqrt(np.mean(first**2)) * 10 ** (-QUIETER_DB / 20)
    for offset in (seconds, 2 * seconds):
        if offset < duration - 0.25:
            clip = load_clip(path, offset, seconds, rate)
            if np.sqrt(np.mean(clip**2)) > floor:
                clips.append(clip)
    return np.stack(clips), duration


def readings(runtime, paths: list[str]) -> list[tuple[np.ndarray, np.ndarray, float] | None]:
    """(first reading, whole reading, duration) of each file; None where it is unreadable."""
    out: list[tuple[np.ndarray, np.ndarray, float] | None] = []
    for p in paths:
        try:
            clips, duration = windows(p, runtime.audio.seconds, runtime.audio.sample_rate)
        except Exception as e:  # an unreadable test file is reported by the evaluation
            print(f"  skipped {Path(p).name}: {e}", file=sys.stderr)
            out.append(None)
            continue
        probs = runtime.encode_clips(clips).probs
        out.append((probs[0], probs.mean(0), duration))
    return out


def judge(runtime, name: str, paths: list[str], classes: list[str]) -> None:
    """Accuracy and log-loss of both readings on the long sounds of a labelled set."""
    names = runtime.class_names
    rows = [(r, c) for r, c in zip(readings(runtime, paths), classes, strict=True)
            if r is not None and r[2] > LONG]  # fmt: skip
    print(f"\n{name}: {len(rows)} sounds longer than {LONG:g} s")
    for i, how in ((0, "first"), (1, "whole")):
        right: dict[str, list[bool]] = defaultdict(list)
        nll = []
        for r, c in rows:
            right[c].append(names[int(r[i].argmax())] == c)
            nll.append(-np.log(max(float(r[i][names.index(c)]), 1e-9)))
        each = ", ".join(f"{c} {np.mean(v):.2f} ({len(v)})" for c, v in sorted(right.items()))
        every = np.mean([x for v in right.values() for x in v])
        print(f"  {how}: right {every:.3f}, log-loss {np.mean(nll):.3f}; {each}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path)
    p.add_argument("--work", type=Path, required=True, help="the recipe's work folder")
    p.add_argument("--model", default=None)
    args = p.parse_args(argv)

    from sampletool.data.dataset import load_dataset
    from sampletool.models.runtime import load_runtime

    runtime = load_runtime(args.model, "cpu")
    names = runtime.class_names
    sets = [
        ("validation split", args.work / "dataset", "val"),
        ("held-out freepats", args.work / "held-out-freepats", None),
    ]
    for title, folder, split in sets:
        ds = load_dataset(folder)
        pool = range(len(ds)) if split is None else ds.indices(split)
        keep = [i for i in pool if ds.class_names[ds.labels[i]] in names]
        judge(runtime, title, [ds.paths[i] for i in keep],
              [ds.class_names[ds.labels[i]] for i in keep])  # fmt: skip

    files, _ = melodic_files(args.real)
    melodic = [r for r in readings(runtime, [str(f) for f in files]) if r is not None]
    drums, classes = test_files(args.real)
    pairs = [(r, c) for r, c in zip(readings(runtime, [str(f) for f in drums]), classes,
                                    strict=True) if r is not None]  # fmt: skip
    drum_readings, labels = [r for r, _ in pairs], [c for _, c in pairs]
    print(f"\nreal recordings: {len(melodic)} melodic files "
          f"({sum(r[2] > LONG for r in melodic)} long), {len(drum_readings)} drums "
          f"({sum(r[2] > LONG for r in drum_readings)} long)")  # fmt: skip
    for i, how in ((0, "first"), (1, "whole")):
        as_drum = np.mean([names[int(r[i].argmax())] in DRUM_LIKE for r in melodic])
        per = defaultdict(list)
        for r, c in zip(drum_readings, labels, strict=True):
            per[c].append(names[int(r[i].argmax())] == c)
        balanced = np.mean([np.mean(v) for v in per.values()])
        print(f"  {how}: melodic files heard as a drum {as_drum:.1%}, "
              f"drums' balanced accuracy {balanced:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
