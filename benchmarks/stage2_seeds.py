"""Would several stage-2 runs, read together, read better than one?

Stage 2 of the recipe (`sampletool/training/recipe.py`) fine-tunes stage 1 with one seed, which
sets the order the clips are drawn in and their augmentation. This trains stage 2 again with
other seeds (its config otherwise unchanged), gives each run its neighbours and calibration as
the recipe does (judged on the held-out freepats recordings), and compares:
- each run alone;
- the mean of their calibrated probabilities (an ensemble: reading a clip costs one pass of
  each run, and the bundle would hold every run);
- their weights averaged into one model (a "soup": one pass), given neighbours and a
  calibration of its own.

On three sets: the validation split of the recipe's dataset, the held-out freepats recordings
(`WORK/held-out-freepats`), both unaugmented, and the real test recordings of
`benchmarks/eval_default_model.py` (drums' balanced accuracy, melodic files heard as tonal and
as a drum, ECE). Decide on the first two; the third is for the record.

Usage:
    .venv/bin/python benchmarks/stage2_seeds.py REAL_SAMPLES --work WORK [--stage2 DIR]
        [--seeds 1 2] [--runs DIR]

Each extra run takes about 20 minutes on 2 cores, and each bundle 2 more; the runs and bundles
already in --runs are kept, so an interrupted run goes on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from eval_default_model import DRUM_LIKE, DRUMS, labelled_clips

FILES = ("config.json", "weights.safetensors")


def train(stage2: Path, run: Path, seed: int) -> None:
    """Stage 2 again, as `stage2` was trained but with `seed` (resumed if begun)."""
    from sampletool.training.trainer import TrainConfig, Trainer

    config = json.loads((stage2 / "train_config.json").read_text(encoding="utf-8"))
    resuming = (run / "train_config.json").is_file()
    fresh = None if resuming else TrainConfig.from_dict(config | {"seed": seed})
    result = Trainer(run, fresh, max_steps=config["max_steps"], device="cpu", log=print).run()
    print(f"{run.name}: {result.reason} at step {result.step}", flush=True)


def soup(runs: list[Path], out: Path) -> None:
    """The mean of the runs' weights, as a run folder of its own."""
    from safetensors.torch import load_file, save_file

    weights = [load_file(str(r / "weights.safetensors")) for r in runs]
    mean = {k: sum(w[k].double() for w in weights).div(len(weights)).to(t.dtype)
            if t.is_floating_point() else t for k, t in weights[0].items()}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    save_file(mean, str(out / "weights.safetensors"))
    shutil.copyfile(runs[0] / "config.json", out / "config.json")


def bundle(run: Path, out: Path, work: Path) -> Path:
    """`run` with its neighbours and calibration, chosen as the recipe chooses them."""
    from sampletool.training.neighbours import add_neighbours
    from sampletool.training.recipe import AUGMENT, STAGE_2_AUGMENT

    config = out / "config.json"
    if config.is_file() and "neighbours" in json.loads(config.read_text("utf-8"))["metadata"]:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copyfile(run / f, out / f)
    chosen = add_neighbours(out, work / "dataset", "cpu", augment=AUGMENT | STAGE_2_AUGMENT,
                            judge=work / "held-out-freepats")  # fmt: skip
    print(f"{out.name}: k {chosen['k']}, the head's share {chosen['head_share']:g}", flush=True)
    return out


def readings(path: Path, work: Path, real: Path) -> tuple[list[str], dict]:
    """The bundle's classes, and {set: (true class indices, calibrated probabilities)}."""
    from sampletool.models.runtime import load_runtime
    from sampletool.training.neighbours import split_readings

    runtime = load_runtime(path, "cpu")
    names = runtime.class_names
    sets = {}
    for name, folder, split in (("validation", work / "dataset", "val"),
                                ("freepats", work / "held-out-freepats", None)):  # fmt: skip
        _, truth, probs = split_readings(runtime, folder, split)
        sets[name] = (truth, runtime.calibration.apply(probs))
    clips, truth = labelled_clips(real, runtime.audio, names)
    sets["real test"] = (truth, runtime.encode_clips(clips).probs)
    return names, sets


def figures(names: list[str], truth: np.ndarray, probs: np.ndarray) -> str:
    from sampletool.models.calibration import expected_calibration_error, nll
    from sampletool.training.neighbours import balanced_accuracy

    pred = probs.argmax(1)
    tonal = truth == names.index("tonal")
    drums = np.isin(truth, [names.index(c) for c in DRUMS])
    drum_like = [names.index(c) for c in DRUM_LIKE]
    return (f"right {np.mean(pred == truth):.3f}, NLL {nll(probs, truth):.3f}, "
            f"ECE {expected_calibration_error(probs, truth):.3f}, drums' balanced "
            f"{balanced_accuracy(pred[drums], truth[drums]):.3f}, tonal heard as tonal "
            f"{np.mean(pred[tonal] == names.index('tonal')):.1%}, as a drum "
            f"{np.mean(np.isin(pred[tonal], drum_like)):.1%}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path)
    p.add_argument("--work", type=Path, required=True, help="the recipe's work folder")
    p.add_argument("--stage2", type=Path, default=None,
                   help="the stage-2 run to compare with (default: WORK/finetune)")  # fmt: skip
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--runs", type=Path, default=None,
                   help="where the extra runs and bundles go (default: WORK/seeds)")  # fmt: skip
    args = p.parse_args(argv)
    stage2 = args.stage2 or args.work / "finetune"
    runs_dir = args.runs or args.work / "seeds"
    seed = json.loads((stage2 / "train_config.json").read_text("utf-8"))["seed"]
    runs = {f"seed {seed}": stage2}
    for s in args.seeds:
        train(stage2, runs_dir / f"run_seed{s}", s)
        runs[f"seed {s}"] = runs_dir / f"run_seed{s}"
    soup(list(runs.values()), runs_dir / "run_soup")
    bundles = {name: bundle(run, runs_dir / f"bundle_{name.replace(' ', '')}", args.work)
               for name, run in runs.items()}  # fmt: skip
    souped = bundle(runs_dir / "run_soup", runs_dir / "bundle_soup", args.work)
    read = {name: readings(b, args.work, args.real) for name, b in bundles.items()}
    names = next(iter(read.values()))[0]
    rows = {name: sets for name, (_, sets) in read.items()}
    first = next(iter(rows.values()))
    rows["ensemble (mean)"] = {s: (first[s][0], np.mean([r[s][1] for r in rows.values()], 0))
                               for s in first}  # fmt: skip
    rows["soup (weights)"] = readings(souped, args.work, args.real)[1]
    for s in first:
        print(f"\n{s} ({len(first[s][0])} clips)")
        for name, sets in rows.items():
            print(f"  {name:16} {figures(names, *sets[s])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
