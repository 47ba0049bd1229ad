"""The engine work the train wizard and the model manager run off the GUI thread: plain
functions, no Qt."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path


def survey(folders: list[str], labels: str, progress=None, cancel=None):
    """What the folders hold for training (a `sampletool.data.dataset.Survey`)."""
    from sampletool.data.dataset import survey_folders

    return survey_folders(folders, labels, progress=progress, cancel=cancel)


@dataclass
class Installed:
    """The installed models and the training runs in the user's models folder."""

    models: list  # sampletool.models.store.ModelEntry
    runs: list  # sampletool.training.runs.RunState
    taken: set[str]  # names a new model cannot have
    kinds: list[tuple[str, str, tuple[str, ...]]]  # (kind, description, its sizes)


def installed() -> Installed:
    from sampletool.models.kinds import SIZES, get_kind, kind_names
    from sampletool.models.store import list_models
    from sampletool.paths import user_models_dir
    from sampletool.training.runs import find_runs

    models = list_models()
    runs = find_runs([user_models_dir()])
    taken = {m.info.name for m in models} | {r.name for r in runs}
    try:
        taken |= {p.name for p in user_models_dir().iterdir()}
    except OSError:
        pass
    kinds = []
    for name in kind_names():
        try:
            kind = get_kind(name)
        except Exception:  # a kind whose module is broken is not offered
            continue
        kinds.append((name, kind.description, tuple(s for s in SIZES if s in kind.presets)))
    return Installed(models, runs, taken, kinds)


def sample_files(items: list[tuple[str, str]], n: int, seed: int = 0) -> list[str]:
    """Up to `n` files for timing training steps, spread over the classes."""
    rng = random.Random(seed)
    by_class: dict[str, list[str]] = {}
    for path, cls in items:
        by_class.setdefault(cls, []).append(path)
    for paths in by_class.values():
        rng.shuffle(paths)
    out: list[str] = []
    while len(out) < n and any(by_class.values()):
        for paths in by_class.values():
            if paths and len(out) < n:
                out.append(paths.pop())
    return out


def write_dataset(survey, name: str, val_share: float, seed: int = 0) -> Path:
    """The survey as a dataset folder in the user's datasets (a free folder name)."""
    from sampletool.data.dataset import make_dataset
    from sampletool.paths import user_data_dir

    root = user_data_dir() / "datasets"
    out, n = root / name, 1
    while out.exists():
        n += 1
        out = root / f"{name}-{n}"
    return make_dataset(survey.data_dirs, name, out=out, train_ratio=1.0 - val_share, seed=seed,
                        survey=survey)  # fmt: skip


def corrections(library, snapshot):
    """The user's corrections in an open library and the model's readings of its other
    one-shots, as a fine-tuning dataset's survey (`sampletool.training.corrections`)."""
    from sampletool.training.corrections import corrections_survey

    return corrections_survey(library.corrections(), snapshot.one_shot_readings(),
                              snapshot.class_names, library.root)  # fmt: skip


def bundle_settings(info) -> tuple[dict, dict, tuple[str, ...]]:
    """A bundle's model settings (without its class count: the dataset's classes decide, as
    `sampletool train --init-from` does), audio settings and classes, from its `BundleInfo`."""
    model = {k: v for k, v in dict(info.doc.get("model", {})).items() if k != "num_classes"}
    return model, dict(info.doc.get("audio", {})), info.class_names


def run_history(logdir: str):
    from ui.training.session import History

    return History.read(Path(logdir))
