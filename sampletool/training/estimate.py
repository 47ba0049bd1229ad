"""How long a training run will take on this machine, from a few real training steps.

The train wizard shows, for each size of model, the time a run would take before it starts
one: `measure` builds the model, reads a batch of the user's own files, and times a few real
optimiser steps (augmentation included) and a validation pass; `estimate_seconds` turns that
into the run's time with `plan_steps`' schedule. Only `measure` needs torch (imported when
called), so the app's window can do the arithmetic.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from sampletool.training.trainer import TrainConfig

# A run of the wizard's: this many passes over the training files at most (it stops sooner once
# validation stops improving), fewer when fine-tuning a trained model.
EPOCHS, FINE_TUNE_EPOCHS = 100, 30
MIN_STEPS, MAX_STEPS = 200, 20_000


def plan_steps(n_train: int, batch_size: int, fine_tune: bool) -> tuple[int, int]:
    """(max steps, steps between validations) for a run over `n_train` training files.

    Validation comes about once an epoch, at least every 250 steps and at most every 10.
    """
    per_epoch = max(1, math.ceil(n_train / max(batch_size, 1)))
    epochs = FINE_TUNE_EPOCHS if fine_tune else EPOCHS
    max_steps = min(max(epochs * per_epoch, MIN_STEPS), MAX_STEPS)
    return max_steps, min(max(per_epoch, 10), 250)


@dataclass
class Measurement:
    """Seconds per unit of a run's work, measured on this machine.

    Attributes:
        step: one training step (a batch: forward, backward, optimiser), augmentation included.
        val_file: one validation file (forward only).
        cache_file: reading one file and computing its features (one process; the feature
            cache reads with one process per core).
        parameters: the model's size.
        device: where it was measured.
    """

    step: float
    val_file: float
    cache_file: float
    parameters: int
    device: str

    def to_dict(self) -> dict:
        return asdict(self)


def measure(
    config: TrainConfig,
    num_classes: int,
    files: Sequence[str],
    steps: int = 3,
    device: str = "auto",
) -> Measurement:
    """Time `steps` real training steps (after one to warm up) of the model `config` describes,
    on batches of `files` (the first `batch_size` readable ones, repeated to fill a batch).

    Raises:
        TrainingError: invalid model settings, or none of the files can be read.
    """
    import numpy as np
    import torch

    from sampletool.audio import AudioError, load_clip
    from sampletool.data.augment import AugmentConfig
    from sampletool.features import AudioConfig, log_mel
    from sampletool.models.kinds import Trainable, build_model, config_from_dict, get_kind
    from sampletool.models.runtime import resolve_device
    from sampletool.training.trainer import TrainingError, batch_features, train_step

    audio = AudioConfig.from_dict(config.audio)
    aug = AugmentConfig.from_dict(config.augment)
    dev = resolve_device(device)
    try:
        model_cfg = config_from_dict(dict(config.model) | {"num_classes": num_classes})
        model = build_model(model_cfg, audio).to(dev).train()
        waveform = get_kind(model_cfg.kind).input == "waveform"
    except ValueError as e:
        raise TrainingError(f"invalid model settings ({e})") from None
    clips: list[np.ndarray] = []
    seconds: list[float] = []
    for path in files:
        if len(clips) == config.batch_size:
            break
        t0 = time.perf_counter()
        try:
            clip = load_clip(path, 0.0, audio.seconds, audio.sample_rate)
        except AudioError:
            continue
        log_mel(torch.from_numpy(clip)[None], audio)
        seconds.append(time.perf_counter() - t0)
        clips.append(clip)
    if not clips:
        raise TrainingError("none of the files could be read")
    batch = np.resize(np.stack(clips), (config.batch_size, audio.num_samples))
    features = log_mel(torch.from_numpy(batch), audio).numpy()
    gen = torch.Generator().manual_seed(0) if aug.active else None
    labels = (torch.arange(config.batch_size, device=dev) % num_classes) if num_classes else None
    balance = torch.ones(num_classes, device=dev) if num_classes else None
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    timings = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        x = batch_features(features, batch if aug.needs_clips or waveform else None, aug, audio,
                           gen, waveform)  # fmt: skip
        train_step(model, opt, x.to(dev), labels, balance, None, config.grad_clip)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i:  # the first step allocates and warms caches
            timings.append(time.perf_counter() - t0)
    model.eval()
    x = torch.from_numpy(batch if waveform else features).to(dev)
    t0 = time.perf_counter()
    with torch.no_grad():
        cast(Trainable, model).loss(x, labels, balance)
    val = (time.perf_counter() - t0) / len(x)
    return Measurement(
        step=statistics.median(timings),
        val_file=val,
        cache_file=statistics.median(seconds),
        parameters=sum(p.numel() for p in model.parameters()),
        device=str(dev),
    )


def estimate_seconds(
    m: Measurement,
    files: int,
    n_val: int,
    max_steps: int,
    eval_every: int,
    cores: int | None = None,
) -> float:
    """A run's time at most: building the feature cache (one process per core), `max_steps`
    steps, and a validation every `eval_every` steps."""
    cores = cores or os.cpu_count() or 1
    validations = math.ceil(max_steps / max(eval_every, 1))
    return (files * m.cache_file / cores + max_steps * m.step
            + validations * n_val * m.val_file)  # fmt: skip
