"""The main window, by part: `window` (layout, menus, what the actions do), `library_controller`
(the model and library lifecycles) and `jobs` (the engine work they run off the GUI thread)."""

from ui.mainwindow.window import MainWindow

__all__ = ["MainWindow"]
