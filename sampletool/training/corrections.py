"""Improve a model with its user's corrections: the files whose class the user set (right-click
> Class in the app), plus the files the model was already sure of, as a fine-tuning dataset.

    found = corrections_survey(corrected, readings, class_names, root)
    make_dataset([root], name, survey=found.survey)
    config = improve_config(model, audio, bundle, found)        # a TrainConfig dict

Why both: the corrected files teach what the model got wrong; the confident ones (the model's
own readings, at `MIN_CONFIDENCE` or more, up to `PER_CLASS` a class) keep it from forgetting
what it got right, and they are the whole validation split, so the checkpoint kept is the one
that learned the corrections without losing the rest. The corrected files all train, drawn
often enough to make about a third of each batch. The dataset keeps every class of the model
(some may have no file), so the classifier and the library's vectors stay comparable. The
model keeps its calibration: a temperature fitted on a validation split of the model's own
sure readings would only make it surer of everything.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sampletool.data.dataset import Survey, stratified_split


@dataclass
class Corrections:
    """What `corrections_survey` found: the dataset's survey, and the corrected files in it."""

    survey: Survey
    corrected: list[str] = field(default_factory=list)


MIN_CONFIDENCE = 0.9  # the model's own reading joins the data at this confidence or more
PER_CLASS = 150  # at most this many confident files a class (a spread, by a seeded draw)
VAL_SHARE = 0.2  # of the confident files
CORRECTED_SHARE = 1 / 3  # of each batch, drawn from the corrected files
LR = 2e-4
MAX_STEPS, EVAL_EVERY = 400, 50


def corrections_survey(
    corrected: Mapping[str, str],
    readings: Iterable[tuple[str, str, float]],
    class_names: Sequence[str],
    root: str | Path,
    seed: int = 0,
) -> Corrections:
    """The fine-tuning data: a `Survey` with its own split and the model's classes.

    Args:
        corrected: path -> the class the user gave it (classes the model lacks are left out).
        readings: (path, the model's likeliest class, its confidence) of the other files;
            files among `corrected` are skipped.
        class_names: the model's classes, in its order.
        root: the library folder (the dataset's source, for its summary).
    """
    survey = Survey([str(root)], "corrections", classes=list(class_names))
    # Resolved, as every dataset's paths are (the trainer matches the weights by them).
    given = {os.path.realpath(p): c for p, c in corrected.items()}
    fixed = {p: c for p, c in given.items() if c in class_names and Path(p).is_file()}
    gone = sum(1 for p in given if not Path(p).is_file())
    unknown = sum(1 for p, c in given.items() if c not in class_names and Path(p).is_file())
    if not fixed:
        survey.problem = ("no corrections yet: right-click a sample whose class is wrong and "
                          "choose Class > (its class), then come back")  # fmt: skip
        return Corrections(survey)
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = {}
    for path, cls, confidence in readings:
        path = os.path.realpath(path)
        # A file the user corrected (even to a class this model lacks) is no reading to trust.
        if path not in given and cls in class_names and confidence >= MIN_CONFIDENCE:
            by_class.setdefault(cls, []).append(path)
    kept: list[tuple[str, str]] = []
    for cls in class_names:
        paths = sorted(set(by_class.get(cls, [])))
        rng.shuffle(paths)
        kept += [(p, cls) for p in paths[:PER_CLASS]]
    survey.items = sorted(fixed.items()) + kept
    survey.splits = {p: "train" for p in fixed}
    labels = np.array([class_names.index(c) for _, c in kept])
    for (path, _cls), split in zip(kept, stratified_split(labels, 1 - VAL_SHARE, rng), strict=True):
        survey.splits[path] = split
    if "val" not in survey.splits.values():
        survey.problem = (
            f"the model is sure (at {MIN_CONFIDENCE:.0%} or more) of too few other "
            "samples to check that it keeps what it knows; scan more samples first"
        )
        return Corrections(survey, sorted(fixed))
    counts = Counter(c for _, c in sorted(fixed.items()))
    survey.warnings.append(
        f"{len(fixed)} corrected ({', '.join(f'{n} {c}' for c, n in counts.most_common())}) "
        f"and {len(kept)} samples the model is sure of, which keep what it knows"
    )
    shown = set(fixed.values()) | {c for _, c in kept}
    missing = [c for c in class_names if c not in shown]
    if missing:
        survey.warnings.append(
            f"no sample here is {_listed(missing)} (none corrected to it, none the model is sure "
            "of): the improved model keeps the class but may hear it less often"
        )
    if gone:
        survey.warnings.append(f"{gone} corrected files are no longer there; they are left out")
    if unknown:
        survey.warnings.append(f"{unknown} files have a class this model does not have; they "
                               "are left out")  # fmt: skip
    return Corrections(survey, sorted(fixed))


def improve_schedule(max_steps: int = 0, eval_every: int = 0) -> tuple[int, int]:
    """(max steps, steps between validations) of a corrections fine-tune, 0 meaning its own:
    MAX_STEPS, validated every EVAL_EVERY, and at least four times when cut shorter."""
    max_steps = max_steps or MAX_STEPS
    return max_steps, eval_every or min(EVAL_EVERY, max(max_steps // 4, 1))


def _listed(names: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def improve_config(
    model: Mapping, audio: Mapping, bundle: str | Path, corrections: Corrections
) -> dict:
    """The fine-tuning run's TrainConfig as a dict (its dataset left to fill in), for a bundle's
    model settings (without num_classes), its audio settings and its `Corrections`."""
    n_fixed = len(corrections.corrected)
    n_other = sum(1 for p, s in corrections.survey.splits.items() if s == "train") - n_fixed
    weight = max(1.0, CORRECTED_SHARE / (1 - CORRECTED_SHARE) * max(n_other, 1) / max(n_fixed, 1))
    max_steps, eval_every = improve_schedule()
    return {
        "dataset": "", "model": dict(model), "audio": dict(audio), "batch_size": 32,
        "lr": LR, "max_steps": max_steps, "eval_every": eval_every, "patience": 2,
        "init_from": str(bundle), "calibration": "keep",
        "source_weights": {p: round(weight, 3) for p in corrections.corrected},
    }  # fmt: skip
