"""Model bundles: a folder with `config.json` and `weights.safetensors`, nothing else needed.

Loading never unpickles: the config is JSON and the weights are safetensors, so a bundle shared
by a stranger can carry numbers, not code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sampletool.errors import BundleError
from sampletool.features import AudioConfig
from sampletool.fileio import atomic_write, atomic_write_text
from sampletool.models import build_model
from sampletool.models.config import ModelConfig, config_from_dict
from sampletool.registry import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    bundle_name,
    read_bundle_config,
)


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
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors, str(p)))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config.to_dict(),
        "audio": audio.to_dict(),
        "class_names": class_names,
        "metadata": metadata or {},
    }
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    atomic_write_text(directory / CONFIG_FILE, text)
    return directory


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
