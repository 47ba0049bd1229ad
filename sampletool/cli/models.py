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
    from sampletool.models.bundle import find_bundles

    infos = find_bundles()
    if args.json:
        print(json.dumps([{"name": i.name, "path": str(i.path), "kind": i.kind,
                           "classes": list(i.class_names), "description": i.description}
                          for i in infos], indent=2))  # fmt: skip
        return EXIT_OK
    if not infos:
        print("no model bundles found")
    for i in infos:
        classes = ", ".join(i.class_names) if i.class_names else "no classifier"
        print(f"{i.name}\t{i.kind}\t{classes}\t{i.path}")
    return EXIT_OK
