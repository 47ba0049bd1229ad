"""`sampletool similar`: the library entries most similar to a sound."""

from __future__ import annotations

import argparse
import json
import sys

from sampletool.cli.common import (
    EXIT_BAD_FILES,
    EXIT_OK,
    NAMES_HELP,
    UsageError,
    add_db_arg,
    add_model_args,
    index_command,
    open_library,
    quote_name,
    report,
)
from sampletool.errors import AudioError

NAME = "similar"


def add_parser(sub) -> None:
    si = sub.add_parser(
        NAME,
        help="find the library entries most similar to a sound",
        description="TARGET may be a library entry (itself excluded) or any audio file. "
        "Prints one line per entry: the distance, a tab, the file name (and ' @ N.NN s', the "
        "entry's start, for a segment of a longer file). " + NAMES_HELP + " Exits 1 when "
        "TARGET cannot be read.",
    )
    si.add_argument("target", metavar="TARGET")
    si.add_argument("--library", required=True, metavar="LIBRARY_DIR")
    add_model_args(si)
    add_db_arg(si)
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


def run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise UsageError("-k must be >= 1")
    lib = open_library(args, indexed=True)
    try:
        found = lib.find_similar(args.target, args.k, args.offset, same_kind=args.same_kind)
        none_of_kind = found.same_kind and not found
        empty = None if found or none_of_kind else _why_no_entries(lib, args)
    except AudioError as e:  # an unreadable sound, like any other command's: exit 1
        report(e.path, e.reason)
        return EXIT_BAD_FILES
    finally:
        lib.close()
    if empty:
        raise UsageError(empty)
    found_rows = zip(found.paths, found.onsets, found.distances, strict=True)
    rows = [{"path": f, "onset": o, "distance": round(d, 6)} for f, o, d in found_rows]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            at = f" @ {r['onset']:.2f} s" if r["onset"] else ""
            print(f"{r['distance']:.4f}\t{quote_name(r['path'])}{at}")
        if none_of_kind:
            print(f"no other {found.query_class} sounds in the library")
        elif args.same_kind and found.query_unsure:
            print(f"(not kept to one kind: the model is unsure the sound is a "
                  f"{found.query_class})", file=sys.stderr)  # fmt: skip
        elif not rows:
            print("no other entries in the library")
    return EXIT_OK


def _why_no_entries(lib, args: argparse.Namespace) -> str | None:
    """Why a search found nothing, when the library is at fault: empty, unreadable, or not
    indexed with this model (None: it holds only the target)."""
    index = index_command(args)
    counts = lib.catalogue.count(lib.model_id)
    if not counts["files"] and counts["failed"]:
        return f"none of the library's {counts['failed']} files could be read ({index} lists them)"
    if not counts["files"]:
        return f"the library is empty: index it first ({index})"
    if not counts["vectors"]:
        return (f"the library is not indexed with model {lib.runtime.name!r} yet: index it "
                f"with this model first ({index})")  # fmt: skip
    return None
