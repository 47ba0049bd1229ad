"""Does correcting the model teach it? The app's "Improve the active model with my corrections",
measured on real samples it never saw.

Usage:
    .venv/bin/python benchmarks/corrections.py REAL_SAMPLES [--model M] [--work DIR]
        [--corrections 20] [--seed 0] [--json]

REAL_SAMPLES (`../shared/tools/real-samples`, lmms/ and sonic-pi/) is indexed as a library with
the model, as a producer would. The files whose class is known from their folder and name are
labelled: the drum one-shots of benchmarks/eval_default_model.py with their class, its melodic
files and lmms waveforms as "tonal". Of those the model gets wrong, `--corrections` are drawn
(seeded) and corrected through `Library.set_class`, exactly as right-click > Class does; the
app's own code then builds the dataset (`corrections_survey` over the library's corrections and
the model's readings) and the run (`improve_config`), trained here in-process by the same
Trainer the wizard's process runs. The figures: accuracy on the labelled files left untouched
(by part: drums, melodic, waveforms) before and after, and on the corrected files themselves.
The untouched files are the measure; the corrected ones only say the run learned them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_default_model import melodic_files, signal_files, test_files

from sampletool.audio import load_clips


def labelled(real: Path) -> dict[str, tuple[str, str]]:
    """path -> (true class, part) for the files whose class is known."""
    out: dict[str, tuple[str, str]] = {}
    files, labels = test_files(real)
    for f, c in zip(files, labels, strict=True):
        out[str(f.resolve())] = (c, "drums")
    for f in melodic_files(real)[0]:
        out[str(f.resolve())] = ("tonal", "melodic")
    for f in signal_files(real):
        out[str(f.resolve())] = ("tonal", "waveforms")
    return out


def accuracy(runtime, paths: list[str], truth: dict) -> tuple[dict, np.ndarray]:
    """(accuracy per part and overall, the predicted class of each path) on `paths`."""
    batch = load_clips(paths, seconds=runtime.audio.seconds, sample_rate=runtime.sample_rate)
    probs = runtime.encode_clips(batch.audio).probs
    kept = [paths[i] for i in batch.indices]
    pred = np.array([runtime.class_names[int(i)] for i in probs.argmax(1)])
    right = np.array([pred[j] == truth[p][0] for j, p in enumerate(kept)])
    parts = np.array([truth[p][1] for p in kept])
    out = {part: float(right[parts == part].mean()) for part in sorted(set(parts.tolist()))}
    out["all"] = float(right.mean())
    out["files"] = len(kept)
    return out, pred


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("real", type=Path)
    p.add_argument("--model", default=None, help="bundle (default: the built-in model)")
    p.add_argument("--work", type=Path, default=None, help="where the library's catalogue, the "
                   "dataset and the run go (default: a temporary folder)")  # fmt: skip
    p.add_argument("--corrections", type=int, default=20)
    p.add_argument("--steps", type=int, default=None, help="the run's max steps (default: the "
                   "app's)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    from sampletool.data.dataset import make_dataset
    from sampletool.library import Library
    from sampletool.models.runtime import load_runtime
    from sampletool.training.corrections import corrections_survey, improve_config
    from sampletool.training.trainer import TrainConfig, Trainer

    t0 = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="sampletool-corrections-"))
    runtime = load_runtime(args.model, device="cpu")
    truth = labelled(args.real.resolve())
    lib = Library(args.real.resolve(), runtime, db_path=work / "catalogue.sqlite")
    lib.scan()
    snapshot = lib.snapshot()
    first = {path: i for i, path in enumerate(snapshot.paths) if snapshot.onsets[i] == 0}
    known = sorted(p for p in truth if p in first)
    predicted = {p: snapshot.class_names[int(snapshot.predicted[first[p]])] for p in known}
    wrong = [p for p in known if predicted[p] != truth[p][0]]
    rng = np.random.default_rng(args.seed)
    chosen = sorted(rng.choice(wrong, min(args.corrections, len(wrong)), replace=False).tolist())
    for path in chosen:  # as right-click > Class does, one file at a time
        lib.set_class([path], truth[path][0])
    untouched = [p for p in known if p not in chosen]
    before, _ = accuracy(runtime, untouched, truth)
    before_fixed, _ = accuracy(runtime, chosen, truth)

    found = corrections_survey(lib.corrections(), snapshot.one_shot_readings(),
                               snapshot.class_names, lib.root)  # fmt: skip
    if not found.survey.ok:
        print(f"cannot build the corrections dataset: {found.survey.problem}", file=sys.stderr)
        return 1
    dataset = make_dataset([lib.root], "corrections", out=work / "dataset", survey=found.survey,
                           overwrite=True)  # fmt: skip
    model = {k: v for k, v in runtime.info.doc["model"].items() if k != "num_classes"}
    cfg = improve_config(model, runtime.info.doc["audio"], runtime.path, found)
    cfg["dataset"] = str(dataset)
    if args.steps:
        cfg["max_steps"] = args.steps
    t_train = time.perf_counter()
    result = Trainer(work / "run", TrainConfig.from_dict(cfg), device="cpu").run()
    train_seconds = time.perf_counter() - t_train
    improved = load_runtime(work / "run", device="cpu")
    after, _ = accuracy(improved, untouched, truth)
    after_fixed, _ = accuracy(improved, chosen, truth)
    lib.close()
    out = {
        "model": runtime.name, "labelled_files": len(known), "wrong_before": len(wrong),
        "corrected": [Path(c).name for c in chosen],
        "dataset": {"corrected": len(found.corrected), "files": len(found.survey.items),
                    "val": sum(s == "val" for s in found.survey.splits.values())},
        "run": {"steps": result.step, "reason": result.reason, "seconds": round(train_seconds)},
        "untouched_accuracy": {"before": before, "after": after},
        "corrected_accuracy": {"before": before_fixed["all"], "after": after_fixed["all"]},
        "seconds": round(time.perf_counter() - t0),
    }  # fmt: skip
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"model {runtime.name}: {len(known)} labelled real files, {len(wrong)} wrong; "
          f"{len(chosen)} corrected")  # fmt: skip
    print(f"dataset: {out['dataset']}; run: {result.step} steps ({result.reason}), "
          f"{train_seconds:.0f} s")  # fmt: skip
    print(f"accuracy on the {before['files']} untouched labelled files, before -> after:")
    for part in [k for k in before if k not in ("files",)]:
        print(f"  {part:<10} {before[part]:.1%} -> {after[part]:.1%}")
    print(f"on the {len(chosen)} corrected files: {before_fixed['all']:.1%} -> "
          f"{after_fixed['all']:.1%}")  # fmt: skip
    print(f"({out['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
