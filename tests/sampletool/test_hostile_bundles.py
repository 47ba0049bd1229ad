"""Hostile model bundles (tests/corpus/hostile_bundles.py): each is refused before anything is
built, allocated or unpickled, in one sentence that says what is wrong (exit 2 on the command
line), and none of them breaks the listing of the others."""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sampletool.cli import main
from sampletool.errors import BundleError, ModelError
from sampletool.models import bundle, kinds
from sampletool.models.bundle import find_bundles, read_bundle, resolve_model
from sampletool.models.runtime import load_runtime
from sampletool.paths import BUILTIN_MODELS_DIR
from tests import second_kind
from tests.corpus import hostile_bundles as hostile
from tests.helpers import make_bundle, make_class_folders, tone, write


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmSize")


@pytest.fixture
def memory_cap():
    """While the test runs, this process may map only 2 GiB more than it has now: a bundle that
    allocates without end fails the test (MemoryError, RuntimeError) instead of the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        cap = _vm_size() + (2 << 30)
    except OSError:
        pytest.skip("needs /proc/self/status")
    resource.setrlimit(
        resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard)
    )
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize("name", list(hostile.HUGE_VAE))
def test_absurd_vae_and_audio_sizes_are_refused_before_building(name, tmp_path, memory_cap):
    section, key, value = hostile.HUGE_VAE[name]
    d = hostile.huge_setting(tmp_path / "b", section, key, value)
    with pytest.raises(BundleError, match=key) as e:
        load_runtime(d, device="cpu")
    assert str(d / "config.json") in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", list(hostile.HUGE_WAVENET))
def test_absurd_wavenet_sizes_are_refused_before_building(name, tmp_path, memory_cap):
    section, key, value = hostile.HUGE_WAVENET[name]
    d = hostile.huge_setting(tmp_path / "b", section, key, value, wavenet=True)
    with pytest.raises(BundleError, match=key):
        load_runtime(d, device="cpu")


@pytest.mark.parametrize("layers", [1000, 10**6])
def test_a_thousand_or_a_million_conv_layers(layers, tmp_path, memory_cap):
    d = hostile.many_conv_layers(tmp_path / "b", layers)
    with pytest.raises(BundleError, match="conv_channels"):
        load_runtime(d, device="cpu")


def test_the_tiny_wavenet_bundle_itself_loads(tmp_path):
    rt = load_runtime(hostile.tiny_wavenet_bundle(tmp_path / "b"), device="cpu")
    assert rt.kind == "wavenet-autoencoder"


def test_a_kind_without_limits_of_its_own_is_bounded_by_its_weights(tmp_path, memory_cap):
    """The size guard knows nothing of the kind: a plug-in's config asking for a billion-wide
    layer is refused by what its weights file holds, before the layer is allocated."""
    from sampletool.features import AudioConfig
    from sampletool.models.bundle import save_bundle

    kinds.register(second_kind.KIND)
    try:
        cfg = second_kind.MeanLinearConfig(dim=4)
        audio = AudioConfig(seconds=0.5)
        d = save_bundle(tmp_path / "b", second_kind.build(cfg, audio), cfg, audio)
        assert load_runtime(d, device="cpu").vector_dim == 4
        doc = json.loads((d / "config.json").read_text())
        doc["model"]["dim"] = 10**9
        (d / "config.json").write_text(json.dumps(doc))
        with pytest.raises(BundleError, match="too large|does not match"):
            load_runtime(d, device="cpu")
    finally:
        kinds.unregister(second_kind.NAME)


def test_a_weights_header_that_claims_400_gb(tmp_path, memory_cap):
    d = hostile.huge_weights_header(tmp_path / "b")
    with pytest.raises(BundleError, match="weights.safetensors.*too large"):
        load_runtime(d, device="cpu")


def test_weights_whose_header_does_not_fit_the_config(tmp_path):
    d = hostile.mismatched_weights(tmp_path / "b")
    with pytest.raises(
        BundleError,
        match=r"do not match its config.*is \[48, \d+\] but the config needs \[32, \d+\]",
    ):
        load_runtime(d, device="cpu")


def test_cli_says_one_line_and_exits_2(tmp_path, capsys, memory_cap):
    d = hostile.huge_setting(tmp_path / "b", "model", "flow_hidden", 10**9)
    wav = write(tmp_path / "a.wav", tone())
    code, out, err = run(capsys, "embed", wav, "-o", tmp_path / "v.npy", "--model", d)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "flow_hidden" in err and "Traceback" not in err
    assert not (tmp_path / "v.npy").exists()


# -- config.json itself ------------------------------------------------------------------------


def test_brackets_nested_past_the_recursion_limit(tmp_path):
    d = hostile.nested_brackets(tmp_path / "b")
    with pytest.raises(BundleError, match="nested too deeply"):
        read_bundle(d)


def test_metadata_nested_too_deeply_to_rewrite(tmp_path):
    d = hostile.nested_metadata(tmp_path / "b")
    with pytest.raises(BundleError, match="nested too deeply"):
        read_bundle(d)


def test_config_linked_to_dev_zero(tmp_path):
    d = hostile.config_links_to_dev_zero(tmp_path / "b")
    with pytest.raises(BundleError, match="config.json is not a regular file"):
        read_bundle(d)


def test_config_too_large(tmp_path):
    d = hostile.huge_config_file(tmp_path / "b")
    with pytest.raises(BundleError, match="config.json is too large"):
        read_bundle(d)


def test_models_lists_the_good_and_says_why_the_bad_are_unusable(tmp_path, capsys, monkeypatch):
    root = tmp_path / "models"
    make_bundle(root / "good")
    hostile.nested_brackets(root / "brackets")
    hostile.config_links_to_dev_zero(root / "zero")
    (root / "junk").mkdir()  # no config.json: not a model, not listed
    monkeypatch.setenv("SAMPLETOOL_MODEL_PATH", str(root))
    infos, problems = bundle.scan_bundles([root])
    assert [i.name for i in infos] == ["good"]
    assert sorted(p.name for p, _ in problems) == ["brackets", "zero"]
    code, out, err = run(capsys, "models")
    assert code == 0 and "Traceback" not in err
    lines = {line.split("\t")[0]: line for line in out.splitlines()}
    assert lines["good"].split("\t")[1] == "vae"
    assert "unusable" in lines["brackets"] and "nested too deeply" in lines["brackets"]
    assert "unusable" in lines["zero"] and "not a regular file" in lines["zero"]
    assert "junk" not in lines and "default" in lines
    code, out, _ = run(capsys, "models", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert "unusable" not in rows["good"] and "nested too deeply" in rows["brackets"]["unusable"]


# -- NaN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", [hostile.nan_weights, hostile.overflowing_weights])
def test_a_model_that_outputs_nan_is_refused_when_it_loads(maker, tmp_path):
    d = maker(tmp_path / "nanny")
    with pytest.raises(BundleError, match="nanny.*(NaN|infinite)"):
        load_runtime(d, device="cpu")


def test_nan_models_store_nothing_and_say_so(tmp_path, capsys):
    d = hostile.nan_weights(tmp_path / "nanny")
    lib = make_class_folders(tmp_path / "lib", per_class=2)
    code, _, err = run(capsys, "index", lib, "--model", d, "--db", tmp_path / "c.db",
                       "--workers", "0")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "nanny" in err
    wav = next(lib.rglob("*.wav"))
    code, _, err = run(capsys, "embed", wav, "-o", tmp_path / "v.npy", "--model", d)
    assert code == 2 and "nanny" in err and not (tmp_path / "v.npy").exists()
    code, out, err = run(capsys, "classify", wav, "--model", d)
    assert code == 2 and "nan" not in out.lower()


def test_encode_refuses_nan_rather_than_return_it(tiny_bundle, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(tiny_bundle, d)
    rt = load_runtime(d, device="cpu")
    with torch.no_grad():
        next(rt.module.parameters()).fill_(float("nan"))
    with pytest.raises(ModelError, match=rf"model {rt.name!r}.*NaN"):
        rt.read(tone())
    with pytest.raises(ModelError, match="NaN"):
        rt.encode_clips(np.stack([rt.clip(tone()), rt.clip(tone(300))]))


# -- pickles and names -------------------------------------------------------------------------


def test_a_pickled_checkpoint_is_refused_in_one_line_and_never_run(tmp_path, capsys):
    data = make_class_folders(tmp_path / "data", per_class=6)
    ds, log = tmp_path / "ds", tmp_path / "run"
    assert main(["make-dataset", str(data), "--name", "three", "--out", str(ds),
                 "--classes-from-subfolders", "--workers", "0"]) == 0  # fmt: skip
    opts = json.dumps({"conv_channels": [4, 8], "pool_sizes": [[4, 4], [4, 4]], "hidden": 32,
                       "latent": 8, "flow_length": 1, "flow_hidden": 8})  # fmt: skip
    assert main(["train", "--logdir", str(log), "--dataset", str(ds), "--model-options", opts,
                 "--batch-size", "8", "--max-steps", "2", "--eval-every", "2",
                 "--workers", "0", "--device", "cpu"]) == 0  # fmt: skip
    capsys.readouterr()
    marker = tmp_path / "ran"
    hostile.pickle_checkpoint(log, marker)
    code, _, err = run(capsys, "train", "--logdir", log, "--max-steps", "4", "--device", "cpu")
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert "checkpoint.pt" in last and "Traceback" not in err and "Unpickling" not in err
    assert not marker.exists()


def test_default_always_means_the_built_in_model(tmp_path, monkeypatch):
    root = tmp_path / "models"
    hostile.nan_weights(root / "default")  # a broken bundle that calls itself "default"
    monkeypatch.setenv("SAMPLETOOL_MODEL_PATH", str(root))
    builtin = BUILTIN_MODELS_DIR / "default"
    assert resolve_model("default") == builtin
    assert resolve_model(None) == builtin
    assert [i.path for i in find_bundles() if i.name == "default"] == [builtin]
    assert load_runtime("default", device="cpu").path == builtin
