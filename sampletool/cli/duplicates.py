"""`sampletool duplicates`: exact and near duplicates in a library."""

from __future__ import annotations

import argparse
import json

from sampletool.cli.common import (
    EXIT_OK,
    NAMES_HELP,
    UsageError,
    add_db_arg,
    add_model_args,
    open_library,
    quote_name,
)

NAME = "duplicates"


def add_parser(sub) -> None:
    du = sub.add_parser(
        NAME,
        help="list exact and near duplicates in a library",
        description="Exact duplicates are byte-identical files; near duplicates are entries "
        "whose vectors are closer than --threshold (default: adapted to the library). Each group "
        "lists one file name a line. " + NAMES_HELP,
    )
    du.add_argument("--library", required=True, metavar="LIBRARY_DIR")
    add_model_args(du)
    add_db_arg(du)
    du.add_argument("--threshold", type=float, help="near-duplicate distance")
    du.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.threshold is not None and not args.threshold >= 0:
        raise UsageError("--threshold must be a distance >= 0")
    lib = open_library(args, indexed=True)
    try:
        d = lib.duplicates(args.threshold)
    finally:
        lib.close()
    if args.json:
        print(json.dumps({"exact": d.exact, "near": d.near, "threshold": d.threshold}, indent=2))
        return EXIT_OK
    print(f"{len(d.exact)} groups of exact duplicates")
    for g in d.exact:
        print("  " + "\n  ".join(quote_name(p) for p in g) + "\n")
    print(f"{len(d.near)} groups of near duplicates (distance <= {d.threshold:.4f})")
    for g in d.near:
        entries = (quote_name(e["path"]) + (f" @ {e['onset']:.2f} s" if e["onset"] else "")
                   for e in g)  # fmt: skip
        print("  " + "\n  ".join(entries) + "\n")
    return EXIT_OK
