"""`sampletool classify`: each file's predicted class and probabilities."""

from __future__ import annotations

import argparse
import json

from sampletool.cli.common import (
    EXIT_BAD_FILES,
    EXIT_OK,
    UsageError,
    add_model_args,
    load_model,
    report,
)
from sampletool.errors import AudioError

NAME = "classify"


def add_parser(sub) -> None:
    c = sub.add_parser(
        NAME,
        help="print each file's predicted class",
        description="Classify each file with the model's classifier.",
    )
    c.add_argument("files", nargs="+", metavar="FILES")
    add_model_args(c)
    c.add_argument("--offset", type=float, default=0.0, help="start, in seconds, in each file")
    c.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per file in order: path, class, probabilities "
        "(class name -> probability), or path and error",
    )


def run(args: argparse.Namespace) -> int:
    if args.offset < 0:
        raise UsageError("--offset must be >= 0")
    runtime = load_model(args)
    runtime.require_classifier()
    names = runtime.class_names
    results, failed = [], 0
    for f in args.files:
        try:
            probs = runtime.read(f, args.offset).probs[0]
        except AudioError as err:
            report(f, err.reason)
            results.append({"path": f, "error": err.reason})
            failed += 1
            continue
        cls = names[int(probs.argmax())]
        results.append({
            "path": f,
            "class": cls,
            "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
        })  # fmt: skip
        if not args.json:
            print(f"{f}\t{cls}\t{float(probs.max()):.3f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_BAD_FILES if failed else EXIT_OK
