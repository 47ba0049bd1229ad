"""What reading classes from the built-in model's neighbours costs a scan: the time to encode
clips with the neighbours voting and with the head alone, alternating in one run (this
machine is noisy), and the memory the neighbours hold.

Usage:
    .venv/bin/python benchmarks/neighbours_cost.py [--clips 400] [--rounds 5]

The clips are two seconds of decaying noise and tones (what they hold does not change the
cost). Encoding is timed as a scan runs it: `ModelRuntime.encode` on log-mel features, one
clip at a time on the CPU (the runtime's batch size there).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=400)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)

    from sampletool.models.runtime import load_runtime

    torch.set_num_threads(1)
    runtime = load_runtime(None, "cpu")
    neighbours = runtime.neighbours
    if neighbours is None:
        raise SystemExit("the built-in model has no neighbours")
    rng = np.random.default_rng(0)
    n = runtime.audio.num_samples
    t = np.arange(n) / runtime.audio.sample_rate
    clips = np.stack([
        (rng.standard_normal(n) * 0.1 + np.sin(2 * np.pi * rng.uniform(50, 2000) * t))
        * np.exp(-t * rng.uniform(1, 20))
        for _ in range(args.clips)
    ]).astype(np.float32)  # fmt: skip
    features = runtime.features(clips).cpu().numpy()
    timings: dict[str, list[float]] = {"head alone": [], "head and neighbours": []}
    for _ in range(args.rounds):
        for name, voters in (("head alone", None), ("head and neighbours", neighbours)):
            runtime.neighbours = voters
            start = time.perf_counter()
            runtime.encode(features)
            timings[name].append((time.perf_counter() - start) / args.clips * 1e3)
    runtime.neighbours = neighbours
    held = neighbours.vectors.nbytes + neighbours.labels.nbytes + neighbours._norms.nbytes
    print(f"{args.clips} clips, {args.rounds} rounds, one thread; ms a clip (median, range):")
    for name, values in timings.items():
        print(f"  {name:<20} {statistics.median(values):.2f}  "
              f"({min(values):.2f} to {max(values):.2f})")  # fmt: skip
    extra = statistics.median(timings["head and neighbours"]) - statistics.median(
        timings["head alone"]
    )
    print(f"  the neighbours add {extra:.2f} ms a clip; they hold {held / 1e6:.1f} MB "
          f"({len(neighbours.labels):,} sounds, k = {neighbours.k})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
