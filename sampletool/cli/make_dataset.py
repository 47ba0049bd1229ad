"""`sampletool make-dataset`: turn folders of audio into a dataset for training."""

from __future__ import annotations

import argparse
import json

from sampletool.cli.common import EXIT_BAD_FILES, EXIT_OK, ProgressBar, report, warn

NAME = "make-dataset"


def add_parser(sub) -> None:
    d = sub.add_parser(
        NAME,
        help="turn folders of audio into a dataset for training",
        description="Find every audio file under DATA_DIRs (all sub-folders) and write a dataset "
        "folder: manifest.csv (path, class, split) and summary.json. The split is stratified "
        "per class. Unreadable files are listed and left out.",
    )
    d.add_argument("data_dirs", nargs="+", metavar="DATA_DIR")
    d.add_argument("--name", required=True, help="dataset name")
    d.add_argument("--out", metavar="DIR", help="dataset folder (default: user data/datasets/NAME)")
    d.add_argument("--train-ratio", type=float, default=0.9, help="default %(default)s")
    classes = d.add_mutually_exclusive_group()
    classes.add_argument(
        "--classes-from-subfolders",
        action="store_true",
        help="the immediate sub-folders of each DATA_DIR are the class names",
    )
    classes.add_argument(
        "--classes-from-names",
        action="store_true",
        help="drum classes from the words in file and folder names ('Kick_01.wav', "
        "'SD Tight 3.aif', 'Hats/01.wav'); files that name none are left out",
    )
    classes.add_argument(
        "--layout",
        choices=["librispeech", "esc50"],
        help="a local copy of a public dataset: librispeech (SPEAKER/CHAPTER/*.flac, the "
        "speaker as class) or esc50 (meta/esc50.csv and audio/, the category as class and "
        "fold 5 for validation)",
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the split")
    d.add_argument("--overwrite", action="store_true",
                   help="replace a dataset already in the folder")  # fmt: skip
    d.add_argument("--workers", type=int, help="checking processes (default: one per core)")


def run(args: argparse.Namespace) -> int:
    from sampletool.data.dataset import make_dataset

    bar = ProgressBar("checking files")
    try:
        root = make_dataset(
            args.data_dirs,
            args.name,
            out=args.out,
            train_ratio=args.train_ratio,
            labels=args.layout
            or (
                "subfolders"
                if args.classes_from_subfolders
                else "names"
                if args.classes_from_names
                else "none"
            ),
            seed=args.seed,
            workers=args.workers,
            progress=bar,
            warn=warn,
            overwrite=args.overwrite,
        )
    finally:
        bar.close()
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    for f in summary["failed"]:
        report(f["path"], f["reason"])
    print(f"dataset {args.name!r} in {root}: {summary['files']} files "
          f"({summary['train']} train, {summary['val']} validation)")  # fmt: skip
    for cls, n in summary["per_class"].items():
        if cls:
            print(f"  {cls}: {n['train']} train, {n['val']} validation")
    return EXIT_BAD_FILES if summary["failed"] else EXIT_OK
