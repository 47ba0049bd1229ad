"""Live charts of a training run: the loss (training and validation), validation accuracy, and
the confusion matrix of the latest validation."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from ui.widgets.confusion import ConfusionMatrixView

TRAIN_COLOUR = "#56B4E9"  # sky blue (the map's palette)
VAL_COLOUR = "#E69F00"  # orange
BALANCED_COLOUR = "#009E73"  # bluish green


class LossAxis(pg.AxisItem):
    """The loss axis. A run's loss falls by orders of magnitude, so the loss plot is on a log
    scale while every loss is positive; there this axis labels a few round values (1, 2 and 5
    times a power of ten). pyqtgraph's own log axis labels every minor tick, and over less than
    a decade the labels overlap."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        if not np.isfinite([minVal, maxVal]).all() or maxVal <= minVal:
            return stdTicks
        lo, hi = 10**minVal, 10**maxVal
        room = max(2, int(size // 28))
        values: list[float] = []
        for steps in ((1, 2, 5), (1, 3), (1,)):
            values = [m * 10.0**k for k in range(int(np.floor(minVal)), int(np.ceil(maxVal)) + 1)
                      for m in steps if lo <= m * 10.0**k <= hi]  # fmt: skip
            if len(values) <= room:
                break
        if len(values) < 2:  # less than one round step in view: two plain values
            values = [lo + (hi - lo) * f for f in (0.15, 0.85)]
        return [(None, [float(np.log10(v)) for v in values])]

    def logTickStrings(self, values, scale, spacing):
        return [_number(10**v) for v in values]


def _number(x: float) -> str:
    if x >= 10_000:
        return f"{x:.0e}".replace("e+0", "e").replace("e+", "e")
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def _key(*parts: tuple[str, str]) -> str:
    """A title's colour key: (colour, words) pairs."""
    return "  ".join(f"<span style='color:{c}'>━ {t}</span>" for c, t in parts)


class TrainingCharts(QWidget):
    """Loss over steps (log scale while every value is positive), validation accuracy, and the
    confusion matrix; feed it with `add_train`, `add_validation` and `set_confusion`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingCharts")
        # Both plots in one scene: a new validation redraws them in one repaint, not two
        # (with training on every core, each repaint of the window costs tens of ms).
        self.plots = pg.GraphicsLayoutWidget(self)
        self.plots.setObjectName("trainingPlots")
        pal = self.palette()
        self.plots.setBackground(pal.color(QPalette.ColorRole.Base))
        self.plots.setMinimumHeight(240)
        self.plots.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.loss_axis = LossAxis("left")
        self.loss_plot = self._plot(0, "Loss  " + _key((TRAIN_COLOUR, "training"),
                                                       (VAL_COLOUR, "validation")),
                                    self.loss_axis)  # fmt: skip
        self.acc_plot = self._plot(1, "Validation accuracy  " + _key(
            (VAL_COLOUR, "overall"), (BALANCED_COLOUR, "balanced over the classes")))  # fmt: skip
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self.acc_plot.setLimits(yMin=-0.05, yMax=1.05)
        self.train_curve = self.loss_plot.plot([], [], name="training",
                                               pen=pg.mkPen(TRAIN_COLOUR, width=1.5))  # fmt: skip
        self.val_curve = self.loss_plot.plot(
            [], [], name="validation", pen=pg.mkPen(VAL_COLOUR, width=2), symbol="o",
            symbolSize=6, symbolBrush=VAL_COLOUR, symbolPen=None,
        )  # fmt: skip
        self.acc_curve = self.acc_plot.plot(
            [], [], name="accuracy", pen=pg.mkPen(VAL_COLOUR, width=2), symbol="o",
            symbolSize=6, symbolBrush=VAL_COLOUR, symbolPen=None,
        )  # fmt: skip
        self.balanced_curve = self.acc_plot.plot(
            [], [], name="balanced", pen=pg.mkPen(BALANCED_COLOUR, width=1.5,
                                                  style=Qt.PenStyle.DashLine),
        )  # fmt: skip
        self.confusion = ConfusionMatrixView(self)
        self.no_classes = QLabel("No classes: this model learns sounds for search and blending, "
                                 "so there is no accuracy to show.", self)  # fmt: skip
        self.no_classes.setWordWrap(True)
        self.no_classes.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_classes.hide()
        self.no_classes.setMaximumHeight(60)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.plots, 0, 0)
        grid.addWidget(self.no_classes, 1, 0)
        grid.addWidget(self.confusion, 0, 1, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self._train: list[tuple[int, float]] = []
        self._val: list[tuple[int, float, float | None, float | None]] = []
        self._log = False
        self._acc_shown = True
        # What changed since the last `flush` (drawn together: each redraw repaints).
        self._pending_train = self._pending_val = False
        self._pending_confusion: dict | None = None

    def _plot(self, row: int, title: str, left: pg.AxisItem | None = None) -> pg.PlotItem:
        plot = self.plots.addPlot(row=row, col=0, axisItems={"left": left} if left else None)
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.Text)
        plot.setTitle(title, color=text, size="10pt")
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(text)
            plot.getAxis(axis).setPen(pal.color(QPalette.ColorRole.Mid))
        plot.setLabel("bottom", "step")
        # Fixed axis sizes: tick labels that change width as the numbers grow would otherwise
        # lay the plot (and the page around it) out again at every new point.
        plot.getAxis("left").setWidth(52)
        plot.getAxis("bottom").setHeight(36)
        # No grid: pyqtgraph draws grid lines with its axes, and with them a repaint costs
        # twice as much, which shows as a stall while training takes the machine's cores.
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        return plot

    # -- data -----------------------------------------------------------------------------------

    def reset(self, classes: bool = True) -> None:
        """Empty every chart; without classes there is no accuracy or confusion to show."""
        self._train.clear()
        self._val.clear()
        self._pending_train = self._pending_val = False
        self._pending_confusion = None
        self._redraw()
        if classes != self._acc_shown:  # without classes, the loss takes the whole height
            if classes:
                self.plots.addItem(self.acc_plot, row=1, col=0)
            else:
                self.plots.removeItem(self.acc_plot)
            self._acc_shown = classes
        self.no_classes.setVisible(not classes)
        self.confusion.setVisible(classes)
        self.confusion.clear("The confusion matrix appears after the first validation")

    def add_train(self, step: int, loss: float) -> None:
        """Add a training loss (drawn at the next `flush`)."""
        self._train.append((step, loss))
        self._pending_train = True

    def add_validation(self, step: int, metrics: dict) -> None:
        """Add a validation's figures (drawn at the next `flush`)."""
        self._val.append((step, float(metrics["val_loss"]), metrics.get("val_accuracy"),
                          metrics.get("val_balanced_accuracy")))  # fmt: skip
        self._pending_val = True

    def set_confusion(self, doc: dict | None) -> None:
        """Show a confusion matrix ({"classes", "matrix", "step"}) at the next `flush`."""
        if doc:
            self._pending_confusion = doc

    def flush(self) -> None:
        """Draw what was added since the last flush, in one go (one repaint of the window: the
        owner calls this a few times a second at most, however fast the run reports)."""
        train, val = self._pending_train, self._pending_val
        self._pending_train = self._pending_val = False
        if train or val:
            self._redraw(train=train, validation=val)
        doc, self._pending_confusion = self._pending_confusion, None
        if doc:
            step = doc.get("step", "?")
            self.confusion.set_matrix(doc.get("classes", []), doc.get("matrix", []),
                                      f"Confusion at step {step} (rows: true class)")  # fmt: skip

    def load(self, train: Iterable[tuple[int, float]], validations: Iterable[dict]) -> None:
        """Show a run's history at once (a resumed run, or a page opened late)."""
        self._train = list(train)
        self._val = [
            (int(r["step"]), float(r["val_loss"]), r.get("val_accuracy"),
             r.get("val_balanced_accuracy"))
            for r in validations if "val_loss" in r
        ]  # fmt: skip
        self._redraw()

    def _redraw(self, train: bool = True, validation: bool = True) -> None:
        """Set the curves that changed (each setData repaints its plot: a new training point
        every 10 steps leaves the accuracy plot alone)."""
        losses = [v for _, v in self._train] + [v[1] for v in self._val]
        log = bool(losses) and all(np.isfinite(v) and v > 0 for v in losses)
        if log != self._log:  # switching the scale re-lays out the whole plot: only on change
            self._log = log
            self.loss_plot.setLogMode(y=log)
        if train:
            self.train_curve.setData([s for s, _ in self._train], [v for _, v in self._train])
        if validation:
            self.val_curve.setData([s for s, *_ in self._val], [v[1] for v in self._val])
            acc = [(s, a, b) for s, _, a, b in self._val if a is not None]
            self.acc_curve.setData([s for s, _, _ in acc], [float(a) for _, a, _ in acc])
            self.balanced_curve.setData([s for s, _, b in acc if b is not None],
                                        [float(b) for _, _, b in acc if b is not None])  # fmt: skip

    @property
    def points(self) -> tuple[int, int]:
        """(training points, validation points) the charts hold."""
        return len(self._train), len(self._val)

    def drawn(self) -> tuple[int, int]:
        """(training points, validation points) drawn now."""
        return len(self.train_curve.getData()[0] or ()), len(self.val_curve.getData()[0] or ())
