"""`sampletool train`: train a model (or resume a run) into a log folder."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from sampletool.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    ProgressBar,
    UsageError,
    stop_on_ctrl_c,
)
from sampletool.models.kinds import SIZES, kind_names

NAME = "train"


def add_parser(sub) -> None:
    t = sub.add_parser(
        NAME,
        help="train a model (or resume a run) into a log folder",
        description="Train a model on a dataset. The log folder becomes a model bundle "
        "(usable as --model DIR) with checkpoints, metrics.jsonl and confusion matrices. Run "
        "again on the same --logdir to resume. Ctrl+C stops cleanly after saving.",
    )
    t.add_argument("--logdir", required=True, metavar="DIR")
    t.add_argument("--dataset", metavar="DIR", help="dataset folder (not needed to resume)")
    t.add_argument("--model", default="vae", choices=kind_names(), help="model kind")
    t.add_argument(
        "--size",
        choices=SIZES,
        help="the kind's size preset (what the train "
        "wizard offers; default: the kind's own defaults); --model-options override it",
    )
    t.add_argument("--init-from", metavar="MODEL", help="start from this model's weights "
                   "(a folder or an installed model's name, e.g. default): fine-tune it on your "
                   "library; its settings become the run's")  # fmt: skip
    t.add_argument(
        "--model-options",
        metavar="JSON",
        help='model settings as JSON, e.g. \'{"latent": 32, "hidden": 256}\'',
    )
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3, help="initial learning rate")
    t.add_argument("--min-lr", type=float, default=1e-5, help="stop once the rate falls below")
    t.add_argument("--max-steps", type=int, help="stop at this step (default 100000); "
                   "on resume, raises the run's limit")  # fmt: skip
    t.add_argument("--eval-every", type=int, default=250, help="steps between validations")
    t.add_argument("--patience", type=int, default=3, help="validations without improvement "
                   "before the learning rate is halved")  # fmt: skip
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    t.add_argument(
        "--augment",
        choices=["none", "additive", "multiplicative", "both"],
        default="none",
        help="noise augmentation, as in the NSynth experiments",
    )
    t.add_argument("--noise", choices=["gaussian", "laplace", "gmm"], default="gaussian")
    t.add_argument("--snr", type=float, nargs=2, default=(10.0, 30.0), metavar=("MIN", "MAX"),
                   help="signal-to-noise range in dB")  # fmt: skip
    t.add_argument("--gain-db", type=float, nargs=2, default=(0.0, 0.0), metavar=("MIN", "MAX"))
    t.add_argument("--shift", type=float, default=0.0, help="random time shift, max seconds")
    for name, what in (("drive", "drive (tanh or hard clipping)"), ("chorus", "chorus"),
                       ("reverb", "a synthetic reverb")):  # fmt: skip
        t.add_argument(f"--{name}", type=float, default=0.0, metavar="SHARE",
                       help=f"put this share of the clips (0 to 1) through {what}")  # fmt: skip
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, help="decoding processes for the feature cache")


def _new_run(args: argparse.Namespace):
    """The TrainConfig of a run that starts now, from the arguments."""
    from sampletool.data.augment import AugmentConfig
    from sampletool.training.trainer import TrainConfig

    if not args.dataset:
        raise UsageError(f"{args.logdir} holds no training run yet: name a --dataset")
    model: dict = {"kind": args.model}
    if args.size:
        from sampletool.models.kinds import get_kind

        model = get_kind(args.model).preset(args.size)
    audio = None
    source = None
    if args.init_from:
        from sampletool.models.bundle import read_bundle_config, resolve_model

        if args.size:
            raise UsageError("--size and --init-from: the model's settings come from the model")

        source = resolve_model(args.init_from)
        doc = read_bundle_config(source)
        model = dict(doc.get("model", {}))
        model.pop("num_classes", None)  # the dataset's classes decide
        audio = dict(doc.get("audio", {}))
    if args.model_options:
        try:
            extra = json.loads(args.model_options)
        except json.JSONDecodeError as e:
            raise UsageError(f"--model-options is not JSON ({e})") from None
        if not isinstance(extra, dict):
            raise UsageError("--model-options must be a JSON object")
        model |= extra
    config = TrainConfig(
        dataset=str(Path(args.dataset).resolve()),
        model=model,
        augment=AugmentConfig(
            mode=args.augment,
            noise=args.noise,
            snr_db=tuple(args.snr),
            gain_db=tuple(args.gain_db),
            max_shift=args.shift,
            drive_p=args.drive,
            chorus_p=args.chorus,
            reverb_p=args.reverb,
        ).to_dict(),
        batch_size=args.batch_size,
        lr=args.lr,
        min_lr=args.min_lr,
        max_steps=args.max_steps or 100_000,
        eval_every=args.eval_every,
        patience=args.patience,
        seed=args.seed,
        workers=args.workers,
        init_from=str(source) if source is not None else None,
    )
    if audio is not None:
        config.audio = audio
    return config


def run(args: argparse.Namespace) -> int:
    from sampletool.training.trainer import TRAIN_CONFIG, Trainer

    logdir = Path(args.logdir)
    config = None
    if not (logdir / TRAIN_CONFIG).is_file():
        config = _new_run(args)
    elif args.dataset:
        print("sampletool: resuming; the dataset and settings come from the run", file=sys.stderr)

    stop = threading.Event()
    restore = stop_on_ctrl_c(stop, "this step")
    bar = ProgressBar("caching features")

    def on_metrics(step: int, metrics: dict) -> None:
        if "val_loss" not in metrics:
            return
        bar.close()
        line = f"step {step:>7}  val loss {metrics['val_loss']:.2f}"
        if "val_accuracy" in metrics:
            line += f"  accuracy {metrics['val_accuracy']:.3f}"
            line += f"  balanced {metrics['val_balanced_accuracy']:.3f}"
        line += f"  lr {metrics['lr']:.1e}  {metrics['samples_per_s']:.0f} samples/s"
        print(line, flush=True)

    try:
        trainer = Trainer(
            logdir,
            config,
            max_steps=args.max_steps,
            device=args.device,
            on_metrics=on_metrics,
            stop=stop,
            log=lambda msg: print(f"sampletool: {msg}", file=sys.stderr, flush=True),
            cache_progress=bar,
        )
        result = trainer.run()
    finally:
        bar.close()
        restore()
    if trainer.is_main:
        print(f"{result.reason} at step {result.step}; best validation loss "
              f"{result.best_val_loss:.3f}; model bundle in {logdir}")  # fmt: skip
    return EXIT_INTERRUPTED if result.reason == "stopped" and stop.is_set() else EXIT_OK
