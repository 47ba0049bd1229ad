"""Sample Tool's desktop app (PySide6 + pyqtgraph). The engine it drives lives in `sampletool`.

By feature: `app` (the entry point), `mainwindow/` (the window, its library controller, the
engine jobs it runs), `blend/` (the blend panel), `widgets/` (library table, map, waveform,
similar list, class bars), `dialogs/`, `playback`, `actions` and `dnd` (what can be done to a
sample, and how it travels), `workers` (the one way off the GUI thread), `settings`.
"""
