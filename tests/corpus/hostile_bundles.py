"""Hostile model bundles: each maker writes one into the folder it is given and returns it.

Each one once crashed, hung or fooled Sample Tool (issue 24): sizes that allocate without end,
brackets nested past Python's recursion limit, weights that are NaN, a pickled checkpoint that
runs code, a config.json that is a link to /dev/zero, weights whose header does not fit the
config. The bundles are tiny on disk; only what they ask for is large.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from tests.helpers import make_bundle

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"

# name -> (section of config.json, setting, value): one absurd size each, on a tiny VAE bundle
# whose weights stay tiny (what a config edited by hand, or by an attacker, looks like).
HUGE_VAE = {
    "flow_length": ("model", "flow_length", 10**6),
    "flow_hidden": ("model", "flow_hidden", 10**9),
    "hidden": ("model", "hidden", 10**9),
    "latent": ("model", "latent", 10**9),
    "kernel_size": ("model", "kernel_size", 10**6),
    "num_classes": ("model", "num_classes", 10**9),
    "seconds": ("audio", "seconds", 10**7),
    "sample_rate": ("audio", "sample_rate", 10**9),
    "n_fft": ("audio", "n_fft", 10**8),
    "n_mels": ("audio", "n_mels", 10**6),
    "hop_length": ("audio", "hop_length", 10**9),
}
# The same for the WaveNet kinds (on a tiny wavenet-autoencoder bundle).
HUGE_WAVENET = {
    "enc_layers": ("model", "enc_layers", 10**6),
    "dec_layers": ("model", "dec_layers", 10**6),
    "enc_channels": ("model", "enc_channels", 10**9),
    "dec_channels": ("model", "dec_channels", 10**9),
    "skip_channels": ("model", "skip_channels", 10**9),
    "latent": ("model", "latent", 10**9),
    "enc_block": ("model", "enc_block", 10**6),
    "hop": ("model", "hop", 10**9),
    "train_crop": ("model", "train_crop", 10**12),
    "classifier_hidden": ("model", "classifier_hidden", 10**9),
}
TINY_WAVENET = dict(enc_channels=4, enc_layers=2, enc_block=2, latent=2, hop=64, dec_channels=4,
                    dec_layers=2, dec_block=2, skip_channels=4, train_crop=0)  # fmt: skip


def _edit_config(directory: Path, edit: Any) -> Path:
    doc = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    edit(doc)
    (directory / CONFIG).write_text(json.dumps(doc), encoding="utf-8")
    return directory


def tiny_wavenet_bundle(directory: Path, **overrides: Any) -> Path:
    """A valid tiny wavenet-autoencoder bundle (random weights), 3 classes."""
    import torch

    from sampletool.features import AudioConfig
    from sampletool.models.bundle import save_bundle
    from sampletool.models.kinds import build_model
    from sampletool.models.wavenet import WaveNetConfig

    torch.manual_seed(0)
    cfg = WaveNetConfig(**{**TINY_WAVENET, "num_classes": 3, **overrides})
    audio = AudioConfig(seconds=0.5)
    names = ["class0", "class1", "class2"]
    return save_bundle(directory, build_model(cfg, audio), cfg, audio, names)


def huge_setting(
    directory: Path, section: str, key: str, value: Any, wavenet: bool = False
) -> Path:
    """A tiny bundle whose config asks for one absurd size (see HUGE_VAE, HUGE_WAVENET)."""
    (tiny_wavenet_bundle if wavenet else make_bundle)(directory)

    def edit(doc: dict) -> None:
        doc[section][key] = value
        if key == "num_classes":  # as many names as classes, so only the size is wrong
            doc["class_names"] = [f"c{i}" for i in range(min(value, 10))]

    return _edit_config(directory, edit)


def many_conv_layers(directory: Path, layers: int = 10**6) -> Path:
    """A tiny VAE bundle whose config asks for `layers` conv blocks (1x1 pooling each)."""
    make_bundle(directory)

    def edit(doc: dict) -> None:
        doc["model"]["conv_channels"] = [4] * layers
        doc["model"]["pool_sizes"] = [[1, 1]] * layers

    return _edit_config(directory, edit)


def nested_brackets(directory: Path, depth: int = 100_000) -> Path:
    """A bundle folder whose config.json is `depth` nested lists (past the recursion limit)."""
    make_bundle(directory)
    (directory / CONFIG).write_text(
        '{"format": "sampletool-model", "format_version": 1, "model": '
        + "[" * depth
        + "]" * depth
        + "}",
        encoding="utf-8",
    )
    return directory


def nested_metadata(directory: Path, depth: int = 500) -> Path:
    """A valid bundle whose metadata nests `depth` objects deep: parses, but anything that
    walks it recursively (json.dumps when renaming) would hit the recursion limit."""
    make_bundle(directory)

    def edit(doc: dict) -> None:
        inner: dict = {}
        doc["metadata"]["notes"] = inner
        for _ in range(depth):
            inner["x"] = {}
            inner = inner["x"]

    return _edit_config(directory, edit)


def nan_weights(directory: Path, value: float = float("nan")) -> Path:
    """A valid tiny bundle whose every weight is NaN (or `value`)."""
    from safetensors.torch import load_file, save_file

    make_bundle(directory)
    state = load_file(str(directory / WEIGHTS))
    save_file({k: v.fill_(value) for k, v in state.items()}, str(directory / WEIGHTS))
    return directory


def overflowing_weights(directory: Path) -> Path:
    """A valid tiny bundle with finite weights so large that encoding overflows to inf/NaN."""
    from safetensors.torch import load_file, save_file

    make_bundle(directory)
    state = load_file(str(directory / WEIGHTS))
    save_file({k: v.fill_(3e38) for k, v in state.items()}, str(directory / WEIGHTS))
    return directory


class _RunsCode:
    """Unpickled, it writes the marker file: proof that a checkpoint ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (exec, (f"open({self.marker!r}, 'w').write('pickle code ran')",))


