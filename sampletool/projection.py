"""2-D layouts of latent vectors for the map of sound: a quick PCA, then a UMAP aligned to it.

The map appears at once with `pca_2d` (milliseconds even at 100k points); `umap_2d` runs in the
background and its result is rotated/reflected onto the PCA picture, so the animated change from
one to the other moves the points as little as possible. Both layouts are centred on the mean
and scaled uniformly (aspect kept) into [-1, 1].

    xy = pca_2d(vectors)                              # float32 [n, 2], shown immediately
    xy = umap_2d(vectors, progress=..., cancel=...)   # later, on a worker thread
"""

from __future__ import annotations

import threading

import numpy as np

from sampletool.progress import Progress, check_cancel


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components of `vectors`, scaled into [-1, 1].

    Signs are deterministic (each component's largest loading is positive), so the same vectors
    always give the same picture. Fewer than two points, identical vectors or a rank-1 set give
    zeros on the missing axes; non-finite inputs are treated as 0, so the output has no NaN.

    Args:
        vectors: Float array of shape [n, d].

    Returns:
        Float32 array of shape [n, 2], centred on the mean, max |coordinate| = 1 (or all 0).
    """
    x = _as_matrix(vectors)
    n, d = x.shape
    out = np.zeros((n, 2), np.float64)
    if n < 2 or d == 0:
        return out.astype(np.float32)
    scale = float(np.abs(x).max())
    x = x - x.mean(0)
    # SVD of the [d, d] scatter matrix: the same components as the SVD of x, at a cost that does
    # not grow with n beyond one matrix product (100k x 64 takes milliseconds).
    if n > d:
        _, s2, vt = np.linalg.svd(x.T @ x)
        s = np.sqrt(np.maximum(s2, 0.0))
    else:
        _, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(2, len(s))
    # Spread below float32 round-off of the data's magnitude is noise (identical vectors leave
    # ~1e-16 after centring): leave that axis at 0 rather than blow the noise up to [-1, 1].
    tol = 1e-6 * np.sqrt(n) * scale
    for i in range(k):
        if s[i] <= tol:
            break  # no spread along this axis: leave it at 0 rather than amplify round-off
        v = vt[i]
        v = v if v[np.argmax(np.abs(v))] > 0 else -v
        out[:, i] = x @ v
    return _scale_unit(out)


def umap_2d(
    vectors: np.ndarray,
    seed: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    align: bool = True,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """A UMAP layout of `vectors`, scaled into [-1, 1] and aligned to `pca_2d(vectors)`.

    Fewer than 10 points (or points that are all identical) give the PCA layout itself: UMAP's
    neighbour graph means nothing there.

    With a `seed` the layout is reproducible (the same library gives the same map on every
    launch, and tests can compare runs); umap-learn then runs its optimiser single-threaded, so
    we ask for `n_jobs=1` explicitly. The map is computed in the background while the PCA
    picture is already usable, and the GUI machine has other work to do, so determinism is
    worth more than the speed-up. `seed=None` lets umap-learn use every core, non-reproducibly.

    Cancel is checked before and after each expensive step (import, fit, alignment); the fit
    itself cannot be interrupted.

    Args:
        vectors: Float array of shape [n, d].
        seed: random state, or None for a parallel, non-deterministic run.
        n_neighbors: UMAP's neighbourhood size (clipped to n - 1).
        min_dist: UMAP's minimum distance between embedded points.
        align: rotate/reflect the result onto the PCA layout (orthogonal Procrustes).
        progress: called as progress(done, total, message) between steps.
        cancel: set it to stop; raises Cancelled at the next check.

    Returns:
        Float32 array of shape [n, 2], centred, max |coordinate| = 1.

    Raises:
        Cancelled: `cancel` was set.
    """
    x = _as_matrix(vectors)
    n = len(x)
    steps = 3

    def step(done: int, message: str) -> None:
        check_cancel(cancel, "map layout cancelled")
        if progress is not None:
            progress(done, steps, message)

    step(0, "Preparing the map")
    reference = pca_2d(x)
    if n < 10 or not reference.any():  # too few points, or all identical: nothing to lay out
        step(steps, "Map ready")
        return reference

    import umap  # slow to import (numba): only here, on the worker thread

    step(1, "Computing the map layout")
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1 if seed is not None else -1,
        low_memory=True,
    )
    embedded = np.asarray(reducer.fit_transform(x), np.float64)
    embedded = np.nan_to_num(embedded, nan=0.0, posinf=0.0, neginf=0.0)
    step(2, "Aligning the map")
    embedded -= embedded.mean(0)
    if align:
        embedded = procrustes_align(embedded, reference)
    xy = _scale_unit(embedded)
    step(steps, "Map ready")
    return xy


def procrustes_align(xy: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate/reflect `xy` (about its mean) to best match `reference` (orthogonal Procrustes).

    Only an orthogonal transform is applied, no scaling or shear, so the layout's shape is kept.

    Args:
        xy: Float array of shape [n, 2].
        reference: Float array of shape [n, 2], the same points in another layout.

    Returns:
        Float64 array of shape [n, 2]: `xy` centred on its mean, then rotated/reflected.
    """
    a = np.asarray(xy, np.float64)
    b = np.asarray(reference, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"layouts differ in shape: {a.shape} and {b.shape}")
    a = a - a.mean(0) if len(a) else a
    b = b - b.mean(0) if len(b) else b
    u, _, vt = np.linalg.svd(a.T @ b)
    return a @ (u @ vt)


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected vectors of shape [n, d], got {x.shape}")
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _scale_unit(xy: np.ndarray) -> np.ndarray:
    peak = float(np.abs(xy).max()) if xy.size else 0.0
    if peak > 0:
        xy = xy / peak
    return xy.astype(np.float32)


def _umap_child(conn, vectors: np.ndarray, seed: int | None) -> None:
    try:
        conn.send(("ok", umap_2d(vectors, seed=seed)))
    except BaseException as e:  # sent back to the parent as a message
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def umap_2d_isolated(
    vectors: np.ndarray,
    seed: int | None = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    poll_seconds: float = 0.1,
) -> np.ndarray:
    """`umap_2d` in a child process, so an app's own threads never wait for it.

    UMAP compiles its kernels with numba on first use, which holds Python's global lock for
    hundreds of milliseconds at a time; in a thread of the GUI's process that froze the window.
    In a child process nothing of it reaches the caller, and cancel really stops it (the child
    is terminated).

    Raises:
        Cancelled: `cancel` was set.
        RuntimeError: the child failed (its message) or died.
    """
    import multiprocessing as mp

    x = _as_matrix(vectors)
    if len(x) < 10:
        return umap_2d(x, seed=seed)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_umap_child, args=(child, x, seed), daemon=True)
    proc.start()
    child.close()
    if progress is not None:
        progress(1, 3, "Computing the map layout")
    try:
        while True:
            check_cancel(cancel, "map layout cancelled")
            if parent.poll(poll_seconds):
                try:
                    status, value = parent.recv()
                except EOFError:
                    raise RuntimeError("the map layout process ended unexpectedly") from None
                if status == "error":
                    raise RuntimeError(value)
                if progress is not None:
                    progress(3, 3, "Map ready")
                return value
            if not proc.is_alive() and not parent.poll():
                raise RuntimeError(f"the map layout process died (exit code {proc.exitcode})")
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(5)
        parent.close()
