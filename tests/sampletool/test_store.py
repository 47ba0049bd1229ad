"""Managing installed models: describe, rename, delete, import and export, with real bundles."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from sampletool.errors import BundleError
from sampletool.fileio import exclusive_lock
from sampletool.models.bundle import TRAINING_LOCK, find_bundles, read_bundle, resolve_model
from sampletool.models.runtime import load_runtime
from sampletool.models.store import (
    delete_bundle,
    describe,
    export_bundle,
    free_name,
    import_bundle,
    is_builtin,
    list_models,
    name_problem,
    rename_bundle,
)
from tests.helpers import make_bundle


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """An empty user models folder (the user data folder points into tmp_path)."""
    monkeypatch.setenv("SAMPLETOOL_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "data" / "models"
    folder.mkdir(parents=True)
    return folder


def test_describe_lists_size_date_and_confusion(models):
    path = make_bundle(models / "drums", num_classes=3)
    (path / "confusion_matrix.json").write_text(
        json.dumps(
            {"classes": ["a", "b", "c"], "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "step": 9}
        )
    )
    entries = {e.info.name: e for e in list_models()}
    drums = entries["drums"]
    assert drums.size == sum(
        (path / n).stat().st_size
        for n in ("config.json", "weights.safetensors", "confusion_matrix.json")
    )
    assert drums.created and not drums.builtin and not drums.training
    assert drums.confusion["step"] == 9
    assert entries["default"].builtin and is_builtin(resolve_model(None))
    with exclusive_lock(path / TRAINING_LOCK):
        assert describe(read_bundle(path)).training


def test_names_are_checked(models):
    make_bundle(models / "Drums", num_classes=0)
    assert name_problem("") == "give the model a name"
    assert "exists already" in name_problem("drums")  # case does not make a new name
    assert "exists already" in name_problem("default")  # would hide the built-in model
    assert "cannot start" in name_problem("a/b") and "cannot start" in name_problem(".x")
    assert name_problem("My kit 2") is None
    assert free_name("Kit", {"kit", "Kit-2"}, "x") == "Kit-3"
    assert free_name("a/b", set(), "my-model") == "my-model"


def test_rename_moves_the_folder_and_the_name_and_keeps_it_loadable(models):
    path = make_bundle(models / "old", num_classes=3)
    new = rename_bundle(path, "New kit")
    assert new == models / "New kit" and not path.exists()
    assert read_bundle(new).name == "New kit" and resolve_model("New kit") == new
    assert load_runtime(new, device="cpu").class_names == ["class0", "class1", "class2"]
    make_bundle(models / "other", num_classes=0)
    with pytest.raises(BundleError, match="exists already"):
        rename_bundle(new, "other")
    with pytest.raises(BundleError, match="built-in"):
        rename_bundle(resolve_model(None), "mine")


def test_delete_refuses_the_built_in_model_and_a_run_in_training(models):
    path = make_bundle(models / "gone", num_classes=0)
    with exclusive_lock(path / TRAINING_LOCK), pytest.raises(BundleError, match="trained now"):
        delete_bundle(path)
    delete_bundle(path)
    assert not path.exists() and list(models.iterdir()) == []
    with pytest.raises(BundleError, match="built-in"):
        delete_bundle(resolve_model(None))
    assert resolve_model(None).is_dir()


def test_export_then_import_gives_the_same_model_under_a_free_name(models, tmp_path):
    path = make_bundle(models / "kit", num_classes=3)
    (path / "checkpoint.pt").write_bytes(b"not part of a bundle")
    archive = export_bundle(path, tmp_path / "out" / "kit")
    assert archive.name == "kit.zip"
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["kit/config.json", "kit/weights.safetensors"]
    info = import_bundle(archive)
    assert info.name == "kit-2" and info.path == models / "kit-2"
    a = load_runtime(path, device="cpu").module.state_dict()
    b = load_runtime(info.path, device="cpu").module.state_dict()
    assert all((a[k] == b[k]).all() for k in a)
    assert {i.name for i in find_bundles()} >= {"kit", "kit-2", "default"}


def test_import_from_a_folder_and_a_tar_archive_takes_only_the_bundle_files(models, tmp_path):
    src = make_bundle(tmp_path / "shared" / "Fresh", num_classes=0)
    (src / "checkpoint.pt").write_bytes(b"\x80\x04pickle")
    (src / "notes.txt").write_text("hi")
    info = import_bundle(src)
    assert sorted(p.name for p in info.path.iterdir()) == ["config.json", "weights.safetensors"]
    tgz = tmp_path / "fresh.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname="Fresh")
    assert import_bundle(tgz).name == "Fresh-2"


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def test_imports_that_are_not_models_are_refused_with_the_reason_and_leave_nothing(
    models, tmp_path
):
    good = make_bundle(tmp_path / "g", num_classes=3)
    config = (good / "config.json").read_bytes()
    weights = (good / "weights.safetensors").read_bytes()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "readme.txt").write_text("just a folder")
    other_config = json.loads(config)
    other_config["model"]["latent"] = 32
    cases = {
        "holds no config.json": plain,
        "neither a model folder": tmp_path / "x.wav",
        "not a readable zip": tmp_path / "broken.zip",
        "outside its folder": _zip(tmp_path / "evil.zip", {"../config.json": config}),
        "holds 2 models": _zip(tmp_path / "two.zip", {"a/config.json": config,
                                                       "b/config.json": config}),
        "not a Sample Tool model config": _zip(tmp_path / "foreign.zip",
                                               {"m/config.json": b'{"model": 1}'}),
        "damaged or not a safetensors": _zip(tmp_path / "pickle.zip", {
            "m/config.json": config, "m/weights.safetensors": b"\x80\x04pickled"}),
        "do not match its config": _zip(tmp_path / "mismatch.zip", {
            "m/config.json": json.dumps(other_config).encode(), "m/weights.safetensors": weights}),
        "does not exist": tmp_path / "nowhere",
    }  # fmt: skip
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    for reason, source in cases.items():
        with pytest.raises(BundleError, match=reason):
            import_bundle(source)
    assert list(models.iterdir()) == []  # nothing half-imported
    msg = io.StringIO()
    try:
        import_bundle(cases["damaged or not a safetensors"])
    except BundleError as e:
        msg.write(str(e))
    assert "pickle.zip" in msg.getvalue() and ".importing-" not in msg.getvalue()
