"""Finding model bundles by name or path and reading their config.json, without torch.

The CLI's `models` command and the GUI's model menu use this; loading weights is
`sampletool.models.bundle`'s job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sampletool.errors import BundleError
from sampletool.paths import BUILTIN_MODELS_DIR, DEFAULT_MODEL_NAME, model_search_dirs

FORMAT = "sampletool-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


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


def bundle_name(directory: Path, doc: dict) -> str:
    name = doc.get("metadata", {}).get("name")
    return str(name) if name else directory.resolve().name


@dataclass(frozen=True)
class BundleInfo:
    """What `find_bundles` reports of a bundle without loading its weights."""

    name: str
    path: Path
    kind: str
    class_names: tuple[str, ...]
    description: str = ""


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
                doc = read_bundle_config(child)
            except BundleError:
                continue
            name = bundle_name(child, doc)
            if name not in found:
                found[name] = BundleInfo(
                    name=name,
                    path=child,
                    kind=str(doc.get("model", {}).get("kind", "?")),
                    class_names=tuple(doc.get("class_names", [])),
                    description=str(doc.get("metadata", {}).get("description", "")),
                )
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
    for info in find_bundles():
        if info.name == str(model):
            return info.path
    names = ", ".join(i.name for i in find_bundles()) or "none installed"
    raise BundleError(f"no model folder or installed model named {model!r} (installed: {names})")
