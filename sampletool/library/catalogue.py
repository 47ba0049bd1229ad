"""The library catalogue: SQLite (WAL), one row per file and per segment, vectors per model.

The catalogue is the source of truth; the hnswlib index beside it is derived data, rebuilt from
here whenever it is missing, damaged or behind. Every scan batch is one transaction (file rows,
segments, vectors together), so a crash at any moment loses at most the batch in flight and
never leaves a file without its vectors or a vector without its file.

Each vector row holds everything the model read in that segment: the search vector, the class
probabilities and the decoder latent, so searching, classifying and blending an indexed sample
never read its audio again. The user's own class for a file (a correction of the model) is kept
by its path in `labels`, apart from any model's readings, so it survives rescans, edits of the
file and model switches; a move found by a scan takes it along.

Schema history: 1 had no latents; a version 1 catalogue is migrated in place when opened (its
vectors keep working for search, and the next scan re-embeds them to add their latents).
`labels` and `files.retry` came later without a new version: each is made when missing, and an
older Sample Tool opens a catalogue that has them (and leaves them alone).

Paths are stored as text when they are valid UTF-8, which is every name but a few; a name that
is not (a raw byte such as 0xe9 in a file name on Linux, which Python holds as the surrogate
'\udce9') is stored as its bytes, a BLOB in the same column. The two never compare equal, so
the column stays unique, no migration was needed, and such a name comes back byte for byte
(`_to_db`, `_from_db`).

A catalogue belongs to the one library folder it was made for (`meta.root`): opening it for
another folder is refused, since a scan would take the other folder's files for deleted ones.
Opening checks the file's structure (`PRAGMA quick_check`; its cost is measured by
benchmarks/catalogue_open.py), so damage anywhere in it is reported at once, and
`rebuild_catalogue` carries every row still readable over to a fresh file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sampletool.errors import SampleToolError
from sampletool.models.calibration import SILENT

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the library root, '/'-separated
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT,                          -- quick content hash (see scan_worker.quick_hash)
    duration REAL,
    sample_rate INTEGER,
    channels INTEGER,
    error TEXT,                         -- why it could not be read; NULL when fine
    segmented INTEGER NOT NULL DEFAULT 0, -- its segments come from onset detection
    scanned_at REAL NOT NULL,
    retry INTEGER NOT NULL DEFAULT 0    -- it failed for a reason outside its content (an OS
                                        -- error: permission, I/O, gone): tried at every scan
);
CREATE INDEX IF NOT EXISTS files_hash ON files(hash);
CREATE TABLE IF NOT EXISTS segments (
    -- Also the item id in the vector index; AUTOINCREMENT: an id is never reused, so an index
    -- holding the same ids as the catalogue holds the same vectors.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    onset REAL NOT NULL,
    UNIQUE (file_id, onset)
);
CREATE TABLE IF NOT EXISTS vectors (
    segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    vector BLOB NOT NULL,               -- float32 [latent]
    probs BLOB,                         -- float32 [classes], NULL without a classifier
    latent BLOB,                        -- float32 decoder latent; NULL if from schema 1
    PRIMARY KEY (segment_id, model_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_model ON vectors(model_id);
"""
_LABELS = """
CREATE TABLE IF NOT EXISTS labels (
    path TEXT PRIMARY KEY,              -- as files.path; kept when the file leaves the library
    class TEXT NOT NULL,                -- the class the user gave it
    set_at REAL NOT NULL
)"""


SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # SQLite's primary result codes for a damaged file


class CatalogueError(SampleToolError):
    """A catalogue that cannot be used. `problem` says what is wrong; `rebuildable` says
    whether starting afresh would help, and the message then says how from the command line
    (the app offers a button instead)."""

    def __init__(
        self,
        problem: str,
        path: Path,
        rebuildable: bool = True,
        or_else: str = "",
        damaged: bool = False,
    ) -> None:
        how = f"{or_else}rebuild it (sampletool index --rebuild) to scan the library again"
        if damaged:
            how = ("rebuild it (sampletool index --rebuild): what can still be read in it is "
                   "kept, the rest of the library is scanned again")  # fmt: skip
        super().__init__(f"{problem}; {how}" if rebuildable else problem)
        self.problem = problem
        self.or_else = or_else
        self.path = path
        self.rebuildable = rebuildable
        self.damaged = damaged  # an SQLite file with damage inside: rows may be recovered