def pickle_checkpoint(directory: Path, marker: Path) -> Path:
    """Replace the training checkpoint in `directory` (a run's log folder) by a pickle that,
    if unpickled, writes `marker`. Returns the checkpoint."""
    import torch

    path = directory / "checkpoint.pt"
    torch.save({"model": _RunsCode(marker), "state": {"step": 1}}, path)
    return path


def config_links_to_dev_zero(directory: Path) -> Path:
    """A bundle folder whose config.json is a symbolic link to /dev/zero (endless bytes)."""
    make_bundle(directory)
    (directory / CONFIG).unlink()
    os.symlink("/dev/zero", directory / CONFIG)
    return directory


def huge_config_file(directory: Path, size: int = 64 << 20) -> Path:
    """A bundle folder whose config.json is `size` bytes (a sparse file: free on disk)."""
    make_bundle(directory)
    with open(directory / CONFIG, "r+b") as f:
        f.truncate(size)
    return directory


def mismatched_weights(directory: Path) -> Path:
    """A valid config with the weights of another model (hidden 48 instead of 32)."""
    make_bundle(directory / ".other", hidden=48)
    make_bundle(directory)
    os.replace(directory / ".other" / WEIGHTS, directory / WEIGHTS)
    for p in (directory / ".other").iterdir():
        p.unlink()
    (directory / ".other").rmdir()
    return directory


def huge_weights_header(directory: Path, elements: int = 10**11) -> Path:
    """A tiny bundle whose weights header declares one float32 tensor of `elements` numbers,
    its data a sparse hole: the file claims 400 GB and takes no disk."""
    make_bundle(directory)
    header = json.dumps(
        {"dense.weight": {"dtype": "F32", "shape": [elements], "data_offsets": [0, elements * 4]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    with open(directory / WEIGHTS, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + elements * 4)
    return directory
