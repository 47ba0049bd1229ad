"""Calibrate a finished bundle's confidence on a dataset's validation split.

    python -m sampletool.training.calibrate BUNDLE [--dataset DIR] [--device cpu]

The trainer already stores a fitted temperature with every bundle it saves; this is for bundles
saved before it did, and for calibrating on another held-out split. It reads the validation
clips through the model's own runtime (raw probabilities, temperature 1), fits the temperature
(`sampletool.models.calibration`) and writes it, with the calibration error before and after,
into the bundle's metadata ("calibration"). The dataset defaults to the one the bundle's
training run used (its train_config.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from sampletool.errors import SampleToolError
from sampletool.fileio import atomic_write_text
from sampletool.models.bundle import CONFIG_FILE
from sampletool.models.calibration import calibration_summary


def validation_probs(
    runtime,
    dataset_dir: Path,
    sources: list[str] | None = None,
    augment: dict | None = None,
    draws: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(uncalibrated probabilities [n, classes], true class indices [n]) of the validation split
    of `dataset_dir`, in the runtime's class order (clips of classes it lacks are left out).

    Args:
        sources: keep only the clips under these folders (say, the real recordings: synthetic
            ones are easier than what the model will meet, and would make it look surer).
        augment: read each clip `draws` times through this augmentation (an `AugmentConfig`
            dict, as training uses), so the fit sees sounds a little unlike the training data,
            as a user's are.
    """
    from sampletool.training.neighbours import split_readings

    _vectors, labels, probs = split_readings(runtime, dataset_dir, "val", sources, augment,
                                             draws, seed)  # fmt: skip
    return probs, labels


def calibrate_bundle(
    bundle: Path,
    dataset: Path | None = None,
    device: str = "cpu",
    sources: list[str] | None = None,
    augment: dict | None = None,
    draws: int = 1,
) -> dict:
    """Fit and store the bundle's temperature (see `validation_probs` for `sources`, `augment`
    and `draws`); returns the "calibration" metadata written.

    Raises:
        SampleToolError: no dataset given or found, a model without classes, or no
            validation clip of its classes.
    """
    from sampletool.models.runtime import load_runtime
    from sampletool.training.neighbours import run_dataset

    bundle = Path(bundle)
    dataset = run_dataset(bundle, dataset)
    runtime = load_runtime(bundle, device)
    runtime.require_classifier()
    probs, labels = validation_probs(runtime, Path(dataset), sources, augment, draws)
    if not len(labels):
        raise SampleToolError(f"{dataset} has no validation clip of the model's classes")
    summary = calibration_summary(probs, labels)
    what = f"the validation split ({len(labels) // max(draws if augment else 1, 1)} clips"
    what += f" under {', '.join(Path(d).name for d in sources)}" if sources else ""
    what += f", each read {draws} times through the training augmentation)" if augment else ")"
    summary["fitted_on"] = what
    path = bundle / CONFIG_FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.setdefault("metadata", {})["calibration"] = summary
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--dataset", type=Path, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--source",
        action="append",
        default=None,
        metavar="DIR",
        help="fit on the validation clips under this folder only (repeatable)",
    )
    p.add_argument(
        "--augment",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="read the clips through this augmentation (an AugmentConfig as JSON)",
    )
    p.add_argument("--draws", type=int, default=2, help="augmented reads of each clip")
    args = p.parse_args(argv)
    try:
        summary = calibrate_bundle(args.bundle, args.dataset, args.device, args.source,
                                   args.augment, args.draws)  # fmt: skip
    except SampleToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
