"""Screenshots of the train wizard and the model manager, for the README and for looking at
every page at a given size (docs/*.png).

Usage (under Xvfb, as the docs do):
    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 .venv/bin/python scripts/screenshots_training.py OUT_DIR [--size 980x660]
        [--data FOLDER] [--steps 400] [--pages]

Trains a small model on FOLDER's class folders (default: a demo library synthesised into a
temporary folder), as a user would through the wizard, and saves the training page while the
curves and the confusion matrix fill in (training.png). With --pages it also saves the data
and setup pages, the finish page and the model manager (data.png, setup.png, finish.png,
models.png).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--size", default="980x660", help="wizard size, WxH (default %(default)s)")
    p.add_argument("--data", type=Path, help="a folder of class folders (default: synthesised)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--pages", action="store_true", help="every page, and the model manager")
    args = p.parse_args()
    os.environ.setdefault("SAMPLETOOL_DATA_DIR", tempfile.mkdtemp(prefix="sampletool-shots-"))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      tempfile.mkdtemp(prefix="sampletool-shots-cfg-"))  # fmt: skip
    app = QApplication(sys.argv[:1])
    from ui.models import ModelManager
    from ui.training import TrainWizard
    from ui.training.wizard import FINISH

    data = args.data
    if data is None:
        from sampletool.data.synth import write_class_folders

        data = Path(tempfile.mkdtemp(prefix="sampletool-shots-data-")) / "Drum Kit"
        write_class_folders(data, 40, seed=7)
    width, height = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)

    def run_until(pred, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not pred() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    def shoot(widget, name: str) -> None:
        run_until(lambda: False, 0.6)
        widget.grab().save(str(args.out / name))
        print(f"saved {args.out / name}")

    w = TrainWizard()
    w.resize(width, height)
    w.start_new()
    w.data_page.add_folders([str(data)])
    run_until(lambda: w.data_page.survey is not None, 300)
    if args.pages:
        shoot(w, "data.png")
    w.next()
    setup = w.setup_page
    run_until(lambda: setup.isComplete(), 300)
    setup.start_from.setCurrentIndex(0)
    setup.size_buttons["small"].click()
    setup.augment.setCurrentIndex(setup.augment.findData("additive"))
    run_until(lambda: len(setup.measurements) >= 3, 300)
    if args.pages:
        setup.advanced_toggle.setChecked(True)
        shoot(w, "setup.png")
    setup.advanced_toggle.setChecked(True)
    setup.max_steps.setValue(args.steps * 4)
    setup.eval_every.setValue(max(args.steps // 10, 1))
    w.next()
    run_until(lambda: w.session is not None and w.session.current_step >= args.steps, 3600)
    run_until(lambda: False, 1.0)
    shoot(w, "training.png")
    if args.pages:
        w.training_page.stop_button.click()
        run_until(lambda: w.currentId() == FINISH, 600)
        shoot(w, "finish.png")
        m = ModelManager(active=lambda: None)
        m.resize(width, height)
        m.show()
        run_until(lambda: len(m.rows) > 1, 60)
        m.select(w.run_dir())
        shoot(m, "models.png")
    else:
        w.session.stop_and_wait(120_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
