"""Datasets from folders: a manifest (path, class, split) and a summary, written to a folder.

`sampletool make-dataset` and the train wizard both call `make_dataset`.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sampletool.errors import SampleToolError
from sampletool.fileio import atomic_write, atomic_write_text
from sampletool.progress import Progress, check_cancel

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".bwf", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".mp3", ".w64",
     ".rf64", ".caf", ".au", ".snd"}
)  # fmt: skip
MANIFEST = "manifest.csv"
SUMMARY = "summary.json"


class DatasetError(SampleToolError):
    """A dataset that cannot be made or used, said in one sentence."""


@dataclass
class Dataset:
    """A dataset folder's manifest, in memory.

    Attributes:
        root: the dataset folder.
        paths: audio files (absolute).
        labels: class index per file, -1 for no class.
        splits: "train" or "val" per file.
        class_names: class names, in index order (empty for an unlabelled dataset).
    """

    root: Path
    paths: list[str]
    labels: np.ndarray
    splits: list[str]
    class_names: list[str] = field(default_factory=list)

    def indices(self, split: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)


def find_audio_files(folder: Path, errors: list[tuple[str, str]] | None = None) -> list[Path]:
    """Audio files under `folder` (all sub-folders, symlink loops avoided), sorted.

    Files are picked by extension here (cheap on 100k files); their content is checked when
    they are read. Folders that cannot be listed are added to `errors` as (path, reason).
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()

    def onerror(e: OSError) -> None:
        if errors is not None:
            errors.append((str(e.filename), f"folder cannot be read ({e.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop or a second link to a folder already walked
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith("._"):
                found.append(Path(dirpath) / name)
    return found


def _probe(path: str) -> str | None:
    """None if the file opens as audio with at least one frame, else the reason."""
    from sampletool.audio import AudioError, open_audio

    try:
        open_audio(path).close()
    except AudioError as e:
        return e.reason
    return None


def stratified_split(labels: np.ndarray, train_ratio: float, rng: np.random.Generator) -> list[str]:
    splits = ["train"] * len(labels)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * (1 - train_ratio)))
        # Every class with 2+ files gets at least one file on each side.
        n_val = min(max(n_val, 1), len(idx) - 1) if len(idx) >= 2 else 0
        for i in idx[:n_val]:
            splits[i] = "val"
    return splits


LABELS = ("subfolders", "names", "none", "librispeech", "esc50")
# ESC-50's fold that "esc50" labels hold out for validation (the others train).
ESC50_VAL_FOLD = 5
# A class needs a file on each side of the split; fewer and it is left out.
MIN_CLASS_FILES = 2
# Warn when the largest class has this many times the files of the smallest.
IMBALANCE_RATIO = 5.0


@dataclass
class Survey:
    """What a set of folders holds for training, found before anything is written or trained.

    Attributes:
        data_dirs: the folders, as given.
        labels: how classes were found: "subfolders" (each data folder's immediate
            sub-folders), "names" (the drum words in file and folder names, as
            `sampletool.data.labels.drum_class` reads them) or "none" (no classes).
        items: the files to train on: (resolved path, class name; "" without classes).
        failed: files that cannot be read and folders that cannot be listed: (path, reason).
        repeated: files reached through more than one folder, counted once.
            "librispeech" (LibriSpeech's speaker/chapter/*.flac: the speaker is the class)
            or "esc50" (ESC-50's meta/esc50.csv and audio/: its category is the class and
            its folds the split, fold `ESC50_VAL_FOLD` for validation).
        unlabelled: files ("names" labels) whose names name no class; left out.
        small: classes left out for having fewer than `MIN_CLASS_FILES` readable files, with
            their counts.
        problem: why these folders cannot make a dataset (None: they can).
        warnings: things worth knowing before training (imbalance, few files...).
        splits: path -> "train" or "val" where the layout decides the split (ESC-50's folds);
            empty: a stratified random split.
        classes: the classes in order, where the source decides them (a model's classes, when
            its user's corrections fine-tune it: some may have no file); empty: those found,
            sorted.
    """

    data_dirs: list[str]
    labels: str
    items: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    repeated: int = 0
    unlabelled: list[str] = field(default_factory=list)
    small: dict[str, int] = field(default_factory=dict)
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return list(self.classes) or sorted({c for _, c in self.items if c})

    @property
    def counts(self) -> dict[str, int]:
        """Files per class (one entry, "", without classes)."""
        return dict(sorted(Counter(c for _, c in self.items).items()))

    @property
    def ok(self) -> bool:
        return self.problem is None


