"""The app bundle against the source tree: its size, and how long each takes to start (to the
model loaded and the window drawn) and to pass `--self-test`, measured alternately in one run.

    .venv/bin/python benchmarks/bundle.py [--bundle dist/SampleTool] [--build] [--runs 5]

--build first builds it: `pyinstaller packaging/sampletool.spec` (pip install pyinstaller).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return time.monotonic() - t, r


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, default=ROOT / "dist" / "SampleTool")
    p.add_argument("--build", action="store_true", help="build the bundle first")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    if args.build:
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "PyInstaller", str(ROOT / "packaging" /
                        "sampletool.spec"), "--noconfirm", "--distpath",
                        str(args.bundle.parent)], cwd=ROOT, check=True)  # fmt: skip
        print(f"built in {time.monotonic() - t:.0f} s")
    exe = args.bundle / ("sampletool-gui.exe" if os.name == "nt" else "sampletool-gui")
    if not exe.exists():
        print(f"no bundle at {args.bundle}: build it with --build", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in args.bundle.rglob("*") if f.is_file())
    print(f"bundle: {args.bundle} ({size / 1e9:.2f} GB, "
          f"{sum(1 for _ in args.bundle.rglob('*'))} files)")  # fmt: skip
    ways = {"bundle": [str(exe)], "source": [sys.executable, str(ROOT / "app.py")]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # The runs must not touch the user's data or settings (nor open their library).
        os.environ.update({"SAMPLETOOL_DATA_DIR": str(work / "data"),
                           "XDG_CONFIG_HOME": str(work / "config")})  # fmt: skip
        starts: dict[str, list[float]] = {k: [] for k in ways}
        tests: dict[str, list[float]] = {k: [] for k in ways}
        for i in range(args.runs):
            for name, cmd in ways.items():  # alternately, so both meet the same machine load
                took, r = timed([*cmd, "--screenshot", str(work / f"{name}{i}.png")], work)
                if r.returncode != 0 or not (work / f"{name}{i}.png").exists():
                    print(f"{name} did not start:\n{r.stdout}{r.stderr}", file=sys.stderr)
                    return 1
                starts[name].append(took)
                took, r = timed([*cmd, "--self-test"], work)
                if r.returncode != 0:
                    print(f"{name} --self-test failed: {r.stdout}{r.stderr}", file=sys.stderr)
                    return 1
                tests[name].append(took)
        print(f"{args.runs} runs each, alternating; medians (min-max):")
        for name in ways:
            s, t = starts[name], tests[name]
            print(f"  {name:<7} start to window with model loaded {statistics.median(s):5.2f} s "
                  f"({min(s):.2f}-{max(s):.2f}); --self-test {statistics.median(t):5.2f} s "
                  f"({min(t):.2f}-{max(t):.2f})")  # fmt: skip
        ratio = statistics.median(starts["bundle"]) / statistics.median(starts["source"])
        print(f"  start-up, bundle / source: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
