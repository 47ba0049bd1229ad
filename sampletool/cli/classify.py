"""`sampletool classify`: each file's predicted class and probabilities.

A class the model is unsure of (its calibrated confidence is under the model's threshold) is
printed as "? snare (or tom)", and `--json` says "unsure": true with the runner-up."""

from __future__ import annotations

import argparse
import json

from sampletool.cli.common import (
    EXIT_BAD_FILES,
    EXIT_OK,
    NAMES_HELP,
    UsageError,
    add_model_args,
    load_model,
    quote_name,
    report,
)
from sampletool.errors import AudioError

NAME = "classify"


def add_parser(sub) -> None:
    c = sub.add_parser(
        NAME,
        help="print each file's predicted class",
        description="Classify each file with the model's classifier. Prints one line per "
        "file: its name, the class and the confidence, separated by tabs. " + NAMES_HELP,
    )
    c.add_argument("files", nargs="+", metavar="FILES")
    add_model_args(c)
    c.add_argument("--offset", type=float, default=0.0, help="start, in seconds, in each file")
    c.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per file in order: path, class, confidence, "
        "unsure (the model's confidence is under its threshold), runner_up and its "
        "confidence, probabilities (class name -> probability); or path and error",
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
        reading = runtime.read_class(probs)
        results.append({
            "path": f,
            "class": reading.name,
            "confidence": round(reading.confidence, 6),
            "unsure": reading.unsure,
            "runner_up": reading.runner_up or None,
            "runner_up_confidence": round(reading.runner_up_confidence, 6),
            "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
        })  # fmt: skip
        if not args.json:
            print(f"{quote_name(f)}\t{reading.text()}\t{reading.confidence:.3f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return EXIT_BAD_FILES if failed else EXIT_OK
