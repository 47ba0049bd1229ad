"""The map of sound: points, legend, hover, click, box and lasso selection, animation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from ui.dnd import SampleRef, samples_from_mime
from ui.widgets.latent_map import PALETTE, LatentMap, class_colour, points_in_polygon
from ui.workers import SynchronousPool

NAMES = ["kick", "snare", "hihat"]
LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton
NOMOD = Qt.KeyboardModifier.NoModifier


def grid(side: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Points on a grid over [-1, 1]^2, far apart on screen: ids, xy, classes, labels."""
    g = np.linspace(-1, 1, side)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype(np.float32)
    n = len(xy)
    return np.arange(n, dtype=np.int64) + 100, xy, np.arange(n) % 3, [f"s{i}.wav" for i in range(n)]


def show_grid(qtbot, pool=None):
    """A shown map of the grid; with no pool its hover tree is built on Qt's threads."""
    m = LatentMap(pool=pool)
    qtbot.addWidget(m)
    m.resize(600, 640)
    m.show()
    qtbot.waitExposed(m)
    ids, xy, classes, labels = grid()
    m.set_points(ids, xy, classes, NAMES, labels)
    return m, ids, xy, classes


@pytest.fixture
def shown(qtbot):
    return show_grid(qtbot, SynchronousPool())


def at(m: LatentMap, x: float, y: float) -> QPoint:
    return m.view_pos(x, y)


def drag(m: LatentMap, points: list[tuple[float, float]], modifier) -> None:
    """Press at the first point, move through the others, release at the last."""
    vp = m.view.viewport()
    QTest.mousePress(vp, LEFT, modifier, at(m, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(vp, at(m, *p))
    QTest.mouseRelease(vp, LEFT, modifier, at(m, *points[-1]))


def test_set_points_builds_a_legend_of_the_classes(shown):
    m, ids, _, classes = shown
    assert m.objectName() == "latentMap"
    entries = m.legend_entries()
    assert [label for label, _ in entries] == ["kick (34)", "snare (33)", "hihat (33)"]
    assert [c.rgb() for _, c in entries] == [class_colour(k).rgb() for k in range(3)]
    assert np.array_equal(np.sort(m.ids()), ids)

    classes = classes.copy()
    classes[:5] = -1
    m.set_points(ids, m.positions(), classes, NAMES, [""] * len(ids))
    label, colour = m.legend_entries()[-1]
    assert label == "unclassified (5)" and colour.red() == colour.green() == colour.blue()
    with pytest.raises(ValueError, match="labels"):
        m.set_points(ids, m.positions(), classes, NAMES, ["too few"])


def lab(colour) -> np.ndarray:
    """CIELAB (D65) of a QColor, from sRGB."""
    rgb = np.array([colour.redF(), colour.greenF(), colour.blueF()])
    rgb = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                       [0.0193, 0.1192, 0.9505]])  # fmt: skip
    xyz = to_xyz @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_palette_has_at_least_twelve_distinct_colours():
    colours = {class_colour(k).rgb() for k in range(len(PALETTE))}
    assert len(PALETTE) >= 12 and len(colours) == len(PALETTE)
    assert class_colour(-1).rgb() not in colours
    # The built-in model's nine classes are told apart at a glance: no two of their colours
    # are nearer than 20 in CIELAB (fx and tonal were 13 apart, two greens).
    first = [lab(class_colour(k)) for k in range(9)]
    nearest = min(np.linalg.norm(a - b) for i, a in enumerate(first) for b in first[i + 1 :])
    assert nearest > 20


def test_hover_reports_the_point_and_shows_its_label(qtbot, shown):
    m, ids, xy, _ = shown
    vp = m.view.viewport()
    with qtbot.waitSignal(m.hovered, timeout=2000) as blocker:
        QTest.mouseMove(vp, at(m, *xy[37]))
    assert blocker.args == [ids[37]] and m.hovered_id == ids[37]
    assert m._label_item.isVisible() and m._label_item.toPlainText() == "s37.wav"
    # Halfway between grid points is nothing.
    with qtbot.waitSignal(m.hovered, timeout=2000) as blocker:
        QTest.mouseMove(vp, at(m, *(xy[37] + xy[38]) / 2))
    assert blocker.args == [-1] and not m._label_item.isVisible()


