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


class TrainingCharts(QWidget):
    """Loss over steps (log scale while every value is positive), validation accuracy, and the
    confusion matrix; feed it with `add_train`, `add_validation` and `set_confusion`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingCharts")
        self.loss_plot = self._plot("lossPlot", "Loss")
        self.acc_plot = self._plot("accuracyPlot", "Validation accuracy")
        self.acc_plot.setYRange(0, 1, padding=0.02)
        self.acc_plot.getPlotItem().setLimits(yMin=-0.05, yMax=1.05)
        self.loss_plot.addLegend(offset=(-8, 8))
        self.acc_plot.addLegend(offset=(-8, -8))
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
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.acc_plot, 1, 0)
        grid.addWidget(self.no_classes, 1, 0)
        grid.addWidget(self.confusion, 0, 1, 2, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self._train: list[tuple[int, float]] = []
        self._val: list[tuple[int, float, float | None, float | None]] = []

    def _plot(self, name: str, title: str) -> pg.PlotWidget:
        plot = pg.PlotWidget(self)
        plot.setObjectName(name)
        pal = self.palette()
        plot.setBackground(pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        plot.setTitle(title, color=text, size="10pt")
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(text)
            plot.getAxis(axis).setPen(pal.color(QPalette.ColorRole.Mid))
        plot.setLabel("bottom", "step")
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setMinimumHeight(120)
        plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        return plot

    # -- data -----------------------------------------------------------------------------------

    def reset(self, classes: bool = True) -> None:
        """Empty every chart; without classes there is no accuracy or confusion to show."""
        self._train.clear()
        self._val.clear()
        self._redraw()
        self.acc_plot.setVisible(classes)
        self.no_classes.setVisible(not classes)
        self.confusion.setVisible(classes)
        self.confusion.clear("The confusion matrix appears after the first validation")

    def add_train(self, step: int, loss: float) -> None:
        self._train.append((step, loss))
        self._redraw()

    def add_validation(self, step: int, metrics: dict) -> None:
        self._val.append((step, float(metrics["val_loss"]), metrics.get("val_accuracy"),
                          metrics.get("val_balanced_accuracy")))  # fmt: skip
        self._redraw()

    def load(self, train: Iterable[tuple[int, float]], validations: Iterable[dict]) -> None:
        """Show a run's history at once (a resumed run, or a page opened late)."""
        self._train = list(train)
        self._val = [
            (
                int(r["step"]),
                float(r["val_loss"]),
                r.get("val_accuracy"),
                r.get("val_balanced_accuracy"),
            )
            for r in validations
            if "val_loss" in r
        ]
        self._redraw()

    def set_confusion(self, doc: dict | None) -> None:
        if doc:
            self.confusion.set_matrix(doc.get("classes", []), doc.get("matrix", []),
                                      f"Confusion at step {doc.get('step', '?')} "
                                      "(rows: true class)")  # fmt: skip

    def _redraw(self) -> None:
        steps = np.array([s for s, _ in self._train], float)
        losses = np.array([v for _, v in self._train], float)
        vsteps = np.array([s for s, *_ in self._val], float)
        vloss = np.array([v[1] for v in self._val], float)
        every = np.concatenate([losses, vloss])
        log = bool(every.size) and bool(np.all(np.isfinite(every) & (every > 0)))
        self.loss_plot.setLogMode(y=log)
        self.train_curve.setData(steps, losses)
        self.val_curve.setData(vsteps, vloss)
        acc = [(s, a, b) for s, _, a, b in self._val if a is not None]
        self.acc_curve.setData([s for s, _, _ in acc], [float(a) for _, a, _ in acc])
        self.balanced_curve.setData([s for s, _, b in acc if b is not None],
                                    [float(b) for _, _, b in acc if b is not None])  # fmt: skip

    @property
    def points(self) -> tuple[int, int]:
        """(training points, validation points) on the charts."""
        return len(self._train), len(self._val)
