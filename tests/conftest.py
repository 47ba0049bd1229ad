"""Shared fixtures. Tests make their own audio and their own (tiny, untrained) models."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

from tests.helpers import make_bundle, noise_burst, tone, write

# The engine's own tests must never find models the developer happens to have installed.
os.environ["SAMPLETOOL_DATA_DIR"] = str(Path(__file__).parent / ".no-user-data")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A tiny 3-class bundle (random weights) shared by the session; treat as read-only."""
    return make_bundle(tmp_path_factory.mktemp("models") / "tiny", num_classes=3)


@pytest.fixture(scope="session")
def tiny_bundle_no_classes(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("models") / "plain", num_classes=0)


@pytest.fixture
def sounds(tmp_path) -> list[Path]:
    """Three short readable WAV files: a low tone, a high tone, a noise burst."""
    return [
        write(tmp_path / "low.wav", tone(110, 0.8, decay=4)),
        write(tmp_path / "high.wav", tone(2000, 0.5, decay=8)),
        write(tmp_path / "hat.wav", noise_burst()),
    ]
