"""The library browser: filtering, sorting, keys, selection sync and drags."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from sampletool.library import Snapshot
from ui.actions import SampleActions
from ui.dnd import MIME_TYPE, SampleRef, samples_from_mime
from ui.widgets.library_view import LibraryView

CLASSES = ["kick", "snare", "hihat"]


def snapshot(root: str, n: int = 6) -> Snapshot:
    names = ["Kicks/boom.wav", "Kicks/thud.wav", "Snares/crack.wav", "Snares/Deep/rim.wav",
             "Hats/tick.wav", "loop.wav"][:n]  # fmt: skip
    probs = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1],
                      [0.1, 0.1, 0.8], [0.4, 0.3, 0.3]], np.float32)[:n]  # fmt: skip
    return Snapshot(
        ids=np.arange(10, 10 + n, dtype=np.int64),
        paths=[f"{root}/{p}" for p in names],
        onsets=np.array([0, 0, 0, 0, 0, 1.5][:n], np.float64),
        durations=np.array([0.5, 0.8, 0.3, 0.2, 0.1, 4.0][:n]),
        vectors=np.zeros((n, 4), np.float32),
        probs=probs,
        class_names=CLASSES,
        failures=[],
    )


@pytest.fixture
def view(qtbot, tmp_path):
    actions = SampleActions()
    v = LibraryView(actions)
    qtbot.addWidget(v)
    v.resize(900, 500)
    v.show()
    v.set_snapshot(snapshot(str(tmp_path)), tmp_path)
    return v


def names(v: LibraryView) -> list[str]:
    m = v.model
    return [m.data(m.index(r, 0)) for r in range(m.rowCount())]


def test_rows_columns_and_segment_names(view):
    m = view.model
    assert m.rowCount() == 6 and m.columnCount() == 5
    row = names(view).index("boom.wav")
    assert [m.data(m.index(row, c)) for c in range(5)] == ["boom.wav", "kick", "90%", "0.50 s",
                                                          "Kicks"]  # fmt: skip
    assert "loop.wav @ 1.50 s" in names(view)


def test_filters_that_hide_everything_say_so(view):
    assert view.table.placeholder() == ""
    view.filter_edit.setText("no such sample")
    assert view.model.rowCount() == 0
    assert view.table.placeholder() == "No samples match the filters"
    view.table.grab()  # it paints
    view.filter_edit.clear()
    assert view.table.placeholder() == ""


def test_text_class_and_folder_filters_combine(view):
    view.filter_edit.setText("snares")  # folder names match too
    assert sorted(names(view)) == ["crack.wav", "rim.wav"]
    view.filter_edit.setText("")
    view.class_combo.setCurrentText("kick")
    assert sorted(names(view)) == ["boom.wav", "loop.wav @ 1.50 s", "thud.wav"]
    view.class_combo.setCurrentIndex(0)
    top = view.tree.topLevelItem(0)
    snares = next(top.child(i) for i in range(top.childCount()) if top.child(i).text(0) == "Snares")
    view.tree.setCurrentItem(snares)  # a folder includes its sub-folders
    assert sorted(names(view)) == ["crack.wav", "rim.wav"]
    view.tree.setCurrentItem(snares.child(0))
    assert names(view) == ["rim.wav"]


def test_sorting_by_each_column_and_the_selection_follows_its_entries(view):
    view.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # length
    assert names(view)[0] == "tick.wav" and names(view)[-1] == "loop.wav @ 1.50 s"
    view.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # confidence
    assert names(view)[0] == "boom.wav"
    view.select_ids([12])  # crack.wav
    view.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert [r.path.rsplit("/", 1)[-1] for r in view.selected_refs()] == ["crack.wav"]
    assert view.current_ref().path.endswith("crack.wav")


def test_keys_audition_play_toggle_and_find_similar(view, qtbot):
    heard, similar, toggles = [], [], []
    view.actions.audition.connect(heard.append)
    view.actions.find_similar.connect(similar.append)
    view.play_toggled.connect(lambda: toggles.append(1))
    view.table.setFocus()
    view.table.selectRow(0)
    first = view.model.ref(0)
    assert heard[-1] == first
    QTest.keyClick(view.table, Qt.Key.Key_Down)
    assert heard[-1] == view.model.ref(1)
    QTest.keyClick(view.table, Qt.Key.Key_Space)
    assert toggles == [1]
    QTest.keyClick(view.table, Qt.Key.Key_Return)
    assert similar == [view.model.ref(1)]
    # Tab leaves the table for the next widget instead of walking its cells (which changed
    # the selected row, and played it, every few presses)
    view.activateWindow()
    view.table.setFocus()
    QTest.keyClick(view.table, Qt.Key.Key_Tab)
    assert heard[-1] == view.model.ref(1) and view.table.currentIndex().row() == 1
    assert not view.table.hasFocus()


def test_select_ids_from_the_map_does_not_echo_or_audition(view):
    echoed, heard = [], []
    view.selection_ids_changed.connect(echoed.append)
    view.actions.audition.connect(heard.append)
    view.select_ids([11, 14])
    assert echoed == [] and heard == []
    assert sorted(r.path.rsplit("/", 1)[-1] for r in view.selected_refs()) == ["thud.wav",
                                                                            "tick.wav"]  # fmt: skip
    view.table.selectRow(0)  # a user selection does go to the map
    assert echoed and echoed[-1] == [view.model.entry_id(0)]


def test_drag_carries_files_and_onsets(view):
    m = view.model
    row = names(view).index("loop.wav @ 1.50 s")
    mime = m.mimeData([m.index(row, 0), m.index(row, 3)])
    assert mime.hasFormat(MIME_TYPE) and [u.isLocalFile() for u in mime.urls()] == [True]
    assert samples_from_mime(mime) == [SampleRef(m.ref(row).path, 1.5)]


def test_a_new_snapshot_keeps_filter_and_selection(view, tmp_path):
    view.filter_edit.setText("k")
    view.select_ids([10])
    view.set_snapshot(snapshot(str(tmp_path)), tmp_path)
    assert view.filter_edit.text() == "k" and "boom.wav" in names(view)
    assert view.selected_refs()[0].path.endswith("boom.wav")
    view.set_snapshot(snapshot(str(tmp_path), n=0), tmp_path)  # an empty library is fine
    assert view.model.rowCount() == 0


def test_unsure_user_set_and_silent_classes_read_as_such(qtbot, tmp_path):
    snap = snapshot(str(tmp_path))
    snap.probs[1] = [1 / 3, 1 / 3, 1 / 3]  # silent: nothing heard
    snap.labels = [None, None, None, "hihat", None, None]  # the user's class for rim.wav
    v = LibraryView(SampleActions())
    qtbot.addWidget(v)
    v.set_snapshot(snap, tmp_path)
    m = v.model

    def row_of(name: str) -> list:
        r = names(v).index(name)
        cells = [m.data(m.index(r, c)) for c in (1, 2)]
        grey = m.data(m.index(r, 1), Qt.ItemDataRole.ForegroundRole) is not None
        font = m.data(m.index(r, 1), Qt.ItemDataRole.FontRole)
        return [*cells, grey, bool(font and font.bold())]

    assert row_of("boom.wav") == ["kick", "90%", False, False]
    assert row_of("loop.wav @ 1.50 s") == ["? kick / snare", "40%", True, False]  # unsure
    assert row_of("thud.wav")[:3] == ["?", "33%", True]  # silent
    assert row_of("rim.wav") == ["hihat", "you", False, True]  # set by the user
    tip = m.data(m.index(names(v).index("rim.wav"), 1), Qt.ItemDataRole.ToolTipRole)
    assert tip == "Set by you: hihat (the model says snare)"
    v.class_combo.setCurrentText("hihat")  # the filter goes by the class shown
    assert sorted(names(v)) == ["rim.wav", "tick.wav"]
    snap.labels[3] = None  # taken back (the window updates the snapshot it shows)
    v.update_classes(snap)
    assert names(v) == ["tick.wav"]


def test_a_word_finds_what_the_name_and_the_class_say_best_matches_first(qtbot, tmp_path):
    names_ = ["a_kickass_pad.wav", "bd_haus.wav", "boom.wav", "kick_hard.wav", "tick.wav"]
    probs = np.array([[0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1],
                      [0.1, 0.1, 0.8]], np.float32)  # fmt: skip
    snap = Snapshot(ids=np.arange(5, dtype=np.int64), paths=[f"{tmp_path}/{p}" for p in names_],
                    onsets=np.zeros(5), durations=np.ones(5), vectors=np.zeros((5, 4), np.float32),
                    probs=probs, class_names=CLASSES, failures=[])  # fmt: skip
    v = LibraryView(SampleActions())
    qtbot.addWidget(v)
    shown = []
    v.filtered.connect(shown.append)
    v.set_snapshot(snap, tmp_path)
    assert shown[-1] is None  # nothing filtered
    v.filter_edit.setText("kick")
    # The names that say kick (bd is a kick), then what the model hears as a kick, then a name
    # that merely contains the word.
    assert names(v) == ["bd_haus.wav", "kick_hard.wav", "boom.wav", "a_kickass_pad.wav"]
    assert sorted(shown[-1].tolist()) == [0, 1, 2, 3]
    v.filter_edit.setText("bd_haus")  # a name is not a class, though it names a drum
    assert names(v) == ["bd_haus.wav"]
    v.filter_edit.setText("kick_hard")
    assert names(v) == ["kick_hard.wav"]
    v.filter_edit.setText("hh")  # the drum vocabulary's word for a hi-hat class
    assert names(v) == ["a_kickass_pad.wav", "tick.wav"]  # the model's hi-hats
    v.filter_edit.clear()
    assert shown[-1] is None


def test_a_word_with_a_digit_finds_the_file_names_that_hold_it_not_their_whole_family(
    qtbot, tmp_path
):
    names_ = ["kick01.wav", "kick02.wav", "bd_808.wav", "rave_bass01.ogg", "rave_bass02.ogg"]
    probs = np.array([[0.9, 0.05, 0.05]] * 5, np.float32)  # all heard as kicks
    snap = Snapshot(ids=np.arange(5, dtype=np.int64), paths=[f"{tmp_path}/{p}" for p in names_],
                    onsets=np.zeros(5), durations=np.ones(5), vectors=np.zeros((5, 4), np.float32),
                    probs=probs, class_names=CLASSES, failures=[])  # fmt: skip
    v = LibraryView(SampleActions())
    qtbot.addWidget(v)
    v.set_snapshot(snap, tmp_path)
    v.filter_edit.setText("kick")  # a word: every kick, by name and by what the model hears
    assert sorted(names(v)) == sorted(names_)
    v.filter_edit.setText("kick02")  # part of a name: that file, not every kick
    assert names(v) == ["kick02.wav"]
    v.filter_edit.setText("rave_bass02")
    assert names(v) == ["rave_bass02.ogg"]
    v.filter_edit.setText("808")
    assert names(v) == ["bd_808.wav"]
    v.filter_edit.setText("bass0 ogg")  # each word must be found
    assert names(v) == ["rave_bass01.ogg", "rave_bass02.ogg"]
