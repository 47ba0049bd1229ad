"""Class probability bars and the classify popup."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from ui.dnd import SampleRef
from ui.widgets.class_bars import MAX_ROWS, ClassifyPopup, ClassProbabilities, format_percent

NAMES = ["kick", "snare", "hihat", "tom", "cymbal", "clap", "percussion", "tonal", "fx"]
PROBS = [0.05, 0.62, 0.0002, 0.21, 0.01, 0.05, 0.03, 0.004, 0.0258]
REF = SampleRef("/music/drums/snare_01.wav")


@pytest.fixture
def bars(qtbot) -> ClassProbabilities:
    w = ClassProbabilities()
    qtbot.addWidget(w)
    w.show()
    return w


def test_bars_sorted_descending_and_formatted(bars):
    bars.show_probabilities(REF, NAMES, PROBS)
    shown = bars.bars()
    assert [p for _, p in shown] == sorted(PROBS, reverse=True)
    assert shown[0] == ("snare", 0.62) and shown[1] == ("tom", 0.21)
    assert [n for n, _ in shown[2:4]] == ["kick", "clap"]  # a tie keeps the model's order
    labels = bars.row_labels()
    assert [(n.text(), p.text()) for n, p in labels[:3]] == [
        ("snare", "62.0%"),
        ("tom", "21.0%"),
        ("kick", "5.0%"),
    ]
    assert labels[-1][1].text() == "<0.1%"  # hihat: tiny, not a flat zero
    assert bars.title.text() == "snare_01.wav"
    assert bars.objectName() == "classProbabilities"


def test_top_class_is_emphasised(bars):
    bars.show_probabilities(REF, NAMES, PROBS)
    (top_name, top_pct), *rest = bars.row_labels()
    assert top_name.font().bold() and top_pct.font().bold()
    assert top_name.property("emphasised") is True
    assert not any(n.font().bold() or n.property("emphasised") for n, _ in rest)


def test_format_percent():
    assert format_percent(1.0) == "100.0%"
    assert format_percent(0.0) == "0.0%"
    assert format_percent(0.0004) == "<0.1%"
    assert format_percent(0.1234) == "12.3%"


def test_mismatched_or_missing_classes_are_messages(bars):
    bars.show_probabilities(REF, NAMES, PROBS[:3])
    assert bars.bars() == [] and "3 probabilities for 9 classes" in bars.message_text()
    bars.show_probabilities(REF, [], [])
    assert "no classifier" in bars.message_text()


def test_show_error_replaces_the_bars(bars):
    bars.show_probabilities(REF, NAMES, PROBS)
    bars.show_error("snare_01.wav could not be read: file not found")
    assert bars.bars() == [] and bars.row_labels() == []
    assert bars.message_text() == "snare_01.wav could not be read: file not found"
    assert bars.message.property("error") is True


def test_many_classes_show_the_likeliest_and_sum_the_rest(bars):
    n = MAX_ROWS + 5
    probs = [1 / n] * n
    probs[7] += 0.01
    bars.show_probabilities(REF, [f"c{i}" for i in range(n)], probs)
    assert len(bars.bars()) == MAX_ROWS and bars.bars()[0][0] == "c7"
    assert bars.more.isVisible() and "5 more classes" in bars.more.text()


def test_popup_shows_without_blocking_and_stays_on_screen(qtbot):
    popup = ClassifyPopup()
    qtbot.addWidget(popup)
    popup.set_query(REF)
    assert "Classifying snare_01.wav" in popup.probabilities.message_text()
    area = QApplication.primaryScreen().availableGeometry()
    popup.popup_at(area.bottomRight() - QPoint(2, 2))  # returns: shown, not exec()
    assert popup.isVisible() and popup.objectName() == "classifyPopup"
    assert popup.windowType() == Qt.WindowType.Popup

    popup.show_probabilities(REF, NAMES, PROBS)
    assert popup.title.text() == "snare_01.wav"
    assert popup.probabilities.bars()[0] == ("snare", 0.62)
    assert area.contains(popup.frameGeometry()), (popup.frameGeometry(), area)

    qtbot.mouseClick(popup.close_button, Qt.MouseButton.LeftButton)
    assert not popup.isVisible()


def test_popup_error(qtbot):
    popup = ClassifyPopup()
    qtbot.addWidget(popup)
    popup.popup_at(QPoint(20, 20))
    popup.show_error("This model has no classifier")
    assert popup.probabilities.message_text() == "This model has no classifier"
    assert popup.pos() == QPoint(20, 20)
    popup.close()
