"""The installed model bundles as things a user manages: describe, rename, delete, import,
export.

Imports are checked the way loading is (config.json read as JSON, weights as safetensors and
matched against the config's model), before anything is put where bundles are looked for, and
only a bundle's own files are taken from a folder or an archive: never a checkpoint, never a
file outside the bundle's folder, never a link. Nothing here unpickles.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sampletool.errors import BundleError
from sampletool.fileio import atomic_write_text, is_locked
from sampletool.models.bundle import (
    CONFIG_FILE,
    TRAINING_LOCK,
    WEIGHTS_FILE,
    BundleInfo,
    find_bundles,
    read_bundle,
)
from sampletool.paths import BUILTIN_MODELS_DIR, user_models_dir

CONFUSION_FILE = "confusion_matrix.json"
# What a bundle is made of, for export and import: the model, and its training report.
BUNDLE_FILES = (CONFIG_FILE, WEIGHTS_FILE, CONFUSION_FILE, "confusion_matrix.png",
                "metrics.jsonl")  # fmt: skip
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")
MAX_IMPORT_BYTES = 4 << 30  # an archive's bundle files together; more is not a model of ours
MAX_NAME = 64


@dataclass
class ModelEntry:
    """One installed bundle, as the model manager lists it.

    Attributes:
        info: the bundle (name, path, kind, classes, metadata).
        size: bytes of its bundle files.
        created: when its weights were written (ISO 8601, local time).
        builtin: ships with Sample Tool (cannot be renamed or deleted).
        training: a training process is writing it now.
        confusion: its confusion matrix ({"classes", "matrix", "step"}), when it has one: the
            validation's that chose its weights, else (older bundles) its run's latest.
    """

    info: BundleInfo
    size: int
    created: str
    builtin: bool
    training: bool
    confusion: dict | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict:
        m = self.info.metadata.get("metrics", {})
        return m if isinstance(m, dict) else {}

    @property
    def dataset(self) -> str:
        ds = self.info.metadata.get("dataset", {})
        name = ds.get("name") if isinstance(ds, dict) else None
        return str(name) if name else ""


def is_builtin(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is one of the bundles that ship with Sample Tool."""
    try:
        return Path(path).resolve().is_relative_to(BUILTIN_MODELS_DIR.resolve())
    except OSError:
        return False


def describe(info: BundleInfo) -> ModelEntry:
    """What the manager shows of a bundle (reads its folder, not its weights)."""
    size = 0
    for name in BUNDLE_FILES:
        try:
            size += (info.path / name).stat().st_size
        except OSError:
            pass
    try:
        created = time.strftime(
            "%Y-%m-%d %H:%M", time.localtime((info.path / WEIGHTS_FILE).stat().st_mtime)
        )
    except OSError:
        created = ""
    # The bundle's own (its best validation's), else the run's latest beside it.
    confusion = info.metadata.get("confusion")
    if not (isinstance(confusion, dict) and isinstance(confusion.get("matrix"), list)):
        confusion = None
        try:
            doc = json.loads((info.path / CONFUSION_FILE).read_text(encoding="utf-8"))
            if isinstance(doc, dict) and isinstance(doc.get("matrix"), list):
                confusion = doc
        except (OSError, ValueError):
            pass
    return ModelEntry(info, size, created, is_builtin(info.path),
                      is_locked(info.path / TRAINING_LOCK), confusion)  # fmt: skip


def list_models(search_dirs: list[Path] | None = None) -> list[ModelEntry]:
    """Every installed bundle (see `find_bundles`), described."""
    return [describe(info) for info in find_bundles(search_dirs)]


def name_problem(name: str, taken: set[str] | None = None) -> str | None:
    """Why `name` cannot name a new model (None: it can). `taken`: names in use (default: the
    installed bundles' names and the folders in the user's models folder)."""
    name = name.strip()
    if not name:
        return "give the model a name"
    if len(name) > MAX_NAME:
        return f"a name has at most {MAX_NAME} characters"
    if name.startswith(".") or any(c in name for c in '/\\:*?"<>|') or not name.isprintable():
        return 'a name cannot start with "." or hold / \\ : * ? " < > |'
    if taken is None:
        taken = {i.name for i in find_bundles()}
        try:
            taken |= {p.name for p in user_models_dir().iterdir()}
        except OSError:
            pass
    if name in taken or name.casefold() in {t.casefold() for t in taken}:
        return f"a model called {name!r} exists already"
    return None


def free_name(base: str, taken: set[str], fallback: str) -> str:
    """`base` (or `fallback`, where `base` cannot name a model), numbered "-2", "-3"... until
    no model in `taken` has it."""
    if name_problem(base, set()) is not None:
        base = fallback
    name, n = base, 1
    while name_problem(name, taken) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def _check_changeable(path: Path) -> None:
    if is_builtin(path):
        raise BundleError("the built-in model cannot be changed or deleted")
    if is_locked(path / TRAINING_LOCK):
        raise BundleError(f"{path.name} is being trained now; stop its training first")


