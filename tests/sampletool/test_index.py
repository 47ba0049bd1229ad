"""VectorIndex: exact answers on small sets, replacement, removal, exclusion, growth, files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from sampletool.errors import SampleToolError
from sampletool.library.index import IndexFileError, VectorIndex
from sampletool.library.index_file import sidecar_path

DIM = 16


def _data(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _exact(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int):
    d = np.linalg.norm(x[None, :, :].astype(np.float64) - q[:, None, :], axis=-1)
    order = np.argsort(d, axis=1)[:, :k]
    return ids[order], np.take_along_axis(d, order, axis=1)


class FindsTooFew:
    """An hnswlib index whose searches raise as when they find fewer than k live items."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def knn_query(self, *args, **kwargs):
        raise RuntimeError("Cannot return the results in a contiguous 2D array")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    x = _data(2000)
    ids = np.arange(2000, dtype=np.int64) * 7 + 3  # ids are not positions
    return ids, x


@pytest.fixture
def index(data) -> VectorIndex:
    ids, x = data
    return VectorIndex.build(ids, x, ef_search=400)


# -- answers --------------------------------------------------------------------------------------


def test_query_matches_brute_force(data, index):
    ids, x = data
    q = _data(50, seed=1)
    got, dist = index.query(q, 10)
    want, want_d = _exact(x, ids, q, 10)
    assert got.dtype == np.int64 and dist.dtype == np.float32
    assert got.shape == dist.shape == (50, 10)
    assert (got == want).all()  # recall 1.0
    np.testing.assert_allclose(dist, want_d, rtol=1e-4, atol=1e-4)  # Euclidean, not squared


def test_each_vector_finds_itself_at_distance_zero(data, index):
    ids, x = data
    got, dist = index.query(x[:100], 3)
    assert (got[:, 0] == ids[:100]).all()
    np.testing.assert_allclose(dist[:, 0], 0, atol=1e-3)
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first


def test_single_vector_query_gives_one_row(data, index):
    ids, x = data
    got, dist = index.query(x[5], 4)
    assert got.shape == dist.shape == (1, 4)
    assert got[0, 0] == ids[5]


def test_k_larger_than_the_index(data):
    ids, x = data
    small = VectorIndex.build(ids[:5], x[:5])
    got, dist = small.query(x[0], 10)
    assert got.shape == (1, 5)
    assert sorted(got[0].tolist()) == sorted(ids[:5].tolist())


def test_empty_index_returns_no_columns():
    index = VectorIndex(DIM)
    got, dist = index.query(_data(3), 10)
    assert got.shape == dist.shape == (3, 0)
    assert got.dtype == np.int64 and dist.dtype == np.float32
    assert len(index) == 0 and index.ids().shape == (0,)


def test_k_zero(index, data):
    got, dist = index.query(data[1][:2], 0)
    assert got.shape == (2, 0)


# -- contents and changes -------------------------------------------------------------------------


def test_len_contains_ids_get(data, index):
    ids, x = data
    assert len(index) == 2000
    assert ids[10] in index and np.int64(ids[11]) in index
    assert 4 not in index and -1 not in index and "3" not in index
    assert (index.ids() == np.sort(ids)).all()
    np.testing.assert_array_equal(index.get(ids[[3, 1, 2]]), x[[3, 1, 2]])
    with pytest.raises(KeyError, match="4"):
        index.get([ids[0], 4])


def test_re_adding_an_id_replaces_its_vector(data, index):
    ids, x = data
    target = ids[5]
    new = x[1000] + 0.01  # right next to another item
    index.add([target], new[None])
    assert len(index) == 2000
    np.testing.assert_allclose(index.get([target])[0], new)
    got, dist = index.query(new, 2)
    assert got[0, 0] == target and dist[0, 0] < 1e-3
    assert got[0, 1] == ids[1000]
    got, _ = index.query(x[5], 10)  # the old position no longer finds it
    assert target not in got[0].tolist()


