"""The registry of model kinds: a bundle's `model.kind` -> its config, builder and runtime.

A kind is defined by a module, as `KIND = ModelKind(...)` (or several, as `KINDS = (...)`):

- `config_type`: a frozen dataclass with `kind`, `num_classes`, `to_dict()` and `from_dict()`;
  it is what a bundle's config.json holds under "model". Its `__post_init__` bounds every
  size and count it holds (a bundle's config is a stranger's text: a million layers must be
  refused, not built); `sampletool.models.limits` bounds the audio and, whatever the kind,
  what building may allocate beside the bundle's weights.
- `build(config, audio) -> nn.Module`: the untrained module. The module takes plain typed
  arguments, never the config (audiocraft's builders). For training it offers
  `loss(features, labels, class_balance=None, forward=None, generator=None) -> Loss` and a
  `forward(features, generator, labels)` that `loss` calls through `forward` (so
  DistributedDataParallel's wrapper can stand in); a classifier head's parameters are named
  `classifier.*` (fine-tuning on other classes starts that head afresh).
- `runtime_type`: the `ModelRuntime` subclass that encodes and decodes with a loaded module.
- `input`: what the module reads, "log_mel" (Float [B, n_mels, T] from the frontend) or
  "waveform" (the clip itself, Float [B, samples]); the trainer and the runtime feed it that.
- `presets`: model settings per size ("small", "medium", "large"), what the train wizard
  offers; a kind without them trains at its config's defaults whatever the size.

Kinds are listed here by module name, so nothing heavy (torch) is imported until a kind is used:
the CLI's help and the GUI's model menu stay fast. `register` adds a kind at run time (tests
define a tiny one; a plug-in could too). The CLI, the library, the trainer, the train wizard and
the app only ever go through this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from sampletool.features import AudioConfig

# kind name -> the module that defines its KIND
_MODULES: dict[str, str] = {
    "vae": "sampletool.models.vae",
    "wavenet-encoder": "sampletool.models.wavenet",
    "wavenet-autoencoder": "sampletool.models.wavenet",
}
INPUTS = ("log_mel", "waveform")
_REGISTERED: dict[str, ModelKind] = {}
# The sizes the train wizard offers, smallest first.
SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class ModelKind:
    """One kind of model: how to read its config, build its module and run it.

    Attributes:
        name: the `kind` written in a bundle's config.
        description: one line for menus and `--help`.
        config_type: the kind's config dataclass (see the module docstring).
        build: config, audio parameters -> an untrained `torch.nn.Module`.
        runtime_type: the `sampletool.models.runtime.ModelRuntime` subclass for this kind.
        presets: size name (one of `SIZES`) -> the settings that differ from the config's
            defaults at that size.
        input: what the module reads: "log_mel" features or the "waveform".
    """

    name: str
    description: str
    config_type: Any
    build: Callable[[Any, AudioConfig], torch.nn.Module]
    runtime_type: type
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    input: str = "log_mel"

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"a kind's input is one of {', '.join(INPUTS)}, not {self.input!r}")

    def preset(self, size: str) -> dict[str, Any]:
        """The model settings (with `kind`) of a size preset.

        Raises:
            ValueError: not one of `SIZES`.
        """
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r} (known: {', '.join(SIZES)})")
        return {"kind": self.name, **dict(self.presets.get(size, {}))}


@dataclass
class Loss:
    """What a module's `loss` returns for one batch.

    Attributes:
        total: the scalar to minimise (a tensor with gradients).
        parts: its terms as floats, "loss" (the total) among them; the trainer logs them
            with a `train_` or `val_` prefix.
        class_logits: Float [B, classes] when the module has a classifier, else None (the
            trainer's confusion matrix and accuracy come from these).
    """

    total: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)
    class_logits: torch.Tensor | None = None


class Trainable(Protocol):
    """What the trainer asks of a kind's module (besides being a torch.nn.Module)."""

    def loss(
        self,
        features: torch.Tensor,
        labels: torch.Tensor | None = None,
        class_balance: torch.Tensor | None = None,
        forward: Callable[..., Any] | None = None,
        generator: torch.Generator | None = None,
    ) -> Loss: ...


def kind_names() -> list[str]:
    """Every known kind's name, sorted."""
    return sorted(set(_MODULES) | set(_REGISTERED))


def get_kind(name: str) -> ModelKind:
    """The kind called `name` (its module is imported on first use).

    Raises:
        ValueError: no such kind.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    module = _MODULES.get(name) if isinstance(name, str) else None
    if module is None:
        raise ValueError(f"unknown model kind {name!r} (known: {', '.join(kind_names())})")
    kind = _defined(importlib.import_module(module)).get(name)
    if kind is None:
        raise ValueError(f"{module} defines no kind {name!r}")
    _REGISTERED[name] = kind
    return kind


def _defined(module: Any) -> dict[str, ModelKind]:
    """The kinds a module defines (its KIND, or each of its KINDS), by name."""
    kinds = getattr(module, "KINDS", None) or (module.KIND,)
    return {k.name: k for k in kinds}


def register(kind: ModelKind) -> None:
    """Make `kind` available by its name (replacing a kind registered under it before)."""
    _REGISTERED[kind.name] = kind


def unregister(name: str) -> None:
    """Forget a kind added with `register` (the built-in kinds come back on next use)."""
    _REGISTERED.pop(name, None)


def plugin_modules() -> list[str]:
    """The modules defining the kinds registered at run time (not listed here): another
    process (the app's training process) imports them to know those kinds too."""
    return sorted({k.build.__module__ for n, k in _REGISTERED.items() if n not in _MODULES})


def register_module(module: str) -> None:
    """Import `module` and register the kinds it defines (see `plugin_modules`).

    Raises:
        ValueError: the module cannot be imported or defines no KIND.
    """
    try:
        kinds = _defined(importlib.import_module(module))
    except (ImportError, AttributeError) as e:
        raise ValueError(f"no model kind in {module} ({e})") from None
    for kind in kinds.values():
        register(kind)


def config_from_dict(d: dict) -> Any:
    """The typed config of a stored dict, by its `kind`.

    Raises:
        ValueError: an unknown kind or settings that kind does not accept.
    """
    return get_kind(d.get("kind")).config_type.from_dict(dict(d))  # type: ignore[arg-type]


def build_model(config: Any, audio: AudioConfig) -> torch.nn.Module:
    """The untrained module `config` describes, for features of `audio`'s size."""
    return get_kind(config.kind).build(config, audio)
