"""Library indexing: end-to-end scan throughput against decode-only, and an unchanged rescan.

    python benchmarks/index.py [REAL_DIR] [--files 10000] [--workers 2] [--model DIR] [--json]

In one run, for the real samples in REAL_DIR (if given) and for a synthetic library of
--files short WAV/FLAC one-shots at mixed rates and channel counts:

1. decode-only: soundfile reading the same frames (2 s at the native rate) of every file,
   with the same number of worker processes (a warm pool), nothing sent back but a count;
2. index: a first `Library.scan` into a fresh catalogue, end to end (walk, hash, decode,
   resample, log-mel in the workers, embedding with the model, SQLite commits, hnswlib adds,
   index save); goal: at least 0.5x the decode-only rate;
3. rescan: the same scan again with nothing changed; goal: under 2 s for 10k files.

The model is the built-in default, or --model, or (until the default model ships) a bundle of
the default architecture with random weights: the cost depends on the architecture only.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def _decode(path: str) -> int:
    try:
        with sf.SoundFile(path) as f:
            return len(f.read(math.ceil(2.0 * f.samplerate), dtype="float32", always_2d=True))
    except Exception:
        return -1


def synth_library(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        sr = int(rng.choice([22050, 44100, 48000]))
        t = np.arange(int(sr * rng.uniform(0.15, 1.2))) / sr
        y = np.sin(2 * np.pi * rng.uniform(40, 5000) * t) * np.exp(-t * rng.uniform(2, 15))
        y = (0.3 * (y + 0.2 * rng.standard_normal(t.size))).astype(np.float32)
        if i % 2:
            y = np.stack([y, y * 0.8], 1)
        ext = "flac" if i % 5 == 0 else "wav"
        folder = root / f"pack{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"one_shot_{i:05d}.{ext}", y, sr, subtype="PCM_16")
    return root


def model_dir(arg: str | None, tmp: Path) -> tuple[str, str]:
    from sampletool.paths import BUILTIN_MODELS_DIR

    if arg:
        return arg, arg
    if (BUILTIN_MODELS_DIR / "default" / "config.json").exists():
        return str(BUILTIN_MODELS_DIR / "default"), "built-in default"
    from sampletool.features import AudioConfig
    from sampletool.models.bundle import save_bundle
    from sampletool.models.kinds import build_model
    from sampletool.models.vae import VAEConfig

    cfg = VAEConfig(num_classes=9)
    names = ["kick", "snare", "hihat", "tom", "cymbal", "clap", "percussion", "tonal", "fx"]
    save_bundle(tmp / "model", build_model(cfg, AudioConfig()), cfg, AudioConfig(), names)
    return str(tmp / "model"), "default architecture, random weights"


def measure(root: Path, model: str, workers: int, tmp: Path, label: str) -> dict:
    from sampletool.audio import _context
    from sampletool.data.dataset import find_audio_files
    from sampletool.library import Library
    from sampletool.models.runtime import load_runtime

    paths = [str(p) for p in find_audio_files(root)]
    for p in paths:  # page cache: every pipeline reads from memory
        Path(p).read_bytes()
    with _context().Pool(workers) as pool:
        list(pool.imap(_decode, paths[:50], chunksize=4))  # warm-up
        t0 = time.perf_counter()
        counts = list(pool.imap(_decode, paths, chunksize=16))
        decode_s = time.perf_counter() - t0
    decoded = sum(1 for c in counts if c >= 0)
    runtime = load_runtime(model, device="cpu")
    db = tmp / f"{label}-db" / "catalogue.sqlite"
    lib = Library(root, runtime, db_path=db)
    t0 = time.perf_counter()
    report = lib.scan(workers=workers)
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = lib.scan(workers=workers)
    rescan_s = time.perf_counter() - t0
    lib.close()
    return {
        "library": label,
        "files": len(paths),
        "decoded": decoded,
        "decode_only_files_per_s": decoded / decode_s,
        "index_files_per_s": report.indexed / index_s,
        "index_vs_decode_only": (report.indexed / index_s) / (decoded / decode_s),
        "indexed": report.indexed,
        "failed": len(report.failed),
        "index_seconds": index_s,
        "rescan_seconds": rescan_s,
        "rescan_skipped": again.skipped_unchanged,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("real_dir", nargs="?", help="e.g. the unpacked real samples")
    p.add_argument("--files", type=int, default=10_000, help="synthetic files (default 10000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--model", help="model bundle (default: built-in, else random weights)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        model, model_label = model_dir(args.model, tmp)
        results = []
        if args.real_dir:
            results.append(measure(Path(args.real_dir), model, args.workers, tmp, "real"))
        synth = synth_library(tmp / "synthetic", args.files)
        results.append(measure(synth, model, args.workers, tmp, "synthetic"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {"model": model_label, "workers": args.workers, "results": results}, indent=2
            )
        )
        return
    print(f"model: {model_label}; {args.workers} worker processes")
    print(f"{'library':10} {'files':>6} {'decode-only/s':>13} {'index/s':>8} {'ratio':>6} "
          f"{'rescan s':>9}  goals: ratio >= 0.5, rescan of 10k < 2 s")  # fmt: skip
    for r in results:
        print(f"{r['library']:10} {r['files']:6d} {r['decode_only_files_per_s']:13.0f} "
              f"{r['index_files_per_s']:8.0f} {r['index_vs_decode_only']:6.2f} "
              f"{r['rescan_seconds']:9.3f}  "
              f"({r['indexed']} indexed, {r['failed']} failed)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
