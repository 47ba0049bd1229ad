"""Damaged catalogues: an SQLite catalogue file hurt in one known way, for the tests of what
Sample Tool says about it and what `--rebuild` recovers from it.

Each function changes a closed catalogue file in place (its WAL checkpointed into it first, so
every page is in the file). Pages are found the way SQLite finds them: a table's root page is
`sqlite_master.rootpage`, and its other pages are reached by walking its b-tree.
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

_INTERIOR = (0x02, 0x05)  # index and table interior pages (0x0A, 0x0D are leaves)


def settle(db_path: Path) -> int:
    """Checkpoint the catalogue's WAL into the file and drop it; returns the page size."""
    con = sqlite3.connect(db_path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")  # no WAL left to hold newer pages
        return int(con.execute("PRAGMA page_size").fetchone()[0])
    finally:
        con.close()


def table_pages(db_path: Path, table: str) -> tuple[int, list[int]]:
    """(root page, leaf pages in key order) of `table`'s b-tree; for a table of one page the
    root is its only leaf."""
    page_size = settle(db_path)
    con = sqlite3.connect(db_path)
    try:
        row = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    finally:
        con.close()
    if row is None:
        raise ValueError(f"{db_path} has no table {table!r}")
    root = int(row[0])
    data = Path(db_path).read_bytes()
    leaves: list[int] = []

    def walk(page: int) -> None:
        start = (page - 1) * page_size
        head = start + (100 if page == 1 else 0)  # page 1 begins with the file header
        kind = data[head]
        if kind not in _INTERIOR:
            leaves.append(page)
            return
        cells = int.from_bytes(data[head + 3 : head + 5], "big")
        for i in range(cells):
            at = start + int.from_bytes(data[head + 12 + 2 * i : head + 14 + 2 * i], "big")
            walk(int.from_bytes(data[at : at + 4], "big"))  # each cell starts with its child
        walk(int.from_bytes(data[head + 8 : head + 12], "big"))  # the right-most child

    walk(root)
    return root, leaves


def scramble_pages(db_path: Path, pages: list[int], seed: int = 0) -> None:
    """Write random bytes over whole pages (1-based page numbers) of the file."""
    page_size = settle(db_path)
    rng = random.Random(seed)
    with open(db_path, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(rng.randbytes(page_size))
        f.flush()
        os.fsync(f.fileno())


def damage_table(db_path: Path, table: str, where: str = "leaf", seed: int = 0) -> int:
    """Random bytes over one page of `table`: its middle leaf ("leaf": the rows on that page
    are lost, the others still readable) or its root page ("root"); returns the page."""
    root, leaves = table_pages(db_path, table)
    page = root if where == "root" else leaves[len(leaves) // 2]
    scramble_pages(db_path, [page], seed)
    return page


def damage_header(db_path: Path, seed: int = 0) -> None:
    """Random bytes over the 100-byte file header: the file is no SQLite database any more."""
    settle(db_path)
    with open(db_path, "r+b") as f:
        f.write(random.Random(seed).randbytes(100))


def claim_for(db_path: Path, root: Path) -> None:
    """Make the catalogue say it belongs to the library folder `root` (as one made for it)."""
    con = sqlite3.connect(db_path)
    try:
        con.execute("UPDATE meta SET value = ? WHERE key = 'root'", (str(root),))
        con.commit()
    finally:
        con.close()
