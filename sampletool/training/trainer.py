"""The Trainer: one code path for the CLI, the GUI's train wizard and torchrun.

A log folder (`--logdir`) holds everything about one run and is itself a model bundle:

    config.json, weights.safetensors   the best checkpoint so far (by validation loss)
    train_config.json                  the run's parameters, dataset included (for resuming)
    checkpoint.pt                      the latest state: weights, optimiser, step, learning rate
    metrics.jsonl                      one JSON object per validation
    confusion_matrix.json / .png       at each validation, when the dataset has classes
    run.json, run.lock                 how the run stands, and who trains it now (see `runs`)

Training stops by itself when the learning rate, lowered each time validation stops
improving for `patience` evaluations, falls below `min_lr` (SampleVAE's auto-convergence), at
`max_steps`, or when the stop event is set (Ctrl+C), always leaving a clean checkpoint. While
the pause event is set it waits between steps (paused time counts in no rate).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import math
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist

from sampletool.data.augment import AugmentConfig, augment, augment_features
from sampletool.data.cache import DONE, FeatureCache
from sampletool.data.dataset import DatasetError, load_dataset
from sampletool.errors import SampleToolError
from sampletool.features import AudioConfig, log_mel
from sampletool.fileio import LockHeld, atomic_write, atomic_write_text, exclusive_lock
from sampletool.models.bundle import WEIGHTS_FILE, read_bundle, resolve_model, save_bundle
from sampletool.models.calibration import calibration_summary
from sampletool.models.kinds import Trainable, build_model, config_from_dict, get_kind
from sampletool.models.runtime import load_runtime, resolve_device
from sampletool.progress import Cancelled, Progress
from sampletool.training.runs import RUN_LOCK, TRAIN_CONFIG, write_state

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"

MetricsFn = Callable[[int, dict], None]


class TrainingError(SampleToolError):
    """A training run that cannot start or go on, said in one sentence."""


@dataclass
class TrainConfig:
    """Everything that defines a run; saved in the log folder so a resume needs nothing else."""

    dataset: str
    model: dict = field(default_factory=lambda: {"kind": "vae"})
    audio: dict = field(default_factory=lambda: AudioConfig().to_dict())
    augment: dict = field(default_factory=lambda: AugmentConfig().to_dict())
    batch_size: int = 64
    lr: float = 1e-3
    max_steps: int = 100_000
    eval_every: int = 250
    patience: int = 3
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    grad_clip: float = 10.0
    seed: int = 0
    workers: int | None = None
    # A model bundle whose weights start the run (fine-tuning); tensors are taken where name
    # and shape match, the classifier only when its classes are the dataset's.
    init_from: str | None = None
    # Relative draw weight of the training files under each folder (resolved path prefix) or
    # of one file (its path); files under none weigh 1. Empty: every file once per epoch, in
    # a shuffled order.
    source_weights: dict[str, float] = field(default_factory=dict)
    # Decay of an exponential moving average of the weights (0: off). With it, validation and
    # the bundle use the average, which is steadier from one checkpoint to the next.
    ema: float = 0.0
    # Where the bundle's calibration comes from: "fit" a temperature on each validation, or
    # "keep" the init_from bundle's (when the validation split cannot judge confidence).
    calibration: str = "fit"

    def validate(self) -> None:
        if self.batch_size < 1 or self.max_steps < 1 or self.eval_every < 1:
            raise TrainingError("batch size, max steps and eval interval must be >= 1")
        if not (self.lr > 0 and self.min_lr > 0 and 0 < self.lr_factor < 1):
            raise TrainingError("--lr and min lr must be > 0 and the lr factor in (0, 1)")
        if self.patience < 1:
            raise TrainingError("patience must be >= 1")
        if any(not (isinstance(w, int | float) and w >= 0) for w in self.source_weights.values()):
            raise TrainingError("source weights must be numbers >= 0")
        if not 0.0 <= self.ema < 1.0:
            raise TrainingError("the weight average's decay must be in [0, 1)")
        if self.calibration not in ("fit", "keep"):
            raise TrainingError("calibration must be 'fit' or 'keep'")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainResult:
    """How a run ended."""

    step: int
    reason: str  # "converged", "max_steps" or "stopped"
    best_val_loss: float
    metrics: dict


def batch_features(
    features: np.ndarray | None,
    clips: np.ndarray | None,
    augment_cfg: AugmentConfig,
    audio: AudioConfig,
    gen: torch.Generator | None,
    waveform: bool = False,
) -> torch.Tensor:
    """A training batch's model input: the cached features, or with `gen` (augmenting) and
    clips the augmented clips' features; then the feature augmentations. A model that reads
    the `waveform` gets the (augmented) clips themselves.

    Args:
        features: Float [B, n_mels, T] (any float dtype); only read without clips.
        clips: Float [B, samples], or None when the augmentation needs no audio (and the model
            reads features).
    """
    if waveform:
        if clips is None:
            raise ValueError("a model that reads the waveform needs the clips")
        x = torch.from_numpy(clips.astype(np.float32))
        if gen is not None and augment_cfg.needs_clips:
            x = augment(x, augment_cfg, audio.sample_rate, gen)
        return x
    if gen is not None and clips is not None:
        x = log_mel(augment(torch.from_numpy(clips.astype(np.float32)), augment_cfg,
                            audio.sample_rate, gen), audio)  # fmt: skip
    elif features is not None:
        x = torch.from_numpy(features.astype(np.float32))
    else:
        raise ValueError("a batch needs features, or clips and a generator")
    if gen is not None and augment_cfg.on_features:
        x = augment_features(x, augment_cfg, audio.top_db, gen)
    return x


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor | None,
    class_balance: torch.Tensor | None,
    forward: Callable[..., Any] | None,
    grad_clip: float,
) -> dict[str, float]:
    """One optimiser step on one batch; the loss's terms."""
    out = cast(Trainable, model).loss(x, y, class_balance, forward=forward)
    opt.zero_grad(set_to_none=True)
    out.total.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return out.parts


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def _atomic_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


class Trainer:
    """Train a model on a dataset folder into a log folder.

    Args:
        logdir: the log folder; if it holds a run already, that run is resumed and `config`
            may be None.
        max_steps: overrides the config's limit (to train a finished run further).
        config: the run's parameters (required for a new run).
        device: 'auto', 'cpu', 'cuda', 'mps'. Under torchrun each process uses its local GPU.
        on_metrics: called as on_metrics(step, metrics) every 10 steps (training terms, lr,
            "elapsed": seconds spent training in this process, pauses left out) and after each
            validation (with "val_loss" and the rest, and "confusion" with classes).
        stop: set it to stop cleanly (checkpoint saved, a usable bundle) at the next step.
        pause: while it is set, training waits between steps (a stop still ends it).
        log: called with lines worth showing (cache building, learning-rate changes...).
        cache_progress: the feature cache's progress while it is built.

    Raises:
        TrainingError, DatasetError: a run that cannot start.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        config: TrainConfig | None = None,
        max_steps: int | None = None,
        device: str = "auto",
        on_metrics: MetricsFn | None = None,
        stop: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
        cache_progress: Progress | None = None,
        pause: threading.Event | None = None,
    ) -> None:
        self.logdir = Path(logdir)
        self.on_metrics = on_metrics
        self.stop = stop or threading.Event()
        self.pause = pause or threading.Event()
        self._step = 0  # the last step checkpointed, for run.json
        self._log = log or (lambda _msg: None)
        self.cache_progress = cache_progress
        self.rank, self.world, local_rank = _dist_info()
        self._owns_group = False  # we started the process group, so we end it
        saved = self.logdir / TRAIN_CONFIG
        self.resuming = saved.is_file()
        if self.resuming:
            config = TrainConfig.from_dict(json.loads(saved.read_text(encoding="utf-8")))
        elif config is None:
            raise TrainingError(
                f"{self.logdir} holds no training run; name a --dataset to start one"
            )
        if max_steps is not None:
            config.max_steps = max_steps
        config.validate()
        self.config = config

        if self.world > 1:
            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
                # Rank 0 may spend a long time building the feature cache while the others wait.
                dist.init_process_group(backend, timeout=datetime.timedelta(hours=6))
                self._owns_group = True
            if dist.get_backend() == "nccl":
                torch.cuda.set_device(local_rank)
                self.device = torch.device("cuda", local_rank)
            else:
                self.device = torch.device("cpu")
        else:
            self.device = resolve_device(device)

        self.dataset = load_dataset(config.dataset)
        self.audio = AudioConfig.from_dict(config.audio)
        self.augment_cfg = AugmentConfig.from_dict(config.augment)
        model_dict = dict(config.model)
        model_dict["num_classes"] = len(self.dataset.class_names)
        try:
            self.model_config = config_from_dict(model_dict)
            # The seed decides the initial weights too (the same on every rank), without
            # disturbing the caller's random state.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                self.model = build_model(self.model_config, self.audio).to(self.device)
        except ValueError as e:
            raise TrainingError(f"invalid model settings ({e})") from None
        self.waveform = get_kind(self.model_config.kind).input == "waveform"
        if self.waveform and self.augment_cfg.on_features:
            raise TrainingError(
                f"the {self.model_config.kind} model reads the waveform: mel shift, tilt, "
                "truncation and stretch work on log-mel features and cannot augment it"
            )
        self.ema: torch.optim.swa_utils.AveragedModel | None = None  # made by run()
        self._kept_calibration: dict | None = None  # the init bundle's ("calibration": "keep")

    # -- helpers --------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def log(self, msg: str) -> None:
        if self.is_main:
            self._log(msg)

    def _prepare_data(self) -> None:
        cache = FeatureCache(self.dataset, self.audio)
        with_clips = self.augment_cfg.needs_clips or self.waveform
        error: BaseException | None = None
        if self.is_main:
            try:
                if not cache.is_complete("features") or (
                    with_clips and not cache.is_complete("clips")
                ):
                    self.log(f"caching features of {len(self.dataset)} files in {cache.dir}")
                # Stopping here raises Cancelled: the cache so far is kept for the next run.
                cache.build(with_clips, self.config.workers, self.cache_progress, self.stop)
            except BaseException as e:
                error = e
        # Every process learns how rank 0 fared, so none waits forever for one that gave up.
        self._agree_or_raise(error, "building the feature cache")
        status = cache.status("features")
        self.features = cache.features()
        self.clips = cache.clips() if with_clips else None
        ok = status == DONE
        labels = self.dataset.labels
        self.train_idx = np.array([i for i in self.dataset.indices("train") if ok[i]])
        self.val_idx = np.array([i for i in self.dataset.indices("val") if ok[i]])
        if len(self.train_idx) == 0 or len(self.val_idx) == 0:
            raise DatasetError(
                "after leaving out unreadable files, the train or validation split is empty"
            )
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.class_names = list(self.dataset.class_names)
        self.draw_p = self._draw_probabilities()
        self.class_balance = None
        if self.class_names:
            if self.draw_p is None:
                counts = np.bincount(labels[self.train_idx], minlength=len(self.class_names))
            else:  # how often each class is drawn, in files per epoch
                counts = len(self.train_idx) * np.bincount(
                    labels[self.train_idx], self.draw_p, minlength=len(self.class_names)
                )
            # Inverse-frequency weights, mean 1 over the training set: rare classes count more.
            w = len(self.train_idx) / (len(counts) * np.maximum(counts, 1))
            self.class_balance = torch.tensor(w, dtype=torch.float32, device=self.device)

    def _draw_probabilities(self) -> np.ndarray | None:
        """Each training file's chance of being drawn, from `source_weights` (None: none set)."""
        if not self.config.source_weights:
            return None
        prefixes = [(str(Path(k).resolve()).rstrip(os.sep), float(v))
                    for k, v in self.config.source_weights.items()]  # fmt: skip
        w = np.ones(len(self.train_idx))
        matched = [0] * len(prefixes)
        for j, i in enumerate(self.train_idx):
            path = self.dataset.paths[i]
            for k, (prefix, weight) in enumerate(prefixes):  # a folder, or one file
                if path == prefix or path.startswith(prefix + os.sep):
                    w[j] = weight
                    matched[k] += 1
                    break
        for (prefix, weight), n in zip(prefixes, matched, strict=True):
            self.log(f"drawing the {n} training files under {prefix} at weight {weight:g}"
                     if n else f"warning: no training file is under {prefix}; its weight "
                     "changes nothing")  # fmt: skip
        if w.sum() <= 0:
            raise TrainingError("the source weights leave no training file to draw")
        return w / w.sum()

    def _init_weights(self, source: str) -> None:
        """Start from another bundle's weights (see TrainConfig.init_from): every tensor of
        the same name and shape, the classifier only when its classes are this run's."""
        try:
            bundle = load_runtime(source, device="cpu")
        except SampleToolError as e:
            raise TrainingError(f"cannot start from {source}: {e}") from None
        same_classes = bundle.class_names == self.class_names
        own = self.model.state_dict()
        theirs = bundle.module.state_dict()
        shared = [n for n in theirs if not (n.startswith("classifier.") and not same_classes)]
        differ = bundle.kind != self.model_config.kind or any(
            n not in own or own[n].shape != theirs[n].shape for n in shared
        )
        if differ:
            raise TrainingError(
                f"cannot start from {source}: its model differs from this run's "
                f"({bundle.kind}, settings {bundle.config.to_dict()})"
            )
        self.model.load_state_dict({n: theirs[n] for n in shared}, strict=False)
        fresh = sorted({n.split(".")[0] for n in own if n not in shared})
        self.log(f"starting from the weights of {bundle.name}"
                 + (f" (new: {', '.join(fresh)})" if fresh else ""))  # fmt: skip

    def _batch(
        self, idx: np.ndarray, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(idx)  # sorted reads are sequential on the memory map
        clips = None
        if (gen is not None or self.waveform) and self.clips is not None:
            clips = self.clips[idx]
        features = self.features[idx] if clips is None else None
        x = batch_features(features, clips, self.augment_cfg, self.audio, gen, self.waveform)
        return x.to(self.device), self.labels[idx].to(self.device)

    # -- checkpoints ----------------------------------------------------------------------------

    def _save_checkpoint(self, opt: torch.optim.Optimizer, state: dict) -> None:
        if not self.is_main:
            return
        checkpoint = {
            "model": self.model.state_dict(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "optimizer": opt.state_dict(),
            "state": {k: float(v) for k, v in state.items()},
        }
        atomic_write(self.logdir / CHECKPOINT, lambda p: torch.save(checkpoint, p))

    def _saved_model(self) -> torch.nn.Module:
        """The model that is validated and saved: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def _save_bundle(
        self, metrics: dict, confusion: list | None = None, calibration: dict | None = None
    ) -> None:
        """Save the model as the run's bundle, with the figures of the validation that chose
        it (and its confusion matrix: confusion_matrix.json beside it is the latest one's), and
        the temperature fitted on that validation (see `sampletool.models.calibration`)."""
        ds_summary = {}
        summary_path = self.dataset.root / "summary.json"
        if summary_path.exists():
            s = json.loads(summary_path.read_text(encoding="utf-8"))
            ds_summary = {k: s.get(k) for k in ("name", "data_dirs", "files", "train", "val")}
        ds_name = ds_summary.get("name") or self.dataset.root.name
        save_bundle(
            self.logdir,
            self._saved_model(),
            self.model_config,
            self.audio,
            self.class_names,
            {
                "name": self.logdir.resolve().name,
                "description": f"trained on dataset {ds_name}",
                "dataset": ds_summary,
                "augment": self.config.augment,
                "metrics": metrics,
                "confusion": None if confusion is None else {
                    "step": metrics.get("step"), "classes": self.class_names, "matrix": confusion
                },
            } | ({"calibration": calibration} if calibration else {}),
        )  # fmt: skip

    # -- validation -----------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> dict:
        """The model's own loss terms on the validation split (the same posterior draws each
        time) and, with classes, accuracy and the confusion matrix."""
        model = self._saved_model()
        model.eval()
        gen = torch.Generator(device="cpu").manual_seed(1234)
        totals: dict[str, float] = {}
        n = 0
        k = len(self.class_names)
        confusion = np.zeros((k, k), np.int64)
        probs: list[np.ndarray] = []
        truth: list[np.ndarray] = []
        # A waveform model's activations are samples long: validate a training batch at a time.
        step = max(1, self.config.batch_size) if self.waveform else 256
        for s in range(0, len(self.val_idx), step):
            x, y = self._batch(self.val_idx[s : s + step], None)
            draws = gen if x.device.type == "cpu" else None
            out = cast(Trainable, model).loss(x, y if k else None, self.class_balance,
                                              generator=draws)  # fmt: skip
            for key, v in out.parts.items():  # batch means, weighted into a split mean
                totals[key] = totals.get(key, 0.0) + v * len(x)
            if k and out.class_logits is not None:
                pred = out.class_logits.argmax(-1).cpu().numpy()
                np.add.at(confusion, (y.cpu().numpy(), pred), 1)
                probs.append(torch.softmax(out.class_logits.float(), -1).cpu().numpy())
                truth.append(y.cpu().numpy())
            n += len(x)
        model.train()
        m: dict = {f"val_{key}": v / n for key, v in totals.items()}
        if k:
            m["val_accuracy"] = float(np.trace(confusion) / max(confusion.sum(), 1))
            per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
            present = confusion.sum(1) > 0
            m["val_balanced_accuracy"] = float(per_class[present].mean())
            m["confusion"] = confusion.tolist()
            if probs:
                m["calibration"] = calibration_summary(np.concatenate(probs),
                                                       np.concatenate(truth))  # fmt: skip
        return m

    def _write_confusion(self, step: int, confusion: list[list[int]]) -> None:
        _atomic_json(
            self.logdir / "confusion_matrix.json",
            {"step": step, "classes": self.class_names, "matrix": confusion,
             "rows": "true class", "columns": "predicted class"},
        )  # fmt: skip
        from sampletool.training.plots import confusion_png

        confusion_png(
            self.logdir / "confusion_matrix.png", np.array(confusion), self.class_names, step
        )

    def _agree_or_raise(self, error: BaseException | None, what: str) -> None:
        """Share rank 0's outcome with every process (tensors on the process group's device, as
        NCCL needs); all raise if rank 0 failed."""
        failed = error is not None
        if self.world > 1:
            flag = torch.tensor([1.0 if failed else 0.0], device=self.device)
            dist.broadcast(flag, src=0)
            failed = bool(flag.item())
        if error is not None:
            raise error
        if failed:
            raise TrainingError(f"the main process failed during {what}; see its output")

    def close(self) -> None:
        """End the process group this trainer started (distributed runs). Leaving it to the
        interpreter's exit let gloo's threads be torn down mid-flight: a rank could abort with
        "terminate called without an active exception" after a successful run."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train until convergence, max_steps or stop. Returns how it ended.

        Raises:
            TrainingError: another process is training this run now, or it cannot go on.
            Cancelled: stopped while the feature cache was built (what was cached is kept).
        """
        if not self.is_main:
            return self._run()
        self.logdir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(exclusive_lock(self.logdir / RUN_LOCK))
            except LockHeld:
                raise TrainingError(f"{self.logdir} is being trained by another process now; "
                                    "wait for it to end or stop it first") from None  # fmt: skip
            try:
                return self._run()
            except Cancelled:
                self._write_state("stopped")
                raise
            except Exception as e:
                self._write_state("failed", str(e))
                raise

    def _write_state(self, status: str, message: str = "") -> None:
        if self.is_main:
            write_state(self.logdir, status, self._step, self.config.max_steps, message)

    def _wait_while_paused(self) -> float:
        """Wait while the pause event is set (a stop ends the wait); the seconds waited."""
        if not self.pause.is_set() or self.stop.is_set():
            return 0.0
        started = time.perf_counter()
        self._write_state("paused")
        self.log(f"paused at step {self._step}")
        while self.pause.is_set() and not self.stop.is_set():
            self.stop.wait(0.1)
        self._write_state("running")
        self.log(f"resumed at step {self._step}")
        return time.perf_counter() - started

    def _run(self) -> TrainResult:
        cfg = self.config
        if self.is_main:
            _atomic_json(self.logdir / TRAIN_CONFIG, asdict(cfg))
            self._write_state("running")
        self._prepare_data()
        torch.manual_seed(cfg.seed + self.rank)
        model = self.model
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        state = {"step": 0, "lr": cfg.lr, "best": math.inf, "bad_evals": 0}
        ckpt = self.logdir / CHECKPOINT
        if ckpt.is_file():
            # weights_only: a checkpoint from a stranger can hold code; it is refused unrun.
            try:
                saved = torch.load(ckpt, map_location=self.device, weights_only=True)
                model.load_state_dict(saved["model"])
                opt.load_state_dict(saved["optimizer"])
                state.update(saved["state"])
            except pickle.UnpicklingError:
                raise TrainingError(
                    f"{ckpt} holds code or objects other than tensors, so it was not loaded; "
                    "delete it to start this run afresh"
                ) from None
            except (EOFError, KeyError, TypeError, ValueError, RuntimeError) as e:
                first = (str(e).splitlines() or [type(e).__name__])[0][:200]
                raise TrainingError(
                    f"{ckpt} is damaged or not this run's checkpoint ({first}); delete it to "
                    "start this run afresh"
                ) from None
            self.log(f"resuming at step {int(state['step'])}")
            self._step = int(state["step"])
            self._write_state("running")
        elif cfg.init_from:
            self._init_weights(cfg.init_from)
        if cfg.calibration == "keep" and cfg.init_from:
            try:
                source = read_bundle(resolve_model(cfg.init_from)).metadata
                # a bundle whose neighbours vote keeps its head's calibration beside theirs:
                # this run reads with the head (it has no neighbours of its own)
                meta = source.get("head_calibration", source.get("calibration"))
            except SampleToolError:  # gone since the run started: uncalibrated, then
                meta = None
            if isinstance(meta, dict):
                self._kept_calibration = dict(meta, kept_from=str(cfg.init_from))
        if cfg.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema))
            if ckpt.is_file() and "ema" in saved:
                self.ema.load_state_dict(saved["ema"])
        for g in opt.param_groups:
            g["lr"] = state["lr"]
        forward = model.forward
        if self.world > 1:
            ddp = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            forward = ddp

        step = int(state["step"])
        # The batch order is a function of (seed, epoch): a resumed run sees fresh batches and
        # every process of a distributed run draws the same global batch, then takes its share.
        per_rank = max(1, cfg.batch_size // self.world)
        epoch_len = max(1, len(self.train_idx) // (per_rank * self.world))
        aug_gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank + step)
        running: dict[str, float] = {}
        n_running, t0, samples = 0, time.perf_counter(), 0
        started, paused = t0, 0.0
        reason = "max_steps"
        last_metrics: dict = {}
        while step < cfg.max_steps:
            waited = self._wait_while_paused()
            t0 += waited
            paused += waited
            epoch, pos = divmod(step, epoch_len)
            rng = np.random.default_rng((cfg.seed, epoch))
            if self.draw_p is None:
                order = rng.permutation(len(self.train_idx))
            else:
                order = rng.choice(len(self.train_idx), len(self.train_idx), p=self.draw_p)
            global_batch = order[(pos * per_rank * self.world) % len(order) :][
                : per_rank * self.world
            ]
            if len(global_batch) < per_rank * self.world:
                global_batch = np.resize(order, per_rank * self.world)
            mine = self.train_idx[global_batch[self.rank :: self.world]]
            x, y = self._batch(mine, aug_gen if self.augment_cfg.active else None)
            parts = train_step(model, opt, x, y if self.class_names else None,
                               self.class_balance, forward, cfg.grad_clip)  # fmt: skip
            if self.ema is not None:
                self.ema.update_parameters(model)
            step += 1
            samples += len(mine) * self.world
            for key, v in parts.items():
                running[key] = running.get(key, 0.0) + v
            n_running += 1

            stop_now = self.stop.is_set()
            if self.world > 1:
                flag = torch.tensor([1.0 if stop_now else 0.0], device=self.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop_now = bool(flag.item())
            evaluate = step % cfg.eval_every == 0 or step >= cfg.max_steps or stop_now
            if self.on_metrics is not None and self.is_main and (step % 10 == 0 or evaluate):
                self.on_metrics(
                    step,
                    {f"train_{k}": v / n_running for k, v in running.items()}
                    | {"lr": state["lr"], "elapsed": time.perf_counter() - started - paused},
                )
            if not evaluate:
                continue

            error: BaseException | None = None
            converged = False
            if self.is_main:
                try:
                    elapsed = time.perf_counter() - t0
                    metrics: dict[str, Any] = {
                        "step": step,
                        "lr": state["lr"],
                        "samples_per_s": samples / max(elapsed, 1e-9),
                    }
                    metrics |= {f"train_{k}": v / max(n_running, 1) for k, v in running.items()}
                    metrics |= self.validate()
                    confusion = metrics.pop("confusion", None)
                    calibration = metrics.pop("calibration", None)
                    if cfg.calibration == "keep":
                        calibration = self._kept_calibration
                    improved = metrics["val_loss"] < state["best"]
                    if improved:
                        state["best"] = metrics["val_loss"]
                        state["bad_evals"] = 0
                        self._save_bundle(dict(metrics), confusion, calibration)
                    elif not (self.logdir / WEIGHTS_FILE).exists():
                        self._save_bundle(dict(metrics), confusion, calibration)
                    else:
                        state["bad_evals"] += 1
                        if state["bad_evals"] >= cfg.patience:
                            state["lr"] *= cfg.lr_factor
                            state["bad_evals"] = 0
                            self.log(
                                f"step {step}: validation stopped improving; "
                                f"learning rate now {state['lr']:.2e}"
                            )
                    metrics["best_val_loss"] = state["best"]
                    if confusion is not None:
                        self._write_confusion(step, confusion)
                    with open(self.logdir / METRICS, "a", encoding="utf-8") as f:
                        f.write(json.dumps(metrics) + "\n")
                    last_metrics = metrics
                    converged = state["lr"] < cfg.min_lr
                    if self.on_metrics is not None:
                        shown = metrics if confusion is None else metrics | {"confusion": confusion}
                        self.on_metrics(step, shown)
                except BaseException as e:
                    error = e
            self._agree_or_raise(error, "validation")
            decision = torch.tensor([1.0 if converged else 0.0, state["lr"]], device=self.device)
            if self.world > 1:
                dist.broadcast(decision, src=0)
            state["lr"] = float(decision[1])
            for g in opt.param_groups:
                g["lr"] = state["lr"]
            state["step"] = step
            self._save_checkpoint(opt, state)
            self._step = step
            self._write_state("running")
            running, n_running, t0, samples = {}, 0, time.perf_counter(), 0
            if stop_now:
                reason = "stopped"
                break
            if decision[0] > 0:
                reason = "converged"
                self.log(f"converged at step {step}: the learning rate fell below {cfg.min_lr:g}")
                break
        if self.world > 1:
            dist.barrier()
            # DDP's reducer holds the process group; let both go now, while every thread is
            # alive, rather than at interpreter exit.
            del forward, ddp
            gc.collect()
        self.close()
        self._step = step
        self._write_state(reason)
        return TrainResult(
            step=step, reason=reason, best_val_loss=state["best"], metrics=last_metrics
        )