def damage(e: sqlite3.DatabaseError, path: Path) -> CatalogueError | None:
    """The CatalogueError for an SQLite error that says the file is damaged; None for any
    other error (read-only, locked, a full or failing disk: starting afresh would not help)."""
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    damaged = (code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB) if code is not None
               else "malformed" in str(e) or "not a database" in str(e))  # fmt: skip
    return CatalogueError(f"{path} is damaged ({e})", path, damaged=True) if damaged else None


def _to_db(path: str) -> str | bytes:
    """A path (or any name from the file system) as the catalogue stores it: text when it is
    valid UTF-8, else its bytes (see the module docstring)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _from_db(value: str | bytes) -> str:
    """A stored path back as Python holds file names (undecodable bytes as surrogates)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@dataclass(frozen=True)
class FileRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    error: str | None
    segmented: bool
    retry: bool = False  # it failed for a reason outside its content: try it again


class Catalogue:
    """One library's catalogue. Safe to open from several processes at once (WAL, busy timeout);
    one connection per thread (open another `Catalogue` for another thread)."""

    def __init__(
        self, path: str | os.PathLike[str], root: str | os.PathLike[str], check: bool = True
    ) -> None:
        """Open (or make) the catalogue at `path` of the library folder `root`; `check`: check
        the whole file's structure first (`PRAGMA quick_check`, one read of the file).

        Raises:
            CatalogueError: not a catalogue, damaged, from a newer Sample Tool, of another
                library folder, read-only, or locked.
        """
        self.path = Path(path)
        self.root = Path(root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Shared across threads (a GUI scans on a worker thread and queries on another);
            # SQLite serialises access to the connection.
            self.db = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            self._check_file()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if check:
                self._check_structure()
            version = self._version()
            if version > SCHEMA_VERSION:
                self.db.close()
                raise CatalogueError(
                    f"{self.path} was written by a newer Sample Tool (catalogue version {version}, "
                    f"this one reads {SCHEMA_VERSION})",
                    self.path,
                    or_else="update Sample Tool, or ",
                )
            self._check_root()
            if version == 0:
                self.db.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS); it commits itself
            elif version < SCHEMA_VERSION:
                self._migrate(version)
            with self.transaction():
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('root', ?)", (_to_db(str(self.root)),)
                )
            self.db.execute(_LABELS)  # the user's classes (see the module docstring)
            self._add_retry()
            self.db.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.DatabaseError as e:
            if hasattr(self, "db"):
                self.db.close()
            # Only a damaged file is worth starting afresh; a catalogue that is read-only,
            # locked, or on a full or failing disk is kept as it is.
            damaged = damage(e, self.path)
            if damaged is not None:
                raise damaged from None
            read_only = "readonly" in str(e) or (
                "unable to open" in str(e) and not os.access(self.path.parent, os.W_OK)
            )  # a new catalogue in a read-only folder, or on a read-only file system
            if read_only:
                problem = (f"{self.path} is read-only: Sample Tool writes to its catalogue even "
                           "to search it; allow writing to that file and its folder")  # fmt: skip
            else:
                problem = f"{self.path} cannot be used now ({e}); try again, or free disk space"
            raise CatalogueError(problem, self.path, rebuildable=False) from None
        except CatalogueError:
            self.db.close()
            raise

    def _check_structure(self) -> None:
        """Raise CatalogueError if SQLite finds damage anywhere in the file: a damaged page is
        otherwise found only by the query that happens to read it, maybe never (a search
        answering from what is left) or in the middle of a scan."""
        found = [r[0] for r in self.db.execute("PRAGMA quick_check(3)")]
        if found != ["ok"]:
            detail = "; ".join(map(str, found))
            raise CatalogueError(f"{self.path} is damaged ({detail})", self.path, damaged=True)

    def _check_root(self) -> None:
        """Refuse a catalogue made for another library folder (see the module docstring)."""
        if not self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone():
            return
        row = self.db.execute("SELECT value FROM meta WHERE key='root'").fetchone()
        if row is None:
            return
        stored = Path(_from_db(row[0]))
        if stored == self.root:
            return
        try:
            if os.path.samefile(stored, self.root):  # the same folder by another name
                return
        except OSError:  # the other folder is not there (now)
            pass
        raise CatalogueError(
            f"{self.path} is the catalogue of the library {stored}, not of {self.root}; a "
            "catalogue holds one library: give this one a catalogue of its own (another --db, "
            "or none for its default one)",
            self.path,
            rebuildable=False,
        )

    def _add_retry(self) -> None:
        """Add `files.retry` to a catalogue from before it (see the module docstring)."""
        columns = [r[1] for r in self.db.execute("PRAGMA table_info(files)")]
        if "retry" in columns:
            return
        with self.transaction() as db:  # another process may have added it meanwhile
            if "retry" not in [r[1] for r in db.execute("PRAGMA table_info(files)")]:
                db.execute("ALTER TABLE files ADD COLUMN retry INTEGER NOT NULL DEFAULT 0")

    def _check_file(self) -> None:
        """Raise CatalogueError if the file is not an SQLite database at all.

        SQLite reads the header first, not open(): closing any file this process opened on the
        database drops every POSIX lock the process holds on it, those of the connections
        already open (the app's library keeps one while a class is set through another). The
        next other process to close a connection, a `sampletool` command, then finds itself
        alone, checkpoints and deletes the -wal and -shm files under them: the app reads stale
        rows and its writes fail ("How To Corrupt An SQLite Database File", section 2.2)."""
        try:
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as e:
            code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
            if (code & 0xFF != SQLITE_NOTADB if code is not None
                    else "not a database" not in str(e)):  # fmt: skip
                raise
            self.db.close()  # SQLite refused the file: no connection of ours can be on it
            with open(self.path, "rb") as f:
                head = f.read(16)
            if head == b"SQLite format 3\x00":
                raise  # an SQLite file damaged in its header: `damage` says so
            from sampletool.audio import detect_format

            audio = detect_format(head)
            if audio is not None:  # a sample given as --db: a rebuild would move it aside
                raise CatalogueError(
                    f"{self.path} is an audio file ({audio}), not a catalogue: choose another "
                    "catalogue file (--db)",
                    self.path,
                    rebuildable=False,
                ) from None
            raise CatalogueError(
                f"{self.path} is not a catalogue (it is not an SQLite database)",
                self.path,
            ) from None

    def _migrate(self, version: int) -> None:
        """Bring an older catalogue up to SCHEMA_VERSION, in one transaction (another process
        may have done it since `version` was read: the version is read again inside it)."""
        with self.transaction() as db:
            version = self._version()
            if version < 2:
                # Latents arrived in 2: old vectors keep serving search; the next scan
                # re-embeds their files (they do not count as complete, see has_vectors).
                db.execute("ALTER TABLE vectors ADD COLUMN latent BLOB")
            db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    def _version(self) -> int:
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.db.close()

    # -- transactions ---------------------------------------------------------------------------

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> _Tx:
        """`with catalogue.transaction() as db:` one atomic write (BEGIN IMMEDIATE)."""
        return self._Tx(self.db)

    def generation(self) -> int:
        """A counter bumped by every write; the index records the one it was saved at."""
        return int(self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def setting(self, key: str) -> str | None:
        """A library setting the catalogue remembers (None if never set)."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", ("setting." + key,)).fetchone()
        return None if row is None else row[0]

    def any_segmented(self) -> bool:
        return bool(self.db.execute("SELECT 1 FROM files WHERE segmented = 1 LIMIT 1").fetchone())

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("setting." + key, value))

    def bump_generation(self, db: sqlite3.Connection) -> None:
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    # -- reads ----------------------------------------------------------------------------------

    def files(self) -> dict[str, FileRow]:
        rows = self.db.execute(
            "SELECT id, path, size, mtime_ns, hash, error, segmented, retry FROM files"
        )
        return {
            (p := _from_db(r[1])): FileRow(r[0], p, r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7]))
            for r in rows
        }

    def abspath(self, rel: str) -> Path:
        return self.root / Path(rel)

    def relpath(self, path: str | os.PathLike[str]) -> str:
        return Path(os.path.relpath(Path(path).absolute(), self.root)).as_posix()

    def has_vectors(self, model_id: str) -> set[int]:
        """File ids whose every segment has this model's reading, latent included."""
        rows = self.db.execute(
            """SELECT s.file_id, count(*), count(v.latent) FROM segments s
               LEFT JOIN vectors v ON v.segment_id = s.id AND v.model_id = ?
               GROUP BY s.file_id""",
            (model_id,),
        )
        return {fid for fid, n, nv in rows if n == nv}

    def vector_ids(self, model_id: str) -> np.ndarray:
        """Segment ids that have a vector for this model, sorted, int64."""
        rows = self.db.execute(
            "SELECT segment_id FROM vectors WHERE model_id = ? ORDER BY segment_id", (model_id,)
        ).fetchall()
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))

    def vectors(
        self, model_id: str, only: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(segment ids int64 [n], vectors float32 [n, dim]) of one model, ordered by segment
        id; `only`: of these segment ids alone."""
        if only is None:
            rows = self.db.execute(
                "SELECT segment_id, vector FROM vectors WHERE model_id = ? ORDER BY segment_id",
                (model_id,),
            ).fetchall()
        else:
            wanted = sorted(map(int, only))
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += self.db.execute(
                    f"SELECT segment_id, vector FROM vectors WHERE model_id = ? AND segment_id "
                    f"IN ({','.join('?' * len(chunk))}) ORDER BY segment_id",
                    (model_id, *chunk),
                ).fetchall()
        if not rows:
            return np.empty(0, np.int64), np.empty((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        vecs = np.stack([np.frombuffer(r[1], np.float32) for r in rows])
        return ids, vecs

    def kinds(self, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment ids int64 [n], each one's likeliest class int64 [n], its probability
        float32 [n]) of one model, ordered by segment id; class -1 where no class
        probabilities were stored (probability 0) or every class is as likely (a silent clip)."""
        rows = self.db.execute(
            "SELECT segment_id, probs FROM vectors WHERE model_id = ? ORDER BY segment_id",
            (model_id,),
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        kinds = np.full(len(rows), -1, np.int64)
        confidence = np.zeros(len(rows), np.float32)
        have = [i for i, r in enumerate(rows) if r[1] is not None]
        if have:  # one model's probability rows all have its number of classes
            probs = np.frombuffer(b"".join(rows[i][1] for i in have), np.float32)
            probs = probs.reshape(len(have), -1)
            kinds[have] = np.where(np.ptp(probs, axis=1) < SILENT, -1, probs.argmax(1))
            confidence[have] = probs.max(1)
        return ids, kinds, confidence

    # -- the user's classes ---------------------------------------------------------------------

    def labels(self) -> dict[str, str]:
        """Relative path -> the class the user gave that file."""
        return {_from_db(p): c for p, c in self.db.execute("SELECT path, class FROM labels")}

    def segment_labels(self) -> dict[int, str]:
        """Segment id -> the class the user gave its file, for files in the library now."""
        return dict(self.db.execute(
            "SELECT s.id, l.class FROM labels l JOIN files f ON f.path = l.path "
            "JOIN segments s ON s.file_id = f.id"
        ).fetchall())  # fmt: skip

    def label_of_segment(self, segment_id: int) -> str | None:
        """The class the user gave a segment's file (None: none)."""
        row = self.db.execute(
            "SELECT l.class FROM labels l JOIN files f ON f.path = l.path "
            "JOIN segments s ON s.file_id = f.id WHERE s.id = ?", (int(segment_id),)
        ).fetchone()  # fmt: skip
        return None if row is None else row[0]

    def labels_generation(self) -> int:
        """A counter bumped by every change of the user's classes."""
        row = self.db.execute("SELECT value FROM meta WHERE key='labels_generation'").fetchone()
        return int(row[0]) if row else 0

    def set_labels(self, rels: Iterable[str], cls: str | None) -> None:
        """Give these files (relative paths) the class `cls`; None takes the user's class away
        (the model's reading shows again)."""
        rels = list(rels)
        with self.transaction() as db:
            if cls is None:
                db.executemany("DELETE FROM labels WHERE path = ?", [(_to_db(r),) for r in rels])
            else:
                now = time.time()
                db.executemany("INSERT OR REPLACE INTO labels VALUES (?, ?, ?)",
                               [(_to_db(r), cls, now) for r in rels])  # fmt: skip
            db.execute("INSERT OR IGNORE INTO meta VALUES ('labels_generation', '0')")
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                       "WHERE key='labels_generation'")  # fmt: skip

    def segment_info(self, segment_ids: Iterable[int]) -> dict[int, tuple[str, float]]:
        """segment id -> (absolute path, onset)."""
        ids = list(map(int, segment_ids))
        out: dict[int, tuple[str, float]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            q = ",".join("?" * len(chunk))
            for sid, path, onset in self.db.execute(
                f"SELECT s.id, f.path, s.onset FROM segments s JOIN files f ON f.id = s.file_id "
                f"WHERE s.id IN ({q})",
                chunk,
            ):
                out[sid] = (str(self.abspath(_from_db(path))), onset)
        return out

    def segments_of(self, rel: str) -> list[tuple[int, float]]:
        return self.db.execute(
            "SELECT s.id, s.onset FROM segments s JOIN files f ON f.id = s.file_id "
            "WHERE f.path = ? ORDER BY s.onset",
            (_to_db(rel),),
        ).fetchall()

    def nearest_segment(self, rel: str, onset: float) -> tuple[int, float] | None:
        """(segment id, onset) of a file's segment that starts nearest `onset`, or None if the
        file has none. One indexed lookup, however many segments the file has."""
        return self.db.execute(
            "SELECT s.id, s.onset FROM segments s JOIN files f ON f.id = s.file_id "
            "WHERE f.path = ? ORDER BY abs(s.onset - ?), s.onset LIMIT 1",
            (_to_db(rel), float(onset)),
        ).fetchone()

    def vector_of(self, segment_id: int, model_id: str) -> np.ndarray | None:
        row = self.db.execute(
            "SELECT vector FROM vectors WHERE segment_id = ? AND model_id = ?",
            (segment_id, model_id),
        ).fetchone()
        return np.frombuffer(row[0], np.float32).copy() if row else None

    def latent_of(self, segment_id: int, model_id: str) -> np.ndarray | None:
        """The decoder latent stored for a segment, float32 flat (None if there is none yet)."""
        row = self.db.execute(
            "SELECT latent FROM vectors WHERE segment_id = ? AND model_id = ?",
            (segment_id, model_id),
        ).fetchone()
        return np.frombuffer(row[0], np.float32).copy() if row and row[0] is not None else None

    def failures(self) -> list[tuple[str, str]]:
        return [
            (str(self.abspath(_from_db(p))), e)
            for p, e in self.db.execute("SELECT path, error FROM files WHERE error IS NOT NULL")
        ]

    def count(self, model_id: str | None = None) -> dict[str, int]:
        files = self.db.execute("SELECT count(*) FROM files WHERE error IS NULL").fetchone()[0]
        failed = self.db.execute("SELECT count(*) FROM files WHERE error IS NOT NULL").fetchone()[0]
        segs = self.db.execute("SELECT count(*) FROM segments").fetchone()[0]
        out = {"files": files, "failed": failed, "segments": segs}
        if model_id is not None:
            out["vectors"] = self.db.execute(
                "SELECT count(*) FROM vectors WHERE model_id = ?", (model_id,)
            ).fetchone()[0]
        return out

    def snapshot_rows(self, model_id: str) -> list[tuple]:
        """(segment id, relative path, onset, file duration, vector blob, probs blob) for every
        vector of a model, ordered by segment id."""
        rows = self.db.execute(
            "SELECT s.id, f.path, s.onset, f.duration, v.vector, v.probs FROM vectors v "
            "JOIN segments s ON s.id = v.segment_id JOIN files f ON f.id = s.file_id "
            "WHERE v.model_id = ? ORDER BY s.id",
            (model_id,),
        )
        return [(r[0], _from_db(r[1]), *r[2:]) for r in rows]

    # -- writes (inside a transaction) ----------------------------------------------------------

    @staticmethod
    def upsert_file(
        db: sqlite3.Connection,
        rel: str,
        size: int,
        mtime_ns: int,
        hash_: str | None,
        info: dict | None,
        error: str | None,
        segmented: bool = False,
        retry: bool = False,
    ) -> int:
        """Add or update a file's row; `retry`: its `error` is no fault of its content (an OS
        error), so the next scan tries it again, changed or not."""
        info = info or {}
        row = db.execute(
            """INSERT INTO files (path, size, mtime_ns, hash, duration, sample_rate, channels,
                                  error, scanned_at, segmented, retry)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns,
                 hash=excluded.hash, duration=excluded.duration,
                 sample_rate=excluded.sample_rate, channels=excluded.channels,
                 error=excluded.error, scanned_at=excluded.scanned_at,
                 segmented=excluded.segmented, retry=excluded.retry
               RETURNING id""",
            (
                _to_db(rel),
                size,
                mtime_ns,
                hash_,
                info.get("duration"),
                info.get("sample_rate"),
                info.get("channels"),
                error,
                time.time(),
                int(segmented),
                int(retry and error is not None),
            ),
        ).fetchone()
        return int(row[0])

    @staticmethod
    def delete_segments(db: sqlite3.Connection, file_id: int) -> list[int]:
        ids = [r[0] for r in db.execute("SELECT id FROM segments WHERE file_id = ?", (file_id,))]
        db.execute("DELETE FROM segments WHERE file_id = ?", (file_id,))
        return ids

    @staticmethod
    def add_segment(
        db: sqlite3.Connection,
        file_id: int,
        onset: float,
        model_id: str,
        vector: np.ndarray,
        probs: np.ndarray | None,
        latent: np.ndarray,
    ) -> int:
        """Add (or replace) a segment's reading by one model; returns the segment id."""
        sid = db.execute(
            "INSERT INTO segments (file_id, onset) VALUES (?, ?) "
            "ON CONFLICT(file_id, onset) DO UPDATE SET onset=excluded.onset RETURNING id",
            (file_id, float(onset)),
        ).fetchone()[0]
        db.execute(
            "INSERT OR REPLACE INTO vectors (segment_id, model_id, vector, probs, latent) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                sid,
                model_id,
                np.asarray(vector, np.float32).tobytes(),
                None if probs is None else np.asarray(probs, np.float32).tobytes(),
                np.asarray(latent, np.float32).tobytes(),
            ),
        )
        return int(sid)

    @staticmethod
    def delete_file(db: sqlite3.Connection, file_id: int) -> list[int]:
        ids = Catalogue.delete_segments(db, file_id)
        db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return ids

    @staticmethod
    def move_file(db: sqlite3.Connection, file_id: int, rel: str, mtime_ns: int) -> None:
        old = db.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        new = _to_db(rel)
        db.execute("UPDATE files SET path = ?, mtime_ns = ? WHERE id = ?", (new, mtime_ns, file_id))
        if old is not None:  # the user's class goes with the file
            db.execute("UPDATE OR REPLACE labels SET path = ? WHERE path = ?", (new, old[0]))


@dataclass
class Rebuilt:
    """What `rebuild_catalogue` did: where the old file went and what it carried over."""

    aside: Path
    files: int = 0  # file rows carried over (with their failures, hashes...)
    vectors: int = 0  # readings carried over: their files are not read again
    labels: int = 0  # classes the user set


def rebuild_catalogue(path: Path, root: Path, error: CatalogueError) -> tuple[Catalogue, Rebuilt]:
    """Move the catalogue at `path`, which failed to open with `error`, aside (as
    `<name>.damaged-<time>`) and start a fresh one, carrying over what can still be read of
    the old one: every readable row of a damaged one (a file whose rows were lost is simply
    scanned again), only the classes the user set of one from a newer Sample Tool (its
    readings may not mean what this version thinks), nothing of a file that is not SQLite.

    Raises:
        CatalogueError: the fresh catalogue cannot be made either.
    """
    aside = rebuild_aside(path)
    catalogue = Catalogue(path, root)
    rebuilt = Rebuilt(aside)
    try:
        old = sqlite3.connect(aside, timeout=5.0, isolation_level=None)
    except sqlite3.Error:
        return catalogue, rebuilt
    try:
        old.execute("PRAGMA query_only=1")
        rebuilt.labels = _carry(old, catalogue, "labels", ("path", "class", "set_at"))
        if error.damaged and _same_root(old, root):
            _carry_readings(old, catalogue, rebuilt)
    except sqlite3.Error:  # its schema cannot even be read: nothing more to carry
        pass
    finally:
        old.close()
    return catalogue, rebuilt


def _same_root(old: sqlite3.Connection, root: Path) -> bool:
    try:
        row = old.execute("SELECT value FROM meta WHERE key='root'").fetchone()
    except sqlite3.Error:
        return True  # unreadable: its files' paths are relative, checked by the next scan
    return row is None or Path(_from_db(row[0])) == root


def _carry_readings(old: sqlite3.Connection, new: Catalogue, rebuilt: Rebuilt) -> None:
    """Copy the files, segments, readings and settings still readable in `old` into `new`."""
    files = ("id", "path", "size", "mtime_ns", "hash", "duration", "sample_rate", "channels",
             "error", "segmented", "scanned_at", "retry")  # fmt: skip
    rebuilt.files = _carry(old, new, "files", files)
    _carry(old, new, "segments", ("id", "file_id", "onset"))
    vectors = ("segment_id", "model_id", "vector", "probs", "latent")
    rebuilt.vectors = _carry(old, new, "vectors", vectors, key=("segment_id", "model_id"))
    with new.transaction() as db:
        try:  # segment ids are never reused (see _SCHEMA), even those of rows lost
            seq = old.execute("SELECT seq FROM sqlite_sequence WHERE name='segments'").fetchone()
        except sqlite3.Error:
            seq = None
        if seq is not None and isinstance(seq[0], int):
            db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name='segments'", seq)
        try:
            settings = old.execute(
                "SELECT key, value FROM meta WHERE key LIKE 'setting.%'"
            ).fetchall()
        except sqlite3.Error:
            settings = []
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", settings)
        new.bump_generation(db)


def _carry(
    old: sqlite3.Connection,
    new: Catalogue,
    table: str,
    columns: tuple[str, ...],
    key: tuple[str, ...] = ("rowid",),
) -> int:
    """Copy the rows of `table` still readable in `old` (the columns of `columns` it has) into
    `new`, each row alone, so a row the new catalogue refuses (a segment whose file was lost)
    is left out; returns how many were copied."""
    have = {r[1] for r in old.execute(f"PRAGMA table_info({table})")}
    cols = [c for c in columns if c in have]
    if not cols:
        return 0
    insert = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    copied = 0
    with new.transaction() as db:
        for row in readable_rows(old, table, cols, key):
            try:
                db.execute("SAVEPOINT row")
                db.execute(insert, row[len(key) :])
                db.execute("RELEASE row")
                copied += 1
            except sqlite3.Error:
                db.execute("ROLLBACK TO row")
                db.execute("RELEASE row")
    return copied


def readable_rows(
    db: sqlite3.Connection, table: str, columns: list[str], key: tuple[str, ...] = ("rowid",)
) -> Iterator[tuple]:
    """The rows of `table` that can still be read, in `key` order, each as (*key, *columns).
    A damaged stretch (a page SQLite reports as corrupt) is stepped over: the smallest first
    key past it that reads again is found by doubling then halving, so a few damaged pages cost
    a few dozen queries. `key`: the table's primary key, its first column an integer."""
    keys = ", ".join(key)
    sql = (f"SELECT {keys}, {', '.join(columns)} FROM {table} WHERE ({keys}) > "
           f"({', '.join('?' * len(key))}) ORDER BY {keys} LIMIT ?")  # fmt: skip
    lowest = (-(2**63), *([""] * (len(key) - 1)))  # '' sorts before any text

    def read(after: tuple, n: int) -> list[tuple] | None:
        try:
            return db.execute(sql, (*after, n)).fetchall()
        except sqlite3.DatabaseError:
            return None

    after: tuple = lowest
    while True:
        rows = read(after, 512)
        if rows is None:  # damage in this batch: read up to it row by row, then step over
            while (row := read(after, 1)) is not None and row:
                yield row[0]
                after = tuple(row[0][: len(key)])
            if row is not None:
                return
            if not isinstance(after[0], int):
                return
            start = after[0]
            step = 1
            while read((start + step, *lowest[1:]), 1) is None:
                step *= 2
                if start + step >= 2**63 - 1:
                    return
            low, high = start + step // 2, start + step  # fails at low (or is start), reads at high
            while high - low > 1:
                mid = (low + high) // 2
                if read((mid, *lowest[1:]), 1) is None:
                    low = mid
                else:
                    high = mid
            after = (high, *lowest[1:])
            continue
        if not rows:
            return
        yield from rows
        after = tuple(rows[-1][: len(key)])


def rebuild_aside(path: Path) -> Path:
    """Move a damaged catalogue (and its WAL files) aside so a fresh one can be made."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():  # a second rebuild within the second keeps the first one's too
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            os.replace(p, Path(str(target) + suffix))
    return target
