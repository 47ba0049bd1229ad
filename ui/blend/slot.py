"""One blend slot: a sample's name, its state, its weight slider and a remove button."""

from __future__ import annotations

import numpy as np

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.dnd import SampleRef
from ui.widgets import ElidedLabel

WEIGHT_MIN, WEIGHT_MAX, DEFAULT_WEIGHT = -1.0, 2.0, 1.0


class BlendSlot(QFrame):
    """One sample in the blend: its name, state, weight slider and a remove button.

    Attributes:
        ref: the sample (None: the slot is empty and hidden).
        latent: its decoder latent once known (None while it is read, or if it failed).
        error: why the sample cannot be used (None if it can).
    """

    weight_changed = Signal(float)
    remove_requested = Signal()
    menu_requested = Signal(QPoint)  # global position of a right-click

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.ref: SampleRef | None = None
        self.latent: np.ndarray | None = None
        self.error: str | None = None
        self.setObjectName(f"blendSlot{index}")
        self.setProperty("blendSlot", True)
        self.setFrameShape(QFrame.Shape.StyledPanel)

        self.name_label = ElidedLabel(self)
        self.name_label.setObjectName(f"blendName{index}")
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.remove_button = QToolButton(self)
        self.remove_button.setObjectName(f"blendRemove{index}")
        self.remove_button.setText("✕")
        self.remove_button.setAutoRaise(True)
        self.remove_button.setToolTip("Remove from the blend")
        self.remove_button.clicked.connect(self.remove_requested)

        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName(f"blendWeight{index}")
        self.slider.setRange(round(WEIGHT_MIN * 100), round(WEIGHT_MAX * 100))
        self.slider.setSingleStep(1)
        self.slider.setPageStep(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(100)  # marks at -1, 0, 1 and 2
        self.slider.setValue(round(DEFAULT_WEIGHT * 100))
        self.slider.setToolTip("Weight (negative weights subtract this sound)")
        self.slider.valueChanged.connect(self._slider_moved)
        self.value_label = QLabel(self)
        self.value_label.setObjectName(f"blendWeightValue{index}")
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("-0.00") + 8)
        self.state_label = QLabel(self)
        self.state_label.setObjectName(f"blendSlotState{index}")
        self.state_label.setWordWrap(True)
        self.state_label.hide()

        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self.name_label, 1)
        top.addWidget(self.remove_button)
        bottom = QHBoxLayout()
        bottom.setSpacing(6)
        bottom.addWidget(self.slider, 1)
        bottom.addWidget(self.value_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 6)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(bottom)
        layout.addWidget(self.state_label)
        self._show_value()
        self.hide()

    @property
    def weight(self) -> float:
        return self.slider.value() / 100

    def set_weight(self, weight: float) -> None:
        self.slider.setValue(round(float(np.clip(weight, WEIGHT_MIN, WEIGHT_MAX)) * 100))

    @property
    def usable(self) -> bool:
        return self.ref is not None and self.latent is not None

    def set_sample(self, ref: SampleRef) -> None:
        self.ref, self.latent, self.error = ref, None, None
        self.name_label.set_full_text(ref.name)
        self.setToolTip(ref.path + (f"\nfrom {ref.onset:.2f} s" if ref.onset else ""))
        self.slider.blockSignals(True)
        self.slider.setValue(round(DEFAULT_WEIGHT * 100))
        self.slider.blockSignals(False)
        self._show_value()
        self.set_waiting("reading...")
        self.show()

    def clear(self) -> None:
        self.ref, self.latent, self.error = None, None, None
        self.name_label.set_full_text("")
        self.setToolTip("")
        self.hide()

    def set_waiting(self, text: str) -> None:
        self.latent, self.error = None, None
        self._set_state(text, error=False)

    def set_latent(self, latent: np.ndarray) -> None:
        self.latent, self.error = latent, None
        self._set_state("", error=False)

    def set_error(self, reason: str) -> None:
        self.latent, self.error = None, reason
        self._set_state(f"Not used: {reason}", error=True)

    def _set_state(self, text: str, error: bool) -> None:
        self.state_label.setText(text)
        self.state_label.setVisible(bool(text))
        self.state_label.setStyleSheet("color: #c0392b;" if error else "color: palette(mid);")
        self.slider.setEnabled(not error)
        self.value_label.setEnabled(not error)

    def _slider_moved(self, _value: int) -> None:
        self._show_value()
        self.weight_changed.emit(self.weight)

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.weight:.2f}")

    def contextMenuEvent(self, event) -> None:
        if self.ref is not None:
            self.menu_requested.emit(event.globalPos())