def test_click_on_a_point_emits_its_id_and_empty_space_does_not(qtbot, shown):
    m, ids, xy, _ = shown
    vp = m.view.viewport()
    with qtbot.waitSignal(m.clicked, timeout=2000) as blocker:
        QTest.mouseClick(vp, LEFT, NOMOD, at(m, *xy[12]) + QPoint(2, -1))
    assert blocker.args == [ids[12]]
    with qtbot.assertNotEmitted(m.clicked):
        QTest.mouseClick(vp, LEFT, NOMOD, at(m, *(xy[12] + xy[23]) / 2))


def test_right_click_on_a_point_asks_for_its_menu(qtbot, shown):
    m, ids, xy, _ = shown
    vp = m.view.viewport()
    pos = at(m, *xy[55])
    with qtbot.waitSignal(m.context_requested, timeout=2000) as blocker:
        QTest.mouseClick(vp, RIGHT, NOMOD, pos)
    assert blocker.args == [ids[55], vp.mapToGlobal(pos)]
    with qtbot.assertNotEmitted(m.context_requested):
        QTest.mouseClick(vp, RIGHT, NOMOD, at(m, *(xy[55] + xy[56]) / 2))


def test_shift_drag_selects_the_points_in_the_box(qtbot, shown):
    m, ids, xy, _ = shown
    with qtbot.waitSignal(m.selection_changed, timeout=2000) as blocker:
        drag(m, [(-0.5, -0.6), (0.1, 0.0), (0.35, 0.2)], Qt.KeyboardModifier.ShiftModifier)
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] <= 0.35) & (xy[:, 1] >= -0.6) & (xy[:, 1] <= 0.2)
    expected = sorted(ids[inside].tolist())
    assert len(expected) == 16
    assert sorted(blocker.args[0]) == expected and sorted(m.selected_ids()) == expected


@pytest.mark.parametrize("modifier", ["ctrl", "alt"])
def test_ctrl_or_alt_drag_selects_the_points_in_the_lasso(qtbot, shown, modifier):
    m, ids, xy, _ = shown
    mod = {"ctrl": Qt.KeyboardModifier.ControlModifier, "alt": Qt.KeyboardModifier.AltModifier}
    # An L shape (concave): the points of its notch must stay out.
    lasso = [(-0.9, -0.9), (0.5, -0.9), (0.5, -0.3), (-0.3, -0.3), (-0.3, 0.9), (-0.9, 0.9)]
    with qtbot.waitSignal(m.selection_changed, timeout=2000) as blocker:
        drag(m, lasso, mod[modifier])
    x, y = xy[:, 0], xy[:, 1]
    foot = (x > -0.9) & (x < 0.5) & (y > -0.9) & (y < -0.3)
    stem = (x > -0.9) & (x < -0.3) & (y > -0.9) & (y < 0.9)
    expected = sorted(ids[foot | stem].tolist())
    assert 10 < len(expected) < 40
    assert sorted(blocker.args[0]) == expected


def test_points_in_polygon_handles_concave_shapes():
    square = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)
    notch = np.array([[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]], float)
    pts = np.array([[1, 1.5], [2.5, 2.5], [1.5, 2], [0.5, 2.5], [-1, 1]], float)
    assert points_in_polygon(pts, square).tolist() == [True, False, False, False, False]
    assert points_in_polygon(pts, notch).tolist() == [False, True, False, True, False]


def test_select_ids_draws_rings_without_emitting(qtbot, shown):
    m, ids, xy, _ = shown
    with qtbot.assertNotEmitted(m.selection_changed):
        m.select_ids([ids[3], ids[7], 99_999])  # an unknown id is ignored
    assert sorted(m.selected_ids()) == [ids[3], ids[7]]
    ring = m._selection_item.data
    assert sorted(zip(ring["x"], ring["y"], strict=True)) == sorted(map(tuple, xy[[3, 7]]))
    # Esc clears a selection and says so.
    with qtbot.waitSignal(m.selection_changed, timeout=2000) as blocker:
        QTest.keyClick(m.view, Qt.Key.Key_Escape)
    assert blocker.args == [[]] and m.selected_ids() == []


