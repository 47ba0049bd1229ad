"""What the app remembers between sessions: one INI file of settings, and the window's layout.

Everything goes through `app_settings()`; tests point QSettings.setPath for IniFormat at a
temporary folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSize
from PySide6.QtWidgets import QWidget

ORG, APP = "SampleTool", "Sample Tool"


def app_settings() -> QSettings:
    """The app's remembered settings: an INI file in the user's config folder on every
    platform."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def restore_layout(
    settings: QSettings, window: QWidget, states: Mapping[str, Any], default_size: QSize
) -> None:
    """The window's geometry (else `default_size`) and, for each key, the `restoreState` of
    the object beside it (splitters, header views) as last saved."""
    geometry = settings.value("geometry")
    if isinstance(geometry, QByteArray | bytes):
        window.restoreGeometry(geometry)
    else:
        window.resize(default_size)
    for key, widget in states.items():
        state = settings.value(key)
        if isinstance(state, QByteArray | bytes):
            widget.restoreState(state)


def save_layout(settings: QSettings, window: QWidget, states: Mapping[str, Any]) -> None:
    """The counterpart of `restore_layout`."""
    settings.setValue("geometry", window.saveGeometry())
    for key, widget in states.items():
        settings.setValue(key, widget.saveState())
