"""Report images written during training (matplotlib, off-screen Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sampletool.fileio import atomic_write


def confusion_png(path: Path, matrix: np.ndarray, class_names: list[str], step: int) -> None:
    """A confusion matrix (rows: true class, columns: predicted), row-normalised colours and
    raw counts in the cells, written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    k = len(class_names)
    rows = matrix.sum(1, keepdims=True)
    norm = matrix / np.maximum(rows, 1)
    size = 2.5 + 0.55 * k
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)  # fmt: skip
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"validation at step {step}: accuracy {acc:.3f}, n={int(matrix.sum())}")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=100))
