"""The vector index's file format: hnswlib's own file, with a checked JSON description beside it.

`write_index(path, raw, description)` writes hnswlib's file at `path` and a sidecar beside it
(`sidecar_path(path)`: the same name plus ".json") holding the description (dimension, space,
item counts, removed ids...) plus the file's byte length and CRC-32. Each is written to a
temporary file in the same folder, flushed to disk and moved into place with `os.replace`,
index first, sidecar last. `read_index` checks the sidecar, the length, the checksum and
hnswlib's own header before handing the file to hnswlib, whose loader trusts its input and can
crash the process on a damaged file. A crash between the two moves leaves a new index with the
old sidecar, which `read_index` reports as damaged (the index is derived data: the caller
rebuilds it from the catalogue).
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path

import hnswlib

from sampletool.errors import FileProblem

FORMAT = "sampletool-vector-index"
FORMAT_VERSION = 1

# hnswlib's file header, as its saveIndex writes it on a 64-bit little-endian machine:
# offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
# offsetData (size_t each), maxlevel (int), enterpoint_node (uint), maxM, maxM0, M (size_t),
# mult (double), ef_construction (size_t).
_HEADER = struct.Struct("<6QiI3QdQ")


class IndexFileError(FileProblem):
    """A vector index file that cannot be used: missing, truncated, damaged, or made for other
    vectors (another dimension or distance)."""


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON file that `write_index` puts beside the index file at `path`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_index(path: Path, raw: hnswlib.Index, description: dict) -> None:
    """Write hnswlib index `raw` to `path`, and `description` (with the format, the file's
    length and checksum added) to its sidecar, each atomically.

    Raises:
        OSError: the folder cannot be written.
    """
    side = sidecar_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **description}
    tmp_index = _temp_beside(path)
    tmp_side = None
    try:
        raw.save_index(str(tmp_index))
        with open(tmp_index, "r+b") as f:
            os.fsync(f.fileno())
        doc["bytes"], doc["crc32"] = _length_and_crc(tmp_index)
        tmp_side = _temp_beside(side)
        with open(tmp_side, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_index, path)
        os.replace(tmp_side, side)
    except BaseException:
        tmp_index.unlink(missing_ok=True)
        if tmp_side is not None:
            tmp_side.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def read_index(path: Path, dim: int, space: str) -> tuple[hnswlib.Index, dict]:
    """Read an index that `write_index` wrote, checking everything before hnswlib sees the file.

    Returns:
        (the hnswlib index, its description).

    Raises:
        IndexFileError: the file or its sidecar is missing, truncated, damaged, from a newer
            Sample Tool, or holds vectors of another dimension or distance. One sentence says
            which.
    """
    path = Path(path)
    side = sidecar_path(path)
    if not path.exists():
        raise IndexFileError(path, "the index file does not exist")
    if not path.is_file():
        raise IndexFileError(path, "is not a file")
    try:
        size = path.stat().st_size
        if size == 0:
            raise IndexFileError(path, "the index file is empty (0 bytes)")
        if not side.is_file():
            raise IndexFileError(
                path, f"its description {side.name} is missing, so it cannot be checked"
            )
        doc = _read_sidecar(path, side)
        if doc["space"] != space:
            raise IndexFileError(path, f"it was built for {doc['space']!r} distance, not {space!r}")
        if doc["dim"] != dim:
            raise IndexFileError(
                path, f"it holds {doc['dim']}-dimensional vectors, not {dim}-dimensional"
            )
        if size != doc["bytes"]:
            what = "truncated" if size < doc["bytes"] else "longer than it was saved"
            raise IndexFileError(
                path, f"the index file is {what} ({size} bytes; {doc['bytes']} were saved)"
            )
        if _length_and_crc(path)[1] != doc["crc32"]:
            raise IndexFileError(path, "the index file is damaged (its checksum is wrong)")
        _check_header(path, doc, dim)
        raw = hnswlib.Index(space=space, dim=int(dim))
        raw.load_index(str(path), max_elements=doc["capacity"], allow_replace_deleted=True)
    except OSError as e:
        raise IndexFileError(path, f"cannot be read ({e.strerror or e})") from None
    except (RuntimeError, MemoryError, ValueError) as e:
        raise IndexFileError(path, f"hnswlib cannot load it ({e})") from None
    return raw, doc


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _fsync_folder(folder: Path) -> None:
    """Make the renames durable (POSIX; Windows has no folder handles to flush)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _length_and_crc(path: Path) -> tuple[int, int]:
    crc, n = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
            n += len(chunk)
    return n, crc


def _read_sidecar(path: Path, side: Path) -> dict:
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFileError(path, f"its description {side.name} is damaged ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IndexFileError(path, f"{side.name} does not describe a Sample Tool vector index")
    version = doc.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise IndexFileError(
            path,
            f"it was written by a newer Sample Tool (index format {version}; this version reads "
            f"format {FORMAT_VERSION} and older)",
        )
    ints = ("dim", "items", "elements", "capacity", "m", "ef_construction", "ef_search", "seed")
    ok = (
        isinstance(version, int)
        and version >= 1
        and isinstance(doc.get("space"), str)
        and all(_is_count(doc.get(key)) for key in (*ints, "bytes", "crc32"))
        and isinstance(doc.get("removed"), list)
        and all(_is_count(i) for i in doc["removed"])
    )
    if not ok:
        raise IndexFileError(path, f"its description {side.name} is incomplete or damaged")
    return doc


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_header(path: Path, doc: dict, dim: int) -> None:
    """Compare hnswlib's own header with what the sidecar and the caller expect."""
    with open(path, "rb") as f:
        raw = f.read(_HEADER.size)
    if len(raw) < _HEADER.size:
        raise IndexFileError(path, "the index file is too short to be an hnswlib index")
    (level0, max_elements, count, per_element, label_offset, data_offset, _maxlevel, entry,
     max_m, max_m0, m, mult, _efc) = _HEADER.unpack(raw)  # fmt: skip
    data_size = label_offset - data_offset
    if data_size != 4 * doc["dim"] and data_size % 4 == 0 and 0 < data_size < 4 * 2**20:
        raise IndexFileError(
            path, f"it holds {data_size // 4}-dimensional vectors, not {dim}-dimensional"
        )
    sane = (
        level0 == 0
        and data_size == 4 * dim
        and max_m0 == 2 * m
        and max_m == m
        and data_offset == max_m0 * 4 + 4
        and per_element == data_offset + data_size + 8
        and count == doc["elements"]
        and count <= max_elements
        and (count == 0 or entry < count)
        and math.isfinite(mult)
    )
    if not sane:
        raise IndexFileError(path, "the index file's header does not match its description")
