"""The library: incremental scans, crash safety, corrupt files, similarity and duplicates."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sampletool.cli import main
from sampletool.errors import ModelError
from sampletool.library import Library, LibraryError
from sampletool.library.catalogue import CatalogueError
from sampletool.library.scan import scan_lock
from sampletool.models.calibration import Calibration
from sampletool.paths import display_path
from sampletool.progress import Cancelled
from sampletool.tool import SoundSampleTool
from tests.corpus import damaged_catalogues
from tests.helpers import noise_burst, tone, write


@pytest.fixture(scope="module")
def tool(tiny_bundle):
    return SoundSampleTool(tiny_bundle, device="cpu")


def make_library(root: Path, n: int = 12, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        kind = i % 3
        if kind == 0:
            y = tone(rng.uniform(50, 120), rng.uniform(0.3, 1.0), decay=6)
        elif kind == 1:
            y = tone(rng.uniform(1500, 4000), rng.uniform(0.2, 0.6), decay=10)
        else:
            y = noise_burst(rng.uniform(0.1, 0.5), seed=i)
        write(root / f"kind{kind}" / f"s{i:03d}.wav", y)
    return root


def lib_at(tmp_path, tool, root=None, **kw) -> Library:
    return Library(root or tmp_path / "lib", tool.runtime, db_path=tmp_path / "db" / "cat.sqlite",
                   **kw)  # fmt: skip


def similar(lib: Library, *args, **kw) -> tuple[list[str], list[float], list[float]]:
    """`find_similar`'s entries as (files, onsets, distances)."""
    found = lib.find_similar(*args, **kw)
    return found.paths, found.onsets, found.distances


def consistent(lib: Library) -> dict:
    """The invariants a scan must keep, whatever happened before it."""
    db = lib.catalogue.db
    files = db.execute("SELECT count(*) FROM files").fetchone()[0]
    paths = db.execute("SELECT count(DISTINCT path) FROM files").fetchone()[0]
    segs = db.execute("SELECT count(*) FROM segments").fetchone()[0]
    vecs = db.execute("SELECT count(*) FROM vectors").fetchone()[0]
    orphans = db.execute(
        "SELECT count(*) FROM vectors v LEFT JOIN segments s ON s.id = v.segment_id "
        "WHERE s.id IS NULL"
    ).fetchone()[0]
    ok_without_segments = db.execute(
        "SELECT count(*) FROM files f WHERE error IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM segments s WHERE s.file_id = f.id)"
    ).fetchone()[0]
    assert files == paths and segs == vecs and orphans == 0 and ok_without_segments == 0
    assert len(lib.index) == vecs
    assert set(lib.index.ids().tolist()) == {r[0] for r in db.execute("SELECT id FROM segments")}
    return {"files": files, "segments": segs}


def test_first_scan_then_nothing_to_do(tmp_path, tool):
    make_library(tmp_path / "lib")
    (tmp_path / "lib" / "notes.txt").write_text("not audio")
    lib = lib_at(tmp_path, tool)
    r = lib.scan(workers=0)
    assert (r.indexed, r.skipped_unchanged, r.removed, r.failed) == (12, 0, 0, [])
    assert consistent(lib) == {"files": 12, "segments": 12}
    r = lib.scan(workers=0)
    assert (r.indexed, r.skipped_unchanged) == (0, 12)


def test_add_change_delete_move_and_fail_then_fix(tmp_path, tool):
    root = make_library(tmp_path / "lib")
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=2)
    moved_vec = lib.catalogue.vector_of(
        lib.catalogue.segments_of("kind0/s000.wav")[0][0], lib.model_id
    )

    write(root / "new" / "added.wav", tone(700, 0.4))  # add
    time.sleep(0.01)
    write(root / "kind1" / "s001.wav", noise_burst(0.8, seed=99))  # change
    (root / "kind2" / "s002.wav").unlink()  # delete
    (root / "moved").mkdir()
    os.rename(root / "kind0" / "s000.wav", root / "moved" / "renamed.wav")  # move
    (root / "bad.wav").write_bytes(os.urandom(1000))  # fails
    r = lib.scan(workers=2)
    assert (r.indexed, r.moved, r.removed) == (2, 1, 1)
    assert [f["path"] for f in r.failed] == [str(root / "bad.wav")]
    assert "not an audio file" in r.failed[0]["reason"]
    sid = lib.catalogue.segments_of("moved/renamed.wav")[0][0]
    assert np.array_equal(lib.catalogue.vector_of(sid, lib.model_id), moved_vec)  # not re-embedded
    consistent(lib)

    r = lib.scan(workers=0)  # the failed file is not retried while unchanged...
    assert r.indexed == 0 and r.skipped_unchanged == 13 and len(r.failed) == 1
    write(root / "bad.wav", tone(300, 0.5))  # ...and is once fixed
    r = lib.scan(workers=0)
    assert r.indexed == 1 and r.failed == []
    assert consistent(lib)["files"] == 13


def test_a_second_model_keeps_its_own_vectors(tmp_path, tool, tiny_bundle_no_classes, caplog):
    make_library(tmp_path / "lib", n=6)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    other = lib_at(tmp_path, SoundSampleTool(tiny_bundle_no_classes))
    r = other.scan(workers=0)
    assert r.indexed == 6 and other.index_path != lib.index_path
    assert lib.catalogue.count(lib.model_id)["vectors"] == 6
    with caplog.at_level(logging.INFO):
        again = lib_at(tmp_path, tool)  # the other model's scan left this index valid
    assert "rebuilt" not in caplog.text and len(again.index) == 6
    assert json.loads(lib.state_path.read_text())["generation"] == lib.catalogue.generation()
    assert lib.scan(workers=0).skipped_unchanged == 6


def test_find_similar_on_each_kind_of_target(tmp_path, tool):
    root = make_library(tmp_path / "lib")
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    entry = root / "kind0" / "s003.wav"
    files, onsets, dists = similar(lib, entry, 5)
    assert len(files) == 5 and str(entry) not in files and dists == sorted(dists)
    assert all(Path(f).exists() for f in files) and onsets == [0.0] * 5
    outside = write(tmp_path / "outside" / "copy.wav", np.asarray(
        __import__("soundfile").read(entry, dtype="float32")[0]))  # fmt: skip
    files2, _, d2 = similar(lib, outside, 3)
    assert files2[0] == str(entry) and d2[0] < 1e-3  # an identical sound outside the library
    import soundfile as sf

    arr = sf.read(entry, dtype="float32")[0]
    files3, _, d3 = similar(lib, arr, 3)
    assert files3[0] == str(entry) and d3[0] < 1e-3
    ids_all, _, dists_all = similar(lib, entry, 100)
    assert len(ids_all) == 11  # everything but the entry itself
    vec = tool.embed(entry)
    ref = sorted(np.linalg.norm(tool.embed(f) - vec) for f in ids_all)
    assert np.allclose(sorted(dists_all), ref, atol=1e-3)  # distances are Euclidean