def test_duplicate_ids_in_one_add_keep_the_last_vector():
    index = VectorIndex(DIM)
    x = _data(3)
    index.add([1, 2, 1], x)
    assert len(index) == 2
    np.testing.assert_array_equal(index.get([1, 2]), x[[2, 1]])


def test_remove_hides_ids(data, index):
    ids, x = data
    gone = ids[:10]
    index.remove(gone)
    index.remove([ids[0], 999_999_999, -5])  # removed or unknown: ignored
    assert len(index) == 1990
    assert not any(int(i) in index for i in gone)
    assert not np.isin(index.ids(), gone).any()
    got, _ = index.query(x[:10], 10)
    assert not np.isin(got, gone).any()
    with pytest.raises(KeyError):
        index.get(gone[:1])


def test_a_removed_id_can_be_added_again(data, index):
    ids, x = data
    index.remove(ids[:3])
    index.add(ids[:1], x[1500][None])
    assert ids[0] in index and len(index) == 1998
    got, dist = index.query(x[1500], 2)
    assert set(got[0].tolist()) == {ids[0], ids[1500]}


def test_removing_everything():
    index = VectorIndex.build([1, 2, 3], _data(3))
    index.remove([1, 2, 3])
    assert len(index) == 0
    got, _ = index.query(_data(1), 5)
    assert got.shape == (1, 0)


def test_growth_past_capacity():
    x = _data(1000)
    index = VectorIndex(DIM, capacity=16, ef_search=200)
    for lo in range(0, 1000, 90):
        index.add(np.arange(lo, min(lo + 90, 1000)), x[lo : lo + 90])
    assert len(index) == 1000 and index.capacity >= 1000
    assert index.capacity <= 2048  # geometric, not one slot at a time
    got, _ = index.query(x[::50], 1)
    assert (got[:, 0] == np.arange(0, 1000, 50)).all()


def test_removed_slots_are_reused_by_new_ids():
    x = _data(200)
    index = VectorIndex.build(np.arange(100), x[:100])
    capacity = index.capacity
    index.remove(np.arange(50))
    index.add(np.arange(1000, 1050), x[100:150])
    assert index.capacity == capacity and len(index) == 100
    assert set(index.ids().tolist()) == set(range(50, 100)) | set(range(1000, 1050))
    index.add(np.arange(10), x[150:160])  # old ids whose slots were taken come back as new
    assert len(index) == 110 and all(i in index for i in range(10))
    got, _ = index.query(x[150:160], 1)
    assert (got[:, 0] == np.arange(10)).all()


def test_exclude(data, index, monkeypatch):
    ids, x = data
    want, _ = _exact(x, ids, x[:1], 20)
    exclude = set(want[0, :5].tolist())
    for limit in (0, 1_000_000):  # hnswlib's filter callback, then over-fetching
        monkeypatch.setattr(VectorIndex, "OVERFETCH_MAX_EXCLUDE", limit)
        got, _ = index.query(x[0], 10, exclude=exclude)
        assert got[0].tolist() == want[0, 5:15].tolist()
        got, _ = index.query(x[:2], 10, exclude=np.asarray(sorted(exclude)))
        assert not np.isin(got, list(exclude)).any() and got.shape == (2, 10)


def test_exclude_almost_everything(monkeypatch):
    x = _data(30)
    index = VectorIndex.build(np.arange(30), x)
    index.remove([29])
    for limit in (0, 1_000_000):
        monkeypatch.setattr(VectorIndex, "OVERFETCH_MAX_EXCLUDE", limit)
        got, _ = index.query(x[0], 10, exclude=list(range(3, 40)))  # 29 removed anyway
        assert got.shape == (1, 3) and sorted(got[0].tolist()) == [0, 1, 2]
        got, _ = index.query(x[0], 10, exclude=range(30))
        assert got.shape == (1, 0)


