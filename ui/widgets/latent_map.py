"""The map of sound: every sample a point, coloured by class; hover, click, select, drag out.

Mouse and keys (the hint line under the map says the same):
    wheel: zoom · drag on empty space: pan · click a point: `clicked` (the window plays it)
    drag a point: drag the sample out (onto the blend panel, a DAW...); a selected point drags
        the whole selection
    Shift+drag: box selection · Ctrl+drag or Alt+drag: lasso · Esc: clear the selection and
        the highlighted results (the map takes Esc before the window's shortcuts while it has
        something to clear and has the keyboard focus)
    double-click empty space or Home: reset the view · right-click empty space: the map's menu
        (reset view, clear, show every class, hide the legend) · L: hide/show the legend
    right-click a point: `context_requested` · click a legend entry (its dot or its name):
        hide/show that class; drag the legend to move it

Dragging out needs SampleRefs: the widget asks `ref_for_id(id)` (a callable given to the
constructor or set later) at drag time, so a 100k-point map never builds 100k refs up front.

Speed at 100k points: one ScatterPlotItem per class with a uniform style, so pyqtgraph blits
one pre-rendered symbol per class; animation frames move the points in place instead of
rebuilding the items; hover looks up a cKDTree at most 60 times a second. The tree is built on a
worker (on `set_points`, at the end of an animation and when a class is hidden; 100k points take
tens of milliseconds), and until it arrives hover shows nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import pyqtgraph as pg
from PySide6.QtCore import (
    QEasingCurve,
    QElapsedTimer,
    QEvent,
    QMimeData,
    QObject,
    QPoint,
    QPointF,
    QRectF,
    Qt,
    QTimer,
    QVariantAnimation,
    Signal,
)
from PySide6.QtGui import QColor, QDrag, QKeyEvent, QMouseEvent, QPainterPath
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QLabel,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from ui.dnd import SampleRef, make_mime
from ui.workers import Pool, TaskGroup

# Okabe-Ito (without black) then Paul Tol's "light"/"muted" colours: distinguishable with the
# common colour-vision deficiencies and bright enough on the dark background. The first nine
# (the built-in model's classes, in order: clap ... tom, tonal) are kept far apart: its two
# biggest classes, fx and tonal, were once two greens. Classes past the end reuse colours; the
# legend keeps them apart.
PALETTE = (
    "#56B4E9",  # sky blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#CC79A7",  # reddish purple
    "#D55E00",  # vermillion
    "#4169E1",  # royal blue (Okabe-Ito's #0072B2 is too dark here and too near sky blue)
    "#FFAABB",  # pink
    "#B59CFF",  # lavender
    "#44BB99",  # mint
    "#BBCC33",  # pear
    "#AA4499",  # purple
    "#DDCC77",  # sand
    "#99DDFF",  # pale cyan
    "#EE8866",  # salmon
)
NO_CLASS_COLOUR = "#8a8a8a"
BACKGROUND = "#15171c"  # the map paints its own dark ground in light and dark themes alike
_HINTS = (
    "Click: play",
    "Drag a point out",
    "Shift+drag: box select",
    "Ctrl/Alt+drag: lasso",
    "Esc: clear",
    "Wheel: zoom",
    "Drag: pan",
    "Double-click or Home: reset view",
    "Click the legend to hide or show a class",
)
HINT = " · ".join(h.replace(" ", "\u00a0") for h in _HINTS)  # wraps between hints only
HOVER_INTERVAL_MS = 16  # at most ~60 hover lookups a second
SELECTION_COLOUR = "#ffc640"  # amber rings: a selection is not a search result (white, filled)


def class_colour(cls: int) -> QColor:
    """The colour of class index `cls` (-1: no class, grey)."""
    return QColor(NO_CLASS_COLOUR if cls < 0 else PALETTE[cls % len(PALETTE)])


def point_size(n: int) -> int:
    """Symbol size in pixels: smaller as the map gets denser."""
    return 8 if n <= 2_000 else 6 if n <= 20_000 else 4


class LatentMap(QWidget):
    """A 2-D scatter map of samples.

    Signals:
        hovered(id): the point under the mouse changed (-1: none).
        clicked(id): a point was clicked with the left button.
        selection_changed(list[int]): ids chosen by box or lasso selection (or [] on Esc).
        highlight_cleared(): Esc cleared the highlighted points (the similar results).
        context_requested(id, QPoint): right-click on a point, at this global position.

    Args:
        ref_for_id: maps a point id to the SampleRef a drag carries (None: not draggable).
        pool: where the hover tree is built (tests pass a synchronous pool).
    """

    hovered = Signal("qlonglong")
    clicked = Signal("qlonglong")
    selection_changed = Signal(list)
    highlight_cleared = Signal()
    context_requested = Signal("qlonglong", QPoint)

    def __init__(
        self,
        parent: QWidget | None = None,
        ref_for_id: Callable[[int], SampleRef | None] | None = None,
        pool: Pool | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("latentMap")
        self.ref_for_id = ref_for_id
        self.tasks = TaskGroup(self, pool)

        self.view = pg.GraphicsView(background=BACKGROUND)
        self.view.setObjectName("latentMapView")
        # Not aspect-locked: a projection's axes carry no units, and filling the view shows more.
        self.vb = pg.ViewBox(lockAspect=False, enableMenu=False)
        self.vb.disableAutoRange()
        self.view.setCentralItem(self.vb)
        self.legend = pg.LegendItem(
            offset=(-8, 8),
            brush=pg.mkBrush(10, 11, 14, 200),
            pen=pg.mkPen(255, 255, 255, 50),
            labelTextColor="#e8e8e8",
            labelTextSize="9pt",
            verSpacing=-4,
            sampleType=_Swatch,
        )
        self.legend.setParentItem(self.vb)
        self.legend.setZValue(50)

        white = pg.mkPen("#ffffff", width=1.5)
        amber = pg.mkPen(SELECTION_COLOUR, width=2)
        self._selection_item = pg.ScatterPlotItem(pxMode=True, pen=amber, brush=None, size=10)
        self._selection_item.setZValue(20)
        self._highlight_item = pg.ScatterPlotItem(pxMode=True, pen=white, size=12)
        self._highlight_item.setZValue(30)
        self._hover_item = pg.ScatterPlotItem(pxMode=True, pen=white, brush=None, size=14)
        self._hover_item.setZValue(40)
        self.vb.addItem(self._hover_item, ignoreBounds=True)
        self._label_item = pg.TextItem(color="#f2f2f2", fill=pg.mkBrush(0, 0, 0, 210))
        self._label_item.setZValue(60)
        self._label_item.hide()
        self._band = QGraphicsRectItem()
        self._band.setPen(pg.mkPen("#ffffff", width=1, style=Qt.PenStyle.DashLine))
        self._band.setBrush(pg.mkBrush(255, 255, 255, 30))
        self._lasso = QGraphicsPathItem()
        self._lasso.setPen(pg.mkPen("#ffffff", width=1.5))
        self._lasso.setBrush(pg.mkBrush(255, 255, 255, 30))
        for item in (self._selection_item, self._highlight_item):
            self.vb.addItem(item)
        self._band.setZValue(70)
        self._lasso.setZValue(70)
        for item in (self._label_item, self._band, self._lasso):
            item.hide()
            self.vb.addItem(item, ignoreBounds=True)

        self.hint = QLabel(HINT)
        self.hint.setObjectName("latentMapHint")
        self.hint.setWordWrap(True)
        self.hint.setContentsMargins(6, 0, 6, 2)
        font = self.hint.font()
        font.setPointSizeF(font.pointSizeF() * 0.85)
        self.hint.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.hint)
        # What an empty map says (opening a library, indexing it, an empty folder), over it.
        self.note = QLabel(self.view)
        self.note.setObjectName("latentMapNote")
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b8b8b8; background: transparent;")
        self.note.hide()

        self._ids = np.zeros(0, np.int64)
        self._xy = np.zeros((0, 2), np.float32)
        self._classes = np.zeros(0, np.int64)
        self._labels: list[str] = []
        self._class_names: list[str] = []
        self._sorted_ids = self._ids
        self._order = self._ids
        self._groups: dict[int, np.ndarray] = {}  # class -> point indices
        self._drawn: dict[int, np.ndarray] = {}  # class -> the indices drawn (the filter's)
        self._filter_ids: np.ndarray | None = None  # the ids the filters show (None: all)
        self._filter = np.ones(0, bool)  # per point: shown by the filters
        self._class_items: dict[int, pg.ScatterPlotItem] = {}
        self._size = point_size(0)
        self._tree = None
        self._tree_idx = np.zeros(0, np.int64)
        self._hover = -1  # index of the hovered point
        self._selected = np.zeros(0, np.int64)  # indices
        self._highlighted = np.zeros(0, np.int64)
        self._press: dict | None = None

        self._anim = QVariantAnimation(self)
        self._anim.setStartValue(0.0)
        self._anim.setEndValue(1.0)
        self._anim.setEasingCurve(QEasingCurve.Type.InOutCubic)
        self._anim.valueChanged.connect(self._animation_step)
        self._anim.finished.connect(self._animation_done)
        self._anim_from = self._xy
        self._anim_to = self._xy

        self._hover_pos: QPoint | None = None
        self._hover_clock = QElapsedTimer()
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.timeout.connect(self._hover_now)

        self.view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Esc, Home and L reach the map
        self.menu: QMenu | None = None  # the empty-space menu, while shown
        self._legend_wanted = True  # the user has not hidden it (L)
        self._empty_right: QPointF | None = None  # a right press on empty space
        self._viewport = self.view.viewport()  # kept: `is` below needs the same wrapper
        self._viewport.installEventFilter(self)
        self.view.installEventFilter(self)
        self.vb.setRange(QRectF(-1, -1, 2, 2), padding=0.05)
        # The view follows the widget's size (fit beside the legend) until the user pans/zooms.
        self._auto_fit = True
        self.vb.sigResized.connect(self._view_resized)
        self.vb.sigRangeChangedManually.connect(self._user_moved_view)

    # -- data ----------------------------------------------------------------------------------

    def set_points(
        self,
        ids: np.ndarray,
        xy: np.ndarray,
        classes: np.ndarray,
        class_names: Sequence[str],
        labels: Sequence[str],
    ) -> None:
        """Show these points (replaces everything; clears selection and highlights).

        Args:
            ids: Int64 [n], unique: what the signals report.
            xy: Float32 [n, 2] positions.
            classes: Int [n], an index into `class_names`, or -1 for none.
            class_names: the legend's names.
            labels: hover text of each point (file names).
        """
        ids = np.asarray(ids, np.int64).ravel()
        n = len(ids)
        xy = np.asarray(xy, np.float32).reshape(-1, 2) if n else np.zeros((0, 2), np.float32)
        classes = np.asarray(classes, np.int64).ravel()
        if len(xy) != n or len(classes) != n or len(labels) != n:
            raise ValueError(
                f"set_points: {n} ids, {len(xy)} positions, {len(classes)} classes, "
                f"{len(labels)} labels"
            )
        self._anim.stop()
        self._press = None  # a drag or selection in progress refers to the old points
        self._band.hide()
        self._lasso.hide()
        self._ids, self._xy, self._classes = ids, xy.copy(), classes
        self._labels, self._class_names = list(labels), list(class_names)
        self._order = np.argsort(ids, kind="stable")
        self._sorted_ids = ids[self._order]
        self._size = point_size(n)
        self._filter = self._filter_mask()
        self._group(classes)
        self._selected = self._highlighted = np.zeros(0, np.int64)
        self._redraw_marks()
        self._set_hover(-1)
        self._rebuild_tree()
        self.reset_view()

    def set_note(self, text: str) -> None:
        """Say `text` in the middle of the map ("" hides it)."""
        self.note.setText(text)
        self.note.setVisible(bool(text))
        self._place_note()

    def _place_note(self) -> None:
        self.note.setGeometry(self.view.rect().adjusted(24, 24, -24, -24))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_note()

    def set_filter(self, ids: Sequence[int] | np.ndarray | None) -> None:
        """Draw only these points (the library table's filters), or every point (None); kept
        across `set_points` until changed. Hidden points are neither hovered nor selected."""
        self._filter_ids = None if ids is None else np.asarray(ids, np.int64).ravel()
        self._filter = self._filter_mask()
        self._regroup()
        self._selected = self._selected[self._filter[self._selected]]
        self._redraw_marks()
        self._set_hover(-1)
        self._rebuild_tree()
        if self._auto_fit:
            self.reset_view()

    def shown_count(self) -> int:
        """How many points the filter lets through."""
        return int(self._filter.sum())

    def _filter_mask(self) -> np.ndarray:
        mask = np.ones(len(self._ids), bool)
        if self._filter_ids is not None:
            mask[:] = False
            mask[self._indices(self._filter_ids)] = True
        return mask

    def set_classes(self, classes: np.ndarray) -> None:
        """Recolour the points by new classes (Int [n], same order as the ids; the user set
        some), keeping the view, the selection and the highlights."""
        classes = np.asarray(classes, np.int64).ravel()
        if len(classes) != len(self._ids):
            raise ValueError(f"set_classes: {len(classes)} classes for {len(self._ids)} points")
        self._classes = classes
        self._regroup()
        self._redraw_marks()
        self._rebuild_tree()

    def _regroup(self) -> None:
        """Rebuild the class items (new classes or filter), keeping the classes hidden."""
        hidden = {c for c, item in self._class_items.items() if not item.isVisible()}
        self._group(self._classes)
        for c in hidden & set(self._class_items):
            self._class_items[c].setVisible(False)

    def _group(self, classes: np.ndarray) -> None:
        """One scatter item (and legend entry) per class."""
        xy, n = self._xy, len(classes)
        for item in self._class_items.values():
            self.vb.removeItem(item)
        self.legend.clear()
        self._class_items, self._groups, self._drawn = {}, {}, {}
        order = np.argsort(classes, kind="stable")
        present, starts = np.unique(classes[order], return_index=True)
        groups = np.split(order, starts[1:]) if n else []  # np.split of nothing gives [[]]
        for cls, idx in zip(present.tolist(), groups, strict=True):
            item = pg.ScatterPlotItem(
                pxMode=True, size=self._size, pen=None, brush=pg.mkBrush(self._colour(cls))
            )
            drawn = idx[self._filter[idx]] if len(self._filter) == n else idx
            _fill_points(item, xy[drawn])
            item.setZValue(0 if cls < 0 else 1)
            item.visibleChanged.connect(self._class_visibility_changed)
            self.vb.addItem(item)
            self._class_items[cls], self._groups[cls], self._drawn[cls] = item, idx, drawn
        # Named classes first in their model order, then the unclassified.
        for cls in sorted(self._class_items, key=lambda c: (c < 0, c)):
            drawn, total = len(self._drawn[cls]), len(self._groups[cls])
            count = f"{drawn} of {total}" if drawn != total else f"{total}"
            self.legend.addItem(self._class_items[cls], f"{self.class_name(cls)} ({count})")
        for sample, label in self.legend.items:  # a class's name toggles it as its dot does
            label.mouseClickEvent = sample.mouseClickEvent
        self.legend.setColumnCount(2 if len(self._class_items) > 12 else 1)
        self.legend.setVisible(bool(self._class_items) and self._legend_wanted)

    def animate_to(self, xy: np.ndarray, duration_ms: int = 700) -> None:
        """Move every point smoothly (ease in-out) to `xy` (Float32 [n, 2], same order as ids).

        A call during an animation starts from where the points are now.
        """
        target = np.asarray(xy, np.float32).reshape(-1, 2).copy()
        if len(target) != len(self._ids):
            raise ValueError(f"animate_to: {len(target)} positions for {len(self._ids)} points")
        self._anim.stop()
        if duration_ms <= 0 or not len(target):
            self._anim_to = target
            self._animation_done()
            return
        self._anim_from, self._anim_to = self._xy.copy(), target
        self._tree = None  # no hover while points move
        self.tasks.drop("tree")  # one on its way is for where the points were
        self._set_hover(-1)
        self._anim.setDuration(int(duration_ms))
        self._anim.start()

    def highlight(self, ids: Sequence[int] | np.ndarray) -> None:
        """Draw these points larger with an outline, above the others; `highlight([])` clears.
        They are drawn whatever the filter, and a view that fits itself takes them in."""
        self._highlighted = self._indices(ids)
        self._redraw_marks()
        if self._auto_fit:
            self._fit()  # (the legend stays where the user put it)

    def select_ids(self, ids: Sequence[int] | np.ndarray) -> None:
        """Show these points as selected (a ring). Does not emit `selection_changed`."""
        self._selected = self._indices(ids)
        self._redraw_marks()

    def reset_view(self) -> None:
        """Zoom to show every point the filters show and every result, beside the legend
        rather than under it.

        The view then keeps fitting as the widget is resized, until the user pans or zooms.
        """
        self._auto_fit = True
        if self.legend.items:  # back in its corner, if the user dragged it away
            self.legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-8, 8))
        self._fit()

    def _fit(self) -> None:
        xy = self._xy
        if len(self._filter) == len(xy):
            shown = self._filter.copy()
            shown[self._highlighted] = True  # results the filters hide are drawn all the same
            if shown.any():
                xy = xy[shown]
        if not len(xy):
            return
        lo, hi = xy.min(0).astype(float), xy.max(0).astype(float)
        span = np.maximum(hi - lo, 1e-3)
        lo, span = lo - 0.04 * span, span * 1.08
        width, height = self.vb.width(), self.vb.height()
        legend = self.legend.isVisible() and self.legend.items
        beside = self.legend.width() + 16 if legend else 0.0
        if width < 50 or height < 50 or width - beside < 0.5 * width:
            self.vb.setRange(QRectF(lo[0], lo[1], span[0], span[1]), padding=0)
            return
        # The data fills the width left of the legend and the whole height.
        x_span = span[0] * width / (width - beside)
        self.vb.setRange(QRectF(lo[0], lo[1], x_span, span[1]), padding=0)

    def _view_resized(self) -> None:
        if self._auto_fit:
            self.reset_view()

    def _user_moved_view(self) -> None:
        self._auto_fit = False

    # -- queries -------------------------------------------------------------------------------

    @property
    def animating(self) -> bool:
        return self._anim.state() == QVariantAnimation.State.Running

    def positions(self) -> np.ndarray:
        """Where the points are drawn now, Float32 [n, 2] (a copy)."""
        return self._xy.copy()

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def selected_ids(self) -> list[int]:
        return self._ids[self._selected].tolist()

    def highlighted_ids(self) -> list[int]:
        return self._ids[self._highlighted].tolist()

    def class_name(self, cls: int) -> str:
        if cls < 0:
            return "unclassified"
        return self._class_names[cls] if cls < len(self._class_names) else f"class {cls}"

    def legend_entries(self) -> list[tuple[str, QColor]]:
        """(label, colour) of each legend row, top to bottom."""
        return [
            (label.text, sample.item.opts["brush"].color()) for sample, label in self.legend.items
        ]

    def id_at(self, pos: QPoint | QPointF) -> int:
        """The id of the (visible) point under this viewport position, or -1."""
        i = self._index_at(pos)
        return int(self._ids[i]) if i >= 0 else -1

    def view_pos(self, x: float, y: float) -> QPoint:
        """The viewport pixel where data coordinates (x, y) are drawn."""
        return self.view.mapFromScene(self.vb.mapViewToScene(QPointF(x, y)))

    def drag_mime(self, ids: Sequence[int]) -> QMimeData | None:
        """What dragging these points carries (None when `ref_for_id` gives nothing)."""
        if self.ref_for_id is None:
            return None
        refs = [r for r in (self.ref_for_id(int(i)) for i in ids) if r is not None]
        return make_mime(refs) if refs else None

    # -- events --------------------------------------------------------------------------------

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if obj is self.view and kind == QEvent.Type.ShortcutOverride:
            # The map's own keys win over the window's shortcuts (Esc stops playback there)
            # while the map has something to do with them.
            if self._wants_key(event.key()):  # type: ignore[attr-defined]
                event.accept()
                return True
            return False
        if obj is self.view and kind == QEvent.Type.KeyPress:
            return self._key(event)  # type: ignore[arg-type]
        if obj is not self._viewport:
            return False
        if kind == QEvent.Type.MouseMove:
            return self._mouse_move(event)  # type: ignore[arg-type]
        if kind == QEvent.Type.MouseButtonPress:
            return self._mouse_press(event)  # type: ignore[arg-type]
        if kind == QEvent.Type.MouseButtonRelease:
            return self._mouse_release(event)  # type: ignore[arg-type]
        if kind == QEvent.Type.MouseButtonDblClick:
            return self._double_click(event)  # type: ignore[arg-type]
        if kind == QEvent.Type.Leave:
            self._hover_timer.stop()
            self._set_hover(-1)
        return False

    def _wants_key(self, key: int) -> bool:
        if key == Qt.Key.Key_Escape:
            return bool(len(self._selected) or len(self._highlighted))
        return key in (Qt.Key.Key_Home, Qt.Key.Key_L)

    def _key(self, event: QKeyEvent) -> bool:
        key = event.key()
        if key == Qt.Key.Key_Escape and self._wants_key(key):
            self.clear_marks()
            return True
        if key == Qt.Key.Key_Home:
            self.reset_view()
            return True
        if key == Qt.Key.Key_L:
            self.set_legend_visible(not self.legend.isVisible())
            return True
        return False

    def clear_marks(self) -> None:
        """Clear the selection and the highlighted results (Esc), saying so."""
        if len(self._highlighted):
            self.highlight([])
            self.highlight_cleared.emit()
        if len(self._selected):
            self._select_and_emit(np.zeros(0, np.int64))

    def set_legend_visible(self, visible: bool) -> None:
        self._legend_wanted = visible
        self.legend.setVisible(visible and bool(self._class_items))
        if self._auto_fit:
            self.reset_view()

    def show_all_classes(self) -> None:
        for item in self._class_items.values():
            item.setVisible(True)

    def _double_click(self, event: QMouseEvent) -> bool:
        pos = event.position()
        if event.button() != Qt.MouseButton.LeftButton or self._over_legend(pos):
            return False
        if self._index_at(pos) >= 0:
            return True  # a point: its click already played it
        self.reset_view()
        return True

    def empty_space_menu(self) -> QMenu:
        """The menu of a right-click on empty space (made anew each time)."""
        menu = QMenu(self)
        menu.setObjectName("latentMapMenu")
        menu.addAction("Reset view\tHome", self.reset_view)
        clear = menu.addAction("Clear selection and results\tEsc", self.clear_marks)
        clear.setEnabled(bool(len(self._selected) or len(self._highlighted)))
        hidden = [i for i in self._class_items.values() if not i.isVisible()]
        menu.addAction("Show every class", self.show_all_classes).setEnabled(bool(hidden))
        shown = self.legend.isVisible()
        menu.addAction(("Hide" if shown else "Show") + " the legend\tL",
                       lambda: self.set_legend_visible(not shown))  # fmt: skip
        return menu

    def _mouse_press(self, event: QMouseEvent) -> bool:
        pos = event.position()
        self.view.setFocus(Qt.FocusReason.MouseFocusReason)
        self._empty_right = None
        if self._over_legend(pos):
            return False  # the legend toggles classes itself
        button, mods = event.button(), event.modifiers()
        left = button == Qt.MouseButton.LeftButton
        start = {"button": button, "start": pos, "dragged": False}
        if left and mods & Qt.KeyboardModifier.ShiftModifier:
            self._press = {**start, "mode": "box", "origin": self._to_data(pos)}
            self._band.setRect(QRectF(self._press["origin"], self._press["origin"]))
            self._band.show()
        elif left and mods & (
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
        ):
            self._press = {**start, "mode": "lasso", "path": [self._to_data(pos)], "last": pos}
            self._lasso.setPath(QPainterPath())
            self._lasso.show()
        else:
            i = self._index_at(pos)
            if i < 0 and button == Qt.MouseButton.RightButton:
                self._empty_right = pos  # a click opens the menu; a drag is pyqtgraph's zoom
            if i < 0 or button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
                return False  # empty space: pyqtgraph pans and zooms
            self._press = {**start, "mode": "point", "index": i}
            if button == Qt.MouseButton.RightButton:
                self.context_requested.emit(int(self._ids[i]), event.globalPosition().toPoint())
        self._hover_timer.stop()
        self._set_hover(-1)
        return True

    def _mouse_move(self, event: QMouseEvent) -> bool:
        press = self._press
        pos = event.position()
        if press is None:
            if event.buttons() == Qt.MouseButton.NoButton:
                self._schedule_hover(pos.toPoint())
            return False
        if press["mode"] == "box":
            self._band.setRect(QRectF(press["origin"], self._to_data(pos)).normalized())
        elif press["mode"] == "lasso":
            if (pos - press["last"]).manhattanLength() >= 2:  # a vertex every few pixels
                press["path"].append(self._to_data(pos))
                press["last"] = pos
                self._lasso.setPath(_polygon_path(press["path"]))
        elif press["button"] == Qt.MouseButton.LeftButton and not press["dragged"]:
            if (pos - press["start"]).manhattanLength() >= QApplication.startDragDistance():
                press["dragged"] = True
                self._drag_out(press["index"])
        return True

    def _mouse_release(self, event: QMouseEvent) -> bool:
        right, self._empty_right = self._empty_right, None
        if right is not None and event.button() == Qt.MouseButton.RightButton:
            if (event.position() - right).manhattanLength() < QApplication.startDragDistance():
                self.menu = self.empty_space_menu()
                self.menu.popup(event.globalPosition().toPoint())
                return True
        press = self._press
        if press is None or event.button() != press["button"]:
            return press is not None
        self._press = None
        pos = self._to_data(event.position())
        if press["mode"] == "box":
            self._band.hide()
            rect = QRectF(press["origin"], pos).normalized()
            self._select_and_emit(self._indices_in_rect(rect))
        elif press["mode"] == "lasso":
            self._lasso.hide()
            path = [*press["path"], pos]
            polygon = np.array([(p.x(), p.y()) for p in path], np.float64)
            self._select_and_emit(self._indices_in_polygon(polygon))
        elif press["button"] == Qt.MouseButton.LeftButton and not press["dragged"]:
            self.clicked.emit(int(self._ids[press["index"]]))
        return True

    def _drag_out(self, index: int) -> None:
        ids = self._ids[self._selected] if index in self._selected else self._ids[[index]]
        mime = self.drag_mime(ids.tolist())
        if mime is None:
            return
        self._press = None  # the drag's own event loop takes the release
        drag = QDrag(self.view)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)

    # -- hover ---------------------------------------------------------------------------------

    def _schedule_hover(self, pos: QPoint) -> None:
        self._hover_pos = pos
        if self._hover_timer.isActive():
            return
        wait = HOVER_INTERVAL_MS - (
            self._hover_clock.elapsed() if self._hover_clock.isValid() else HOVER_INTERVAL_MS
        )
        if wait <= 0:
            self._hover_now()
        else:
            self._hover_timer.start(int(wait))

    def _hover_now(self) -> None:
        self._hover_clock.restart()
        pos = self._hover_pos
        if pos is None:
            return
        over = -1 if self._over_legend(QPointF(pos)) else self._index_at(pos)
        self._set_hover(over)

    def _set_hover(self, index: int) -> None:
        if index == self._hover:
            return
        self._hover = index
        if index < 0:
            self._label_item.hide()
            self._hover_item.setData(x=[], y=[])
            self.hovered.emit(-1)
            return
        x, y = (float(v) for v in self._xy[index])
        self._hover_item.setData(x=[x], y=[y], size=self._size + 8)
        rect = self.vb.viewRect()
        # Keep the label inside the view: it grows away from the nearer edges.
        self._label_item.setAnchor((1.0 if x > rect.center().x() else 0.0,
                                    0.0 if y > rect.center().y() else 1.0))  # fmt: skip
        self._label_item.setText(self._labels[index])
        self._label_item.setPos(x, y)
        self._label_item.show()
        self.hovered.emit(int(self._ids[index]))

    @property
    def hovered_id(self) -> int:
        return int(self._ids[self._hover]) if self._hover >= 0 else -1

    # -- internals -----------------------------------------------------------------------------

    def _colour(self, cls: int) -> QColor:
        colour = class_colour(cls)
        colour.setAlpha(235)
        return colour

    def _to_data(self, pos: QPointF) -> QPointF:
        return self.vb.mapSceneToView(self.view.mapToScene(pos.toPoint()))

    def _over_legend(self, pos: QPointF) -> bool:
        if not self.legend.isVisible() or not self.legend.items:
            return False
        return self.legend.sceneBoundingRect().contains(self.view.mapToScene(pos.toPoint()))

    def _index_at(self, pos: QPoint | QPointF) -> int:
        if self._tree is None or not len(self._tree_idx):
            return -1
        p = self._to_data(QPointF(pos))
        px, py = self.vb.viewPixelSize()
        radius = (self._size / 2 + 3) * max(px, py)  # the symbol plus a little slack
        dist, k = self._tree.query((p.x(), p.y()), distance_upper_bound=radius)
        return int(self._tree_idx[k]) if np.isfinite(dist) else -1

    def _visible_mask(self) -> np.ndarray:
        mask = self._filter.copy() if len(self._filter) == len(self._ids) else np.ones(
            len(self._ids), bool)  # fmt: skip
        for cls, item in self._class_items.items():
            if not item.isVisible():
                mask[self._groups[cls]] = False
        return mask

    def _rebuild_tree(self) -> None:
        """Rebuild the hover tree of the visible points on a worker; until it is there (and
        while the points move), hover finds nothing."""
        self._tree, self._tree_idx = None, np.zeros(0, np.int64)
        idx = np.flatnonzero(self._visible_mask())
        if len(idx):
            self.tasks.run("tree", _hover_tree, self._xy[idx].copy(), on_result=lambda tree,
                           idx=idx: self._tree_built(tree, idx))  # fmt: skip
        else:
            self.tasks.drop("tree")

    def _tree_built(self, tree, idx: np.ndarray) -> None:
        self._tree, self._tree_idx = tree, idx

    def _class_visibility_changed(self) -> None:
        for sample, label in self.legend.items:
            label.setText(label.text, color="#e8e8e8" if sample.item.isVisible() else "#6a6a6a")
        self._rebuild_tree()
        self._set_hover(-1)

    def _indices(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Point indices of these ids (unknown ids are skipped, duplicates dropped)."""
        ids = np.asarray(ids, np.int64).ravel()
        if not len(ids) or not len(self._ids):
            return np.zeros(0, np.int64)
        at = np.clip(np.searchsorted(self._sorted_ids, ids), 0, len(self._ids) - 1)
        found = self._sorted_ids[at] == ids
        return np.unique(self._order[at[found]])

    def _indices_in_rect(self, rect: QRectF) -> np.ndarray:
        x, y = self._xy[:, 0], self._xy[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        return np.flatnonzero(inside & self._visible_mask())

    def _indices_in_polygon(self, polygon: np.ndarray) -> np.ndarray:
        if len(polygon) < 3:
            return np.zeros(0, np.int64)
        lo, hi = polygon.min(0), polygon.max(0)
        x, y = self._xy[:, 0], self._xy[:, 1]
        candidates = np.flatnonzero(
            (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & self._visible_mask()
        )
        inside = points_in_polygon(self._xy[candidates].astype(np.float64), polygon)
        return candidates[inside]

    def _select_and_emit(self, indices: np.ndarray) -> None:
        self._selected = np.asarray(indices, np.int64)
        self._redraw_marks()
        self.selection_changed.emit(self.selected_ids())

    def _redraw_marks(self) -> None:
        sel, hi = self._selected, self._highlighted
        self._selection_item.setData(
            x=self._xy[sel, 0], y=self._xy[sel, 1], size=self._size + 6, brush=None
        )
        brushes = [pg.mkBrush(self._colour(int(c))) for c in self._classes[hi]]
        self._highlight_item.setData(
            x=self._xy[hi, 0], y=self._xy[hi, 1], size=self._size + 6, brush=brushes
        )
        # With results on show, the rest of the map steps back so they stand out.
        for item in self._class_items.values():
            item.setOpacity(0.4 if len(hi) else 1.0)

    def _move(self, xy: np.ndarray) -> None:
        self._xy = xy
        for cls, idx in self._drawn.items():
            _move_points(self._class_items[cls], xy[idx])
        _move_points(self._selection_item, xy[self._selected])
        _move_points(self._highlight_item, xy[self._highlighted])

    def _animation_step(self, t: float) -> None:
        if self.animating:
            t = float(t)
            self._move((self._anim_from + (self._anim_to - self._anim_from) * t).astype(np.float32))
            if self._auto_fit:  # the view follows the points unless the user has moved it
                self.reset_view()

    def _animation_done(self) -> None:
        self._move(self._anim_to.copy())  # exactly the target, whatever the easing's rounding
        self._rebuild_tree()
        if self._auto_fit:
            self.reset_view()


def _hover_tree(points: np.ndarray):
    """A KD-tree of map positions (on a worker thread)."""
    from scipy.spatial import cKDTree  # scipy comes with umap-learn

    return cKDTree(points, balanced_tree=False, compact_nodes=False)


class _Swatch(pg.ItemSample):
    """A legend swatch: a filled circle of the class colour, hollow while the class is hidden."""

    def paint(self, p, *args) -> None:
        colour = QColor(self.item.opts["brush"].color())
        colour.setAlpha(255)
        p.setRenderHint(p.RenderHint.Antialiasing)
        if self.item.isVisible():
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
        else:
            p.setPen(pg.mkPen(colour, width=1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(QRectF(4, 4, 12, 12))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which points lie inside a closed polygon (even-odd rule), vectorised over points.

    Args:
        points: Float [n, 2].
        polygon: Float [m, 2] vertices; the last connects back to the first.

    Returns:
        Bool [n].
    """
    px, py = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    x0, y0 = polygon[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        for x1, y1 in polygon:
            crosses = (y1 > py) != (y0 > py)
            x_at = x1 + (py - y1) * (x0 - x1) / (y0 - y1)
            inside ^= crosses & (px < x_at)
            x0, y0 = x1, y1
    return inside


def _polygon_path(points: list[QPointF]) -> QPainterPath:
    path = QPainterPath(points[0])
    for p in points[1:]:
        path.lineTo(p)
    path.closeSubpath()
    return path


def _fill_points(item: pg.ScatterPlotItem, xy: np.ndarray) -> None:
    """Give a fresh item these points, all in its default style, without per-point Python work.

    setData() looks up every point's symbol in pyqtgraph's atlas in a Python loop (~0.3 s at
    100k points). All points of a class item share one style, so one point is set the ordinary
    way and its row (style and atlas slot included) is copied to the others.
    """
    if len(xy) < 2:
        item.setData(x=xy[:, 0], y=xy[:, 1])
        return
    item.setData(x=xy[:1, 0], y=xy[:1, 1])
    data = np.empty(len(xy), item.data.dtype)
    data[:] = item.data[0]
    item.data = data
    _move_points(item, xy)


def _move_points(item: pg.ScatterPlotItem, xy: np.ndarray) -> None:
    """Move an item's points without rebuilding it (same count and style).

    setData() re-derives every point's style in Python (~0.2 s at 100k points); an animation
    frame only changes positions, so it writes them into the item's point table.
    """
    data = item.data
    if len(data) != len(xy):
        item.setData(x=xy[:, 0], y=xy[:, 1])
        return
    data["x"] = xy[:, 0]
    data["y"] = xy[:, 1]
    item.prepareGeometryChange()
    item.bounds = [None, None]
    item.informViewBoundsChanged()
    item.invalidate()
