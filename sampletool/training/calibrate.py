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
from sampletool.models.calibration import Calibration, calibration_summary


def validation_probs(runtime, dataset_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uncalibrated probabilities [n, classes], true class indices [n]) of the validation split
    of `dataset_dir`, in the runtime's class order (clips of classes it lacks are left out)."""
    from sampletool.data.cache import DONE, FeatureCache
    from sampletool.data.dataset import load_dataset

    ds = load_dataset(dataset_dir)
    cache = FeatureCache(ds, runtime.audio)
    if not cache.is_complete("features"):
        cache.build(False)
    ok = cache.status("features") == DONE
    names = runtime.class_names
    idx = [i for i in ds.indices("val") if ok[i] and ds.class_names[ds.labels[i]] in names]
    labels = np.array([names.index(ds.class_names[ds.labels[i]]) for i in idx], np.int64)
    kept, runtime.calibration = runtime.calibration, Calibration()
    try:
        feats = cache.features()
        probs = np.concatenate(
            [runtime.encode(feats[idx[s : s + 256]]).probs for s in range(0, len(idx), 256)]
        ) if idx else np.empty((0, len(names)), np.float32)  # fmt: skip
    finally:
        runtime.calibration = kept
    return probs, labels


def calibrate_bundle(bundle: Path, dataset: Path | None = None, device: str = "cpu") -> dict:
    """Fit and store the bundle's temperature; returns the "calibration" metadata written.

    Raises:
        SampleToolError: no dataset given or found, a model without classes, or no
            validation clip of its classes.
    """
    from sampletool.models.runtime import load_runtime

    bundle = Path(bundle)
    if dataset is None:
        run_config = bundle / "train_config.json"
        if not run_config.is_file():
            raise SampleToolError(f"{bundle} has no train_config.json; name the dataset")
        dataset = Path(json.loads(run_config.read_text(encoding="utf-8"))["dataset"])
    runtime = load_runtime(bundle, device)
    runtime.require_classifier()
    probs, labels = validation_probs(runtime, Path(dataset))
    if not len(labels):
        raise SampleToolError(f"{dataset} has no validation clip of the model's classes")
    summary = calibration_summary(probs, labels)
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
    args = p.parse_args(argv)
    try:
        summary = calibrate_bundle(args.bundle, args.dataset, args.device)
    except SampleToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
