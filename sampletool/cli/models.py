"""`sampletool models`: the installed model bundles."""

from __future__ import annotations

import argparse
import json

from sampletool.cli.common import EXIT_OK

NAME = "models"


def add_parser(sub) -> None:
    m = sub.add_parser(
        NAME,
        help="list the installed model bundles",
        description="List model bundles found in $SAMPLETOOL_MODEL_PATH, the user's models "
        "folder and the built-in models.",
    )
    m.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from sampletool.models.bundle import scan_bundles

    # A folder that holds a config.json but is no usable bundle is listed with the reason,
    # so that one bad download never hides (or breaks) the listing of the others.
    infos, problems = scan_bundles()
    if args.json:
        rows = [{"name": i.name, "path": str(i.path), "kind": i.kind,
                 "classes": list(i.class_names), "description": i.description}
                for i in infos]  # fmt: skip
        rows += [{"name": p.name, "path": str(p), "kind": "?", "classes": [], "description": "",
                  "unusable": why} for p, why in problems]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not infos and not problems:
        print("no model bundles found")
    for i in infos:
        classes = ", ".join(i.class_names) if i.class_names else "no classifier"
        print(f"{i.name}\t{i.kind}\t{classes}\t{i.path}")
    for path, why in problems:
        print(f"{path.name}\tunusable\t{why}\t{path}")
    return EXIT_OK
