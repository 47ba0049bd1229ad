"""Give a finished bundle its labelled neighbours: the search vectors of its dataset's training
split, which then vote on new sounds' classes beside the head (`sampletool.models.neighbours`),
and the calibration of what it then reads.

    python -m sampletool.training.neighbours BUNDLE [--dataset DIR] [--k K] [--head-share S]

How many neighbours vote (`k`) and how much of the head's reading is mixed in (`head_share`)
are chosen on held-out clips, unless given: by default the validation split (whose clips are
not among the voters), or every clip of another dataset (`--judge`: recordings from sources the
model never trained on, as a user's sounds are). The pair chosen is the one whose
probabilities, once temperature-scaled, give the true classes the lowest negative
log-likelihood. Where the head alone does best, the bundle keeps no neighbours. The bundle
is calibrated on the same clips, and its head's calibration is kept in the metadata as
"head_calibration" (a model fine-tuned from this one reads with its head alone).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from sampletool.errors import SampleToolError

KS = (5, 10, 25, 50, 100, 200, 400)
HEAD_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def split_readings(
    runtime,
    dataset_dir: Path,
    split: str | None,
    sources: list[str] | None = None,
    augment: dict | None = None,
    draws: int = 1,
    seed: int = 0,
    head_only: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(search vectors [n, dim], class indices in the runtime's order [n], uncalibrated
    probabilities [n, classes]: the runtime's, or with `head_only` its head's without its
    neighbours) of one split of a dataset (`split` None: all of it), from its feature cache;
    clips of classes the model lacks, and with `sources` those under no such folder, are left
    out. With `augment` (an `AugmentConfig` dict) each clip is read `draws` times through it."""
    import torch

    from sampletool.data.augment import AugmentConfig
    from sampletool.data.cache import DONE, FeatureCache
    from sampletool.data.dataset import load_dataset
    from sampletool.models.calibration import Calibration
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
    prefixes = tuple(str(Path(d).resolve()).rstrip(os.sep) + os.sep for d in sources or [])
    pool = range(len(ds)) if split is None else ds.indices(split)
    idx = [i for i in pool if ok[i] and ds.class_names[ds.labels[i]] in names
           and (not prefixes or ds.paths[i].startswith(prefixes))]  # fmt: skip
    labels = np.array([names.index(ds.class_names[ds.labels[i]]) for i in idx], np.int64)
    feats = cache.features()
    clips = cache.clips() if with_clips else None
    gen = torch.Generator().manual_seed(seed)
    vectors = [np.empty((0, runtime.vector_dim), np.float32)]
    probs = [np.empty((0, len(names)), np.float32)]
    rounds = max(draws, 1) if aug is not None else 1
    kept = runtime.calibration, runtime.neighbours
    runtime.calibration = Calibration()
    if head_only:
        runtime.neighbours = None
    try:
        for _ in range(rounds):
            for s in range(0, len(idx), 64):
                rows = np.array(idx[s : s + 64])
                x = batch_features(feats[rows], None if clips is None else clips[rows],
                                   aug or AugmentConfig(), runtime.audio,
                                   gen if aug is not None else None, waveform)  # fmt: skip
                enc = runtime.encode(x)
                vectors.append(enc.vectors)
                probs.append(enc.probs)
    finally:
        runtime.calibration, runtime.neighbours = kept
    return np.concatenate(vectors), np.tile(labels, rounds), np.concatenate(probs)