def test_only_searches_among_the_given_ids(data, index):
    ids, x = data
    keep = ids[::9]  # one item in nine, like one class of nine
    want, want_d = _exact(x[::9], keep, x[:2], 10)
    got, d = index.query(x[:2], 10, only=keep.tolist())
    assert got.tolist() == want.tolist() and np.allclose(d, want_d, atol=1e-4)
    # the query's own entry excluded too, and ids that are not in the index ignored
    got, _ = index.query(x[0], 10, exclude=[int(ids[0])], only=set(keep.tolist()) | {10**9})
    assert got[0].tolist() == _exact(x[::9], keep, x[:1], 11)[0][0, 1:].tolist()
    # fewer allowed than k: all of them, nearest first; none allowed: nothing
    got, d = index.query(x[0], 10, only=keep[:4])
    assert sorted(got[0].tolist()) == sorted(keep[:4].tolist()) and list(d[0]) == sorted(d[0])
    assert index.query(x[0], 10, only=[])[0].shape == (1, 0)
    index._index = FindsTooFew(index._index)  # hnswlib finding too few
    got, _ = index.query(x[:2], 10, only=keep)  # the exact fallback keeps to the allowed ids
    assert got.tolist() == want.tolist()
    # mostly ids the index does not hold (unknown, removed): the ones it holds
    index._index = index._index.inner
    index.remove(keep[4:6])
    got, _ = index.query(x[0], 10, only=np.r_[keep[:6], 10**9 + np.arange(5000)])
    assert sorted(got[0].tolist()) == sorted(keep[:4].tolist())


def test_bad_input_raises_value_error(index):
    with pytest.raises(ValueError, match="32 dimensions"):
        index.add([1], _data(1, dim=32))
    with pytest.raises(ValueError, match="dimensions"):
        index.query(_data(2, dim=8), 3)
    with pytest.raises(ValueError, match="2 ids for 3 vectors"):
        index.add([1, 2], _data(3))
    with pytest.raises(ValueError, match="negative"):
        index.add([-1], _data(1))
    with pytest.raises(ValueError, match="NaN"):
        index.add([1], np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match="k must"):
        index.query(_data(1), -1)
    with pytest.raises(ValueError):
        VectorIndex(0)


def test_set_ef():
    index = VectorIndex(DIM, ef_search=10)
    index.set_ef(123)
    assert index.ef_search == 123
    with pytest.raises(ValueError):
        index.set_ef(0)


def test_queries_while_another_thread_adds():
    x = _data(4000)
    index = VectorIndex.build(np.arange(100), x[:100])
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                got, _ = index.query(x[:4], 5)
                assert got.shape == (4, 5)
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=search)
    worker.start()
    try:
        for lo in range(100, 4000, 100):
            index.add(np.arange(lo, lo + 100), x[lo : lo + 100])
    finally:
        stop.set()
        worker.join()
    assert not errors and len(index) == 4000


# -- files ----------------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, data, index):
    ids, x = data
    index.remove(ids[:7])
    index.set_ef(300)
    path = tmp_path / "v.hnsw"
    index.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.hnsw", "v.hnsw.json"]
    loaded = VectorIndex.load(path, DIM)
    assert len(loaded) == len(index) == 1993
    assert loaded.ef_search == 300 and loaded.m == index.m
    assert (loaded.ids() == index.ids()).all()
    q = _data(40, seed=3)
    a, da = index.query(q, 10)
    b, db = loaded.query(q, 10)
    assert (a == b).all()
    np.testing.assert_array_equal(da, db)
    assert ids[0] not in loaded
    loaded.set_ef(50)
    loaded.add([5], x[:1])  # still usable: grows, replaces
    assert 5 in loaded and len(loaded) == 1994


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "v.hnsw"
    VectorIndex.build([1], _data(1)).save(path)
    VectorIndex.build([1, 2], _data(2)).save(path)
    assert len(VectorIndex.load(path, DIM)) == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["v.hnsw", "v.hnsw.json"]


