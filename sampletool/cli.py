"""`sampletool`: the command line.

Exit codes: 0 all went well; 1 some audio files could not be read (each reported on stderr,
the others processed); 2 a bad argument or a model folder that is not a model (one line on
stderr, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from sampletool.errors import AudioError, SampleToolError

EXIT_OK, EXIT_BAD_FILES, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad argument, reported as one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints the whole usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="DIR",
        help="model bundle folder or installed model name (default: the built-in model)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="catalogue file (default: in the user's data folder, keyed by the library folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sampletool",
        description="Embed, classify and blend audio samples with a neural model.",
        epilog="Exit codes: 0 ok, 1 some audio files unreadable, 2 bad arguments or model.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    g = sub.add_parser(
        "generate",
        help="blend sounds in latent space and write the result as WAV",
        description="Blend the latent vectors of FILES (weighted), decode, write a WAV. "
        "With no FILES, decode a random latent.",
    )
    g.add_argument("files", nargs="*", metavar="FILES")
    _model_arg(g)
    g.add_argument("-o", "--out", default="generated.wav", help="output WAV (default: %(default)s)")
    g.add_argument(
        "--weights",
        nargs="+",
        type=float,
        metavar="W",
        help="one weight per file; the wrong count means equal weights",
    )
    g.add_argument(
        "--no-normalize",
        action="store_true",
        help="use weights as given (allows negative weights, subtraction)",
    )
    g.add_argument("--variance", type=float, default=0.0, help="latent noise variance")
    g.add_argument("--seed", type=int, help="seed for noise, random latents and phase")
    g.add_argument("--iterations", type=int, default=32, help="Griffin-Lim iterations (default 32)")

    c = sub.add_parser(
        "classify",
        help="print each file's predicted class",
        description="Classify each file with the model's classifier.",
    )
    c.add_argument("files", nargs="+", metavar="FILES")
    _model_arg(c)
    c.add_argument("--offset", type=float, default=0.0, help="start, in seconds, in each file")
    c.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per file in order: path, class, probabilities "
        "(class name -> probability), or path and error",
    )

    e = sub.add_parser(
        "embed",
        help="write the latent vectors of files to a .npy file",
        description="Write one row per file, in order, to a float32 .npy array [files, latent]. "
        "Rows of unreadable files are NaN.",
    )
    e.add_argument("files", nargs="+", metavar="FILES")
    _model_arg(e)
    e.add_argument("-o", "--out", required=True, help="output .npy file")
    e.add_argument("--workers", type=int, help="decoding processes (default: one per core)")

    d = sub.add_parser(
        "make-dataset",
        help="turn folders of audio into a dataset for training",
        description="Find every audio file under DATA_DIRs (all sub-folders) and write a dataset "
        "folder: manifest.csv (path, class, split) and summary.json. The split is stratified "
        "per class. Unreadable files are listed and left out.",
    )
    d.add_argument("data_dirs", nargs="+", metavar="DATA_DIR")
    d.add_argument("--name", required=True, help="dataset name")
    d.add_argument("--out", metavar="DIR", help="dataset folder (default: user data/datasets/NAME)")
    d.add_argument("--train-ratio", type=float, default=0.9, help="default %(default)s")
    d.add_argument(
        "--classes-from-subfolders",
        action="store_true",
        help="the immediate sub-folders of each DATA_DIR are the class names",
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the split")
    d.add_argument("--overwrite", action="store_true",
                   help="replace a dataset already in the folder")  # fmt: skip
    d.add_argument("--workers", type=int, help="checking processes (default: one per core)")

    t = sub.add_parser(
        "train",
        help="train a model (or resume a run) into a log folder",
        description="Train a model on a dataset. The log folder becomes a model bundle "
        "(usable as --model DIR) with checkpoints, metrics.jsonl and confusion matrices. Run "
        "again on the same --logdir to resume. Ctrl+C stops cleanly after saving.",
    )
    t.add_argument("--logdir", required=True, metavar="DIR")
    t.add_argument("--dataset", metavar="DIR", help="dataset folder (not needed to resume)")
    t.add_argument("--model", default="vae", choices=["vae"], help="model kind")
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
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, help="decoding processes for the feature cache")

    ix = sub.add_parser(
        "index",
        help="scan a sample folder into the library index (incremental)",
        description="Scan LIBRARY_DIR (all sub-folders): new and changed files are embedded, "
        "unchanged ones skipped, deleted ones removed, moved ones recognised. Safe to stop at "
        "any moment (Ctrl+C or a crash): the next run carries on. Exits 0 when the scan "
        "completes; unreadable files are listed in the summary.",
    )
    ix.add_argument("library", metavar="LIBRARY_DIR")
    _model_arg(ix)
    _db_arg(ix)
    ix.add_argument("--segment", action=argparse.BooleanOptionalAction,
                    help="split long files at onsets into separate entries (the library "
                    "remembers it; default: as last time, else off)")  # fmt: skip
    ix.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    ix.add_argument("--json", action="store_true", help="print the summary as JSON")
    ix.add_argument(
        "--rebuild", action="store_true", help="start a fresh catalogue if it is damaged"
    )

    si = sub.add_parser(
        "similar",
        help="find the library entries most similar to a sound",
        description="TARGET may be a library entry (itself excluded) or any audio file.",
    )
    si.add_argument("target", metavar="TARGET")
    si.add_argument("--library", required=True, metavar="LIBRARY_DIR")
    _model_arg(si)
    _db_arg(si)
    si.add_argument("-k", type=int, default=10, help="how many (default 10)")
    si.add_argument("--offset", type=float, default=0.0, help="start in TARGET, seconds")
    si.add_argument(
        "--same-kind",
        action="store_true",
        help="only entries the model puts in TARGET's class (needs a model with a classifier)",
    )
    si.add_argument(
        "--json", action="store_true", help="a JSON list of {path, onset, distance}, nearest first"
    )

    du = sub.add_parser(
        "duplicates",
        help="list exact and near duplicates in a library",
        description="Exact duplicates are byte-identical files; near duplicates are entries "
        "whose vectors are closer than --threshold (default: adapted to the library).",
    )
    du.add_argument("--library", required=True, metavar="LIBRARY_DIR")
    _model_arg(du)
    _db_arg(du)
    du.add_argument("--threshold", type=float, help="near-duplicate distance")
    du.add_argument("--json", action="store_true")

    dm = sub.add_parser(
        "demo",
        help="write a demo library of synthesised samples",
        description="Write synthesised one-shots in class folders (kick, snare, hihat, tom, "
        "cymbal, clap, percussion, tonal, fx; WAV, FLAC and AIFF at several rates and bit "
        "depths) and drum loops into DIR, which must be new or empty.",
    )
    dm.add_argument("dir", metavar="DIR")
    dm.add_argument("--per-class", type=int, default=30, help="one-shots per class (30)")
    dm.add_argument("--loops", type=int, default=8, help="drum loops (8)")
    dm.add_argument("--seed", type=int, default=0)

    m = sub.add_parser(
        "models",
        help="list the installed model bundles",
        description="List model bundles found in $SAMPLETOOL_MODEL_PATH, the user's models "
        "folder and the built-in models.",
    )
    m.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def _version() -> str:
    from sampletool import __version__

    return f"sampletool {__version__}"


def _tool(args: argparse.Namespace):
    from sampletool.tool import SoundSampleTool

    return SoundSampleTool(args.model, device=args.device)


def _report(path: object, reason: str) -> None:
    print(f"sampletool: {path}: {reason}", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    if args.iterations < 0 or args.iterations > 10_000:
        raise UsageError("--iterations must be between 0 and 10000")
    if args.variance < 0:
        raise UsageError("--variance must be >= 0")
    tool = _tool(args)
    latents, weights, failed = [], [], 0
    given = list(args.weights) if args.weights else []
    for i, f in enumerate(args.files):
        try:
            latents.append(tool.latent(f))
            if len(given) == len(args.files):
                weights.append(given[i])
        except AudioError as err:
            _report(f, err.reason)
            failed += 1
    if args.files and not latents:
        print("sampletool: none of the files could be read; nothing generated", file=sys.stderr)
        return EXIT_BAD_FILES
    if given and len(given) != len(args.files):
        print(
            f"sampletool: warning: {len(given)} weights for {len(args.files)} files: "
            "using equal weights",
            file=sys.stderr,
        )
    import numpy as np

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tool.generate(
            args.out,
            latents=np.stack(latents) if latents else None,
            weights=weights,
            normalize_weights=not args.no_normalize,
            variance=args.variance,
            seed=args.seed,
            griffin_lim_iters=args.iterations,
        )
    for w in caught:
        print(f"sampletool: warning: {w.message}", file=sys.stderr)
    print(f"wrote {args.out}")
    return EXIT_BAD_FILES if failed else EXIT_OK


def cmd_classify(args: argparse.Namespace) -> int:
    if args.offset < 0:
        raise UsageError("--offset must be >= 0")
    tool = _tool(args)
    tool._require_classifier()
    results, failed = [], 0
    for f in args.files:
        try:
            probs, cls = tool.predict(f, args.offset)
        except AudioError as err:
            _report(f, err.reason)
            results.append({"path": f, "error": err.reason})
            failed += 1
            continue
        results.append(
            {
                "path": f,
                "class": cls,
                "probabilities": {
                    n: round(float(p), 6) for n, p in zip(tool.class_names, probs, strict=True)
                },
            }
        )
        if not args.json:
            print(f"{f}\t{cls}\t{float(probs.max()):.3f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_BAD_FILES if failed else EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be >= 0")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise UsageError(f"the output must be a .npy file, got {args.out}")
    import numpy as np

    tool = _tool(args)
    vectors, rows, failures = tool.embed_files(args.files, workers=args.workers)
    result = np.full((len(args.files), tool.latent_dim), np.nan, np.float32)
    result[rows] = vectors
    for _, path, reason in failures:
        _report(path, reason)
    from sampletool.fileio import atomic_write

    atomic_write(out, lambda p: np.save(p, result))
    print(f"wrote {out}: {len(rows)} of {len(args.files)} files, {tool.latent_dim} dimensions")
    return EXIT_BAD_FILES if failures else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from sampletool.registry import find_bundles

    infos = find_bundles()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "path": str(i.path),
                        "kind": i.kind,
                        "classes": list(i.class_names),
                        "description": i.description,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return EXIT_OK
    if not infos:
        print("no model bundles found")
    for i in infos:
        classes = ", ".join(i.class_names) if i.class_names else "no classifier"
        print(f"{i.name}\t{i.kind}\t{classes}\t{i.path}")
    return EXIT_OK


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from sampletool.data.dataset import make_dataset

    bar = _ProgressBar("checking files")
    root = make_dataset(
        args.data_dirs,
        args.name,
        out=args.out,
        train_ratio=args.train_ratio,
        classes_from_subfolders=args.classes_from_subfolders,
        seed=args.seed,
        workers=args.workers,
        progress=bar,
        warn=lambda msg: print(f"sampletool: warning: {msg}", file=sys.stderr),
        overwrite=args.overwrite,
    )
    bar.close()
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    for f in summary["failed"]:
        _report(f["path"], f["reason"])
    print(f"dataset {args.name!r} in {root}: {summary['files']} files "
          f"({summary['train']} train, {summary['val']} validation)")  # fmt: skip
    for cls, n in summary["per_class"].items():
        if cls:
            print(f"  {cls}: {n['train']} train, {n['val']} validation")
    return EXIT_BAD_FILES if summary["failed"] else EXIT_OK


class _ProgressBar:
    """A one-line progress bar on stderr (only when it is a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int, _msg: str = "") -> None:
        if not self.tty or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r{self.label} [{bar}] {done}/{total}", end="", file=sys.stderr, flush=True)
        self.shown = True

    def close(self) -> None:
        if self.shown:
            print(file=sys.stderr)
            self.shown = False