def test_highlight_draws_the_given_points_larger_and_on_top(shown):
    m, ids, xy, classes = shown
    m.highlight([ids[20], ids[41]])
    assert sorted(m.highlighted_ids()) == [ids[20], ids[41]]
    item = m._highlight_item
    drawn = sorted(zip(item.data["x"], item.data["y"], strict=True))
    assert drawn == sorted(map(tuple, xy[[20, 41]]))
    assert item.opts["size"] > m._class_items[0].opts["size"]
    assert item.zValue() > max(i.zValue() for i in m._class_items.values())
    brushes = sorted(b.color().rgb() for b in item.data["brush"])
    assert brushes == sorted(class_colour(int(c)).rgb() for c in classes[[20, 41]])
    m.highlight([])
    assert m.highlighted_ids() == [] and len(m._highlight_item.data) == 0


def test_animate_to_ends_exactly_on_the_target(qtbot, shown):
    m, ids, xy, _ = shown
    target = (xy[::-1] * 0.5 + 0.1).astype(np.float32)
    frames = []
    m._anim.valueChanged.connect(lambda _: frames.append(m.positions()))
    m.animate_to(target, duration_ms=150)
    assert m.animating
    qtbot.waitUntil(lambda: not m.animating, timeout=5000)
    assert np.array_equal(m.positions(), target)
    for cls, item in m._class_items.items():
        idx = m._groups[cls]
        assert np.array_equal(item.data["x"], target[idx, 0])
        assert np.array_equal(item.data["y"], target[idx, 1])
    # It moved through positions in between, and hover follows the points to where they landed.
    assert any(0 < np.abs(f - xy).max() and not np.array_equal(f, target) for f in frames)
    assert m.id_at(at(m, *target[5])) == ids[5]
    with pytest.raises(ValueError):
        m.animate_to(target[:3])


def test_hidden_class_is_neither_hovered_nor_selected(qtbot, shown):
    m, ids, xy, classes = shown
    assert m.id_at(at(m, *xy[1])) == ids[1]
    m._class_items[int(classes[1])].setVisible(False)  # what clicking its legend entry does
    assert m.id_at(at(m, *xy[1])) == -1
    with qtbot.waitSignal(m.selection_changed, timeout=2000) as blocker:
        drag(m, [(-1.1, -1.1), (1.1, 1.1)], Qt.KeyboardModifier.ShiftModifier)
    assert sorted(blocker.args[0]) == sorted(ids[classes != classes[1]].tolist())


def test_dragging_carries_the_refs_the_window_maps_ids_to(shown):
    m, ids, _, _ = shown
    assert m.drag_mime([ids[0]]) is None  # no resolver: nothing to drag
    m.ref_for_id = lambda i: SampleRef(f"/lib/{i}.wav", 0.5) if i != ids[1] else None
    refs = samples_from_mime(m.drag_mime([ids[0], ids[1], ids[2]]))
    assert refs == [SampleRef(f"/lib/{ids[0]}.wav", 0.5), SampleRef(f"/lib/{ids[2]}.wav", 0.5)]


def test_a_hundred_thousand_points(qtbot):
    m = LatentMap(pool=SynchronousPool())
    qtbot.addWidget(m)
    m.resize(800, 600)
    m.show()
    rng = np.random.default_rng(0)
    n = 100_000
    xy = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    ids = rng.permutation(n).astype(np.int64) * 7
    m.set_points(ids, xy, rng.integers(-1, 9, n), NAMES * 3, [""] * n)
    assert sum(len(i.data) for i in m._class_items.values()) == n
    assert not m.grab().isNull()
    hit = m.id_at(at(m, *xy[123]))
    assert hit >= 0  # the point there, or a neighbour drawn within a few pixels of it
    near = xy[np.flatnonzero(ids == hit)[0]]
    px = max(m.vb.viewPixelSize())
    assert np.linalg.norm(near - xy[123]) <= 8 * px
    m.select_ids(ids[:5000])
    assert len(m.selected_ids()) == 5000


def test_points_are_drawn_in_their_class_colour_on_a_dark_ground(shown):
    m, _, xy, classes = shown
    image = m.view.viewport().grab().toImage()
    for i in (0, 44, 99):
        p = at(m, *xy[i])
        drawn, want = image.pixelColor(p), class_colour(int(classes[i]))
        diff = [abs(a - b) for a, b in zip(drawn.getRgb()[:3], want.getRgb()[:3], strict=True)]
        assert max(diff) < 40, (i, drawn.name(), want.name())
    ground = image.pixelColor(at(m, *(xy[44] + xy[45]) / 2))
    assert max(ground.red(), ground.green(), ground.blue()) < 50


