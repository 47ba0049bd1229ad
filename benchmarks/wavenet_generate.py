"""WaveNet generation speed: incremental (fast) against naive generation, in one run.

Usage: .venv/bin/python benchmarks/wavenet_generate.py [--presets small medium large]
       [--seconds 0.25] [--naive-samples 64] [--batch 1 4] [--threads 2] [--json]

For each size preset of the wavenet-autoencoder kind (large = NSynth's published sizes: 30
layers of 512 channels, skip 256), a decoder with random weights (speed depends on the sizes,
not the weights) generates from a random embedding:
- fast: `WaveNetDecoder.generate`, a queue of past activations per dilated layer, so each
  sample costs one step per layer; timed over --seconds of audio per batch size;
- naive: `WaveNetDecoder.generate_naive`, the whole network run over each sample's receptive
  field, timed over --naive-samples samples (the baseline, interleaved in the same run).
Both sample from the predicted distribution with the same seed; the first --check samples of
the two are compared (they must be equal: the fast path computes the same thing).

Reported per preset and batch size: samples per second (all files in the batch together), the
speed-up of fast over naive, and the real-time factor (seconds of compute per second of audio
per file; < 1 is faster than real time). Goal: fast >= 20x naive for each preset.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from sampletool.models.kinds import get_kind
from sampletool.models.wavenet import AUTOENCODER, WaveNetAutoencoder, WaveNetConfig

GOAL = 20.0
SR = 16000


def decoder(preset: str):
    torch.manual_seed(0)
    cfg = WaveNetConfig.from_dict(get_kind(AUTOENCODER).preset(preset))
    return WaveNetAutoencoder(cfg).decoder.eval(), cfg


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["small", "medium", "large"])
    p.add_argument("--seconds", type=float, default=0.25, help="audio per fast timing")
    p.add_argument("--naive-samples", type=int, default=64)
    p.add_argument("--check", type=int, default=32, help="samples compared fast vs naive")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for preset in args.presets:
        dec, cfg = decoder(preset)
        fast_n = round(args.seconds * SR)
        for b in args.batch:
            emb = torch.randn(b, cfg.latent, fast_n // cfg.hop + 1)

            def gen(seed: int) -> torch.Generator:
                return torch.Generator().manual_seed(seed)

            dec.generate(emb, 64, 1.0, gen(0))  # warm-up
            a = dec.generate(emb, args.check, 1.0, gen(1))
            same = bool(torch.equal(a, dec.generate_naive(emb, args.check, 1.0, gen(1))))
            t_fast = timed(dec.generate, emb, fast_n, 1.0, gen(2))
            t_naive = timed(dec.generate_naive, emb, args.naive_samples, 1.0, gen(2))
            fast_sps = b * fast_n / t_fast
            naive_sps = b * args.naive_samples / t_naive
            rows.append({
                "preset": preset, "batch": b, "layers": cfg.dec_layers,
                "channels": cfg.dec_channels, "receptive_field": dec.receptive_field,
                "fast_samples_per_s": fast_sps, "naive_samples_per_s": naive_sps,
                "speedup": fast_sps / naive_sps,
                "real_time_factor": SR / (fast_sps / b), "same_output": same,
            })  # fmt: skip
            r = rows[-1]
            if not args.json:
                print(f"{preset:>6} batch {b}: fast {fast_sps:8.0f} samples/s, naive "
                      f"{naive_sps:7.1f} samples/s, {r['speedup']:6.1f}x; real-time factor "
                      f"{r['real_time_factor']:.1f} ({cfg.dec_layers} layers of "
                      f"{cfg.dec_channels}, receptive field {dec.receptive_field}); "
                      f"same output: {same}", flush=True)  # fmt: skip
    ok = all(r["speedup"] >= GOAL and r["same_output"] for r in rows)
    summary = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
               "goal_speedup": GOAL, "met": ok, "rows": rows}  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"goal: fast >= {GOAL:.0f}x naive and the same output: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
