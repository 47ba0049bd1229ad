"""Would a calibration with a bias per class read better than a temperature alone?

The built-in model is calibrated by one temperature fitted on the held-out freepats recordings
(each clip read twice through stage 2's augmentation, as `sampletool.training.neighbours` reads
them). A bias per class added to the scaled log-probabilities ("vector scaling" without the
per-class scales) could also move the model's readings towards the classes it hears too
rarely, such as tonal where it hears a cymbal. This fits both ways on the same clips:
- by 5-fold cross-validation on freepats, folds drawn by patch (an instrument's notes all in one
  fold), its held-out negative log-likelihood, with the biases under no penalty and under L2
  penalties of 0.01 and 0.1: this is where it must be decided;
- fitted on all of freepats, the real test recordings of `benchmarks/eval_default_model.py`
  read through each (for the record).

Usage:
    .venv/bin/python benchmarks/class_bias.py REAL_SAMPLES --work WORK [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from eval_default_model import DRUM_LIKE, DRUMS, labelled_clips

PENALTIES = (None, 0.0, 0.01, 0.1)  # None: the temperature alone
FOLDS = 5


def fit(logp: np.ndarray, truth: np.ndarray, penalty: float | None) -> tuple[float, np.ndarray]:
    """(temperature, biases) minimising the NLL of softmax(logp / T + b) (+ penalty * |b|^2)."""
    import torch

    x, y = torch.tensor(logp, dtype=torch.float64), torch.tensor(truth)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(logp.shape[1], dtype=torch.float64, requires_grad=penalty is not None)
    params = [log_t] + ([bias] if penalty is not None else [])
    opt = torch.optim.LBFGS(params, max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.cross_entropy(x * torch.exp(-log_t) + bias, y)
        value = value + (penalty or 0.0) * (bias**2).sum()
        value.backward()
        return value

    opt.step(loss)
    return float(torch.exp(log_t).item()), bias.detach().numpy()


def apply(probs: np.ndarray, temperature: float, bias: np.ndarray) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-30, 1.0)) / temperature + bias
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def label(penalty: float | None) -> str:
    return "temperature alone" if penalty is None else f"+ biases, L2 {penalty:g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path)
    p.add_argument("--work", type=Path, required=True, help="the recipe's work folder")
    p.add_argument("--model", default=None)
    args = p.parse_args(argv)

    from sampletool.data.dataset import load_dataset
    from sampletool.models.calibration import Calibration, expected_calibration_error, nll
    from sampletool.models.runtime import load_runtime
    from sampletool.training.neighbours import balanced_accuracy, split_readings
    from sampletool.training.recipe import AUGMENT, STAGE_2_AUGMENT

    runtime = load_runtime(args.model, "cpu")
    names = runtime.class_names
    folder = args.work / "held-out-freepats"
    draws = 2
    _, truth, probs = split_readings(runtime, folder, None, augment=AUGMENT | STAGE_2_AUGMENT,
                                     draws=draws)  # fmt: skip
    ds = load_dataset(folder)
    kept = [i for i in range(len(ds)) if ds.class_names[ds.labels[i]] in names]
    patches = [Path(ds.paths[i]).name.split("__")[1] for i in kept] * draws
    unique = sorted(set(patches))
    fold_of = dict(zip(unique, np.random.default_rng(0).integers(0, FOLDS, len(unique)),
                       strict=True))  # fmt: skip
    folds = np.array([fold_of[name] for name in patches])
    logp = np.log(np.clip(probs, 1e-30, 1.0))
    print(f"freepats: {len(truth) // draws} clips read {draws} times, {len(unique)} patches, "
          f"{FOLDS} folds by patch")  # fmt: skip
    for penalty in PENALTIES:
        total = 0.0
        for k in range(FOLDS):
            train, held = folds != k, folds == k
            t, b = fit(logp[train], truth[train], penalty)
            total += nll(apply(probs[held], t, b), truth[held]) * held.sum()
        print(f"  {label(penalty):22} cross-validated NLL {total / len(truth):.4f}")

    clips, test = labelled_clips(args.real, runtime.audio, names)
    runtime.calibration = Calibration()  # as trained: each way below calibrates it
    raw = runtime.encode_clips(clips).probs
    is_tonal = test == names.index("tonal")
    is_drum = np.isin(test, [names.index(c) for c in DRUMS])
    print(f"\nreal test ({len(test)} clips), each way fitted on all of freepats")
    for penalty in PENALTIES:
        t, b = fit(logp, truth, penalty)
        read = apply(raw, t, b)
        pred = read.argmax(1)
        as_drum = np.isin(pred[is_tonal], [names.index(c) for c in DRUM_LIKE]).mean()
        shifts = ", ".join(f"{n} {v:+.2f}" for n, v in zip(names, b - b.mean(), strict=True))
        print(f"  {label(penalty):22} T {t:.2f}: right {np.mean(pred == test):.3f}, "
              f"NLL {nll(read, test):.3f}, ECE {expected_calibration_error(read, test):.3f}, "
              f"drums' balanced {balanced_accuracy(pred[is_drum], test[is_drum]):.3f}, "
              f"melodic as a drum {as_drum:.1%}")  # fmt: skip
        if penalty is not None:
            print(f"  {'':22} biases: {shifts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
