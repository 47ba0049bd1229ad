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
import os
import sys
from pathlib import Path

import numpy as np

from sampletool.errors import SampleToolError
from sampletool.fileio import atomic_write_text
from sampletool.models.bundle import CONFIG_FILE
from sampletool.models.calibration import Calibration, calibration_summary


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
    import torch

    from sampletool.data.augment import AugmentConfig
    from sampletool.data.cache import DONE, FeatureCache
    from sampletool.data.dataset import load_dataset
    from sampletool.models.kinds import get_kind
    from sampletool.training.trainer import batch_features

    ds = load_dataset(dataset_dir)
    cache = FeatureCache(ds, runtime.audio)
    aug = AugmentConfig.from_dict(augment) if augment else None
    waveform = get_kind(runtime.kind).input == "waveform"
    with_clips = waveform or (aug is not None and aug.needs_clips)
    if not cache.is_complete("features") or (with_clips and not cache.is_complete("clips")):
        cache.build(with_clips)
    ok = cache.status("features") == DONE
    names = runtime.class_names
    prefixes = [str(Path(d).resolve()).rstrip(os.sep) + os.sep for d in sources or []]
    idx = [i for i in ds.indices("val") if ok[i] and ds.class_names[ds.labels[i]] in names
           and (not prefixes or ds.paths[i].startswith(tuple(prefixes)))]  # fmt: skip
    labels = np.array([names.index(ds.class_names[ds.labels[i]]) for i in idx], np.int64)
    if not idx:
        return np.empty((0, len(names)), np.float32), labels
    feats = cache.features()
    clips = cache.clips() if with_clips else None
    gen = torch.Generator().manual_seed(seed)
    kept, runtime.calibration = runtime.calibration, Calibration()
    parts = []
    try:
        for _ in range(max(draws, 1) if aug is not None else 1):
            for s in range(0, len(idx), 64):
                rows = np.array(idx[s : s + 64])
                x = batch_features(feats[rows], None if clips is None else clips[rows],
                                   aug or AugmentConfig(mode="none"), runtime.audio,
                                   gen if aug is not None else None, waveform)  # fmt: skip
                parts.append(runtime.encode(x).probs)
    finally:
        runtime.calibration = kept
    probs = np.concatenate(parts)
    return probs, np.tile(labels, len(probs) // len(idx))  # each draw in clip order


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

    bundle = Path(bundle)
    if dataset is None:
        run_config = bundle / "train_config.json"
        if not run_config.is_file():
            raise SampleToolError(f"{bundle} has no train_config.json; name the dataset")
        dataset = Path(json.loads(run_config.read_text(encoding="utf-8"))["dataset"])
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
