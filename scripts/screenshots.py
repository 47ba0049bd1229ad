"""Screenshots of the main window in use, for the README (docs/*.png).

Usage (under Xvfb, as CI and the docs do):
    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 .venv/bin/python scripts/screenshots.py LIBRARY_DIR OUT.png [--model DIR]

Opens the library, waits until it is indexed and the map refined, then does what a user
would: selects a sample (waveform), finds similar ones (results highlighted on the map), puts
three samples in the blend panel and moves a weight (with a slow decoder, a WaveNet's: presses
Generate and waits until it is a third done); then saves the window.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


class SilentOutput:
    def play(self, audio, sample_rate) -> None:
        pass

    def stop(self) -> None:
        pass


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("library", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--model", default=None)
    p.add_argument("--select", default="kick", help="a name to filter for and select")
    p.add_argument("--same-kind", action="store_true", help="search with Same kind only on")
    p.add_argument(
        "--panel",
        choices=("similar", "blend"),
        default="similar",
        help="the tab shown when the window is short enough for tabs",
    )
    p.add_argument("--size", default="1500x900", help="window size, WxH (default %(default)s)")
    p.add_argument("--correct", action="append", default=[], metavar="NAME=CLASS",
                   help="give the file of this name the class, as right-click > Class does "
                   "(repeatable)")  # fmt: skip
    args = p.parse_args()
    os.environ.setdefault("SAMPLETOOL_DATA_DIR", tempfile.mkdtemp(prefix="sampletool-shots-"))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      tempfile.mkdtemp(prefix="sampletool-shots-cfg-"))  # fmt: skip
    app = QApplication(sys.argv[:1])
    from ui.mainwindow import MainWindow
    from ui.playback import Player

    w = MainWindow(model=args.model, library=str(args.library.absolute()),
                   player=Player(backend=SilentOutput()))  # fmt: skip
    width, height = (int(v) for v in args.size.lower().split("x"))
    w.resize(width, height)
    w.show()
    state = {"refined": False}
    w.map_refined.connect(lambda: state.__setitem__("refined", True))

    def run_until(pred, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not pred() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    run_until(lambda: state["refined"], 900)
    from ui.dnd import SampleRef

    for item in args.correct:
        name, cls = item.rsplit("=", 1)
        refs = [SampleRef(p) for p in w.snapshot.paths if Path(p).name == name]
        w.set_class(refs, cls)
    run_until(lambda: not w._class_writes, 30)
    view = w.library_view
    view.filter_edit.setText(args.select)
    run_until(lambda: False, 0.3)
    model = view.model
    if model.rowCount():
        view.table.setFocus()
        view.table.selectRow(0)
        ref = model.ref(0)
        w.similar.set_same_kind(args.same_kind)
        w.find_similar(ref)
        run_until(lambda: len(w.similar.results()) > 0, 60)
        picks = [ref] + [r for r, _ in w.similar.results()[:2]]
        for r in picks:
            w.blend.add_sample(r)
        if w.blend.live:
            run_until(lambda: bool(w.blend.results), 60)
            w.blend.set_weight(0, 1.4)
            run_until(lambda: len(w.blend.results) > 1, 60)
        else:  # a slow decoder (a WaveNet): caught rendering, its progress a third of the way
            run_until(lambda: all(w.blend.slot_latent(i) is not None for i in range(3)), 60)
            w.blend.regenerate_now()
            bar = w.blend.render_progress
            run_until(lambda: bar.maximum() > 0 and bar.value() > bar.maximum() / 3, 300)
        view.table.selectRow(0)
    if args.panel == "blend":
        w.show_panel(w.blend)
    run_until(lambda: False, 1.5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(args.out))
    print(f"saved {args.out}")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