def test_dragging_a_point_drags_it_or_the_selection_it_belongs_to(qtbot, shown):
    m, ids, xy, _ = shown
    asked = []

    def ref_for_id(i: int) -> SampleRef:  # the window's real job: map an id to its file
        asked.append(i)
        return SampleRef(f"/lib/{i}.wav")

    m.ref_for_id = ref_for_id
    vp = m.view.viewport()
    start = at(m, *xy[30])
    with qtbot.assertNotEmitted(m.clicked):
        QTest.mousePress(vp, LEFT, NOMOD, start)
        QTest.mouseMove(vp, start + QPoint(25, 0))  # offscreen, QDrag.exec returns at once
        QTest.mouseRelease(vp, LEFT, NOMOD, start + QPoint(25, 0))
    assert asked == [ids[30]]
    asked.clear()
    m.select_ids([ids[30], ids[31], ids[32]])
    QTest.mousePress(vp, LEFT, NOMOD, start)
    QTest.mouseMove(vp, start + QPoint(0, 25))
    QTest.mouseRelease(vp, LEFT, NOMOD, start + QPoint(0, 25))
    assert sorted(asked) == sorted(ids[30:33].tolist())


def test_points_fit_the_view_beside_the_legend_and_follow_resizes(qtbot):
    m = LatentMap(pool=SynchronousPool())
    qtbot.addWidget(m)
    ids, xy, _, labels = grid()
    names = [f"class {k}" for k in range(9)]  # a tall legend
    m.set_points(ids, xy, np.arange(len(ids)) % 9, names, labels)  # before it is laid out
    m.resize(900, 500)
    m.show()
    qtbot.waitExposed(m)

    def clear_of_legend() -> bool:
        legend = m.view.mapFromScene(m.legend.sceneBoundingRect()).boundingRect()
        viewport = m.view.viewport().rect()
        spots = [at(m, *p) for p in xy]
        return all(viewport.contains(p) and not legend.contains(p) for p in spots)

    qtbot.waitUntil(clear_of_legend, timeout=2000)
    m.resize(420, 760)  # tall and narrow: the legend now takes 40 % of the width
    qtbot.waitUntil(clear_of_legend, timeout=2000)


def test_an_empty_map_is_fine(qtbot):
    m = LatentMap(pool=SynchronousPool())
    qtbot.addWidget(m)
    m.set_points(np.empty(0, np.int64), np.zeros((0, 2), np.float32), np.empty(0, np.int64),
                 ["kick"], [])  # fmt: skip
    assert len(m.ids()) == 0 and m.legend_entries() == []


def test_the_hover_tree_is_built_off_the_gui_thread(qtbot):
    m, ids, xy, _ = show_grid(qtbot)  # the tree comes back through the event loop
    assert m.id_at(at(m, *xy[7])) == -1  # no tree yet: the GUI thread did not build one
    qtbot.waitUntil(lambda: m.id_at(at(m, *xy[7])) == ids[7], timeout=10_000)
    m.animate_to(xy[::-1].copy(), 100)
    assert m.id_at(at(m, *xy[7])) == -1  # positions are moving: no stale tree
    qtbot.waitUntil(lambda: m.id_at(at(m, *xy[7])) == ids[-8], timeout=10_000)


def test_esc_clears_selection_and_results_before_a_window_shortcut_takes_it(qtbot):
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QApplication, QMainWindow

    window = QMainWindow()
    qtbot.addWidget(window)
    m = LatentMap(pool=SynchronousPool())
    window.setCentralWidget(m)
    stops = []
    stop = QAction("Stop playback", window)
    stop.setShortcut("Esc")  # as the main window's Edit > Stop playback
    stop.triggered.connect(lambda: stops.append(1))
    window.addAction(stop)
    window.resize(600, 640)
    window.show()
    window.windowHandle().requestActivate()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    ids, xy, classes, labels = grid()
    m.set_points(ids, xy, classes, NAMES, labels)
    drag(m, [(-1.1, -1.1), (0.1, 0.1)], Qt.KeyboardModifier.ShiftModifier)
    m.highlight([ids[1], ids[2]])
    assert m.selected_ids()
    with qtbot.waitSignals([m.selection_changed, m.highlight_cleared], timeout=2000):
        QTest.keyClick(m.view, Qt.Key.Key_Escape)
    assert m.selected_ids() == [] and m.highlighted_ids() == [] and stops == []
    QTest.keyClick(m.view, Qt.Key.Key_Escape)  # nothing left to clear: the window's shortcut
    assert stops == [1]