def test_an_empty_index_round_trips(tmp_path):
    path = tmp_path / "e.hnsw"
    VectorIndex(DIM).save(path)
    loaded = VectorIndex.load(path, DIM)
    assert len(loaded) == 0
    assert loaded.query(_data(1), 3)[0].shape == (1, 0)


@pytest.fixture
def saved(tmp_path, data) -> Path:
    ids, x = data
    path = tmp_path / "v.hnsw"
    VectorIndex.build(ids[:500], x[:500]).save(path)
    return path


def _load_error(path: Path, dim: int = DIM) -> str:
    with pytest.raises(IndexFileError) as info:
        VectorIndex.load(path, dim)
    assert isinstance(info.value, SampleToolError)
    assert str(path) in str(info.value)
    return info.value.reason


def test_load_missing_file(tmp_path):
    assert "does not exist" in _load_error(tmp_path / "nope.hnsw")


def test_load_truncated_file(saved):
    raw = saved.read_bytes()
    saved.write_bytes(raw[: len(raw) // 2])
    assert "truncated" in _load_error(saved)


def test_load_zero_bytes(saved):
    saved.write_bytes(b"")
    assert "empty" in _load_error(saved)


def test_load_random_bytes_of_the_right_length(saved):
    size = saved.stat().st_size
    saved.write_bytes(np.random.default_rng(0).bytes(size))
    assert "checksum" in _load_error(saved)


def test_load_random_bytes_without_a_sidecar(tmp_path):
    path = tmp_path / "junk.hnsw"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    assert "missing" in _load_error(path)


def test_load_one_flipped_byte(saved):
    raw = bytearray(saved.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    saved.write_bytes(bytes(raw))
    assert "checksum" in _load_error(saved)


def test_load_with_the_wrong_dimension(tmp_path):
    path = tmp_path / "d32.hnsw"
    VectorIndex.build(np.arange(50), _data(50, dim=32)).save(path)
    reason = _load_error(path, dim=64)
    assert "32-dimensional" in reason and "64" in reason
    assert len(VectorIndex.load(path, 32)) == 50


def test_load_with_a_damaged_or_foreign_sidecar(saved):
    side = sidecar_path(saved)
    doc = json.loads(side.read_text())
    side.write_text(json.dumps({**doc, "space": "cosine"}))
    assert "cosine" in _load_error(saved)
    side.write_text(json.dumps({**doc, "format_version": 99}))
    assert "newer" in _load_error(saved)
    side.write_text(json.dumps({**doc, "dim": DIM * 2}))  # sidecar and header disagree
    assert f"{DIM}-dimensional" in _load_error(saved, dim=DIM * 2)
    side.write_text(json.dumps({k: v for k, v in doc.items() if k != "crc32"}))
    assert "incomplete" in _load_error(saved)
    side.write_text("{not json")
    assert "damaged" in _load_error(saved)
    side.unlink()
    assert "missing" in _load_error(saved)


def test_load_of_an_index_from_another_file(tmp_path, saved):
    """An index file swapped under the sidecar (a crash between the two renames)."""
    other = tmp_path / "other.hnsw"
    VectorIndex.build(np.arange(499), _data(499)).save(other)
    saved.write_bytes(other.read_bytes())
    reason = _load_error(saved)
    assert "truncated" in reason or "checksum" in reason


def test_exact_search_when_hnswlib_finds_too_few(data, index, monkeypatch):
    """hnswlib raises when it finds fewer than k live items; `query` then searches exactly."""
    ids, x = data
    index.remove(ids[1:3])
    index._index = FindsTooFew(index._index)
    got, dist = index.query(x[:4], 5, exclude={int(ids[3])})
    keep = ~np.isin(ids, ids[1:4])
    want, want_d = _exact(x[keep], ids[keep], x[:4], 5)
    assert (got == want).all()
    np.testing.assert_allclose(dist, want_d, rtol=1e-5, atol=1e-5)
