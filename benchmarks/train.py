"""Training throughput and feature-cache build rate, against the frontend rate, in one run.

    python benchmarks/train.py [DATA_DIR] [--files N] [--steps S] [--batch-size B] [--json]

DATA_DIR (e.g. the real samples from ../shared/tools/real-samples) provides the audio; without
it, N synthetic one-shots are written to a temporary folder. In one run this measures:

1. frontend: ClipLoader with LogMelTransform (decode, resample, log-mel in the worker
   processes) over the files, nothing stored;
2. cache build: FeatureCache.build on a fresh cache of the same files (decode, features,
   float16 memory-mapped writes, status flushes), goal: close to the frontend rate;
3. training: samples/s of the full-size default VAE (SampleVAE sizes, 9 classes), batches
   read from the cache, forward + backward + Adam step, without and with on-the-fly additive
   noise augmentation (which reads clips and recomputes log-mel per batch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sampletool.audio import ClipLoader
from sampletool.data.cache import FeatureCache
from sampletool.data.dataset import load_dataset, make_dataset
from sampletool.features import AudioConfig, LogMelTransform
from sampletool.training.trainer import TrainConfig, Trainer


def synth_library(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    sr = 44100
    for i in range(n):
        cls = f"class{i % 3}"
        t = np.arange(int(sr * rng.uniform(0.2, 1.5))) / sr
        f0 = [60, 400, 3000][i % 3] * rng.uniform(0.7, 1.4)
        y = np.sin(2 * np.pi * f0 * t) + 0.3 * rng.standard_normal(t.size)
        y = (0.4 * y * np.exp(-t * rng.uniform(2, 12))).astype(np.float32)
        (root / cls).mkdir(parents=True, exist_ok=True)
        sf.write(root / cls / f"s{i:05d}.wav", np.stack([y, y], 1), sr, subtype="PCM_24")
    return root


def frontend_rate(paths: list[str], workers: int) -> float:
    """The engine's frontend (benchmarks/frontend.py's pipeline (a)), loader start-up included
    as in a cache build: decode, resample and log-mel in the workers, nothing stored."""
    t0 = time.perf_counter()
    with ClipLoader(workers, transform=LogMelTransform()) as loader:
        batch = loader.load(paths)
    return len(batch.indices) / (time.perf_counter() - t0)


def cache_rate(dataset_dir: Path, workers: int) -> float:
    ds = load_dataset(dataset_dir)
    cache = FeatureCache(ds, AudioConfig())
    shutil.rmtree(cache.dir, ignore_errors=True)
    t0 = time.perf_counter()
    cache.build(workers=workers)
    ok = int((cache.status() == 1).sum())
    return ok / (time.perf_counter() - t0)


def train_rate(dataset_dir: Path, steps: int, batch: int, augment: bool) -> float:
    log = Path(tempfile.mkdtemp(prefix="bench-train-"))
    rates = []
    cfg = TrainConfig(
        dataset=str(dataset_dir),
        model={"kind": "vae"},
        batch_size=batch,
        max_steps=steps,
        eval_every=10**9,
        augment={"mode": "additive" if augment else "none"},
    )
    t = Trainer(log, cfg, device="cpu", progress=lambda s, m: rates.append(time.perf_counter()))
    t.run()
    shutil.rmtree(log, ignore_errors=True)
    # progress fires every 10 steps: time the steady state, not the first batches and cache set-up
    gaps = np.diff(rates[1:])
    return 10 * batch / statistics.median(gaps) if len(gaps) else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("data_dir", nargs="?", help="audio folder (default: synthetic files)")
    p.add_argument("--files", type=int, default=1000, help="synthetic files (default 1000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=60, help="training steps per measurement")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeat", type=int, default=2, help="frontend/cache rounds (interleaved)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-data-"))
    try:
        data = Path(args.data_dir) if args.data_dir else synth_library(tmp / "lib", args.files)
        ds_dir = make_dataset([data], "bench", out=tmp / "ds", workers=args.workers)
        paths = load_dataset(ds_dir).paths
        fr, cr = [], []
        for _ in range(args.repeat):
            fr.append(frontend_rate(paths, args.workers))
            cr.append(cache_rate(ds_dir, args.workers))
        plain = train_rate(ds_dir, args.steps, args.batch_size, augment=False)
        aug = train_rate(ds_dir, args.steps, args.batch_size, augment=True)
        result = {
            "files": len(paths),
            "workers": args.workers,
            "frontend_files_per_s": statistics.median(fr),
            "cache_build_files_per_s": statistics.median(cr),
            "cache_vs_frontend": statistics.median(cr) / statistics.median(fr),
            "train_samples_per_s": plain,
            "train_augmented_samples_per_s": aug,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    threads = result["torch_threads"]
    print(f"{result['files']} files, {args.workers} decoding workers, {threads} torch threads")
    print(f"frontend (decode + log-mel)     {result['frontend_files_per_s']:8.1f} files/s")
    print(f"feature-cache build             {result['cache_build_files_per_s']:8.1f} files/s"
          f"   ({result['cache_vs_frontend']:.2f}x the frontend)")  # fmt: skip
    print(f"training, default VAE, batch {args.batch_size}  {plain:8.1f} samples/s")
    print(f"  with additive-noise augmentation {aug:8.1f} samples/s")


if __name__ == "__main__":
    sys.exit(main())
