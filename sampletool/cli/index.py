"""`sampletool index`: scan a sample folder into the library index (incremental)."""

from __future__ import annotations

import argparse
import json
import threading

from sampletool.audio import READABLE_FORMATS
from sampletool.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    NAMES_HELP,
    ProgressBar,
    UsageError,
    add_db_arg,
    add_model_args,
    open_library,
    report,
    stop_on_ctrl_c,
)
from sampletool.progress import Cancelled

NAME = "index"


def add_parser(sub) -> None:
    ix = sub.add_parser(
        NAME,
        help="scan a sample folder into the library index (incremental)",
        description="Scan LIBRARY_DIR (all sub-folders): new and changed files are embedded, "
        "unchanged ones skipped, deleted ones removed, moved ones recognised. Safe to stop at "
        "any moment (Ctrl+C or a crash): the next run carries on. Exits 0 when the scan "
        "completes; unreadable files are listed in the summary, one a line on stderr. "
        + NAMES_HELP,
    )
    ix.add_argument("library", metavar="LIBRARY_DIR")
    add_model_args(ix)
    add_db_arg(ix)
    ix.add_argument("--segment", action=argparse.BooleanOptionalAction,
                    help="split long files at onsets into separate entries (the library "
                    "remembers it; default: as last time, else off)")  # fmt: skip
    ix.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    ix.add_argument("--json", action="store_true", help="print the summary as JSON")
    ix.add_argument(
        "--rebuild", action="store_true", help="start a fresh catalogue if it is damaged"
    )


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be >= 0")
    lib = open_library(args, rebuild=args.rebuild)
    cancel = threading.Event()
    restore = stop_on_ctrl_c(cancel, "this batch")
    bar = ProgressBar("indexing")
    try:
        result = lib.scan(args.workers, bar, cancel)
    except Cancelled as stopped:
        result = stopped.partial
    finally:
        bar.close()
        restore()
        lib.close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"{result.indexed} indexed ({result.segments} entries), "
              f"{result.skipped_unchanged} unchanged, {result.moved} moved, {result.removed} "
              f"removed, {len(result.failed)} failed, in {result.seconds:.1f} s"
              + (" (stopped early)" if result.cancelled else ""))  # fmt: skip
        for f in result.failed:
            report(f["path"], f["reason"])
    found = result.indexed + result.skipped_unchanged + result.moved + len(result.failed)
    if not found and not result.cancelled:
        report(lib.root, f"no audio files here or in its sub-folders (a scan reads "
                         f"{READABLE_FORMATS} files)")  # fmt: skip
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK
