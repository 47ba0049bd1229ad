"""Should the built-in model split "tonal" into instrument families? A measurement, before
spending a training run on it: MFCC statistics + logistic regression, trained on the recipe's
rendered SoundFont notes with their General MIDI family (keys, plucked, bass, strings-pads,
vocal, brass-wind, lead), tested on the real melodic files of the evaluation (lmms instruments,
basses, strings and pads; Sonic Pi guit_, bass_, ambi_) with the family their name says.

Usage:
    .venv/bin/python benchmarks/tonal_families.py REAL_SAMPLES --work WORK

WORK is the recipe's work folder after `build_data` (data/notes/tonal/*__<family>__*.wav).
Prints the balanced accuracy over families on the real files, per family recall, the share
that a family's own training notes reach (5-fold, the same classifier), and the chance level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_default_model import load_features, melodic_files, mfcc_stats

from sampletool.features import AudioConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path)
    p.add_argument("--work", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = AudioConfig()
    notes = sorted((args.work / "data" / "notes" / "tonal").glob("*.wav"))
    note_family = [n.name.split("__")[-2] for n in notes]
    _, feats, _, kept = load_features(notes, cfg)
    train_x, train_y = mfcc_stats(feats, cfg), [note_family[i] for i in kept]
    files, families = melodic_files(args.real)
    _, feats, _, kept = load_features(files, cfg)
    test_x, test_y = mfcc_stats(feats, cfg), [families[i] for i in kept]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000,
                                                             class_weight="balanced"))  # fmt: skip
    clf.fit(train_x, train_y)
    pred = clf.predict(test_x)
    inside = cross_val_predict(clf, train_x, train_y, cv=5)
    classes = sorted(set(train_y))
    print(f"{len(train_y)} rendered notes, {len(test_y)} real melodic files")
    for name, truth, guess in (("real files", test_y, pred), ("notes, 5-fold", train_y, inside)):
        per = {c: float(np.mean([g == c for t, g in zip(truth, guess, strict=True) if t == c]))
               for c in classes if c in truth}  # fmt: skip
        print(
            f"{name:<14} balanced accuracy {np.mean(list(per.values())):.3f}  "
            + " ".join(f"{c}={v:.2f}" for c, v in per.items())
            + f"  (n: {' '.join(f'{c}={truth.count(c)}' for c in per)})"
        )
    print(f"chance level: {1 / len(classes):.3f} ({len(classes)} families)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
