"""Where Sample Tool keeps things: the built-in resources and the user's data folder."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import platformdirs

APP_NAME = "SampleTool"

# The built-in model and the app's other resources are package data: found the same way in the
# source tree, an installed wheel and an app bundle, whatever the working folder.
RESOURCES_DIR = Path(str(files("sampletool") / "resources")).resolve()
BUILTIN_MODELS_DIR = RESOURCES_DIR / "models"
DEFAULT_MODEL_NAME = "default"


def user_data_dir() -> Path:
    """The user's data folder, by platform convention; SAMPLETOOL_DATA_DIR overrides it."""
    override = os.environ.get("SAMPLETOOL_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, False))


def user_models_dir() -> Path:
    """Where trained models are saved and looked for."""
    return user_data_dir() / "models"


def model_search_dirs() -> list[Path]:
    """Folders whose sub-folders are model bundles, in the order names are resolved.

    SAMPLETOOL_MODEL_PATH (os.pathsep-separated) comes first, then the user's models, then the
    built-in ones.
    """
    extra = [Path(p) for p in os.environ.get("SAMPLETOOL_MODEL_PATH", "").split(os.pathsep) if p]
    return [*extra, user_models_dir(), BUILTIN_MODELS_DIR]


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as text to show: a name that is not valid UTF-8 (a raw byte such as 0xe9 on
    Linux, which Python holds as the surrogate '\\udce9') with U+FFFD in place of each bad byte.
    For showing only: open and store the path itself (Qt silently drops the surrogates of a
    str it is given, so a label or URL made from the path names another file)."""
    return os.fsencode(path).decode("utf-8", "replace")