def _stop_on_ctrl_c(event, when: str):
    """First Ctrl+C sets `event` (the work stops cleanly after `when`); a second one aborts.
    Returns the previous SIGINT handler to restore, or None off the main thread."""
    import signal
    import threading

    def on_sigint(signum, frame):
        print(f"\nsampletool: stopping after {when} (Ctrl+C again to abort)", file=sys.stderr)
        event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, on_sigint)


def cmd_train(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sampletool.data.augment import AugmentConfig
    from sampletool.training.trainer import TRAIN_CONFIG, TrainConfig, Trainer

    logdir = Path(args.logdir)
    resuming = (logdir / TRAIN_CONFIG).is_file()
    config = None
    if not resuming:
        if not args.dataset:
            raise UsageError(f"{logdir} holds no training run yet: name a --dataset")
        model = {"kind": args.model}
        if args.init_from:
            from sampletool.registry import read_bundle_config, resolve_model

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
            ).to_dict(),
            batch_size=args.batch_size,
            lr=args.lr,
            min_lr=args.min_lr,
            max_steps=args.max_steps or 100_000,
            eval_every=args.eval_every,
            patience=args.patience,
            seed=args.seed,
            workers=args.workers,
            init_from=str(source) if args.init_from else None,
        )
        if args.init_from:
            config.audio = audio
    elif args.dataset:
        print("sampletool: resuming; the dataset and settings come from the run", file=sys.stderr)

    stop = threading.Event()
    previous = _stop_on_ctrl_c(stop, "this step")
    bar = _ProgressBar("caching features")

    def progress(step: int, metrics: dict) -> None:
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
            progress=progress,
            stop=stop,
            log=lambda msg: print(f"sampletool: {msg}", file=sys.stderr, flush=True),
            cache_progress=bar,
        )
        result = trainer.run()
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if trainer.is_main:
        print(f"{result.reason} at step {result.step}; best validation loss "
              f"{result.best_val_loss:.3f}; model bundle in {logdir}")  # fmt: skip
    return 130 if result.reason == "stopped" and stop.is_set() else EXIT_OK


def _library(args: argparse.Namespace, rebuild: bool = False):
    from sampletool.library.library import Library

    return Library(args.library, _tool(args), db_path=args.db,
                   segmentation=getattr(args, "segment", None), rebuild=rebuild)  # fmt: skip


def cmd_index(args: argparse.Namespace) -> int:
    import signal
    import threading

    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be >= 0")
    lib = _library(args, rebuild=args.rebuild)
    cancel = threading.Event()
    previous = _stop_on_ctrl_c(cancel, "this batch")
    bar = _ProgressBar("indexing")
    try:
        report = lib.scan(args.workers, bar, cancel)
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        lib.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"{report.indexed} indexed ({report.segments} entries), "
              f"{report.skipped_unchanged} unchanged, {report.moved} moved, {report.removed} "
              f"removed, {len(report.failed)} failed, in {report.seconds:.1f} s"
              + (" (stopped early)" if report.cancelled else ""))  # fmt: skip
        for f in report.failed:
            _report(f["path"], f["reason"])
    return 130 if report.cancelled else EXIT_OK


def cmd_similar(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise UsageError("-k must be >= 1")
    lib = _library(args)
    try:
        files, onsets, dists = lib.find_similar(
            args.target, args.k, args.offset, same_kind=args.same_kind
        )
        kind = lib.kind_of(args.target, args.offset) if args.same_kind and not files else None
        empty = None if files or kind else _why_no_entries(lib, args)
    finally:
        lib.close()
    if empty:
        raise UsageError(empty)
    rows = [{"path": f, "onset": o, "distance": round(d, 6)}
            for f, o, d in zip(files, onsets, dists, strict=True)]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            at = f" @ {r['onset']:.2f} s" if r["onset"] else ""
            print(f"{r['distance']:.4f}\t{r['path']}{at}")
        if kind:
            print(f"no other {kind} sounds in the library")
        elif not rows:
            print("no other entries in the library")
    return EXIT_OK


def _why_no_entries(lib, args: argparse.Namespace) -> str | None:
    """Why a search found nothing, when the library is at fault: empty, unreadable, or not
    indexed with this model (None: it holds only the target)."""
    import shlex

    index = " ".join(shlex.quote(str(a)) for a in (
        "sampletool", "index", args.library,
        *(("--model", args.model) if args.model else ()), *(("--db", args.db) if args.db else ()),
    ))  # fmt: skip
    counts = lib.catalogue.count(lib.model_id)
    if not counts["files"] and counts["failed"]:
        return f"none of the library's {counts['failed']} files could be read ({index} lists them)"
    if not counts["files"]:
        return f"the library is empty: index it first ({index})"
    if not counts["vectors"]:
        return (f"the library is not indexed with model {lib.tool.bundle.name!r} yet: index it "
                f"with this model first ({index})")  # fmt: skip
    return None


def cmd_duplicates(args: argparse.Namespace) -> int:
    if args.threshold is not None and not args.threshold >= 0:
        raise UsageError("--threshold must be a distance >= 0")
    lib = _library(args)
    try:
        d = lib.duplicates(args.threshold)
    finally:
        lib.close()
    if args.json:
        print(json.dumps({"exact": d.exact, "near": d.near, "threshold": d.threshold}, indent=2))
        return EXIT_OK
    print(f"{len(d.exact)} groups of exact duplicates")
    for g in d.exact:
        print("  " + "\n  ".join(g) + "\n")
    print(f"{len(d.near)} groups of near duplicates (distance <= {d.threshold:.4f})")
    for g in d.near:
        print("  " + "\n  ".join(f"{e['path']}" + (f" @ {e['onset']:.2f} s" if e["onset"] else "")
                                 for e in g) + "\n")  # fmt: skip
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from sampletool.data.synth import write_demo_library

    if args.per_class < 1 or args.loops < 0:
        raise UsageError("--per-class must be >= 1 and --loops >= 0")
    bar = _ProgressBar("writing")
    try:
        paths = write_demo_library(args.dir, args.per_class, args.loops, args.seed, bar)
    finally:
        bar.close()
    print(f"{len(paths)} files in {args.dir}")
    return EXIT_OK


COMMANDS = {
    "demo": cmd_demo,
    "generate": cmd_generate,
    "classify": cmd_classify,
    "embed": cmd_embed,
    "models": cmd_models,
    "make-dataset": cmd_make_dataset,
    "train": cmd_train,
    "index": cmd_index,
    "similar": cmd_similar,
    "duplicates": cmd_duplicates,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (SampleToolError, ValueError) as e:
        print(f"sampletool: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `sampletool ... | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as e:  # e.g. an output folder we may not write to
        print(f"sampletool: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sampletool: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
