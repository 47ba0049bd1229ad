"""The map widget at 1k and 100k points: load, redraw, animation frame and hover lookup.

Usage: .venv/bin/python benchmarks/latent_map.py [--sizes 1000 100000] [--repeats 3]

Offscreen (QT_QPA_PLATFORM=offscreen unless set), a 900 x 650 LatentMap, points in 9 classes
plus unclassified, in Gaussian clusters as a real library's UMAP layout looks. For each size:
- set_points: wall time of one call on the GUI thread (items, legend; the hover cKDTree is
  built on a worker), median of --repeats;
- redraw: pan the view by 5 % of its width, then `grab()` the widget (a full repaint), median;
- frame: one animation step (`_move`: every point moved in place, as `animate_to` does) and
  its repaint (`grab()`), median;
- hover: one throttled hover event's work (`_hover_now`: cKDTree lookup, label and ring update)
  at --hover-events random positions (half of them on points), mean per event in microseconds;
  "lookup" is `id_at` alone.
Each figure is also given as a ratio to the 1k baseline measured in the same run (machines
here are noisy; absolute times drift). The whole run takes well under a minute.

Under PySide6 6.12.0 the interpreter may abort at exit ("bool_dealloc") after the figures are
printed: that release's SignalInstance.emit() returns True without a reference, and the hover
loop emits hundreds of signals. PySide6 6.11.3 runs it cleanly.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication

from sampletool.data.synth import CLASSES
from ui.widgets.latent_map import LatentMap


def library(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    classes = rng.integers(-1, len(CLASSES), n)
    centres = rng.uniform(-0.7, 0.7, (len(CLASSES) + 1, 2))
    xy = centres[classes + 1] + rng.normal(0, 0.12, (n, 2))
    xy = (xy / np.abs(xy).max()).astype(np.float32)
    return np.arange(n, dtype=np.int64), xy, classes, [f"sample_{i:06d}.wav" for i in range(n)]


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(app: QApplication, n: int, repeats: int, events: int) -> dict[str, float]:
    m = LatentMap()
    m.resize(900, 650)
    m.show()
    app.processEvents()
    ids, xy, classes, labels = library(n)
    out = {
        "set_points ms": 1e3
        * timed(lambda: m.set_points(ids, xy, classes, CLASSES, labels), repeats)
    }
    m.grab()  # first paint builds the symbol atlas

    def pan() -> None:
        m.vb.translateBy(x=0.05 * m.vb.viewRect().width())
        m.grab()

    out["redraw ms"] = 1e3 * timed(pan, repeats)
    shifted = xy + np.float32(0.01)

    def frame() -> None:
        m._move(shifted)
        m.grab()

    out["frame ms"] = 1e3 * timed(frame, repeats)
    m._move(xy)
    m._rebuild_tree()  # on a worker thread: wait for it, it is not what is timed here
    while m._tree is None:
        app.processEvents()
        time.sleep(0.001)

    rng = np.random.default_rng(1)
    vp = m.view.viewport()
    spots = [
        QPoint(int(a), int(b)) for a, b in rng.uniform(0, 1, (500, 2)) * (vp.width(), vp.height())
    ]
    spots[::2] = [m.view_pos(*xy[i]) for i in rng.integers(0, n, 250)]  # half of them on points
    t = time.perf_counter()
    for p in spots:
        m._hover_pos = p
        m._hover_now()
    out["hover us"] = 1e6 * (time.perf_counter() - t) / len(spots)
    t = time.perf_counter()
    for p in spots:
        m.id_at(p)
    out["lookup us"] = 1e6 * (time.perf_counter() - t) / len(spots)
    m.close()
    m.deleteLater()
    app.processEvents()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hover-events", type=int, default=300)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    results = {n: measure(app, n, args.repeats, args.hover_events) for n in args.sizes}
    base = results[args.sizes[0]]
    keys = list(base)
    print(f"{'points':>8}  " + "  ".join(f"{k:>14}" for k in keys))
    for n, r in results.items():
        print(f"{n:>8}  " + "  ".join(f"{r[k]:>14.2f}" for k in keys))
    for n, r in results.items():
        if n != args.sizes[0]:
            ratios = "  ".join(f"{k.split()[0]} x{r[k] / base[k]:.1f}" for k in keys)
            print(f"{n} vs {args.sizes[0]}: {ratios}")


if __name__ == "__main__":
    main()