def test_selection_rings_are_not_drawn_like_results(shown):
    m, ids, _, _ = shown
    m.select_ids([ids[3]])
    m.highlight([ids[4]])
    ring = m._selection_item.opts["pen"].color().name()
    result = m._highlight_item.opts["pen"].color().name()
    assert ring != result


def test_double_click_home_and_the_menu_reset_a_moved_view(qtbot, shown):
    m, _, _, _ = shown
    fitted = m.vb.viewRect()
    m.vb.scaleBy((0.2, 0.2))
    m.vb.translateBy((0.5, 0.5))
    m._user_moved_view()
    assert m.vb.viewRect() != fitted
    empty = at(m, -0.95 + 0.1, 1.25)  # between the grid's top row and the view's edge
    assert m.id_at(empty) == -1
    QTest.mouseDClick(m.view.viewport(), LEFT, NOMOD, empty)
    assert m.vb.viewRect() == fitted
    m.vb.scaleBy((0.2, 0.2))
    m._user_moved_view()
    m.view.setFocus()
    QTest.keyClick(m.view, Qt.Key.Key_Home)
    assert m.vb.viewRect() == fitted
    # Right-click on empty space opens the map's own menu.
    QTest.mouseClick(m.view.viewport(), RIGHT, NOMOD, at(m, 0.0, 1.25))
    assert m.menu is not None and m.menu.isVisible()
    texts = [a.text().split("\t")[0] for a in m.menu.actions()]
    assert texts[0] == "Reset view" and "Hide the legend" in texts
    m.menu.close()


def test_clicking_a_class_name_in_the_legend_hides_that_class(qtbot, shown):
    m, _, _, classes = shown
    sample, label = m.legend.items[1]
    centre = m.view.mapFromScene(label.sceneBoundingRect().center())
    QTest.mouseClick(m.view.viewport(), LEFT, NOMOD, centre)
    assert not sample.item.isVisible()
    assert [i.isVisible() for i in m._class_items.values()].count(False) == 1
    m.view.setFocus()
    QTest.keyClick(m.view, Qt.Key.Key_L)
    assert not m.legend.isVisible()


def test_a_filter_draws_only_its_points_and_the_view_fits_them(qtbot, shown):
    m, ids, xy, _ = shown
    corner = np.flatnonzero((xy[:, 0] < -0.5) & (xy[:, 1] < -0.5))
    m.set_filter(ids[corner])
    assert m.shown_count() == len(corner)
    assert sum(len(i.data) for i in m._class_items.values()) == len(corner)
    view = m.vb.viewRect()
    assert view.right() < 0 and view.top() < 0  # zoomed onto the corner the filter keeps
    assert m.id_at(at(m, *xy[-1])) == -1  # a point filtered out is not hovered
    m.set_filter(None)
    assert m.shown_count() == len(ids) and m.vb.viewRect().right() > 0.9


def test_results_the_filter_hides_are_still_drawn_inside_the_fitted_view(qtbot, shown):
    m, ids, xy, _ = shown
    corner = np.flatnonzero((xy[:, 0] < -0.5) & (xy[:, 1] < -0.5))
    far = int(np.argmax(xy.sum(1)))  # the top-right point, filtered out
    m.set_filter(ids[corner])
    assert not m.vb.viewRect().contains(*xy[far])
    m.highlight([ids[far]])
    assert m.vb.viewRect().contains(*xy[far])  # the view took the result in
    assert m.shown_count() == len(corner)  # and the filter still hides its class's points
    m.highlight([])
    assert not m.vb.viewRect().contains(*xy[far])
    m.set_filter([])  # a filter that hides every point: the results still fit
    m.highlight([ids[far]])
    assert m.vb.viewRect().width() < 0.5 and m.vb.viewRect().contains(*xy[far])
    m.set_filter(ids[corner])
    # a view the user moved stays where it is
    m.vb.scaleBy((0.5, 0.5))
    m.vb.sigRangeChangedManually.emit(m.vb.state["mouseEnabled"])  # as a wheel or drag does
    before = m.vb.viewRect()
    m.highlight([ids[far]])
    assert m.vb.viewRect() == before
