"""The packaging files agree with the app: the desktop entry, its icon, the AppStream metadata
and the version they name."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

import sampletool

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / "sampletool.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_desktop_entry_runs_the_app_with_its_icon():
    entry = desktop_entry()
    assert entry["Exec"].split()[0] == "sampletool-gui" and entry["Type"] == "Application"
    icons = ROOT / "ui" / "resources"
    assert (icons / f"{entry['Icon']}.svg").is_file()
    assert (icons / "icons" / f"{entry['Icon']}-256.png").is_file()


def test_appstream_names_the_entry_the_binaries_and_this_version():
    root = ET.parse(PACKAGING / "io.github.sampletool.SampleTool.metainfo.xml").getroot()
    assert root.findtext("launchable") == "sampletool.desktop"
    assert root.findtext("icon") == desktop_entry()["Icon"]
    assert {b.text for b in root.iter("binary")} == {"sampletool", "sampletool-gui"}
    newest = root.find("releases/release")
    assert newest is not None and newest.get("version") == sampletool.__version__
    assert f"## {sampletool.__version__}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_the_bundle_entry_runs_modules_as_python_m_does(tmp_path):
    """The app starts its training process as `sys.executable -u -m MODULE`; in the bundle
    sys.executable is the app, whose entry point must do what python -m would."""
    import subprocess
    import sys

    launch = str(PACKAGING / "launch_gui.py")
    r = subprocess.run([sys.executable, launch, "-u", "-m", "sampletool", "--version"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == f"sampletool {sampletool.__version__}"
    r = subprocess.run([sys.executable, launch, "-m", "sampletool", "classify"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "sampletool classify --help" in r.stderr  # its exit code
