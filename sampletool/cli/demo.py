"""`sampletool demo`: write a demo library of synthesised samples."""

from __future__ import annotations

import argparse

from sampletool.cli.common import EXIT_OK, ProgressBar, UsageError

NAME = "demo"


def add_parser(sub) -> None:
    dm = sub.add_parser(
        NAME,
        help="write a demo library of synthesised samples",
        description="Write synthesised one-shots in class folders (kick, snare, hihat, tom, "
        "cymbal, clap, percussion, tonal, fx; WAV, FLAC and AIFF at several rates and bit "
        "depths) and drum loops into DIR, which must be new or empty.",
    )
    dm.add_argument("dir", metavar="DIR")
    dm.add_argument("--per-class", type=int, default=30, help="one-shots per class (30)")
    dm.add_argument("--loops", type=int, default=8, help="drum loops (8)")
    dm.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from sampletool.data.synth import write_demo_library

    if args.per_class < 1 or args.loops < 0:
        raise UsageError("--per-class must be >= 1 and --loops >= 0")
    bar = ProgressBar("writing")
    try:
        paths = write_demo_library(args.dir, args.per_class, args.loops, args.seed, bar)
    finally:
        bar.close()
    print(f"{len(paths)} files in {args.dir}")
    return EXIT_OK
