"""The similarity panel: drops ask the hub to search; results list, play and drag out."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests.helpers import noise_burst, tone, write
from tests.ui.events import drag_enter_event, drop_event
from ui.actions import SampleActions
from ui.dnd import MIME_TYPE, SampleRef, make_mime, samples_from_mime
from ui.widgets.similar_panel import DROP_HINT, SimilarPanel


@pytest.fixture
def actions() -> SampleActions:
    return SampleActions()


@pytest.fixture
def panel(qtbot, actions) -> SimilarPanel:
    p = SimilarPanel(actions)
    qtbot.addWidget(p)
    p.resize(600, 400)
    p.show()
    return p


def record(signal) -> list:
    got: list = []
    signal.connect(lambda *a: got.append(a[0] if a else None))
    return got


def drag_enter(widget, mime: QMimeData) -> QDragEnterEvent:
    ev = drag_enter_event(10, 10, mime, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)
    QApplication.sendEvent(widget, ev)
    return ev


def drop(widget, mime: QMimeData) -> QDropEvent:
    ev = drop_event(10, 10, mime, Qt.DropAction.CopyAction | Qt.DropAction.MoveAction)
    QApplication.sendEvent(widget, ev)
    return ev


@pytest.fixture
def results(tmp_path) -> list[tuple[SampleRef, float]]:
    """Five real files with distances, nearest first; one is a segment of a long file."""
    paths = [
        write(tmp_path / "lib" / "low.wav", tone(110, 0.5, decay=4)),
        write(tmp_path / "lib" / "high.wav", tone(2000, 0.3, decay=8)),
        write(tmp_path / "lib" / "hats" / "hat.wav", noise_burst()),
        write(tmp_path / "lib" / "loop.wav", tone(220, 3.0)),
        write(tmp_path / "lib" / "mid.wav", tone(440, 0.4, decay=6)),
    ]
    refs = [SampleRef(str(p)) for p in paths]
    refs[3] = SampleRef(refs[3].path, 1.5)
    return list(zip(refs, [0.0123, 0.25, 0.5, 1.23456, 2.0], strict=True))


def test_drop_zone_has_a_hint(panel):
    zone = panel.findChild(type(panel.drop_zone), "similarDropZone")
    assert zone is panel.drop_zone
    assert zone.hint.text() == DROP_HINT and zone.hint.isVisible()


def test_dropping_a_file_from_the_desktop_asks_for_similar(panel, actions, tmp_path):
    path = write(tmp_path / "kick.wav", tone(60, 0.5, decay=8))
    searched = record(actions.find_similar)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])  # what a file manager sends

    enter = drag_enter(panel.drop_zone, mime)
    assert enter.isAccepted() and panel.drop_zone.is_highlighted()
    assert "kick.wav" in panel.drop_zone.note.text()
    ev = drop(panel.drop_zone, mime)
    assert ev.isAccepted() and ev.dropAction() == Qt.DropAction.CopyAction
    assert searched == [SampleRef(str(path))]
    assert not panel.drop_zone.is_highlighted()


def test_dropping_our_own_mime_keeps_the_onset(panel, actions, tmp_path):
    path = write(tmp_path / "long.wav", tone(220, 3.0))
    searched = record(actions.find_similar)
    refs = [SampleRef(str(path), 1.25), SampleRef(str(path), 2.0)]
    drag_enter(panel.drop_zone, make_mime(refs))
    drop(panel.drop_zone, make_mime(refs))
    assert searched == [refs[0]]  # the first of several


@pytest.mark.parametrize(
    "kind, words",
    [("text", "text"), ("remote", "Web links"), ("folder", "folder")],
)
def test_drops_without_a_sound_file_are_ignored_with_a_note(panel, actions, tmp_path, kind, words):
    searched = record(actions.find_similar)
    mime = QMimeData()
    if kind == "text":
        mime.setText("kick drum, punchy")
    elif kind == "remote":
        mime.setUrls([QUrl("https://example.com/kick.wav")])
    else:
        mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])

    enter = drag_enter(panel.drop_zone, mime)
    assert not enter.isAccepted() and not panel.drop_zone.is_highlighted()
    ev = drop(panel.drop_zone, mime)
    assert not ev.isAccepted()
    assert searched == []
    note = panel.drop_zone.note
    assert note.isVisible() and words in note.text()


def test_set_query_shows_busy_then_results_nearest_first(panel, results):
    query = SampleRef(results[0][0].path)
    panel.set_query(query)
    assert panel.status.text() == f"Searching for sounds like {query.name}..."
    assert panel.busy.isVisible()

    shuffled = [results[i] for i in (3, 0, 4, 2, 1)]
    panel.show_results(query, shuffled)
    assert not panel.busy.isVisible()
    assert panel.results() == results
    assert panel.query() == query
    assert "5 sounds like low.wav" in panel.status.text()
    tree = panel.findChild(type(panel.results_view), "similarResults")
    assert tree.topLevelItemCount() == 5
    rows = [[tree.topLevelItem(i).text(c) for c in range(3)] for i in range(5)]
    assert [r[2] for r in rows] == ["0.012", "0.250", "0.500", "1.235", "2.000"]
    assert rows[0][0] == "low.wav" and rows[3][0] == "loop.wav @ 1.50 s"
    assert rows[2][1].endswith("hats")


def test_a_late_answer_to_an_older_search_is_ignored(panel, results):
    first, second = SampleRef(results[0][0].path), SampleRef(results[1][0].path)
    panel.set_query(first)
    panel.set_query(second)
    panel.show_results(first, results[:2])
    assert panel.results() == [] and panel.busy.isVisible()
    panel.show_results(second, results[2:])
    assert panel.results() == results[2:]


def test_keys_audition_and_walk_on(qtbot, panel, actions, results):
    heard, stopped, searched = (
        record(actions.audition),
        record(actions.stop),
        record(actions.find_similar),
    )
    panel.show_results(SampleRef("/q.wav"), results)
    assert heard == []  # listing results plays nothing
    tree = panel.results_view
    tree.setFocus()

    qtbot.keyClick(tree, Qt.Key.Key_Down)
    assert heard == [results[1][0]]
    qtbot.keyClick(tree, Qt.Key.Key_Down)
    assert heard == [results[1][0], results[2][0]]
    qtbot.keyClick(tree, Qt.Key.Key_Up)
    assert heard[-1] == results[1][0]

    qtbot.keyClick(tree, Qt.Key.Key_Space)  # it is playing: Space stops
    assert len(stopped) == 1
    qtbot.keyClick(tree, Qt.Key.Key_Space)  # stopped: Space plays again
    assert heard[-1] == results[1][0] and len(heard) == 4

    qtbot.keyClick(tree, Qt.Key.Key_Return)
    assert searched == [results[1][0]]


def test_double_click_auditions(qtbot, panel, actions, results):
    panel.show_results(SampleRef("/q.wav"), results)
    heard = record(actions.audition)
    tree = panel.results_view
    rect = tree.visualItemRect(tree.topLevelItem(2))
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert heard and heard[-1] == results[2][0]


def test_dragging_results_out_carries_file_urls_and_our_mime(panel, actions, results):
    panel.show_results(SampleRef("/q.wav"), results)
    tree = panel.results_view
    tree.clearSelection()  # the first result starts current and selected
    for i in (3, 1):
        tree.topLevelItem(i).setSelected(True)
    assert panel.selected_refs() == [results[1][0], results[3][0]]

    mime = tree.mimeData(tree.selectedItems())
    assert mime.hasFormat(MIME_TYPE)
    assert [u.toLocalFile() for u in mime.urls()] == [results[1][0].path, results[3][0].path]
    assert samples_from_mime(mime) == [results[1][0], results[3][0]]  # onset 1.5 kept

    searched = record(actions.find_similar)  # ... and back onto the drop zone
    assert drag_enter(panel.drop_zone, mime).isAccepted()
    drop(panel.drop_zone, mime)
    assert searched == [results[1][0]]


def test_right_click_opens_the_shared_menu_for_that_result(panel, actions, results):
    panel.show_results(SampleRef("/q.wav"), results)
    tree = panel.results_view
    heard = record(actions.audition)
    pos = tree.visualItemRect(tree.topLevelItem(2)).center()
    tree.customContextMenuRequested.emit(pos)
    menu = actions._menu
    try:
        assert menu.isVisible()
        assert tree.currentItem() is tree.topLevelItem(2) and heard == []
        searched = record(actions.find_similar)
        find = next(a for a in menu.actions() if a.text() == "Find similar")
        find.trigger()
        assert searched == [results[2][0]]
    finally:
        menu.close()


def test_show_error_shows_the_message(panel, results):
    panel.show_results(SampleRef("/q.wav"), results)
    panel.set_query(SampleRef("/tmp/kick.wav"))
    message = "kick.wav could not be read: not an audio file"
    panel.show_error(message)
    assert panel.status.text() == message and panel.status.isVisible()
    assert panel.status.property("error") is True
    assert not panel.busy.isVisible() and panel.results() == []
    panel.clear()
    assert panel.status.text() == "" and panel.results_view.topLevelItemCount() == 0


def test_no_results_says_so(panel):
    panel.show_results(SampleRef("/music/kick.wav"), [])
    assert "Nothing like kick.wav" in panel.status.text()


def test_same_kind_searches_again_and_names_the_kind(panel, actions, results):
    asked = record(actions.find_similar)
    box = panel.findChild(object, "similarSameKind")
    assert not panel.same_kind()
    box.setChecked(True)  # nothing listed yet: nothing to search again
    assert asked == [] and panel.same_kind()
    query = SampleRef("/music/snare.wav")
    panel.set_query(query)
    panel.show_results(query, results[:2], kind="snare")
    assert panel.status.text() == "2 snare sounds like snare.wav"
    box.setChecked(False)  # the listed search again, without the filter
    assert asked == [query]
    panel.show_results(query, [], kind="clap")
    assert panel.status.text() == "No other clap sounds in the library."
    # set by the window: no search; a model without a classifier turns it off
    panel.set_same_kind(True)
    assert asked == [query] and panel.same_kind()
    panel.set_same_kind(True, available=False)
    assert not box.isEnabled() and not panel.same_kind() and "no classifier" in box.toolTip()
