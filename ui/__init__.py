"""Sample Tool's desktop app (PySide6). The engine it drives lives in `sampletool`."""

from PySide6.QtCore import QSettings

ORG, APP = "SampleTool", "Sample Tool"


def app_settings() -> QSettings:
    """The app's remembered settings: an INI file in the user's config folder on every
    platform (tests point QSettings.setPath for IniFormat at a temporary folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)
