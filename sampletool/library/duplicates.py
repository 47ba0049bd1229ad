"""Duplicates in a library: byte-identical files, and entries whose vectors nearly coincide."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from sampletool.library.catalogue import Catalogue
from sampletool.library.index import ModelIndex


@dataclass
class Duplicates:
    """Exact duplicates (same bytes) and near-duplicates (vectors closer than `threshold`)."""

    exact: list[list[str]]
    near: list[list[dict]]  # {"path", "onset"}
    threshold: float


def full_hash(path: str | os.PathLike[str]) -> str:
    """A hash of the whole file (exact duplicates are confirmed with it)."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def find_duplicates(
    catalogue: Catalogue, index: ModelIndex, threshold: float | None = None
) -> Duplicates:
    """Exact duplicates (byte-identical files) and near-duplicate groups of one model's entries.

    Near-duplicates are entries whose vectors lie within `threshold` of each other (default:
    a quarter of the median distance between an entry and its nearest neighbour, so the
    default adapts to the model's scale); groups are the connected pairs.
    """
    cat = catalogue
    groups: dict[tuple[str, int], list[str]] = {}
    for row in cat.files().values():
        if row.error is None and row.hash:
            groups.setdefault((row.hash, row.size), []).append(row.path)
    exact: list[list[str]] = []
    for paths in groups.values():
        if len(paths) < 2:
            continue
        by_full: dict[str, list[str]] = {}
        for rel in paths:
            try:
                by_full.setdefault(full_hash(cat.abspath(rel)), []).append(rel)
            except OSError:
                continue
        exact += [sorted(str(cat.abspath(r)) for r in g) for g in by_full.values() if len(g) > 1]
    exact.sort()
    exact_of = {p: i for i, g in enumerate(exact) for p in g}

    ids, vecs = cat.vectors(index.model_id)
    near: list[list[dict]] = []
    if len(ids) < 2:
        return Duplicates(exact, near, threshold or 0.0)
    nn_ids, nn_d = index.query(vecs, min(11, len(ids)))
    info = cat.segment_info(ids)
    if threshold is None:
        first = [d[1] if len(d) > 1 and n[0] == i else d[0]
                 for i, n, d in zip(ids, nn_ids, nn_d, strict=True)]  # fmt: skip
        positive = np.asarray([x for x in first if x > 0])
        threshold = 0.25 * float(np.median(positive)) if len(positive) else 0.0
    parent = {int(i): int(i) for i in ids}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, row_ids, row_d in zip(ids.tolist(), nn_ids.tolist(), nn_d.tolist(), strict=True):
        for j, d in zip(row_ids, row_d, strict=True):
            if j == i or d > threshold or j not in parent:
                continue
            a, b = info.get(i), info.get(j)
            if not a or not b or a[0] == b[0]:
                continue  # repeated hits inside one loop are not duplicates
            if a[0] in exact_of and exact_of.get(a[0]) == exact_of.get(b[0]):
                continue  # already reported as exact duplicates
            parent[find(i)] = find(j)
    clusters: dict[int, list[int]] = {}
    for i in parent:
        clusters.setdefault(find(i), []).append(i)
    for members in clusters.values():
        if len(members) > 1:
            entries = sorted(info[m] for m in members if m in info)
            near.append([{"path": p, "onset": o} for p, o in entries])
    near.sort(key=lambda g: g[0]["path"])
    return Duplicates(exact, near, float(threshold))