def test_find_similar_of_the_same_kind(tmp_path, tiny_bundle_no_classes):
    tool = SoundSampleTool(device="cpu")  # the built-in model: its classifier tells these apart
    root = make_library(tmp_path / "lib")
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    snap = lib.snapshot()
    # the class each entry is grouped by: the model's, where it is sure
    kind = {p: tool.class_names[c] if c >= 0 else None
            for p, c in zip(snap.paths, snap.kinds, strict=True)}  # fmt: skip
    assert len(set(kind.values()) - {None}) > 1  # the filter has something to leave out
    sure = [Path(p) for p in snap.paths if kind[p]]
    entries = [sure[0], next(p for p in sure if kind[str(p)] != kind[str(sure[0])])]
    for entry in entries:
        found = lib.find_similar(entry, 20, same_kind=True)
        mine = found.query_class
        assert mine == kind[str(entry)] == tool.predict(entry)[1] and found.same_kind
        files, dists = found.paths, found.distances
        everything, _, all_dists = similar(lib, entry, 20)
        same = [(f, d) for f, d in zip(everything, all_dists, strict=True) if kind[f] == mine]
        assert list(zip(files, dists, strict=True)) == same  # the unfiltered list, filtered
        assert len(files) == sum(k == mine for k in kind.values()) - 1  # all of them, not itself
        assert lib.find_similar(entry, 2, same_kind=True).paths == files[:2]
    # a sound from outside, and the catalogue changing under the cached classes
    import soundfile as sf

    sound = sf.read(entry, dtype="float32")[0]
    outside = write(tmp_path / "outside" / "copy.wav", sound)
    reads = []
    runtime = lib.runtime
    real_clip = runtime.clip
    runtime.clip = lambda *a: reads.append(a) or real_clip(*a)  # counts; the real read runs
    found = lib.find_similar(outside, 1, same_kind=True)
    assert found.paths == [str(entry)] and found.query_class == mine
    assert len(reads) == 1  # the search, its filter and the app's status line share one read
    other_entry = next(p for p in sure if kind[str(p)] != mine)
    other = write(outside, np.asarray(sf.read(other_entry, dtype="float32")[0]))
    found = lib.find_similar(other, 1)  # a different sound in the same place is read again
    assert found.query_class == kind[str(other_entry)] and len(reads) == 2
    entry_reading = lib.find_similar(entry, 1)  # an entry's class is its stored one: no read
    assert entry_reading.query_class == mine and len(reads) == 2
    del runtime.clip
    copy = write(root / "copies" / "copy.wav", sound)
    lib.scan(workers=0)
    assert lib.find_similar(entry, 1, same_kind=True).paths == [str(copy)]
    plain = SoundSampleTool(tiny_bundle_no_classes, device="cpu")
    with pytest.raises(ModelError, match="no classifier"):
        Library(root, plain.runtime, db_path=tmp_path / "db2" / "c.sqlite").find_similar(
            entry, 3, same_kind=True
        )


def test_tool_api_find_similar(tmp_path, tiny_bundle):
    root = make_library(tmp_path / "lib", n=6)
    t = SoundSampleTool(tiny_bundle, library_dir=root)
    t.library  # noqa: B018  (opens the catalogue in the user's data dir: isolated by conftest)
    t.scan_library(workers=0)
    files, onsets, dists = t.find_similar(root / "kind1" / "s001.wav", num_similar=3)
    assert len(files) == 3 and str(root / "kind1" / "s001.wav") not in files
    same = t.find_similar(root / "kind1" / "s001.wav", 3, same_kind=True)
    found = t.library.find_similar(root / "kind1" / "s001.wav", 3, same_kind=True)
    assert same == (found.paths, found.onsets, found.distances)


def test_duplicates(tmp_path, tool):
    root = make_library(tmp_path / "lib")
    shutil.copy(root / "kind0" / "s000.wav", root / "kind0" / "copy of s000.wav")
    import soundfile as sf

    y, sr = sf.read(root / "kind1" / "s001.wav", dtype="float32")
    y2 = y + np.random.default_rng(0).normal(0, 1e-4, y.shape).astype(np.float32)
    sf.write(root / "kind1" / "s001 (near).wav", y2, sr, subtype="PCM_24")
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    d = lib.duplicates()
    assert d.exact == [
        sorted([str(root / "kind0" / "copy of s000.wav"), str(root / "kind0" / "s000.wav")])
    ]
    near_paths = [sorted(e["path"] for e in g) for g in d.near]
    assert (
        sorted([str(root / "kind1" / "s001 (near).wav"), str(root / "kind1" / "s001.wav")])
        in near_paths
    )
    assert all(str(root / "kind0" / "copy of s000.wav") not in g for g in near_paths)


def test_missing_or_truncated_index_is_rebuilt_silently(tmp_path, tool, caplog):
    make_library(tmp_path / "lib", n=6)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    expected = lib.find_similar(tmp_path / "lib" / "kind0" / "s000.wav", 3)
    lib.close()
    data = lib.index_path.read_bytes()
    lib.index_path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.INFO):
        lib2 = lib_at(tmp_path, tool)
    assert "rebuilt from the catalogue" in caplog.text
    assert lib2.find_similar(tmp_path / "lib" / "kind0" / "s000.wav", 3) == expected
    lib2.close()
    lib.index_path.unlink()
    lib3 = lib_at(tmp_path, tool)
    assert len(lib3.index) == 6 and lib.index_path.exists()


def test_two_catalogues_in_one_folder_keep_their_own_index(tmp_path, tool):
    roots = [make_library(tmp_path / name, n=6, seed=seed) for seed, name in enumerate("ab")]
    dbs = [tmp_path / "db" / f"{name}.sqlite" for name in ("a", "b")]
    for root, db in zip(roots, dbs, strict=True):
        # the same generation and count in both: 1 and 6
        Library(root, tool.runtime, db_path=db).scan(workers=0)
    for root, db in zip(roots, dbs, strict=True):
        lib = Library(root, tool.runtime, db_path=db)  # loads its index from disk
        target = root / "kind0" / "s000.wav"
        files, _, dists = similar(lib, target, 5)
        exact = sorted((float(np.linalg.norm(tool.embed(f) - tool.embed(target))), f)
                       for f in map(str, root.rglob("*.wav")) if f != str(target))  # fmt: skip
        assert files == [f for _, f in exact]
        assert np.allclose(dists, [d for d, _ in exact], atol=1e-3)
        lib.close()
    assert len(list((tmp_path / "db").glob("*.hnsw"))) == 2


