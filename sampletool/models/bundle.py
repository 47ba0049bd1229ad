"""Model bundles: a folder with `config.json` and `weights.safetensors`, nothing else needed.

Loading never unpickles: the config is JSON and the weights are safetensors, so a bundle shared
by a stranger can carry numbers, not code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sampletool.errors import BundleError
from sampletool.features import AudioConfig
from sampletool.models import build_model
from sampletool.models.config import ModelConfig, config_from_dict

FORMAT = "sampletool-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class ModelBundle:
    """A loaded bundle: the module (in eval mode) and everything that describes it."""

    name: str
    config: ModelConfig
    audio: AudioConfig
    model: torch.nn.Module
    class_names: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def has_classifier(self) -> bool:
        return bool(self.class_names)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_bundle(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    config: ModelConfig,
    audio: AudioConfig,
    class_names: Iterable[str] = (),
    metadata: dict | None = None,
) -> Path:
    """Write a bundle; each file is replaced atomically, so a crash never leaves half a file.

    Weights are written before the config, so a folder with a config always has weights that
    belong to a config at least as new.
    """
    class_names = list(class_names)
    if len(class_names) != getattr(config, "num_classes", 0):
        raise ValueError(
            f"{len(class_names)} class names for a model with {config.num_classes} classes"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors, p))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config.to_dict(),
        "audio": audio.to_dict(),
        "class_names": class_names,
        "metadata": metadata or {},
    }
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    _atomic_write(directory / CONFIG_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return directory


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


def load_bundle(
    directory: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> ModelBundle:
    """Load a bundle onto `device`, in eval mode.

    Raises:
        BundleError: not a bundle, a newer format, a config that makes no sense, or weights that
            are missing, damaged or do not match the config. One sentence says which.
    """
    d = Path(directory)
    doc = read_bundle_config(d)
    try:
        config = config_from_dict(dict(doc["model"]))
        audio = AudioConfig.from_dict(dict(doc["audio"]))
        class_names = [str(c) for c in doc.get("class_names", [])]
        model = build_model(config, audio)
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{d / CONFIG_FILE} describes no valid model ({e})") from None
    if len(class_names) != getattr(config, "num_classes", 0):
        raise BundleError(
            f"{d / CONFIG_FILE} names {len(class_names)} classes for a model with "
            f"{config.num_classes}"
        )
    weights = d / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{d} has a config but no {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{weights} is damaged or not a safetensors file ({e})") from None
    _check_weights(d, model, state)
    model.load_state_dict(state)
    model.to(device).eval()
    return ModelBundle(
        name=bundle_name(d, doc),
        config=config,
        audio=audio,
        model=model,
        class_names=class_names,
        metadata=dict(doc.get("metadata", {})),
        path=d,
    )


def _check_weights(d: Path, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
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
        raise BundleError(f"the weights in {d} do not match its config: " + "; ".join(problems))


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
    from sampletool.paths import model_search_dirs

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
    from sampletool.paths import BUILTIN_MODELS_DIR, DEFAULT_MODEL_NAME

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
