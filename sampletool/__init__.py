"""Sample Tool's engine: audio I/O, features, models, library, training. Imports no Qt, ever.

`from sampletool import SoundSampleTool` is the entry point for scripts. Heavy modules (torch)
load on first use, so worker processes that only decode audio start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.2.0"  # also the wheel's version (pyproject.toml); see CHANGELOG.md
__all__ = ["AudioError", "BundleError", "ModelError", "SampleToolError", "SoundSampleTool"]

from sampletool.errors import AudioError, BundleError, ModelError, SampleToolError

if TYPE_CHECKING:
    from sampletool.tool import SoundSampleTool


def __getattr__(name: str) -> object:
    if name == "SoundSampleTool":
        from sampletool.tool import SoundSampleTool

        return SoundSampleTool
    raise AttributeError(f"module 'sampletool' has no attribute {name!r}")
