"""What a bundle may ask for, checked before anything is built: a config is a stranger's text.

Three fences, each cheap:

- each kind's config bounds its own sizes and counts (`VAEConfig`, `WaveNetConfig`): a layer
  count of a million is refused before a million layers are made;
- `check_audio` bounds the audio parameters every kind shares (clip length, rate, FFT);
- `build_within` builds the module while counting what it allocates, and stops it (before the
  allocation, for tensors made from a size) once it has asked for far more memory than the
  bundle's weights hold: a config that implies a billion-wide layer beside a 1 MB weights file
  is refused whatever its kind, a kind registered by a plug-in included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from sampletool.features import AudioConfig

MAX_SECONDS = 60.0
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000
MAX_N_FFT = 1 << 16
MAX_HOP_LENGTH = 1 << 16
MAX_N_MELS = 1024
MAX_TOP_DB = 1000.0
# A module may allocate this many times its weights' bytes while it is built (masks, buffers
# and temporaries beside the parameters), plus a fixed allowance.
BUILD_FACTOR = 4
BUILD_ALLOWANCE = 64 << 20


def check_audio(audio: AudioConfig) -> None:
    """Refuse audio parameters no sample model needs (each refusal names its setting).

    Raises:
        ValueError: a setting out of its range, or not a finite number.
    """
    for name in ("sample_rate", "seconds", "n_fft", "hop_length", "n_mels", "top_db", "f_min"):
        value = getattr(audio, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, not {value!r}")
    bounds = {
        "seconds": (0, MAX_SECONDS),
        "sample_rate": (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
        "n_fft": (16, MAX_N_FFT),
        "hop_length": (1, MAX_HOP_LENGTH),
        "n_mels": (1, MAX_N_MELS),
        "top_db": (0, MAX_TOP_DB),
        "f_min": (0, audio.sample_rate / 2),
    }
    for name, (low, high) in bounds.items():
        value = getattr(audio, name)
        if not low <= value <= high:
            raise ValueError(f"{name} is {value}; a model's must be in [{low}, {high}]")
    if audio.f_max is not None and not (
        isinstance(audio.f_max, int | float) and audio.f_min < audio.f_max <= audio.sample_rate / 2
    ):
        raise ValueError(f"f_max is {audio.f_max}; it must be above f_min and at most half the "
                         "sample rate")  # fmt: skip
    if audio.num_frames < 1:
        raise ValueError(
            f"hop_length ({audio.hop_length}) is longer than the clip ({audio.num_samples} samples)"
        )


class BuildTooLarge(Exception):
    """A module asked for more memory, while being built, than its budget."""

    def __init__(self, asked: int, budget: int) -> None:
        super().__init__(f"building it asks for more than {budget} bytes ({asked} so far)")
        self.asked = asked
        self.budget = budget


# Factories that take a size: their bytes are known (and refused) before they allocate.
_SIZED = {torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.full}


def _shape_numel(args: tuple) -> int | None:
    dims = args[0] if len(args) == 1 and isinstance(args[0], list | tuple | torch.Size) else args
    if not all(isinstance(d, int) for d in dims):
        return None
    return math.prod(dims)


def _requested_bytes(func: Any, args: tuple, kwargs: dict) -> int | None:
    itemsize = (kwargs.get("dtype") or torch.get_default_dtype()).itemsize
    if func in _SIZED:
        size = args[:1] if func is torch.full else args
        if func is torch.full and args and isinstance(args[0], list | tuple | torch.Size):
            size = tuple(args[0])
        n = _shape_numel(tuple(size))
        return None if n is None else n * itemsize
    if func is torch.eye and args and isinstance(args[0], int):
        m = args[1] if len(args) > 1 and isinstance(args[1], int) else args[0]
        return args[0] * m * itemsize
    if func is torch.arange and args and all(isinstance(a, int | float) for a in args):
        start, end, step = (0, args[0], 1) if len(args) == 1 else (*args[:2], *(args[2:3] or (1,)))
        return max(0, math.ceil((end - start) / step)) * 8 if step else None
    return None


def _storage_ptrs(values: Any) -> set[int]:
    ptrs = set()
    for v in values:
        if isinstance(v, torch.Tensor):
            ptrs.add(v.untyped_storage().data_ptr())
        elif isinstance(v, list | tuple):
            ptrs |= _storage_ptrs(v)
    return ptrs


class _Budget(TorchFunctionMode):
    """Counts the bytes of every new tensor made while active; refuses past the budget."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.spent = 0

    def _spend(self, n: int) -> None:
        self.spent += n
        if self.spent > self.budget:
            raise BuildTooLarge(self.spent, self.budget)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        asked = _requested_bytes(func, args, kwargs)
        if asked is not None:
            self._spend(asked)
        out = func(*args, **kwargs)
        if asked is None and isinstance(out, torch.Tensor) and out.device.type != "meta":
            inputs = _storage_ptrs((*args, *kwargs.values()))
            if out.untyped_storage().data_ptr() not in inputs:
                self._spend(out.untyped_storage().nbytes())
        return out


def build_budget(weights_bytes: int) -> int:
    """The bytes a module may allocate while it is built, for weights of `weights_bytes`."""
    return BUILD_FACTOR * weights_bytes + BUILD_ALLOWANCE


def build_within(
    build: Callable[[Any, AudioConfig], torch.nn.Module],
    config: Any,
    audio: AudioConfig,
    budget: int,
) -> torch.nn.Module:
    """`build(config, audio)`, stopped once it has allocated more than `budget` bytes.

    Raises:
        BuildTooLarge: it asked for more.
    """
    with _Budget(budget):
        return build(config, audio)
