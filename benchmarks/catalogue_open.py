"""Opening a library's catalogue: what the structure check (`PRAGMA quick_check`) adds.

    .venv/bin/python benchmarks/catalogue_open.py [--files 20000] [--repeat 9] [--json]

A catalogue of --files one-entry files is written straight through `Catalogue` (no audio, no
model): rows as a scan writes them, with readings of the built-in model's sizes (a 64-d search
vector, 9 class probabilities, a 64-value decoder latent), and its vector index beside it.
Then, each --repeat times with the file in the page cache (the usual case: the app or the CLI
reopening a library), the median of:

- open, no check: `Catalogue(..., check=False)`, the baseline, measured in the same run;
- open, checked: `Catalogue(...)`, as the library opens it;
- library open: `Library(...)` end to end (checked catalogue, index file checked and loaded);
- cold check: the check alone after this file's pages were dropped from the page cache
  (posix_fadvise; skipped where there is none), the worst case after a reboot. Taken once;
- per query: what a search pays to learn the index is up to date with the catalogue
  (`ModelIndex.refresh` when nothing changed: one read of the generation), against the search
  itself (`VectorIndex.query`, k=10), each the mean of 2000 calls.

The check reads every page of the file once, so its cost grows with the catalogue's size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from sampletool.library import Library
from sampletool.library.catalogue import Catalogue

MODEL_ID, DIM, CLASSES, LATENT = "bench-model", 64, 9, 64


def build(db: Path, root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    cat = Catalogue(db, root)
    with cat.transaction() as tx:
        for i in range(n):
            rel = f"pack{i % 20:02d}/one_shot_{i:05d}.wav"
            h = hashlib.blake2b(rel.encode(), digest_size=16).hexdigest()
            info = {"duration": 0.5, "sample_rate": 44100, "channels": 2}
            fid = cat.upsert_file(tx, rel, 40000 + i, 1_700_000_000_000_000_000 + i, h, info, None)
            probs = rng.dirichlet(np.ones(CLASSES)).astype(np.float32)
            cat.add_segment(tx, fid, 0.0, MODEL_ID, rng.standard_normal(DIM), probs,
                            rng.standard_normal(LATENT))  # fmt: skip
        cat.bump_generation(tx)
    cat.close()


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def cold_check_ms(db: Path, root: Path) -> float | None:
    """The check with the catalogue's pages dropped from the page cache (this file's only)."""
    if not hasattr(os, "posix_fadvise"):
        return None
    cat = Catalogue(db, root, check=False)
    try:
        fd = os.open(db, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        t = time.perf_counter()
        cat.db.execute("PRAGMA quick_check(3)").fetchall()
        return round(1000 * (time.perf_counter() - t), 2)
    finally:
        cat.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        root.mkdir()
        db = Path(tmp) / "db" / "catalogue.sqlite"
        build(db, root, args.files)
        runtime = SimpleNamespace(model_id=MODEL_ID, vector_dim=DIM)
        Library(root, runtime, db_path=db).close()  # writes the index file once
        unchecked = median_ms(lambda: Catalogue(db, root, check=False).close(), args.repeat)
        checked = median_ms(lambda: Catalogue(db, root).close(), args.repeat)
        library = median_ms(lambda: Library(root, runtime, db_path=db).close(), args.repeat)
        lib = Library(root, runtime, db_path=db)
        probe = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
        n = 2000
        search = median_ms(lambda: [lib._index.vectors.query(probe, 10) for _ in range(n)], 3) / n
        refresh = median_ms(lambda: [lib._index.refresh() for _ in range(n)], 3) / n
        lib.close()
        out = {
            "files": args.files,
            "catalogue_mb": round(db.stat().st_size / 2**20, 1),
            "open_no_check_ms": round(unchecked, 2),
            "open_checked_ms": round(checked, 2),
            "check_ms": round(checked - unchecked, 2),
            "checked_over_unchecked": round(checked / unchecked, 2),
            "library_open_ms": round(library, 2),
            "check_share_of_library_open": round((checked - unchecked) / library, 3),
            "cold_check_ms": cold_check_ms(db, root),
            "search_k10_us": round(1000 * search, 1),
            "up_to_date_check_us": round(1000 * refresh, 1),
            "up_to_date_check_over_search": round(refresh / search, 3),
        }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            print(f"{key:30s} {value}")


if __name__ == "__main__":
    main()
