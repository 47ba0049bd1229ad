"""The import contracts in pyproject.toml (run by `lint-imports` in the test command) catch
what they are meant to: each violation below, made in a copy of the code, breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The packages and the contracts, copied (no caches, no data)."""
    out = tmp_path_factory.mktemp("arch")
    ignore = shutil.ignore_patterns("__pycache__", "*.safetensors", "*.png")
    for package in ("sampletool", "ui"):
        shutil.copytree(ROOT / package, out / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", out / "pyproject.toml")
    return out


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(tree)}  # the copy, not the installed checkout
    command = [str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"]
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def _with_line(path: Path, line: str):
    original = path.read_text()
    path.write_text(original + f"\n{line}\n")
    return lambda: path.write_text(original)


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # The old circle: the library borrowing the facade for its model.
        ("sampletool/library/catalogue.py", "import sampletool.tool", "nothing imports upward"),
        # A lazy, function-level import counts as much as one at the top.
        ("sampletool/models/vae.py", "def f():\n    import sampletool.library", "upward"),
        ("sampletool/training/trainer.py", "import sampletool.library.scan", "upward"),
        ("sampletool/audio.py", "from PySide6 import QtCore", "imports no Qt"),
        ("sampletool/waveform.py", "import ui.dnd", "imports no Qt"),
        ("ui/blend/scheduler.py", "from PySide6.QtCore import QTimer", "scheduler is Qt-free"),
        ("ui/widgets/waveform_view.py", "import ui.mainwindow.window", "No import circles"),
        ("ui/mainwindow/jobs.py", "from sampletool.cli import main", "are siblings"),
    ],
)
def test_the_contracts_catch_a_violation(copy, module, line, broken):
    undo = _with_line(copy / module, line)
    try:
        result = lint(copy)
    finally:
        undo()
    assert result.returncode != 0, result.stdout
    broken_lines = [x for x in result.stdout.splitlines() if x.endswith("BROKEN")]
    assert any(broken in x for x in broken_lines), result.stdout


def test_the_untouched_copy_keeps_every_contract(copy):
    result = lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout
