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


def _stratified_split(
    labels: np.ndarray, train_ratio: float, rng: np.random.Generator
) -> list[str]:
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
) -> Path:
    """Find every audio file under `data_dirs` and write a dataset folder.

    Args:
        data_dirs: folders to search (all sub-folders).
        name: the dataset's name; the folder is `out` (default: the user's datasets folder / name).
        train_ratio: share of each class that goes to training; the rest is validation.
        classes_from_subfolders: the immediate sub-folders of each data dir are the classes.
        seed: seeds the split.
        warn: called with each warning (classes dropped for having too few files...).
        overwrite: replace a dataset already in the folder (runs trained on it, which resume
            from its manifest, would then train on the new one).

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
    if not data_dirs:
        raise DatasetError("no data folder given")
    root = Path(out) if out is not None else user_data_dir() / "datasets" / name
    if (root / MANIFEST).exists() and not overwrite:
        raise DatasetError(
            f"a dataset is already in {root}; choose another name (or --out), or replace it "
            "with --overwrite"
        )
    warn = warn or (lambda _msg: None)
    started = time.time()
    walk_errors: list[tuple[str, str]] = []
    items: list[tuple[str, str]] = []  # (path, class name or "")
    for d in map(Path, data_dirs):
        if not d.is_dir():
            raise DatasetError(f"{d} is not a folder" if d.exists() else f"{d} does not exist")
        if classes_from_subfolders:
            subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            if not subs:
                raise DatasetError(
                    f"{d} has no sub-folders; with --classes-from-subfolders each sub-folder "
                    "is a class"
                )
            for sub in subs:
                items += [(str(p.resolve()), sub.name) for p in find_audio_files(sub, walk_errors)]
        else:
            items += [(str(p.resolve()), "") for p in find_audio_files(d, walk_errors)]
    items = list(dict.fromkeys(items))  # the same file reached twice counts once
    if not items:
        raise DatasetError("no audio files found in " + ", ".join(str(d) for d in data_dirs))

    failures: list[tuple[str, str]] = list(walk_errors)
    good: list[tuple[str, str]] = []
    reasons = _probe_all([p for p, _ in items], workers, progress, cancel)
    check_cancel(cancel, "making the dataset was cancelled")
    for (path, cls), reason in zip(items, reasons, strict=True):
        if reason is None:
            good.append((path, cls))
        else:
            failures.append((path, reason))
    if not good:
        raise DatasetError(f"none of the {len(items)} audio files could be read")

    if classes_from_subfolders:
        counts = Counter(c for _, c in good)
        small = sorted(c for c, n in counts.items() if n < 2)
        for c in small:
            warn(
                f"class {c!r} has only {counts[c]} readable file; it is left out (2 or more needed)"
            )
        good = [(p, c) for p, c in good if c not in small]
        class_names = sorted({c for _, c in good})
        if len(class_names) < 2:
            raise DatasetError(
                f"a classifier needs at least 2 classes with 2+ files each; found "
                f"{len(class_names)} ({', '.join(class_names) or 'none'})"
            )
        labels = np.array([class_names.index(c) for _, c in good])
    else:
        class_names = []
        labels = np.full(len(good), -1)
        if len(good) < 2:
            raise DatasetError("a dataset needs at least 2 readable files")

    splits = _stratified_split(labels, train_ratio, np.random.default_rng(seed))
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
        "data_dirs": [str(Path(d).resolve()) for d in data_dirs],
        "classes_from_subfolders": classes_from_subfolders,
        "class_names": class_names,
        "train_ratio": train_ratio,
        "seed": seed,
        "files": len(good),
        "train": splits.count("train"),
        "val": splits.count("val"),
        "per_class": per_class,
        "failed": [{"path": p, "reason": r} for p, r in failures],
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
    labels = np.array([class_names.index(r["class"]) if r["class"] else -1 for r in rows])
    return Dataset(
        root=root,
        paths=[r["path"] for r in rows],
        labels=labels,
        splits=[r["split"] for r in rows],
        class_names=class_names,
    )
