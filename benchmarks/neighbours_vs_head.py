"""The built-in model's neighbours against its classifier head alone, on the real recordings of
`benchmarks/eval_default_model.py`: drums' balanced accuracy and the share of melodic files
heard as a drum, each with a paired bootstrap interval of the difference (the same clips
resampled for both readings).

Usage:
    .venv/bin/python benchmarks/neighbours_vs_head.py REAL_SAMPLES [--model DIR] [--draws 5000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from eval_default_model import DRUM_LIKE, melodic_files, test_files


def balanced(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([(pred[truth == c] == c).mean() for c in np.unique(truth)]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path)
    p.add_argument("--model", default=None)
    p.add_argument("--draws", type=int, default=5000)
    args = p.parse_args(argv)

    from sampletool.audio import load_clips
    from sampletool.models.runtime import load_runtime

    runtime = load_runtime(args.model, "cpu")
    if runtime.neighbours is None:
        raise SystemExit("this model reads classes with its head alone")
    names = np.array(runtime.class_names)

    def both(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        batch = load_clips(paths, seconds=runtime.audio.seconds,
                           sample_rate=runtime.audio.sample_rate)  # fmt: skip
        mixed = runtime.encode_clips(batch.audio).probs.argmax(1)
        kept, runtime.neighbours = runtime.neighbours, None
        try:
            head = runtime.encode_clips(batch.audio).probs.argmax(1)
        finally:
            runtime.neighbours = kept
        return mixed, head, batch.indices

    rng = np.random.default_rng(0)
    files, labels = test_files(args.real)
    mixed, head, kept = both(files)
    truth = np.array([list(names).index(labels[i]) for i in kept])
    diffs = []
    while len(diffs) < args.draws:
        i = rng.integers(0, len(truth), len(truth))
        if len(np.unique(truth[i])) == len(np.unique(truth)):  # every class drawn
            diffs.append(balanced(mixed[i], truth[i]) - balanced(head[i], truth[i]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    print(f"drums ({len(truth)}): balanced accuracy {balanced(mixed, truth):.3f} with the "
          f"neighbours, {balanced(head, truth):.3f} by the head alone; difference 95 % "
          f"{lo:+.3f} to {hi:+.3f}; {int((mixed != head).sum())} read differently")  # fmt: skip
    melodic, _families = melodic_files(args.real)
    mixed, head, _kept = both(melodic)
    mixed_drum, head_drum = np.isin(names[mixed], DRUM_LIKE), np.isin(names[head], DRUM_LIKE)
    i = rng.integers(0, len(mixed), (args.draws, len(mixed)))
    lo, hi = np.percentile(mixed_drum[i].mean(1) - head_drum[i].mean(1), [2.5, 97.5])
    print(f"melodic files ({len(mixed)}) heard as a drum: {mixed_drum.mean():.1%} with the "
          f"neighbours, {head_drum.mean():.1%} by the head alone; difference 95 % "
          f"{lo * 100:+.1f} to {hi * 100:+.1f} points")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
