"""`sampletool-gui --self-test` from the source tree: the real app, offscreen, in a process of
its own (as a user or a packager runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parents[2]


def self_test(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), "--self-test", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_self_test_passes_and_says_what_it_did_in_one_line(tmp_path):
    r = self_test(cwd=tmp_path)  # from another folder: nothing found through the working folder
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("self-test passed in ")
    for said in ("model default", "demo samples indexed", "similar found", " as ", "blend of",
                 "train wizard and model manager opened"):  # fmt: skip
        assert said in lines[0]
    assert r.stderr == ""
    assert list(tmp_path.iterdir()) == []  # it wrote nothing where it was started


def test_self_test_names_the_step_that_failed(tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    r = self_test("--model", str(not_a_model), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.startswith("self-test failed loading the model: ") and "not a Sample Tool" in (
        r.stdout)  # fmt: skip


def test_open_with_passes_a_folder_or_a_file_and_the_window_has_the_icon(tmp_path, qtbot):
    from ui.app import app_icon, parse_args

    (tmp_path / "kick.wav").write_bytes(b"")
    assert parse_args([str(tmp_path)]).library == str(tmp_path)
    assert parse_args([str(tmp_path / "kick.wav")]).library == str(tmp_path)
    assert parse_args(["--library", "/x", str(tmp_path)]).library == "/x"
    icon = app_icon()
    assert not icon.isNull() and 16 in [s.width() for s in icon.availableSizes()]
