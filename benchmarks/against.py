"""Run one benchmark script on an earlier revision and on the working tree, alternately, in one run.

    python benchmarks/against.py REV [--rounds 2] -- benchmarks/index.py /path/to/samples --json

The earlier revision is checked out into a temporary git worktree; each round runs the script
of that tree against that tree's code (PYTHONPATH points at it, so the installed checkout does
not answer instead), then the working tree's own script, so both meet the same machine state.
Both outputs are printed as they are, round by round; with --json in the script's arguments
each output's last JSON object is also kept, side by side, in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(tree: Path, script: list[str]) -> str:
    env = os.environ | {"PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, *script], cwd=tree, env=env, capture_output=True,
                         text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"{script[0]} failed in {tree} (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


def last_json(text: str) -> object | None:
    start = text.rfind("\n{")
    start = 0 if text.startswith("{") and start < 0 else start
    try:
        return json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rev", help="the earlier revision (a commit, tag or branch)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, help="write both sides' JSON results here")
    p.usage = "%(prog)s REV [--rounds N] [--out JSON] -- SCRIPT [ARGS...]"
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        p.error("name the benchmark script after --")
    split = argv.index("--")
    args, script = p.parse_args(argv[:split]), argv[split + 1 :]
    with tempfile.TemporaryDirectory(prefix="sampletool-before-") as tmp:
        before = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.rev],
                       cwd=ROOT, check=True)  # fmt: skip
        results: dict[str, list] = {"before": [], "after": []}
        try:
            for r in range(args.rounds):
                for side, tree in (("before", before), ("after", ROOT)):
                    text = run(tree, script)
                    print(
                        f"===== round {r + 1}, {side} ({args.rev if side == 'before' else 'HEAD'})"
                    )
                    print(text, flush=True)
                    results[side].append(last_json(text))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT)
    if args.out:
        args.out.write_text(json.dumps({"rev": args.rev, "script": script, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
