"""Adding an indexed sample to a blend slot: the time to its latent, the old road against the new.

    python benchmarks/blend_slot.py [--model DIR] [--repeat 20] [--json]

Before, every blend slot read its sample again: file -> clip -> log-mel -> encoder -> flows
(`ModelRuntime.read(path, onset).latents`, which is what `SoundSampleTool.latent` did and what
the blend panel still does for a sound from outside the library). Now the scan stores each
entry's decoder latent in the catalogue and the slot reads that (`Library.latent`). Both roads
are timed here, in one run, on the same files: WAV, FLAC and OGG one-shots and long files
(1 s to 5 minutes), a segment deep inside a long file, with the built-in model. Each figure is
the median of --repeat calls after a warm-up; "audio reads" counts the clips each road decoded.
Goal: the stored road does not grow with the file's length and reads no audio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

LENGTHS = (1.0, 10.0, 60.0, 300.0)
FORMATS = ((".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS"))


def make_files(folder: Path, sr: int = 44100) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for seconds in LENGTHS:
        t = np.arange(int(seconds * sr)) / sr
        # a decaying tone every half second over a noise floor: something to hear everywhere
        y = 0.4 * np.sin(2 * np.pi * 220 * t) * np.exp(-6 * (t % 0.5)) + 0.02 * rng.standard_normal(
            t.size
        )
        for ext, subtype in FORMATS:
            path = folder / f"{int(seconds):04d}s{ext}"
            stereo = np.stack([y, y], 1).astype(np.float32)
            # In blocks: libsndfile's Vorbis encoder crashes on minutes of audio in one call.
            with sf.SoundFile(path, "w", sr, 2, subtype=subtype) as f:
                for start in range(0, len(stereo), sr * 10):
                    f.write(stereo[start : start + sr * 10])
            paths.append(path)
    return paths


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: caches, first-call costs
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="bundle (default: the built-in model)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    import torch

    from sampletool.library import Library
    from sampletool.models.runtime import load_runtime

    torch.set_num_threads(2)
    runtime = load_runtime(args.model, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        root.mkdir()
        paths = make_files(root)
        lib = Library(root, runtime, db_path=Path(tmp) / "db" / "catalogue.sqlite",
                      segmentation=True)  # fmt: skip
        lib.scan(workers=0)
        reads = []
        real_clip = runtime.clip
        runtime.clip = lambda *a: reads.append(a) or real_clip(*a)  # counts; the real read runs
        rows = []
        targets = [(path, 0.0) for path in paths]
        long_wav = next(x for x in paths if x.name == "0300s.wav")
        deep = max(o for o in lib.catalogue.segments_of("0300s.wav") if o[1] < 280)[1]
        targets.append((long_wav, deep))  # a segment four and a half minutes in
        for path, onset in targets:
            reads.clear()
            old = median_ms(lambda path=path, onset=onset: runtime.read(path, onset), args.repeat)
            old_reads = len(reads) / (args.repeat + 1)
            reads.clear()
            new = median_ms(lambda path=path, onset=onset: lib.latent(path, onset), args.repeat)
            new_reads = len(reads) / (args.repeat + 1)
            stored, read = lib.latent(path, onset), runtime.read(path, onset).latents[0]
            # The scan encodes float16 features (as it always has): a rounding's difference.
            differ = float(np.linalg.norm(stored - read) / np.linalg.norm(read))
            rows.append({"file": path.name, "onset_s": round(onset, 2), "read_ms": round(old, 3),
                         "stored_ms": round(new, 3), "speed-up": round(old / new, 1),
                         "audio_reads_old": old_reads, "audio_reads_new": new_reads,
                         "relative_difference": differ})  # fmt: skip
        del runtime.clip
        lib.close()
    if args.json:
        print(json.dumps({"model": runtime.name, "repeat": args.repeat, "rows": rows}, indent=2))
        return 0
    print(f"model {runtime.name}, median of {args.repeat} after a warm-up, 2 threads")
    print(f"{'file':>12} {'onset s':>8} {'read (old) ms':>14} {'stored (new) ms':>16} "
          f"{'x':>6} {'reads old/new':>14} {'latents differ':>15}")  # fmt: skip
    for r in rows:
        print(f"{r['file']:>12} {r['onset_s']:>8.1f} {r['read_ms']:>14.2f} {r['stored_ms']:>16.3f} "
              f"{r['speed-up']:>6.0f} {r['audio_reads_old']:>7.0f}/{r['audio_reads_new']:<6.0f}"
              f" {r['relative_difference']:>15.1e}")  # fmt: skip
    new = [r["stored_ms"] for r in rows]
    print(
        f"stored road: {min(new):.3f} to {max(new):.3f} ms whatever the file's length or "
        "format, and no audio read"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