def _class_from_names(path: Path, under: Path) -> str | None:
    """The drum class the file's name says, else the nearest folder name that says one."""
    from sampletool.data.labels import drum_class, folder_class

    cls = drum_class(path.name)
    for folder in reversed(path.relative_to(under).parts[:-1]):
        cls = cls or folder_class(folder)
    return cls


def _librispeech(d: Path, errors: list[tuple[str, str]]) -> list[tuple[str, str | None]]:
    """LibriSpeech's layout: .../SPEAKER/CHAPTER/SPEAKER-CHAPTER-NNNN.flac; the speaker is the
    class (files less deep have none)."""
    out: list[tuple[str, str | None]] = []
    for p in find_audio_files(d, errors):
        parts = p.relative_to(d).parts
        out.append((str(p.resolve()), f"speaker {parts[-3]}" if len(parts) >= 3 else None))
    return out


def _esc50(d: Path, survey: Survey) -> list[tuple[str, str | None]] | None:
    """ESC-50's layout: meta/esc50.csv (filename, fold, category, ...) naming files in audio/.
    None, with `survey.problem` set, when the folder is not one."""
    meta = d / "meta" / "esc50.csv"
    try:
        with open(meta, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        survey.problem = f"{d} is not an ESC-50 folder: it has no meta/esc50.csv"
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        survey.problem = f"{meta} cannot be read ({e})"
        return None
    if not rows or not {"filename", "fold", "category"} <= set(rows[0]):
        survey.problem = f"{meta} is not ESC-50's table (no filename, fold and category columns)"
        return None
    out: list[tuple[str, str | None]] = []
    for row in rows:
        path = d / "audio" / row["filename"]
        if not path.is_file():
            survey.failed.append((str(path), "listed in meta/esc50.csv but not in audio/"))
            continue
        resolved = str(path.resolve())
        out.append((resolved, row["category"] or None))
        fold = row["fold"].strip()
        survey.splits[resolved] = "val" if fold == str(ESC50_VAL_FOLD) else "train"
    return out


def survey_folders(
    data_dirs: Sequence[str | os.PathLike[str]],
    labels: str = "subfolders",
    workers: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Survey:
    """Find the audio files under `data_dirs`, label them, check that each can be read, and say
    whether they make a dataset. Reads every file's header; writes and moves nothing.

    Problems (no folder, a folder that vanished, no audio, nothing readable, one class only)
    are returned in `Survey.problem`, not raised, so a caller can show them beside what was
    found.

    Raises:
        DatasetError: `labels` is not one of `LABELS`.
        Cancelled: `cancel` was set while the files were checked.
    """
    if labels not in LABELS:
        raise DatasetError(f"labels must be one of {', '.join(LABELS)}, not {labels!r}")
    survey = Survey([str(d) for d in data_dirs], labels)
    if not data_dirs:
        survey.problem = "no data folder given"
        return survey
    found: list[tuple[str, str | None]] = []  # (path, class; None: names name none)
    for d in map(Path, data_dirs):
        if not d.is_dir():
            survey.problem = f"{d} is not a folder" if d.exists() else f"{d} does not exist"
            return survey
        try:
            with os.scandir(d) as entries:
                next(entries, None)
        except OSError as e:
            survey.problem = f"{d} cannot be read ({e.strerror})"
            return survey
        walk_errors: list[tuple[str, str]] = []
        if labels == "subfolders":
            subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            if not subs:
                survey.problem = (f"{d} has no sub-folders; to take classes from sub-folders, "
                                  "each sub-folder must hold one class")  # fmt: skip
                return survey
            for sub in subs:
                found += [(str(p.resolve()), sub.name) for p in find_audio_files(sub, walk_errors)]
        elif labels == "librispeech":
            found += _librispeech(d, walk_errors)
        elif labels == "esc50":
            rows = _esc50(d, survey)
            if rows is None:
                return survey
            found += rows
        elif labels == "names":
            found += [(str(p.resolve()), _class_from_names(p, d))
                      for p in find_audio_files(d, walk_errors)]  # fmt: skip
        else:
            found += [(str(p.resolve()), "") for p in find_audio_files(d, walk_errors)]
        survey.failed += walk_errors
    first: dict[str, str | None] = {}
    for path, cls in found:  # the same file reached twice counts once, with its first class
        first.setdefault(path, cls)
    survey.repeated = len(found) - len(first)
    if not first:
        survey.problem = "no audio files in " + ", ".join(str(d) for d in data_dirs)
        return survey

    paths = list(first)
    reasons = _probe_all(paths, workers, progress, cancel)
    check_cancel(cancel, "checking the files was cancelled")
    good: list[tuple[str, str | None]] = []
    for path, reason in zip(paths, reasons, strict=True):
        if reason is None:
            good.append((path, first[path]))
        else:
            survey.failed.append((path, reason))
    if not good:
        survey.problem = f"none of the {len(paths)} audio files could be read"
        return survey
    survey.unlabelled = [p for p, c in good if c is None]
    items = [(p, c) for p, c in good if c is not None]
    if labels == "none":
        survey.items = items
        if len(items) < 2:
            survey.problem = "a dataset needs at least 2 readable files"
        return survey

    counts = Counter(c for _, c in items)
    survey.small = {c: n for c, n in sorted(counts.items()) if n < MIN_CLASS_FILES}
    survey.items = [(p, c) for p, c in items if c not in survey.small]
    for c, n in survey.small.items():
        survey.warnings.append(f"class {c!r} has only {n} readable file; it is left out "
                               f"({MIN_CLASS_FILES} or more needed)")  # fmt: skip
    if survey.unlabelled:
        why = {"librispeech": "are not in a SPEAKER/CHAPTER folder",
               "esc50": "have no category in meta/esc50.csv"}.get(
            labels, "have no drum word in their name or folder")  # fmt: skip
        survey.warnings.append(f"{len(survey.unlabelled)} files {why}; they are left out")
    kept = survey.counts
    if len(kept) < 2:
        survey.problem = (f"a classifier needs at least 2 classes with {MIN_CLASS_FILES}+ files "
                          f"each; found {len(kept)} ({', '.join(kept) or 'none'})")  # fmt: skip
        return survey
    big, small = max(kept, key=kept.__getitem__), min(kept, key=kept.__getitem__)
    if kept[big] >= IMBALANCE_RATIO * kept[small]:
        survey.warnings.append(
            f"the classes are unbalanced: {big!r} has {kept[big]} files, {small!r} only "
            f"{kept[small]}; training weighs the classes evenly, but a class with few files "
            "is learned from few examples"
        )
    return survey


def make_dataset(
    data_dirs: Sequence[str | os.PathLike[str]],
    name: str,
    out: str | os.PathLike[str] | None = None,
    train_ratio: float = 0.9,
    classes_from_subfolders: bool = False,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    warn: Callable[[str], None] | None = None,
    overwrite: bool = False,
    labels: str | None = None,
    survey: Survey | None = None,
) -> Path:
    """Find every audio file under `data_dirs` and write a dataset folder.

    Args:
        data_dirs: folders to search (all sub-folders).
        name: the dataset's name; the folder is `out` (default: the user's datasets folder / name).
        train_ratio: share of each class that goes to training; the rest is validation.
        classes_from_subfolders: the immediate sub-folders of each data dir are the classes
            (the same as `labels="subfolders"`).
        seed: seeds the split.
        warn: called with each warning (classes dropped for having too few files...).
        overwrite: replace a dataset already in the folder (runs trained on it, which resume
            from its manifest, would then train on the new one).
        labels: one of `LABELS` (see `Survey.labels`); default: from
            `classes_from_subfolders`.
        survey: what `survey_folders` found in `data_dirs` already (its files are not read
            again).

    Returns:
        The dataset folder, holding manifest.csv (path, class, split) and summary.json.

    Raises:
        DatasetError: no folder, no audio, only unreadable files, a single class, a dataset
            already there (without `overwrite`), ...
        Cancelled: `cancel` was set while the files were checked (nothing is written).
    """
    from sampletool.paths import user_data_dir

    if not name or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise DatasetError(f"invalid dataset name {name!r}")
    if not 0.0 < train_ratio < 1.0:
        raise DatasetError(f"--train-ratio must be between 0 and 1, got {train_ratio}")
    root = Path(out) if out is not None else user_data_dir() / "datasets" / name
    if (root / MANIFEST).exists() and not overwrite:
        raise DatasetError(
            f"a dataset is already in {root}; choose another name (or --out), or replace it "
            "with --overwrite"
        )
    started = time.time()
    if survey is None:
        labels = labels or ("subfolders" if classes_from_subfolders else "none")
        survey = survey_folders(data_dirs, labels, workers, progress, cancel)
    for message in survey.warnings:
        (warn or (lambda _msg: None))(message)
    if survey.problem is not None:
        raise DatasetError(survey.problem)
    good = survey.items
    class_names = survey.class_names
    labels_arr = np.array([class_names.index(c) if c else -1 for _, c in good])
    if survey.splits:  # the layout's own split (ESC-50's folds)
        splits = [survey.splits[p] for p, _ in good]
        if "train" not in splits or "val" not in splits:
            raise DatasetError("the layout's split leaves the training or validation side empty")
    else:
        splits = stratified_split(labels_arr, train_ratio, np.random.default_rng(seed))
    root.mkdir(parents=True, exist_ok=True)

    def write_manifest(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["path", "class", "split"])
            w.writerows((p, c, s) for (p, c), s in zip(good, splits, strict=True))

    atomic_write(root / MANIFEST, write_manifest)
    per_class = {
        c: {s: sum(1 for (_, cc), ss in zip(good, splits, strict=True) if cc == c and ss == s)
            for s in ("train", "val")}
        for c in (class_names or [""])
    }  # fmt: skip
    summary = {
        "name": name,
        "data_dirs": [str(Path(d).resolve()) for d in survey.data_dirs],
        "labels": survey.labels,
        "classes_from_subfolders": survey.labels == "subfolders",
        "class_names": class_names,
        "train_ratio": train_ratio,
        "seed": seed,
        "files": len(good),
        "train": splits.count("train"),
        "val": splits.count("val"),
        "per_class": per_class,
        "failed": [{"path": p, "reason": r} for p, r in survey.failed],
        "repeated": survey.repeated,
        "unlabelled": len(survey.unlabelled),
        "left_out_classes": survey.small,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - started, 3),
    }
    atomic_write_text(root / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return root


def _probe_all(
    paths: list[str], workers: int | None, progress: Progress | None, cancel: threading.Event | None
) -> list[str | None]:
    from sampletool.audio import _context, _default_workers

    n_workers = _default_workers() if workers is None else workers
    if len(paths) < 64 or n_workers == 0:
        out = []
        for i, p in enumerate(paths):
            out.append(_probe(p))
            if progress:
                progress(i + 1, len(paths), p)
            if cancel is not None and cancel.is_set():
                break
        return out + [None] * (len(paths) - len(out))
    out = []
    with _context().Pool(n_workers) as pool:
        for i, r in enumerate(pool.imap(_probe, paths, chunksize=32)):
            out.append(r)
            if progress:
                progress(i + 1, len(paths), paths[i])
            if cancel is not None and cancel.is_set():
                pool.terminate()
                break
    return out + [None] * (len(paths) - len(out))


def load_dataset(root: str | os.PathLike[str]) -> Dataset:
    """Read a dataset folder written by `make_dataset`.

    Raises:
        DatasetError: no manifest, or a manifest that is not ours.
    """
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DatasetError(f"{root} is not a dataset folder (no {MANIFEST}); make one with "
                           "'sampletool make-dataset'")  # fmt: skip
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{manifest} cannot be read ({e})") from None
    if not rows or not {"path", "class", "split"} <= set(rows[0]):
        raise DatasetError(f"{manifest} is empty or has no path, class and split columns")
    class_names = sorted({r["class"] for r in rows if r["class"]})
    try:  # a dataset whose classes were given in order (see `Survey.classes`)
        named = json.loads((root / SUMMARY).read_text(encoding="utf-8")).get("class_names")
    except (OSError, ValueError, AttributeError):
        named = None
    if isinstance(named, list) and set(class_names) <= set(map(str, named)):
        class_names = [str(c) for c in named]
    labels = np.array([class_names.index(r["class"]) if r["class"] else -1 for r in rows])
    return Dataset(
        root=root,
        paths=[r["path"] for r in rows],
        labels=labels,
        splits=[r["split"] for r in rows],
        class_names=class_names,
    )
