"""Errors from the engine as sentences for the user."""

from __future__ import annotations

from sampletool.errors import FileProblem, SampleToolError


def message_of(error: BaseException) -> str:
    """A sentence: our errors say what happened; others get their type."""
    if isinstance(error, SampleToolError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def reason_of(error: BaseException) -> str:
    """What is wrong, without the file's path (for a line that already names the sound)."""
    if isinstance(error, FileProblem):
        return error.reason
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