def test_a_read_only_catalogue_is_not_called_damaged(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=3)
    db = tmp_path / "db" / "cat.sqlite"
    lib_at(tmp_path, tool).scan(workers=0)
    db.chmod(0o444)
    kept = db.read_bytes()
    cmd = [sys.executable, "-m", "sampletool", "index", str(root), "--model",
           str(tool.runtime.path), "--db", str(db), "--workers", "0"]  # fmt: skip
    if os.geteuid() == 0:  # root writes anyway: drop the capabilities that let it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to take write access away")
        drop = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *cmd]
    for extra in ([], ["--rebuild"]):
        run = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and "is read-only" in run.stderr, run.stderr
        assert "--rebuild" not in run.stderr  # a fresh catalogue would not help
    assert db.read_bytes() == kept and not list(db.parent.glob("*.damaged-*"))
    # A new catalogue in a folder that cannot be written (a read-only drive) says so too, not
    # "unable to open database file; try again, or free disk space".
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    new = [*cmd[: cmd.index("--db") + 1], str(locked / "new.sqlite"), "--workers", "0"]
    run = subprocess.run(new, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "new.sqlite is read-only" in run.stderr, run.stderr
    assert "free disk space" not in run.stderr


def test_an_audio_file_given_as_the_catalogue_is_refused_and_never_moved_aside(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=2)
    sample = write(tmp_path / "kick.wav", tone(60, 0.3, decay=8))
    kept = sample.read_bytes()
    args = ["index", str(root), "--model", str(tool.runtime.path), "--db", str(sample),
            "--workers", "0"]  # fmt: skip
    for extra in ([], ["--rebuild"]):  # the advice a damaged catalogue gets would lose it
        with pytest.raises(CatalogueError, match="is an audio file \\(WAV\\), not a catalogue"):
            Library(root, tool.runtime, db_path=sample, rebuild=bool(extra))
        assert main([*args, *extra]) == 2
    assert sample.read_bytes() == kept  # nothing moved aside or written in its place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kick.wav", "lib"]


def test_corrupt_or_newer_catalogue(tmp_path, tool, capsys):
    make_library(tmp_path / "lib", n=3)
    db = tmp_path / "db" / "cat.sqlite"
    db.parent.mkdir()
    db.write_bytes(os.urandom(5000))
    with pytest.raises(CatalogueError, match="not an SQLite database.*--rebuild") as e:
        lib_at(tmp_path, tool)
    assert e.value.rebuildable
    args = ["index", str(tmp_path / "lib"), "--model", str(tool.runtime.path), "--db", str(db),
            "--workers", "0"]  # fmt: skip
    assert main(args) == 2
    assert "--rebuild" in capsys.readouterr().err
    assert main([*args, "--rebuild", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexed"] == 3
    assert any(p.name.startswith("cat.sqlite.damaged-") for p in db.parent.iterdir())
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(CatalogueError, match="newer Sample Tool"):
        lib_at(tmp_path, tool)


def test_missing_library_folder(tmp_path, tool):
    with pytest.raises(LibraryError, match="does not exist"):
        Library(tmp_path / "nope", tool.runtime, db_path=tmp_path / "c.sqlite")


def test_symlink_loop_and_vanishing_files_are_not_fatal(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=3)
    os.symlink(root, root / "kind0" / "loop")
    os.symlink(root / "gone.wav", root / "dangling.wav")
    lib = lib_at(tmp_path, tool)
    r = lib.scan(workers=0)
    assert r.indexed == 3
    assert any("dangling.wav" in f["path"] for f in r.failed)


def test_two_scans_at_once_and_queries_during_a_scan(tmp_path, tool):
    make_library(tmp_path / "lib", n=30)
    lib = lib_at(tmp_path, tool)
    other = lib_at(tmp_path, tool)
    started, results = threading.Event(), {}

    def progress(done, total, _):
        started.set()
        time.sleep(0.05)

    th = threading.Thread(target=lambda: results.setdefault("r", lib.scan(0, progress)))
    th.start()
    started.wait(30)
    with pytest.raises(LibraryError, match="another scan"):
        other.scan(workers=0)
    th.join()
    assert results["r"].indexed == 30
    reader = lib_at(tmp_path, tool)  # a fresh reader sees the finished scan
    assert len(reader.find_similar(tmp_path / "lib" / "kind0" / "s000.wav", 5).paths) == 5


def _wait_until_catalogued(proc: subprocess.Popen, db: Path, n: int, seconds: float = 120) -> None:
    """Until the catalogue `db` that `proc` writes holds `n` files (or `proc` ends, or the
    time is up). The file is only opened once it exists: opening would create it."""
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                con = sqlite3.connect(db, timeout=5)
                found = con.execute("SELECT count(*) FROM files").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                found = 0
            if found >= n:
                return
        time.sleep(0.02)


def test_sigkill_during_a_scan_then_resume(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=200)
    db = tmp_path / "db" / "cat.sqlite"
    cmd = [sys.executable, "-m", "sampletool", "index", str(root), "--model",
           str(tool.runtime.path), "--db", str(db), "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_catalogued(proc, db, 64)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    lib = lib_at(tmp_path, tool)
    before = consistent(lib)["files"]  # the index was rebuilt to match the catalogue
    assert 0 < before < 200, "the scan was not interrupted mid-way"
    r = lib.scan(workers=2)
    assert r.indexed == 200 - before and r.skipped_unchanged == before
    assert consistent(lib) == {"files": 200, "segments": 200}


def test_cli_index_similar_duplicates_json(tmp_path, tool, capsys):
    root = make_library(tmp_path / "lib", n=6)
    db = tmp_path / "db" / "c.sqlite"
    common = ["--model", str(tool.runtime.path), "--db", str(db)]
    assert main(["index", str(root), *common, "--json", "--workers", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"indexed", "skipped_unchanged", "removed", "failed", "seconds"} <= set(summary)
    assert summary["indexed"] == 6
    assert main(["similar", str(root / "kind0" / "s000.wav"), "--library", str(root), *common,
                 "-k", "3", "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert [set(r) for r in rows] == [{"path", "onset", "distance"}] * 3
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    assert main(["duplicates", "--library", str(root), *common, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"exact", "near", "threshold"}
    assert main(["duplicates", "--library", str(root), *common, "--threshold", "-1"]) == 2
    assert "--threshold must be a distance >= 0" in capsys.readouterr().err
    # An unreadable target is an unreadable audio file, as in every command: exit 1, one line
    assert main(["similar", str(tmp_path / "nope.wav"), "--library", str(root), *common]) == 1
    assert capsys.readouterr().err == f"sampletool: {tmp_path / 'nope.wav'}: file not found\n"
    # --same-kind: the API's filtered list (the tiny model puts all six in one class)
    entry = root / "kind0" / "s000.wav"
    assert main(["similar", str(entry), "--library", str(root), *common, "-k", "3", "--json",
                 "--same-kind"]) == 0  # fmt: skip
    lib = Library(root, tool.runtime, db_path=db)
    want = lib.find_similar(entry, 3, same_kind=True).paths
    lib.close()
    assert [r["path"] for r in json.loads(capsys.readouterr().out)] == want and len(want) == 3


def test_cli_same_kind_needs_a_classifier(tmp_path, tiny_bundle_no_classes, capsys):
    root = make_library(tmp_path / "lib", n=3)
    common = ["--model", str(tiny_bundle_no_classes), "--db", str(tmp_path / "c.sqlite")]
    assert main(["index", str(root), *common, "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["similar", str(root / "kind0" / "s000.wav"), "--library", str(root), *common,
                 "--same-kind"]) == 2  # fmt: skip
    assert "no classifier" in capsys.readouterr().err


def test_cli_similar_on_an_empty_or_other_models_library(tmp_path, tool, tiny_bundle_no_classes,
                                                        capsys):  # fmt: skip
    root = tmp_path / "lib"
    root.mkdir()
    common = ["--model", str(tool.runtime.path), "--db", str(tmp_path / "c.sqlite")]
    query = ["similar", str(write(tmp_path / "q.wav", tone(80, 0.3))), "--library", str(root)]
    assert main([*query, *common, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "the library is not indexed yet: index it first (sampletool " in err
    assert not (tmp_path / "c.sqlite").exists()  # refused: no catalogue made for it
    assert main(["duplicates", "--library", str(root), *common]) == 2
    assert "not indexed yet" in capsys.readouterr().err and not (tmp_path / "c.sqlite").exists()
    assert main(["index", str(root), *common, "--workers", "0"]) == 0
    capsys.readouterr()
    assert main([*query, *common, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "the library is empty: index it first (sampletool index " in err
    (root / "broken.wav").write_bytes(b"RIFF????WAVEjunk")
    assert main(["index", str(root), *common, "--workers", "0"]) == 0
    capsys.readouterr()
    assert main([*query, *common]) == 2
    assert "none of the library's 1 files could be read" in capsys.readouterr().err
    (root / "broken.wav").unlink()
    write(root / "only.wav", tone(90, 0.3))
    assert main(["index", str(root), *common, "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["similar", str(root / "only.wav"), "--library", str(root), *common]) == 0
    assert capsys.readouterr().out == "no other entries in the library\n"
    other = ["--model", str(tiny_bundle_no_classes), "--db", str(tmp_path / "c.sqlite")]
    assert main([*query, *other]) == 2
    err = capsys.readouterr().err
    assert "the library is not indexed with model 'plain' yet" in err
    assert f"(sampletool index {root} --model {tiny_bundle_no_classes} --db " in err


def _loop(
    seconds: float = 6.0, sr: int = 16000, every: float = 0.5
) -> tuple[np.ndarray, list[float]]:
    y = np.zeros(int(seconds * sr), np.float32)
    onsets = list(np.arange(0.25, seconds - 0.5, every))
    for i, t in enumerate(onsets):
        hit = tone(80 if i % 2 == 0 else 1500, 0.3, decay=20) * 1.5
        s = int(t * sr)
        y[s : s + hit.size] += hit
    return y, onsets


def test_segmented_scan_makes_one_entry_per_onset(tmp_path, tool):
    root = tmp_path / "lib"
    y, onsets = _loop()
    write(root / "loops" / "beat.wav", y)
    write(root / "shots" / "kick.wav", tone(70, 0.5, decay=8))
    lib = lib_at(tmp_path, tool, segmentation=True)
    r = lib.scan(workers=2)
    segs = lib.catalogue.segments_of("loops/beat.wav")
    found = [o for _, o in segs]
    assert len(found) == len(onsets)
    assert np.allclose(found, onsets, atol=0.03)
    assert r.segments == len(onsets) + 1 and len(lib.catalogue.segments_of("shots/kick.wav")) == 1
    files, offs, _ = similar(lib, root / "shots" / "kick.wav", 20)
    assert sorted(o for f, o in zip(files, offs, strict=True) if f.endswith("beat.wav")) == found
    consistent(lib)


def test_cancel_stops_a_scan_and_the_next_one_finishes_it(tmp_path, tool):
    make_library(tmp_path / "lib", n=150)
    lib = lib_at(tmp_path, tool)
    cancel = threading.Event()
    seen = []

    def progress(done, total, _):
        seen.append(done)
        if done >= 10:
            cancel.set()

    with pytest.raises(Cancelled, match="next scan carries on") as stopped:
        lib.scan(workers=2, progress=progress, cancel=cancel)
    r = stopped.value.partial
    assert r.cancelled and 10 <= r.indexed < 150
    assert seen[-1] < 150 and seen == sorted(seen)
    consistent(lib)
    r2 = lib.scan(workers=2)
    assert r2.indexed == 150 - r.indexed and not r2.cancelled
    assert consistent(lib)["files"] == 150


def test_two_processes_scan_and_query_at_once(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=300)
    db = tmp_path / "db" / "cat.sqlite"
    base = [sys.executable, "-m", "sampletool"]
    common = ["--model", str(tool.runtime.path), "--db", str(db)]
    # A scan in this process holds the library: one in another process is refused.
    holder = lib_at(tmp_path, tool)
    with scan_lock(holder._lock_path, holder.root):
        second = subprocess.run([*base, "index", str(root), *common], capture_output=True,
                                text=True, timeout=120)  # fmt: skip
    assert second.returncode == 2 and "another scan" in second.stderr
    # A query in another process while a scan writes: it answers from what is committed.
    first = subprocess.Popen([*base, "index", str(root), *common, "--workers", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None:
            con = sqlite3.connect(db, timeout=5)
            n = con.execute("SELECT count(*) FROM files").fetchone()[0]
            con.close()
            if n:
                break
            time.sleep(0.02)
        query = subprocess.run([*base, "similar", str(root / "kind0" / "s000.wav"), "--library",
                                str(root), *common, "--json"], capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert query.returncode == 0, query.stderr
    assert isinstance(json.loads(query.stdout), list)
    assert consistent(lib_at(tmp_path, tool))["files"] == 300


def test_turning_segmentation_on_resegments_indexed_files(tmp_path, tool):
    y, onsets = _loop()
    write(tmp_path / "lib" / "beat.wav", y)
    lib_at(tmp_path, tool).scan(workers=0)
    lib = lib_at(tmp_path, tool, segmentation=True)
    r = lib.scan(workers=0)
    assert r.indexed == 1 and len(lib.catalogue.segments_of("beat.wav")) == len(onsets)
    assert lib.scan(workers=0).skipped_unchanged == 1  # and then it is stable
    consistent(lib)
    lib.close()
    # The library remembers it: opened without saying (the app, a plain `index`), it keeps
    # the segments; turned off, it goes back to one entry per file.
    again = lib_at(tmp_path, tool)
    assert again.segmentation and again.scan(workers=0).skipped_unchanged == 1
    # A catalogue from before the setting was kept: its segmented files say it was on.
    with again.catalogue.transaction() as db:
        db.execute("DELETE FROM meta WHERE key = 'setting.segmentation'")
    again.close()
    again = lib_at(tmp_path, tool)
    assert again.segmentation and again.scan(workers=0).skipped_unchanged == 1
    assert again.catalogue.setting("segmentation") == "on"
    again.close()
    off = lib_at(tmp_path, tool, segmentation=False)
    assert off.scan(workers=0).indexed == 1 and len(off.catalogue.segments_of("beat.wav")) == 1
    off.close()
    assert not lib_at(tmp_path, tool).segmentation
    db = str(tmp_path / "db" / "cat.sqlite")
    common = ["--model", str(tool.runtime.path), "--db", db, "--workers", "0", "--json"]
    for flags, entries in (["--segment"], len(onsets)), ([], len(onsets)), (["--no-segment"], 1):
        assert main(["index", str(tmp_path / "lib"), *common, *flags]) == 0
        assert len(lib_at(tmp_path, tool).catalogue.segments_of("beat.wav")) == entries


def test_a_scan_cancelled_before_embedding_says_so(tmp_path, tool):
    make_library(tmp_path / "lib", n=3)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled) as stopped:
        lib_at(tmp_path, tool).scan(workers=0, cancel=cancel)
    assert stopped.value.partial.cancelled and stopped.value.partial.indexed == 0


def test_snapshot_holds_every_entry_with_vector_probs_and_failures(tmp_path, tiny_bundle):
    from sampletool.tool import SoundSampleTool

    root = tmp_path / "lib"
    write(root / "a" / "low.wav", tone(110, 0.8, decay=4))
    write(root / "b" / "hat.wav", noise_burst())
    (root / "b" / "bad.wav").write_bytes(b"not audio")
    tool = SoundSampleTool(tiny_bundle)
    lib = Library(root, tool.runtime, db_path=tmp_path / "db" / "cat.sqlite")
    try:
        lib.scan(workers=1)
        snap = lib.snapshot()
    finally:
        lib.close()
    assert len(snap) == 2 and sorted(snap.ids.tolist()) == snap.ids.tolist()
    assert {p.rsplit("/", 1)[-1] for p in snap.paths} == {"low.wav", "hat.wav"}
    assert snap.vectors.shape == (2, tool.latent_dim) and np.isfinite(snap.vectors).all()
    assert snap.probs.shape == (2, 3) and np.allclose(snap.probs.sum(1), 1, atol=1e-4)
    assert snap.class_names == tool.class_names and set(snap.predicted) <= {0, 1, 2}
    assert snap.durations[snap.paths.index(next(p for p in snap.paths if "low" in p))] == (
        pytest.approx(0.8, abs=0.01)
    )
    assert [p.rsplit("/", 1)[-1] for p, _ in snap.failures] == ["bad.wav"]


def test_a_rescan_of_a_folder_that_is_gone_keeps_the_catalogue(tmp_path, tiny_bundle):
    from sampletool.tool import SoundSampleTool

    root = tmp_path / "drive" / "lib"
    write(root / "a.wav", tone(110, 0.5, decay=4))
    write(root / "b.wav", tone(220, 0.5, decay=4))
    tool = SoundSampleTool(tiny_bundle)
    lib = Library(root, tool.runtime, db_path=tmp_path / "db" / "cat.sqlite")
    try:
        lib.scan(workers=1)
        assert len(lib.snapshot()) == 2
        (tmp_path / "drive").rename(tmp_path / "unplugged")
        with pytest.raises(LibraryError, match="not there any more"):
            lib.scan(workers=1)
        assert len(lib.snapshot()) == 2  # nothing was dropped
    finally:
        lib.close()


def _as_schema_1(db_path: Path) -> None:
    """Turn a catalogue into one written before latents were stored (schema 1)."""
    db = sqlite3.connect(db_path)
    db.executescript("""
        BEGIN;
        CREATE TABLE v1 (
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL, vector BLOB NOT NULL, probs BLOB,
            PRIMARY KEY (segment_id, model_id)) WITHOUT ROWID;
        INSERT INTO v1 SELECT segment_id, model_id, vector, probs FROM vectors;
        DROP TABLE vectors;
        ALTER TABLE v1 RENAME TO vectors;
        CREATE INDEX vectors_model ON vectors(model_id);
        UPDATE meta SET value = '1' WHERE key = 'schema_version';
        COMMIT;
    """)
    db.close()


def test_a_scan_stores_each_entrys_latent_so_blending_reads_no_audio(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=6)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=2)  # encoded in worker processes
    entry = root / "kind1" / "s004.wav"
    outside = write(tmp_path / "elsewhere.wav", tone(300, 0.4, decay=5))
    expected = {p: tool.latent(p) for p in (entry, outside)}
    reads = []
    real_clip = lib.runtime.clip
    lib.runtime.clip = lambda *a: reads.append(a) or real_clip(*a)
    try:
        np.testing.assert_allclose(lib.latent(entry), expected[entry], atol=1e-5)
        assert reads == []  # from the catalogue
        np.testing.assert_allclose(lib.latent(outside), expected[outside], atol=1e-6)
        assert len(reads) == 1  # a sound from outside is read
        lib.latent(entry, offset=0.1)  # not an entry's onset: read from the file
        assert len(reads) == 2
    finally:
        del lib.runtime.clip


def test_a_catalogue_from_before_latents_is_migrated_and_re_embedded(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=6)
    entry = root / "kind0" / "s003.wav"
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    before = similar(lib, entry, 3)
    lib.close()
    _as_schema_1(lib.db_path)
    lib = lib_at(tmp_path, tool)  # migrated in place when opened
    db = lib.catalogue.db
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("2",)
    assert db.execute("SELECT count(*), count(latent) FROM vectors").fetchone() == (6, 0)
    assert similar(lib, entry, 3) == before  # the old vectors serve search at once
    np.testing.assert_allclose(lib.latent(entry), tool.latent(entry), atol=1e-5)  # read
    report = lib.scan(workers=0)  # the next scan re-embeds, keeping the entries
    assert report.indexed == 6 and report.skipped_unchanged == 0
    assert db.execute("SELECT count(*), count(latent) FROM vectors").fetchone() == (6, 6)
    assert consistent(lib)["files"] == 6 and similar(lib, entry, 3) == before
    assert lib.scan(workers=0).skipped_unchanged == 6


def test_the_users_class_wins_and_outlives_rescans_moves_and_model_switches(tmp_path, tiny_bundle):
    tool = SoundSampleTool(device="cpu")
    root = make_library(tmp_path / "lib", n=9)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    names = tool.class_names
    snap = lib.snapshot()
    row = snap.paths.index(str(root / "kind0" / "s000.wav"))
    model_says = names[snap.predicted[row]]
    mine = next(c for c in names if c != model_says)
    lib.set_class([root / "kind0" / "s000.wav", root / "kind0" / "s003.wav"], mine)
    snap = lib.snapshot()
    assert snap.user_set.sum() == 2 and snap.labels[row] == mine
    assert names[snap.classes[row]] == mine and names[snap.kinds[row]] == mine
    reading = snap.reading(row)
    assert reading.by_user and reading.name == mine and reading.model == model_says
    readings = dict((p, (c, conf)) for p, c, conf in snap.one_shot_readings())
    assert len(readings) == 9 and readings[snap.paths[row]] == (model_says, snap.confidence[row])
    assert reading.text() == f"{mine} (set by you)"
    # Same kind only groups by the user's class: the two corrected files find each other.
    found = lib.find_similar(root / "kind0" / "s000.wav", 5, same_kind=True)
    assert found.query_class == mine and found.same_kind
    assert found.paths == [str(root / "kind0" / "s003.wav")]
    # A rescan after an edit, a move, and another model: the class stays with the file.
    write(root / "kind0" / "s003.wav", tone(77, 0.5, decay=3))
    (root / "moved").mkdir()
    os.replace(root / "kind0" / "s000.wav", root / "moved" / "s000.wav")
    lib.scan(workers=0)
    kept = lib.corrections()
    assert kept == {str(root / "moved" / "s000.wav"): mine,
                                 str(root / "kind0" / "s003.wav"): mine}  # fmt: skip
    lib.close()
    other = Library(root, SoundSampleTool(tiny_bundle, device="cpu").runtime,
                    db_path=tmp_path / "db" / "cat.sqlite")  # fmt: skip
    other.scan(workers=0)
    assert other.snapshot().labels.count(mine) == 2 and other.corrections() == kept
    other.close()
    lib = lib_at(tmp_path, tool)
    lib.set_class([root / "moved" / "s000.wav"], None)  # taken away: the model's class is back
    snap = lib.snapshot()
    row = snap.paths.index(str(root / "moved" / "s000.wav"))
    assert snap.labels[row] is None and snap.classes[row] == snap.predicted[row]
    with pytest.raises(LibraryError, match="not a class"):
        lib.set_class([root / "kind1" / "s001.wav"], "didgeridoo")
    with pytest.raises(LibraryError, match="not in the library"):
        lib.set_class([tmp_path / "elsewhere.wav"], mine)


def test_classes_set_while_the_library_is_open_survive_another_program_reading_it(tmp_path,
                                                                                tool):  # fmt: skip
    """Setting a class opens a second connection beside the library's. Opening the file any
    other way than through SQLite (a header check with open()) dropped the library's locks, so
    the next program to close a connection on the catalogue (a `sampletool` command in a
    terminal) deleted its -wal file under the open library: the library went on reading the
    rows from before, and its next write failed with a disk I/O error."""
    root = make_library(tmp_path / "lib", n=3)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    names = tool.class_names
    lib.set_class([root / "kind0" / "s000.wav"], names[1])
    reader = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); " + (
        "print(c.execute('SELECT count(*) FROM labels').fetchone()[0]); c.close()"
    )
    run = subprocess.run([sys.executable, "-c", reader, str(lib.db_path)], capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    assert run.stdout.strip() == "1"
    assert Path(str(lib.db_path) + "-wal").exists()  # still the open library's
    lib.set_class([root / "kind1" / "s001.wav"], names[2])  # no disk I/O error
    assert lib.corrections() == {str(root / "kind0" / "s000.wav"): names[1],
                                 str(root / "kind1" / "s001.wav"): names[2]}  # fmt: skip
    assert lib.snapshot().labels.count(names[2]) == 1
    lib.close()
    lib = lib_at(tmp_path, tool)
    assert len(lib.corrections()) == 2
    lib.close()


def test_same_kind_does_not_filter_on_an_unsure_class(tmp_path):
    tool = SoundSampleTool(device="cpu")
    root = make_library(tmp_path / "lib", n=6)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    entry = root / "kind1" / "s001.wav"
    sure = lib.find_similar(entry, 5, same_kind=True)
    lib.runtime.calibration = Calibration(unsure_below=1.01)  # nothing is sure now
    lib._kinds = None
    try:
        found = lib.find_similar(entry, 5, same_kind=True)
        assert found.query_unsure and not found.same_kind
        assert found.query_class == sure.query_class  # the model's best guess, shown as such
        assert found.paths == lib.find_similar(entry, 5).paths  # nothing filtered out
        assert (lib.snapshot().kinds == -1).all()
    finally:
        lib.runtime.calibration = Calibration()
    # silence from outside: the model hears nothing, so nothing to keep to
    silent = write(tmp_path / "silence.wav", np.zeros(8000, np.float32))
    found = lib.find_similar(silent, 3, same_kind=True)
    assert found.query_class is None and not found.same_kind and len(found) == 3


def test_a_rebuilt_catalogue_keeps_the_classes_the_user_set(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=3)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    lib.set_class([root / "kind0" / "s000.wav"], tool.class_names[1])
    lib.close()
    con = sqlite3.connect(lib.db_path)  # a catalogue this version cannot use, but can read
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(CatalogueError):
        lib_at(tmp_path, tool)
    lib = lib_at(tmp_path, tool, rebuild=True)
    assert lib.corrections() == {str(root / "kind0" / "s000.wav"): tool.class_names[1]}
    lib.scan(workers=0)
    assert lib.snapshot().labels.count(tool.class_names[1]) == 1


# -- issue 24: names that are not UTF-8, damage inside the catalogue, one library per catalogue,
# -- a long-lived library, failures of the system's making ---------------------------------------


def test_a_file_name_that_is_not_utf8_is_indexed_searched_and_printed(tmp_path, tool, capsys):
    root = make_library(tmp_path / "lib", n=6)
    raw = os.fsencode(root) + b"/kick_caf\xe9.wav"  # Latin-1 'é': not valid UTF-8
    shutil.copy(root / "kind0" / "s000.wav", raw)
    name = os.fsdecode(raw)  # as Python holds it: 'kick_caf\udce9.wav'
    lib = lib_at(tmp_path, tool)
    r = lib.scan(workers=2)  # read in worker processes, like the CLI
    assert (r.indexed, r.failed) == (7, [])
    assert lib.snapshot().paths.count(name) == 1 and os.path.exists(name)
    assert display_path(name) == str(root / "kick_caf\ufffd.wav")  # what a label shows
    stored = lib.catalogue.db.execute("SELECT path FROM files WHERE typeof(path) = 'blob'")
    assert stored.fetchall() == [(b"kick_caf\xe9.wav",)]  # byte for byte
    found = lib.find_similar(name, 3)
    assert len(found) == 3 and name not in found.paths
    assert name in lib.find_similar(root / "kind0" / "s000.wav", 1).paths  # its twin
    lib.set_class([name], tool.class_names[2])
    assert lib.corrections() == {name: tool.class_names[2]}
    assert lib.scan(workers=0).skipped_unchanged == 7  # and then it is stable
    moved = os.fsencode(root) + b"/kick_\xff.wav"
    os.rename(raw, moved)
    r = lib.scan(workers=0)
    assert (r.moved, r.indexed, r.removed) == (1, 0, 0)
    assert lib.corrections() == {os.fsdecode(moved): tool.class_names[2]}
    consistent(lib)
    lib.close()
    # The command line reads it too, and prints it as its own bytes whatever the locale.
    db = tmp_path / "db" / "cat.sqlite"
    model = ["--model", str(tool.runtime.path)]
    assert main(["classify", os.fsdecode(moved), *model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["path"] == os.fsdecode(moved)
    assert main(["embed", os.fsdecode(moved), *model, "-o", str(tmp_path / "e.npy")]) == 0
    assert np.isfinite(np.load(tmp_path / "e.npy")).all()
    run = subprocess.run(
        [sys.executable, "-m", "sampletool", "similar", str(root / "kind0" / "s000.wav"),
         "--library", str(root), "--db", str(db), *model, "-k", "1"],
        capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip(b"\n").endswith(b"\t" + moved)


@pytest.fixture(scope="module")
def scanned_60(tmp_path_factory, tool) -> tuple[Path, Path]:
    """(library folder, catalogue) of 60 scanned files; copy the catalogue before changing it."""
    tmp = tmp_path_factory.mktemp("scanned")
    root = make_library(tmp / "lib", n=60)
    db = tmp / "db" / "cat.sqlite"
    lib = Library(root, tool.runtime, db_path=db)
    lib.scan(workers=0)
    lib.close()
    return root, db


@pytest.mark.parametrize("table", ["files", "segments", "vectors", "header"])
def test_damage_inside_the_catalogue_is_reported_and_rebuild_keeps_what_is_readable(
    tmp_path, tool, scanned_60, table, capsys
):
    root, template = scanned_60
    db = tmp_path / "db" / "cat.sqlite"
    db.parent.mkdir()
    shutil.copy(template, db)
    if table == "header":
        damaged_catalogues.damage_header(db)
    else:  # one page of the table: a middle leaf where it has several, else its only page
        damaged_catalogues.damage_table(db, table)
    with pytest.raises(CatalogueError, match="--rebuild") as e:
        Library(root, tool.runtime, db_path=db)
    assert e.value.rebuildable and str(db) in str(e.value)
    args = ["--library", str(root), "--model", str(tool.runtime.path), "--db", str(db)]
    for command in (["duplicates", *args], ["index", *args[1:], "--workers", "0"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(db) in err and "--rebuild" in err, err
    assert main(["index", *args[1:], "--workers", "0", "--rebuild", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] + report["skipped_unchanged"] == 60 and report["failed"] == []
    if table in ("files", "vectors"):  # tables of several pages: the others were kept
        assert 0 < report["indexed"] < 60
    assert len(list(db.parent.glob("cat.sqlite.damaged-*"))) == 1
    lib = Library(root, tool.runtime, db_path=db)
    assert consistent(lib) == {"files": 60, "segments": 60}
    entry = root / "kind0" / "s000.wav"
    assert similar(lib, entry, 5) == similar(Library(root, tool.runtime, db_path=template),
                                             entry, 5)  # fmt: skip
    assert lib.duplicates().exact == []


def test_a_rebuild_of_a_sound_catalogue_changes_nothing(tmp_path, tool, scanned_60):
    root, template = scanned_60
    db = tmp_path / "cat.sqlite"
    shutil.copy(template, db)
    lib = Library(root, tool.runtime, db_path=db, rebuild=True)
    assert lib.scan(workers=0).skipped_unchanged == 60
    assert not list(tmp_path.glob("*.damaged-*"))


def test_a_catalogue_belongs_to_one_library(tmp_path, tool, capsys):
    first = make_library(tmp_path / "first", n=4)
    second = make_library(tmp_path / "second", n=3, seed=2)
    db = tmp_path / "db" / "cat.sqlite"
    Library(first, tool.runtime, db_path=db).scan(workers=0)
    with pytest.raises(CatalogueError, match="catalogue of the library .*first") as e:
        Library(second, tool.runtime, db_path=db)
    assert not e.value.rebuildable
    common = ["--model", str(tool.runtime.path), "--db", str(db), "--workers", "0"]
    for extra in ([], ["--rebuild"]):
        assert main(["index", str(second), *common, *extra]) == 2
        err = capsys.readouterr().err
        assert "catalogue of the library" in err and str(first) in err
    lib = Library(first, tool.runtime, db_path=db)  # untouched, and its own folder still opens
    assert lib.catalogue.count()["files"] == 4
    lib.close()
    os.symlink(first, tmp_path / "link")  # the same folder by another name
    assert Library(tmp_path / "link", tool.runtime, db_path=db).scan(workers=0).removed == 0
    damaged_catalogues.claim_for(db, second)
    with pytest.raises(CatalogueError, match="catalogue of the library .*second"):
        Library(first, tool.runtime, db_path=db)


def test_a_library_open_for_long_sees_another_scan(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=12)
    reader = lib_at(tmp_path, tool)  # the app, open before the library was indexed
    entry = root / "kind0" / "s000.wav"
    assert reader.find_similar(entry, 5).paths == []  # nothing indexed yet
    writer = lib_at(tmp_path, tool)  # another process: its own connection and index
    writer.scan(workers=0)
    assert len(reader.snapshot()) == 12
    assert similar(reader, entry, 5) == similar(writer, entry, 5) and len(reader.index) == 12
    (root / "kind1" / "s001.wav").unlink()
    writer.scan(workers=0)
    assert str(root / "kind1" / "s001.wav") not in reader.find_similar(entry, 11).paths
    assert len(reader.find_similar(entry, 20)) == 10
    assert reader.duplicates().near == writer.duplicates().near


def _scan_without_read_access(root: Path, db: Path, tool) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sampletool", "index", str(root), "--model",
           str(tool.runtime.path), "--db", str(db), "--workers", "0", "--json"]  # fmt: skip
    if os.geteuid() == 0:  # root reads anyway: drop the capabilities that let it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to take read access away")
        drop = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_a_failure_of_the_systems_making_is_retried_at_every_scan(tmp_path, tool):
    root = make_library(tmp_path / "lib", n=3)
    locked = root / "kind0" / "s000.wav"
    (root / "bad.wav").write_bytes(os.urandom(1000))  # fails for its content
    locked.chmod(0o000)
    db = tmp_path / "db" / "cat.sqlite"
    run = _scan_without_read_access(root, db, tool)
    assert run.returncode == 0, run.stderr
    failed = {Path(f["path"]).name: f["reason"] for f in json.loads(run.stdout)["failed"]}
    assert "Permission denied" in failed["s000.wav"] and "bad.wav" in failed
    locked.chmod(0o644)  # fixed: its size and mtime are what they were
    lib = lib_at(tmp_path, tool)
    r = lib.scan(workers=0)
    assert r.indexed == 1 and [Path(f["path"]).name for f in r.failed] == ["bad.wav"]
    assert lib.scan(workers=0).skipped_unchanged == 4  # bad.wav is not read again
    consistent(lib)


def test_a_catalogue_from_before_retry_gets_it(tmp_path, tool):
    make_library(tmp_path / "lib", n=2)
    lib = lib_at(tmp_path, tool)
    lib.scan(workers=0)
    lib.close()
    con = sqlite3.connect(lib.db_path)
    con.execute("ALTER TABLE files DROP COLUMN retry")
    con.close()
    lib = lib_at(tmp_path, tool)
    assert lib.scan(workers=0).skipped_unchanged == 2
    columns = [r[1] for r in lib.catalogue.db.execute("PRAGMA table_info(files)")]
    assert columns[-1] == "retry"


# --- issue 24: dying and orphaned workers, long files (tests/corpus/bad_files.py) ---------------


def test_a_worker_that_dies_mid_scan_fails_its_file_and_the_scan_goes_on(tmp_path, tool,
                                                                         monkeypatch):  # fmt: skip
    from tests.corpus.bad_files import KillOnMarker, decoder_killer

    root = make_library(tmp_path / "lib", n=40)
    killer = decoder_killer(root / "kind1", "s017b.wav")
    frontend = tool.runtime.frontend()
    # The runtime's own frontend, run in the scan's workers, kills the one that reads `killer`.
    monkeypatch.setattr(tool.runtime, "frontend", lambda: KillOnMarker(frontend))
    lib = lib_at(tmp_path, tool)
    r = lib.scan(workers=2)
    assert r.indexed == 40 and not r.cancelled
    [failed] = r.failed
    assert failed["path"] == str(killer)
    assert failed["reason"].startswith("the decoder process died (signal 9, SIGKILL")
    assert consistent(lib) == {"files": 41, "segments": 40}
    assert lib.scan(workers=2).skipped_unchanged == 41  # the culprit is not retried unchanged


def _grandchildren(pid: int) -> list[int]:
    """The processes whose parent's parent is `pid` (a pool's workers, under its forkserver)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    children = {p for p, pp in parents.items() if pp == pid}
    return [p for p, pp in parents.items() if pp in children]


def _start_index(tmp_path, tool, n: int) -> tuple[subprocess.Popen, Path]:
    root = make_library(tmp_path / "lib", n=n)
    db = tmp_path / "db" / "cat.sqlite"
    cmd = [sys.executable, "-m", "sampletool", "index", str(root), "--model",
           str(tool.runtime.path), "--db", str(db), "--workers", "2", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_catalogued(proc, db, 64)  # the first batch is committed: the workers are busy
    return proc, root


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_killing_a_worker_does_not_hang_the_index_command(tmp_path, tool):
    proc, _ = _start_index(tmp_path, tool, n=300)
    try:
        workers = _grandchildren(proc.pid)
        assert workers, "the scan finished before a worker could be killed"
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=180)  # it used to wait forever
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    # The worker's files in flight were run again one by one: none of them killed it.
    assert summary["indexed"] == 300 and summary["failed"] == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_orphaned_workers_quit_quietly_when_the_index_command_is_killed(tmp_path, tool):
    proc, _ = _start_index(tmp_path, tool, n=300)
    try:
        workers = _grandchildren(proc.pid)
        assert workers, "the scan finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        while any(Path(f"/proc/{w}").exists() for w in workers):  # the workers end too
            time.sleep(0.05)
        err = proc.stderr.read()
    finally:
        proc.kill()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_segmentation_covers_the_whole_of_a_long_file(tmp_path, tool):
    """More than 256 onsets, and some after 600 s: all of them are entries."""
    sr, every, seconds = 8000, 2.2, 660.0
    hits = np.arange(0.25, seconds - 1.0, every)
    y = np.zeros(int(seconds * sr), np.float32)
    for i, t in enumerate(hits):
        hit = tone(80 if i % 2 == 0 else 1500, 0.3, sr=sr, decay=20) * 1.5
        y[int(t * sr) : int(t * sr) + hit.size] += hit
    root = tmp_path / "lib"
    write(root / "hour.wav", y, sr, subtype="PCM_16")
    lib = lib_at(tmp_path, tool, segmentation=True)
    r = lib.scan(workers=2)
    onsets = [o for _, o in lib.catalogue.segments_of("hour.wav")]
    assert r.failed == [] and len(hits) > 256 and hits[-1] > 600
    assert len(onsets) == len(hits)
    assert np.allclose(onsets, hits, atol=0.03)
    consistent(lib)
