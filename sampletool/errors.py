"""The error types the engine raises for things a user can cause and can read about."""

from __future__ import annotations


class SampleToolError(Exception):
    """Base class: a problem with the user's input, reported as one readable sentence."""


class FileProblem(SampleToolError):
    """A file that cannot be used, with the path and a human reason.

    Attributes:
        path: the file, as given.
        reason: what is wrong with it, in words a user understands.
    """

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(path, reason)
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class AudioError(FileProblem):
    """An audio file that cannot be read."""


class BundleError(SampleToolError):
    """A model folder that is not a usable model bundle."""


class ModelError(SampleToolError):
    """A request the loaded model cannot serve (for example classify without a classifier)."""


class LibraryError(SampleToolError):
    """A library that cannot be opened or scanned, said in one sentence."""


class WorkerError(SampleToolError):
    """The worker processes that decode audio cannot be started or cannot work at all (the
    interpreter cannot be run, their set-up fails); said in one sentence."""
