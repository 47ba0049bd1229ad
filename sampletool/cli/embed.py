"""`sampletool embed`: the search vectors of files, as one .npy array."""

from __future__ import annotations

import argparse
from pathlib import Path

from sampletool.cli.common import (
    EXIT_BAD_FILES,
    EXIT_OK,
    UsageError,
    add_model_args,
    load_model,
    report,
)

NAME = "embed"


def add_parser(sub) -> None:
    e = sub.add_parser(
        NAME,
        help="write the latent vectors of files to a .npy file",
        description="Write one row per file, in order, to a float32 .npy array [files, latent]. "
        "Rows of unreadable files are NaN.",
    )
    e.add_argument("files", nargs="+", metavar="FILES")
    add_model_args(e)
    e.add_argument("-o", "--out", required=True, help="output .npy file")
    e.add_argument("--workers", type=int, help="decoding processes (default: one per core)")


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be >= 0")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise UsageError(f"the output must be a .npy file, got {args.out}")
    import numpy as np

    from sampletool.audio import load_clips
    from sampletool.fileio import atomic_write

    runtime = load_model(args)
    audio = runtime.audio
    batch = load_clips(args.files, seconds=audio.seconds, sample_rate=audio.sample_rate,
                       workers=args.workers)  # fmt: skip
    result = np.full((len(args.files), runtime.vector_dim), np.nan, np.float32)
    result[batch.indices] = runtime.encode_clips(batch.audio).vectors
    for _, path, reason in batch.failures:
        report(path, reason)
    atomic_write(out, lambda p: np.save(p, result))
    print(f"wrote {out}: {len(batch.indices)} of {len(args.files)} files, "
          f"{runtime.vector_dim} dimensions")  # fmt: skip
    return EXIT_BAD_FILES if batch.failures else EXIT_OK
