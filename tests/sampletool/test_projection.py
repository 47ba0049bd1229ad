"""2-D layouts for the map: clusters stay apart, outputs are in range, UMAP lines up with PCA."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sampletool.progress import Cancelled
from sampletool.projection import pca_2d, procrustes_align, umap_2d


def blobs(per: int = 100, d: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian clusters in d dimensions, with their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (3, d))
    x = np.concatenate([c + rng.normal(0, 1, (per, d)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), per)


def nearest_centroid_accuracy(xy: np.ndarray, labels: np.ndarray) -> float:
    centroids = np.stack([xy[labels == k].mean(0) for k in range(labels.max() + 1)])
    guess = np.argmin(((xy[:, None] - centroids[None]) ** 2).sum(-1), 1)
    return float((guess == labels).mean())


def in_unit_range(xy: np.ndarray) -> bool:
    return bool(np.isfinite(xy).all() and np.abs(xy).max() <= 1.0 + 1e-6)


@pytest.fixture(scope="module")
def data():
    return blobs()


@pytest.fixture(scope="module")
def umap_layouts(data):
    x, _ = data
    return umap_2d(x, seed=0), umap_2d(x, seed=0), umap_2d(x, seed=0, align=False)


def test_pca_keeps_clusters_apart_and_fills_the_unit_square(data):
    x, labels = data
    xy = pca_2d(x)
    assert xy.shape == (300, 2) and xy.dtype == np.float32
    assert nearest_centroid_accuracy(xy, labels) == 1.0
    assert in_unit_range(xy) and np.isclose(np.abs(xy).max(), 1.0)
    assert np.allclose(xy.mean(0), 0, atol=1e-5)  # centred on the mean


def test_pca_is_deterministic_and_sign_stable(data):
    x, _ = data
    # Shifting or reordering the data flips nothing: signs follow the loadings, not chance.
    assert np.array_equal(pca_2d(x), pca_2d(x.copy()))
    assert np.allclose(pca_2d(x + 100.0), pca_2d(x), atol=1e-4)
    shuffled = np.random.default_rng(1).permutation(len(x))
    assert np.allclose(pca_2d(x[shuffled]), pca_2d(x)[shuffled], atol=1e-5)


def test_pca_axes_are_the_directions_of_largest_spread():
    rng = np.random.default_rng(2)
    x = np.zeros((500, 5), np.float32)
    x[:, 3] = rng.normal(0, 10, 500)  # the widest axis
    x[:, 1] = rng.normal(0, 3, 500)
    x[:, 0] = rng.normal(0, 0.1, 500)
    xy = pca_2d(x)
    assert abs(np.corrcoef(xy[:, 0], x[:, 3])[0, 1]) > 0.999
    assert abs(np.corrcoef(xy[:, 1], x[:, 1])[0, 1]) > 0.99


@pytest.mark.parametrize(
    "vectors",
    [
        np.zeros((0, 8), np.float32),
        np.ones((1, 8), np.float32),
        np.full((50, 8), 3.7, np.float32),  # identical vectors
        np.array([[0, 0, 0], [1, 2, 3]], np.float32),
        np.outer(np.arange(20), np.ones(4)).astype(np.float32),  # rank 1: one axis only
        np.array([[np.nan, 1.0], [2.0, np.inf], [3.0, 4.0]], np.float32),
    ],
    ids=["empty", "one", "identical", "two", "collinear", "non-finite"],
)
def test_pca_edge_cases_are_finite_and_in_range(vectors):
    xy = pca_2d(vectors)
    assert xy.shape == (len(vectors), 2) and xy.dtype == np.float32
    assert in_unit_range(xy) if len(xy) else True


def test_pca_edge_case_values():
    assert not pca_2d(np.full((50, 8), 3.7, np.float32)).any()  # no noise blown up to +-1
    two = pca_2d(np.array([[0, 0, 0], [1, 2, 3]], np.float32))
    assert np.allclose(np.abs(two[:, 0]), 1) and not two[:, 1].any()
    line = pca_2d(np.outer(np.arange(20), np.ones(4)).astype(np.float32))
    assert not line[:, 1].any() and np.isclose(np.abs(line[:, 0]).max(), 1)


def test_pca_rejects_a_vector_that_is_not_a_matrix():
    with pytest.raises(ValueError, match="shape"):
        pca_2d(np.zeros(5))


def test_umap_keeps_clusters_apart_in_range_and_is_deterministic(data, umap_layouts):
    _, labels = data
    aligned, again, _ = umap_layouts
    assert aligned.shape == (300, 2) and aligned.dtype == np.float32
    assert nearest_centroid_accuracy(aligned, labels) == 1.0
    assert in_unit_range(aligned) and np.isclose(np.abs(aligned).max(), 1.0)
    assert np.array_equal(aligned, again)


def test_umap_alignment_moves_points_less_than_unaligned(data, umap_layouts):
    x, _ = data
    aligned, _, raw = umap_layouts
    pca = pca_2d(x)
    raw = raw - raw.mean(0)
    raw = raw / np.abs(raw).max()  # compare like with like: centred and in [-1, 1]
    moved_aligned = np.linalg.norm(aligned - pca, axis=1).mean()
    moved_raw = np.linalg.norm(raw - pca, axis=1).mean()
    assert moved_aligned < moved_raw
    # The aligned layout is the raw one rotated/reflected: pairwise distances are kept.
    d_raw = np.linalg.norm(raw[:50, None] - raw[None, :50], axis=-1)
    d_aligned = np.linalg.norm(aligned[:50, None] - aligned[None, :50], axis=-1)
    ratio = d_aligned[d_raw > 0.05] / d_raw[d_raw > 0.05]
    assert np.allclose(ratio, ratio.mean(), rtol=1e-3)


def test_procrustes_undoes_a_rotation_and_a_reflection():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, (40, 2))
    ref -= ref.mean(0)
    a = np.deg2rad(73)
    turn = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    for transform in (turn, turn @ np.diag([1, -1])):
        moved = ref @ transform + 5.0
        assert np.allclose(procrustes_align(moved, ref), ref, atol=1e-9)
    with pytest.raises(ValueError):
        procrustes_align(ref, ref[:10])


def test_umap_falls_back_to_pca_for_few_points():
    x = np.random.default_rng(4).normal(0, 1, (9, 16)).astype(np.float32)
    assert np.array_equal(umap_2d(x), pca_2d(x))
    same = np.ones((30, 16), np.float32)
    assert not umap_2d(same).any()


def test_umap_reports_progress_and_can_be_cancelled(data):
    x, _ = data
    seen = []
    umap_2d(x[:40], progress=lambda done, total, msg: seen.append((done, total)))
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        umap_2d(x, cancel=cancel)

    def cancel_during_fit(done, total, msg):
        if done == 1:  # just before the fit: the next check (after it) must stop
            cancel.set()

    cancel.clear()
    with pytest.raises(Cancelled):
        umap_2d(x[:40], progress=cancel_during_fit, cancel=cancel)


def test_umap_in_a_child_process_matches_and_cancels():
    import threading

    from sampletool.projection import umap_2d, umap_2d_isolated

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(c, 0.3, (30, 8)) for c in (0.0, 5.0)]).astype(np.float32)
    np.testing.assert_allclose(umap_2d_isolated(x, seed=0), umap_2d(x, seed=0), atol=1e-5)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        umap_2d_isolated(x, seed=0, cancel=cancel)