def rename_bundle(path: str | os.PathLike[str], new_name: str) -> Path:
    """Give a bundle a new name: its folder and its config's name. Returns the new folder.

    Libraries index with it again (a bundle's name is part of the id its vectors are kept
    under).

    Raises:
        BundleError: the built-in model, a run being trained, or a name in use or invalid.
    """
    path = Path(path)
    info = read_bundle(path)
    _check_changeable(path)
    new_name = new_name.strip()
    if new_name == info.name:
        return path
    taken = {i.name for i in find_bundles()} - {info.name}
    taken |= {p.name for p in path.parent.iterdir()} - {path.name}
    problem = name_problem(new_name, taken)
    if problem is not None:
        raise BundleError(problem)
    target = path.parent / new_name
    os.rename(path, target)
    doc = dict(info.doc)
    doc["metadata"] = {**info.metadata, "name": new_name}
    atomic_write_text(target / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
    return target


def delete_bundle(path: str | os.PathLike[str]) -> None:
    """Delete a bundle's folder (and the training run it is, if it is one).

    Raises:
        BundleError: the built-in model, or a run being trained now.
    """
    path = Path(path)
    _check_changeable(path)
    # Out of sight first (one rename), so an interrupted delete never leaves half a bundle
    # where bundles are looked for.
    doomed = path.with_name(f".deleting-{path.name}-{os.getpid()}")
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def export_bundle(path: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """Write a bundle's files into a zip archive (one folder named after it), atomically.

    Raises:
        BundleError: `path` is not a bundle.
    """
    info = read_bundle(path)
    archive = Path(archive)
    if archive.suffix.lower() != ".zip":
        archive = archive.with_name(archive.name + ".zip")
    parent = archive.parent
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".zip", dir=parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name in BUNDLE_FILES:
                if (info.path / name).is_file():
                    z.write(info.path / name, f"{info.path.name}/{name}")
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return archive


def _safe_member(name: str) -> bool:
    parts = Path(name.replace("\\", "/")).parts
    return (
        bool(parts)
        and not name.startswith(("/", "\\"))
        and ".." not in parts
        and (":" not in parts[0])
    )


def _members(
    source: Path, take: Callable[[str], bool] | None = None
) -> Iterator[tuple[str, int, IO[bytes] | Path | None]]:
    """(name inside the source, size, the file or an open stream) of each regular file; the
    third is None for names `take` does not take (all, without `take`)."""
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.is_file() and not p.is_symlink():
                name = p.relative_to(source).as_posix()
                yield name, p.stat().st_size, p if take and take(name) else None
        return
    if source.name.lower().endswith(".zip"):
        try:
            z = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as e:
            raise BundleError(f"{source} is not a readable zip archive ({e})") from None
        with z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                if take and take(info.filename):
                    with z.open(info) as f:
                        yield info.filename, info.file_size, f
                else:
                    yield info.filename, info.file_size, None
        return
    try:
        t = tarfile.open(source)
    except (tarfile.TarError, OSError) as e:
        raise BundleError(f"{source} is not a readable archive ({e})") from None
    with t:
        for member in t:
            if member.isreg():
                stream = t.extractfile(member) if take and take(member.name) else None
                yield member.name, member.size, stream


@contextmanager
def _unpacked(source: Path, into: Path) -> Iterator[tuple[Path, str]]:
    """The bundle's own files from a folder or an archive, copied into a new folder in `into`,
    and the name of the folder that held them (the source's own name when it is the top)."""
    into.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".importing-", dir=into))
    try:
        names = [name for name, _, _ in _members(source)]
        unsafe = [n for n in names if not _safe_member(n)]
        if unsafe:
            raise BundleError(f"{source} holds a file outside its folder ({unsafe[0]}); refused")
        configs = [str(Path(n).parent) for n in names if Path(n).name == CONFIG_FILE]
        if not configs:
            raise BundleError(f"{source} is not a Sample Tool model: it holds no {CONFIG_FILE}")
        if len(configs) > 1:
            raise BundleError(f"{source} holds {len(configs)} models; import them one by one")

        def ours(name: str) -> bool:  # checkpoints, notes, anything else: not part of a bundle
            return str(Path(name).parent) == configs[0] and Path(name).name in BUNDLE_FILES

        total = 0
        for name, size, data in _members(source, ours):
            if data is None:
                continue
            total += size
            if total > MAX_IMPORT_BYTES:
                raise BundleError(f"{source} is too large to be a model")
            if isinstance(data, Path):
                shutil.copyfile(data, tmp / Path(name).name)
            else:
                with open(tmp / Path(name).name, "wb") as out:
                    shutil.copyfileobj(data, out)
        inner = Path(configs[0]).name
        stem = source.name
        for suffix in ARCHIVE_SUFFIXES:
            stem = stem.removesuffix(suffix)
        yield tmp, inner or stem
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def import_bundle(
    source: str | os.PathLike[str], models_dir: str | os.PathLike[str] | None = None
) -> BundleInfo:
    """Copy a bundle (a folder, or a .zip / .tar(.gz) archive of one) into the user's models,
    after checking that it loads. A name in use gets a number ("drums-2").

    Raises:
        BundleError: not a bundle, a damaged one, or an archive that reaches outside itself;
            the sentence says which. Nothing is left behind.
    """
    from sampletool.models.runtime import load_runtime

    source = Path(source)
    if not source.exists():
        raise BundleError(f"{source} does not exist")
    if source.is_file() and not source.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise BundleError(f"{source} is neither a model folder nor a .zip or .tar.gz archive")
    target_root = Path(models_dir) if models_dir is not None else user_models_dir()
    with _unpacked(source, target_root) as (tmp, folder_name):
        try:
            info = read_bundle(tmp)  # a config that is not ours says why
            load_runtime(tmp, device="cpu")  # weights that do not fit it say why
        except BundleError as e:
            raise BundleError(str(e).replace(str(tmp), str(source))) from None
        taken = {i.name for i in find_bundles()} | {p.name for p in target_root.iterdir()}
        named = info.metadata.get("name")
        base = str(named) if named and name_problem(str(named), set()) is None else folder_name
        name = free_name(base, taken, "imported model")
        doc = dict(info.doc)
        doc["metadata"] = {**info.metadata, "name": name}
        atomic_write_text(tmp / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
        target = target_root / name
        os.rename(tmp, target)
    return read_bundle(target)