def run_dataset(bundle: Path, dataset: Path | None) -> Path:
    """`dataset`, or the one the bundle's training run used (its train_config.json).

    Raises:
        SampleToolError: none given and none recorded.
    """
    if dataset is not None:
        return Path(dataset)
    run_config = Path(bundle) / "train_config.json"
    if not run_config.is_file():
        raise SampleToolError(f"{bundle} has no train_config.json; name the dataset")
    return Path(json.loads(run_config.read_text(encoding="utf-8"))["dataset"])


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean recall over the classes present in `truth`."""
    classes = np.unique(truth)
    return float(np.mean([(pred[truth == c] == c).mean() for c in classes])) if len(classes) else 0


def choose(
    ref: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    num_classes: int,
    ks: tuple[int, ...] = KS,
    shares: tuple[float, ...] = HEAD_SHARES,
) -> tuple[int, float, list[dict]]:
    """The `k` (of `ks`, at most the references' count) and head share whose mixed
    probabilities, temperature-scaled, give `val`'s true classes the lowest negative
    log-likelihood. Returns them and every pair's figures."""
    import torch

    from sampletool.models.calibration import fit_temperature, nll, scale
    from sampletool.models.neighbours import Neighbours

    vectors, labels = ref
    val_vectors, truth, head = val
    rows = []
    for k in sorted({min(k, len(vectors)) for k in ks}):
        voter = Neighbours(torch.from_numpy(vectors), torch.from_numpy(labels), k, num_classes)
        votes = voter.votes(torch.from_numpy(val_vectors)).numpy()
        for share in shares:
            p = share * head + (1 - share) * votes
            scaled = scale(p, fit_temperature(p, truth))
            bal = balanced_accuracy(p.argmax(1), truth)
            rows.append({"k": k, "head_share": share, "nll": round(nll(scaled, truth), 4),
                         "balanced_accuracy": round(bal, 4)})  # fmt: skip
    best = min(rows, key=lambda r: (r["nll"], -r["head_share"], r["k"]))
    return int(best["k"]), float(best["head_share"]), rows


def add_neighbours(
    bundle: Path,
    dataset: Path | None = None,
    device: str = "cpu",
    k: int | None = None,
    head_share: float | None = None,
    sources: list[str] | None = None,
    augment: dict | None = None,
    draws: int = 2,
    judge: Path | None = None,
) -> dict:
    """Store the training split's vectors and classes in `bundle` (replacing any it had),
    unless the head alone reads the validation clips best, and calibrate it: the temperature
    of what it now reads ("calibration") and of its head alone ("head_calibration", which a
    model fine-tuned from it keeps), both fitted on the clips the choice was judged on. Returns
    what was chosen ({"k", "count", "head_share", "judged_on", "candidates"}; "k" None for the
    head alone).

    Args:
        k, head_share: use these instead of choosing.
        sources: judge on the clips under these folders only (say, the real recordings).
        augment: judge on those clips read `draws` times through this augmentation (an
            `AugmentConfig` dict): a user's sounds are further from the training data than
            its own validation clips.
        judge: judge on every clip of this dataset instead of `dataset`'s validation split
            (clips of classes the model lacks are left out): say, recordings from sources
            the model never trained on, which its validation split cannot hold (its clips
            come from the kits and instruments it trained on, and read truer than a user's).

    Raises:
        SampleToolError: no dataset given or found, a model without classes, no training or
            judged clip of its classes, or a `k` or `head_share` out of range.
    """
    import torch

    from sampletool.models.bundle import read_bundle, save_bundle
    from sampletool.models.calibration import calibration_summary
    from sampletool.models.neighbours import (
        CONFIG_KEY,
        MAX_COUNT,
        MAX_K,
        Neighbours,
        NeighbourSpec,
        neighbour_tensors,
    )
    from sampletool.models.runtime import load_runtime

    if k is not None and not 1 <= k <= MAX_K:
        raise SampleToolError(f"k must be between 1 and {MAX_K}")
    if head_share is not None and not 0 <= head_share <= 1:
        raise SampleToolError("the head's share must be between 0 and 1")
    bundle = Path(bundle)
    dataset = run_dataset(bundle, dataset)
    runtime = load_runtime(bundle, device)
    runtime.require_classifier()
    ref = split_readings(runtime, Path(dataset), "train")[:2]
    judged_on, split = (Path(judge), None) if judge is not None else (Path(dataset), "val")
    val = split_readings(runtime, judged_on, split, sources, augment, draws, head_only=True)
    if not len(ref[1]):
        raise SampleToolError(f"{dataset} has no training clip of the model's classes")
    if not len(val[1]):
        where = f"{judge}" if judge is not None else f"{dataset}'s validation split"
        raise SampleToolError(f"{where} has no clip of the model's classes to judge on")
    if len(ref[1]) > MAX_COUNT:
        raise SampleToolError(f"{len(ref[1]):,} training clips: a bundle keeps at most "
                              f"{MAX_COUNT:,} neighbours")  # fmt: skip
    shares = HEAD_SHARES if head_share is None else (head_share,)
    chosen_k, share, rows = choose(ref, val, len(runtime.class_names), (k,) if k else KS, shares)
    what = f"every clip of {judged_on.name}" if judge is not None else "the validation split"
    under = f" under {', '.join(Path(d).name for d in sources)}" if sources else ""
    reads = f"read {draws} times through the training augmentation" if augment else ""
    judged = what + under + (f", each clip {reads}" if reads else "")
    neighbours = share < 1
    spec = NeighbourSpec(chosen_k, len(ref[1]), share)
    vectors, truth, head = val
    probs = head
    if neighbours:
        voter = Neighbours(torch.from_numpy(ref[0]), torch.from_numpy(ref[1]), chosen_k,
                           len(runtime.class_names), share)  # fmt: skip
        probs = voter.probs(torch.from_numpy(vectors), torch.from_numpy(head)).numpy()
    fitted_on = f"{what} ({len(truth) // (draws if augment else 1)} clips{under}"
    fitted_on += f", each {reads})" if reads else ")"
    meta = read_bundle(bundle).metadata
    meta["head_calibration"] = calibration_summary(head, truth) | {"fitted_on": fitted_on}
    meta["calibration"] = calibration_summary(probs, truth) | {"fitted_on": fitted_on}
    summary = {**(spec.to_dict() if neighbours else {"k": None, "count": 0, "head_share": 1.0}),
               "judged_on": judged, "candidates": rows}  # fmt: skip
    meta["neighbours"] = summary
    save_bundle(bundle, runtime.module, runtime.config, runtime.audio, runtime.class_names, meta,
                neighbour_tensors(*ref) if neighbours else None,
                {CONFIG_KEY: spec.to_dict()} if neighbours else None)  # fmt: skip
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--dataset", type=Path, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--k", type=int, default=None, help=f"neighbours that vote (default: the "
                   f"best of {', '.join(map(str, KS))} on the validation split)")  # fmt: skip
    p.add_argument("--head-share", type=float, default=None,
                   help="the head's share of the probabilities (default: chosen)")  # fmt: skip
    p.add_argument("--source", action="append", default=None, metavar="DIR",
                   help="judge k on the clips under this folder only")  # fmt: skip
    p.add_argument("--augment", type=json.loads, default=None, metavar="JSON",
                   help="judge k on clips read through this augmentation (JSON)")  # fmt: skip
    p.add_argument("--judge", type=Path, default=None, metavar="DATASET",
                   help="judge k on every clip of this dataset (default: validation)")  # fmt: skip
    args = p.parse_args(argv)
    try:
        summary = add_neighbours(args.bundle, args.dataset, args.device, args.k,
                                 args.head_share, args.source, args.augment,
                                 judge=args.judge)  # fmt: skip
    except SampleToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
