"""Model bundles: a folder with `config.json` and `weights.safetensors`, nothing else needed.

Finding bundles by name or path and reading their config costs no torch (the CLI's `models`
command and the GUI's model menu use only that); saving and loading weights imports torch and
safetensors when called. Loading never unpickles: the config is JSON and the weights are
safetensors, so a bundle shared by a stranger can carry numbers, not code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sampletool.errors import BundleError
from sampletool.fileio import atomic_write, atomic_write_text
from sampletool.paths import BUILTIN_MODELS_DIR, DEFAULT_MODEL_NAME, model_search_dirs

if TYPE_CHECKING:
    import torch

    from sampletool.features import AudioConfig

FORMAT = "sampletool-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
# Held by the trainer while it writes a bundle that is also a training run's log folder.
TRAINING_LOCK = "run.lock"


@dataclass(frozen=True)
class BundleInfo:
    """What a bundle's config.json says, read without its weights.

    Attributes:
        name: the bundle's name (its metadata's, else its folder's).
        path: the bundle folder.
        kind: the model kind (a key of `sampletool.models.kinds`).
        class_names: the classifier's classes, in output order (empty: no classifier).
        description: one line from its metadata.
        doc: the whole parsed config.json.
    """

    name: str
    path: Path
    kind: str
    class_names: tuple[str, ...]
    description: str = ""
    doc: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def metadata(self) -> dict:
        return dict(self.doc.get("metadata", {}))


def read_bundle_config(directory: str | os.PathLike[str]) -> dict:
    """Read and check a bundle's config.json without touching the weights.

    Raises:
        BundleError: the folder is missing, is not a bundle, or is from a newer format.
    """
    d = Path(directory)
    if not d.exists():
        raise BundleError(f"model folder {d} does not exist")
    if not d.is_dir():
        raise BundleError(f"{d} is a file, not a model folder")
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        others = sorted(p.name for p in d.iterdir())[:3] if os.access(d, os.R_OK) else []
        hint = f" (it holds {', '.join(others)}...)" if others else " (it is empty)"
        raise BundleError(
            f"{d} is not a Sample Tool model: no {CONFIG_FILE}{hint}; a model folder holds "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    try:
        doc = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{cfg_path} cannot be read as JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"{cfg_path} is not a Sample Tool model config")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"{cfg_path} has no valid format_version")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{d} was made by a newer Sample Tool (bundle format {version}; this version reads "
            f"format {FORMAT_VERSION} and older): please update Sample Tool"
        )
    return doc


def read_bundle(directory: str | os.PathLike[str]) -> BundleInfo:
    """A bundle's description from its config.json (see `read_bundle_config`)."""
    d = Path(directory)
    doc = read_bundle_config(d)
    model = doc.get("model")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return BundleInfo(
        name=str(name) if name else d.resolve().name,
        path=d,
        kind=str(model.get("kind", "?")) if isinstance(model, dict) else "?",
        class_names=tuple(str(c) for c in doc.get("class_names", []) or []),
        description=str(meta.get("description", "")) if isinstance(meta, dict) else "",
        doc=doc,
    )


def find_bundles(search_dirs: Iterable[Path] | None = None) -> list[BundleInfo]:
    """Every readable bundle in the search folders; names that repeat keep the first one."""
    found: dict[str, BundleInfo] = {}
    for root in search_dirs if search_dirs is not None else model_search_dirs():
        try:
            children = sorted(p for p in Path(root).iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children:
            try:
                info = read_bundle(child)
            except BundleError:
                continue
            found.setdefault(info.name, info)
    return list(found.values())


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """A bundle folder from a path, an installed bundle's name, or None for the default model.

    Raises:
        BundleError: nothing by that path or name, or no default model is installed.
    """
    if model is None:
        default = BUILTIN_MODELS_DIR / DEFAULT_MODEL_NAME
        if (default / CONFIG_FILE).is_file():
            return default
        raise BundleError(
            f"no model given and the built-in default model is missing ({default}); "
            "name one with --model DIR"
        )
    p = Path(model)
    if p.exists() or os.sep in str(model) or (os.altsep and os.altsep in str(model)):
        return p
    bundles = find_bundles()
    for info in bundles:
        if info.name == str(model):
            return info.path
    names = ", ".join(i.name for i in bundles) or "none installed"
    raise BundleError(f"no model folder or installed model named {model!r} (installed: {names})")


def model_id(info: BundleInfo) -> str:
    """Names a bundle's vectors in a library catalogue: the same bytes, the same id.

    A retrained or edited bundle gets a new id, so its vectors never mix with the old ones'.
    """
    digest = hashlib.sha1()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        digest.update((info.path / name).read_bytes())
    return f"{info.name[:24]}-{digest.hexdigest()[:12]}"


def save_bundle(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    config: Any,
    audio: AudioConfig,
    class_names: Iterable[str] = (),
    metadata: dict | None = None,
) -> Path:
    """Write a bundle; each file is replaced atomically, so a crash never leaves half a file.

    Weights are written before the config, so a folder with a config always has weights that
    belong to a config at least as new.
    """
    from safetensors.torch import save_file

    class_names = list(class_names)
    if len(class_names) != config.num_classes:
        raise ValueError(
            f"{len(class_names)} class names for a model with {config.num_classes} classes"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors, str(p)))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config.to_dict(),
        "audio": audio.to_dict(),
        "class_names": class_names,
        "metadata": metadata or {},
    }
    atomic_write_text(directory / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
    return directory


def load_weights(info: BundleInfo, model: torch.nn.Module) -> None:
    """Load the bundle's weights into `model` (built from its config), on the CPU.

    Raises:
        BundleError: the weights are missing, damaged, or do not match the config; one
            sentence says which.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = info.path / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{info.path} has a config but no {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{weights} is damaged or not a safetensors file ({e})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {list(state[k].shape)} but the config needs {list(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if wrong:
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {wrong[0]})")
    if problems:
        raise BundleError(
            f"the weights in {info.path} do not match its config: " + "; ".join(problems)
        )
    model.load_state_dict(state)
