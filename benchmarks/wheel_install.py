"""Does the wheel work outside the source tree? Build it, install it into a fresh virtual
environment, and from an empty folder elsewhere run what a user runs first:

    sampletool --version · sampletool models · sampletool classify FILES
    sampletool-gui --self-test

Each step's time is printed; the script exits 1 at the first step that fails. Too slow for every
CI run (the fresh environment installs torch, Qt and the rest from the package index):

    .venv/bin/python benchmarks/wheel_install.py [--real REAL_SAMPLES] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # as scripts/bootstrap.sh: the CPU build, not the newest with CUDA


def step(name: str, cmd: list[str], cwd: Path, timeout: int = 1800) -> str:
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t
    if r.returncode not in (0,):
        print(f"FAILED {name} ({took:.1f} s, exit {r.returncode}):\n{r.stdout[-2000:]}"
              f"{r.stderr[-2000:]}")  # fmt: skip
        sys.exit(1)
    print(f"{name:<34} {took:7.1f} s", flush=True)
    return r.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real", type=Path, default=ROOT / "real-samples",
                   help="real samples to classify (default: ./real-samples)")  # fmt: skip
    p.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = p.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sampletool-wheel-"))
    work.mkdir(parents=True, exist_ok=True)
    outside = work / "elsewhere"  # not the checkout: nothing may be found through it
    outside.mkdir(exist_ok=True)
    try:
        dist = work / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        step("build the wheel", [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                                 "-w", str(dist), "-q"], ROOT)  # fmt: skip
        wheel = next(dist.glob("sampletool-*.whl"))
        print(f"  {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB")
        venv = work / "venv"
        shutil.rmtree(venv, ignore_errors=True)
        step("create a fresh venv", [sys.executable, "-m", "venv", str(venv)], outside)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
               "--disable-pip-version-check"]  # fmt: skip
        step(f"install {TORCH}", [*pip, TORCH], outside)
        step("install the wheel and its deps", [*pip, str(wheel)], outside)
        bin_ = venv / "bin"
        print("  " + step("sampletool --version", [str(bin_ / "sampletool"), "--version"],
                          outside).strip())  # fmt: skip
        listed = step("sampletool models", [str(bin_ / "sampletool"), "models"], outside)
        if "default" not in listed or str(ROOT) in listed:
            print(f"FAILED: the built-in model is not listed from the installed package:\n{listed}")
            return 1
        files = sorted(args.real.rglob("*.flac"))[:5] if args.real.is_dir() else []
        if files:
            cmd = [str(bin_ / "sampletool"), "classify", *map(str, files)]
            out = step(f"sampletool classify ({len(files)} files)", cmd, outside)
            for line in out.splitlines():
                print("  " + line.replace(str(args.real) + "/", ""))
        said = step("sampletool-gui --self-test", [str(bin_ / "sampletool-gui"), "--self-test"],
                    outside)  # fmt: skip
        print("  " + said.strip())
        if list(outside.iterdir()):
            print(f"FAILED: the installed app wrote into the folder it ran from: {outside}")
            return 1
        print(f"the wheel works outside the source tree (work folder {work})")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
