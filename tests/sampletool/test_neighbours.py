"""Classes read from a bundle's labelled neighbours: the vote, the bundle format that carries
them, hostile bundles, and giving a trained bundle its training split's neighbours."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sampletool.errors import BundleError
from sampletool.models.bundle import CONFIG_FILE, WEIGHTS_FILE, model_id, read_bundle, save_bundle
from sampletool.models.neighbours import (
    CONFIG_KEY,
    LABELS,
    VECTORS,
    Neighbours,
    NeighbourSpec,
    neighbour_tensors,
)
from sampletool.models.runtime import load_runtime
from tests.helpers import TINY_VAE, make_class_folders, tone


def test_the_k_nearest_vote_with_one_added_to_every_class():
    refs = torch.tensor([[0.0, 0], [0.1, 0], [0.2, 0], [10, 0], [10.1, 0], [10.2, 0]])
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    voter = Neighbours(refs, labels, k=3, num_classes=4)
    p = voter.probs(torch.tensor([[0.05, 0.0], [9.0, 0.0], [0.15, 0.0]]))
    # near the origin: two 0s and a 1 among the three nearest; near 10: three 2s
    assert p[0].tolist() == pytest.approx([3 / 7, 2 / 7, 1 / 7, 1 / 7])
    assert p[1].tolist() == pytest.approx([1 / 7, 1 / 7, 4 / 7, 1 / 7])
    assert p.sum(1).tolist() == pytest.approx([1.0] * 3)
    # chunked: the same answer whatever the chunk
    many = torch.randn(700, 2) * 5
    assert torch.equal(voter.votes(many, chunk=64), voter.probs(many))
    assert voter.probs(torch.empty(0, 2)).shape == (0, 4)
    # with a head's share, its probabilities are mixed in
    mixed = Neighbours(refs, labels, k=3, num_classes=4, head_share=0.5)
    head = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    expected = 0.5 * torch.tensor([3 / 7, 2 / 7, 1 / 7, 1 / 7]) + 0.5 * head[0]
    assert torch.allclose(mixed.probs(torch.tensor([[0.05, 0.0]]), head)[0], expected)
    assert torch.equal(mixed.votes(many), voter.probs(many))


def _bundle_with_neighbours(tmp_path, labels=None, k=2, **tamper):
    """A tiny 3-class bundle whose neighbours are the vectors of three tones, labelled
    (by default) all class 2."""
    from sampletool.features import AudioConfig
    from sampletool.models.kinds import build_model
    from sampletool.models.vae import VAEConfig

    torch.manual_seed(0)
    cfg = VAEConfig(**{**TINY_VAE, "num_classes": 3})
    audio = AudioConfig()
    plain = save_bundle(tmp_path / "plain", build_model(cfg, audio), cfg, audio,
                        ["a", "b", "c"], {"calibration": {"temperature": 2.0}})  # fmt: skip
    runtime = load_runtime(plain, "cpu")
    clips = np.stack([np.resize(tone(f), audio.num_samples) for f in (200, 800, 3000)])
    vectors = runtime.encode_clips(clips).vectors
    labels = np.array([2, 2, 2] if labels is None else labels)
    tensors = neighbour_tensors(vectors, labels) | tamper.pop("tensors", {})
    spec = tamper.pop("spec", {"k": k, "count": 3})
    meta = {"calibration": {"temperature": 1.0}}
    out = save_bundle(tmp_path / "nb", runtime.module, cfg, audio, ["a", "b", "c"], meta,
                      tensors, {CONFIG_KEY: spec})  # fmt: skip
    return plain, out, clips


def test_a_bundle_with_neighbours_reads_classes_from_their_votes(tmp_path):
    plain, bundle, clips = _bundle_with_neighbours(tmp_path)
    doc = json.loads((bundle / CONFIG_FILE).read_text())
    assert doc["format_version"] == 2 and doc[CONFIG_KEY] == {"k": 2, "count": 3}
    assert json.loads((plain / CONFIG_FILE).read_text())["format_version"] == 1
    runtime = load_runtime(bundle, "cpu")
    assert runtime.neighbours is not None and runtime.neighbours.k == 2
    probs = runtime.encode_clips(clips).probs
    # every neighbour says "c": (2 + 1) / (2 + 3) for c, 1/5 for the others
    assert np.allclose(probs, [[0.2, 0.2, 0.6]] * 3, atol=1e-6)
    head = load_runtime(plain, "cpu").encode_clips(clips)
    assert not np.allclose(head.probs, probs)  # the head's answer was another
    assert np.allclose(head.vectors, runtime.encode_clips(clips).vectors)  # same vectors
    assert model_id(read_bundle(bundle)) != model_id(read_bundle(plain))


def test_neighbours_labelled_otherwise_vote_otherwise(tmp_path):
    _plain, bundle, clips = _bundle_with_neighbours(tmp_path, labels=[0, 1, 1], k=1)
    probs = load_runtime(bundle, "cpu").encode_clips(clips).probs
    assert probs.argmax(1).tolist() == [0, 1, 1]  # each clip is its own nearest neighbour


@pytest.mark.parametrize(
    "tamper, message",
    [
        ({"tensors": {LABELS: torch.tensor([0, 1, 7])}}, "names a class"),
        ({"tensors": {VECTORS: torch.full((3, 8), float("nan")).half()}}, "NaN or infinite"),
        ({"tensors": {VECTORS: torch.zeros(3, 5).half()}}, "needs"),
        ({"tensors": {LABELS: torch.tensor([0.0, 1.0, 1.0])}}, "class numbers"),
        ({"spec": {"k": 4, "count": 3}}, "more than its count"),
        ({"spec": {"k": 1, "count": 2}}, "needs"),
        ({"spec": {"k": "all", "count": 3}}, "whole number"),
        ({"spec": [1, 2]}, "must be an object"),
        ({"spec": {"k": 1, "count": 3, "head_share": 1.0}}, "head_share"),
        # types torch cannot take a minimum of, or that overflow float32
        ({"tensors": {LABELS: torch.tensor([0, 1, 1], dtype=torch.uint16)}}, "does not read"),
        ({"tensors": {LABELS: torch.tensor([True, False, True])}}, "integers"),
        ({"tensors": {VECTORS: torch.zeros(3, 8).to(torch.float8_e4m3fn)}}, "does not read"),
        ({"tensors": {VECTORS: torch.full((3, 8), 1e300, dtype=torch.float64)}}, "float16"),
    ],
)
def test_hostile_neighbours_are_refused_in_one_sentence(tmp_path, tamper, message):
    _plain, bundle, _clips = _bundle_with_neighbours(tmp_path, **tamper)
    with pytest.raises(BundleError, match=message):
        load_runtime(bundle, "cpu")


def test_a_config_naming_neighbours_its_weights_lack_is_refused(tmp_path):
    plain, _bundle, _clips = _bundle_with_neighbours(tmp_path)
    doc = json.loads((plain / CONFIG_FILE).read_text())
    doc[CONFIG_KEY] = {"k": 1, "count": 3}
    (plain / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="lack neighbours.vectors"):
        load_runtime(plain, "cpu")
    # and weights with neighbour tensors under a config that does not name them
    _p, bundle, _c = _bundle_with_neighbours(tmp_path / "2")
    doc = json.loads((bundle / CONFIG_FILE).read_text())
    del doc[CONFIG_KEY]
    (bundle / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="unexpected"):
        load_runtime(bundle, "cpu")
    assert (bundle / WEIGHTS_FILE).is_file()


def test_a_newer_format_is_refused_with_its_reason(tmp_path):
    plain, _b, _c = _bundle_with_neighbours(tmp_path)
    doc = json.loads((plain / CONFIG_FILE).read_text())
    doc["format_version"] = 3
    (plain / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="newer Sample Tool"):
        read_bundle(plain)


def test_neighbour_tensors_refuse_what_float16_cannot_hold():
    with pytest.raises(ValueError, match="float16"):
        neighbour_tensors(np.array([[1e6, 0.0]]), np.array([0]))
    with pytest.raises(ValueError):
        neighbour_tensors(np.zeros((2, 3)), np.array([0]))
    assert NeighbourSpec.from_doc({}) is None


HEAD_CAL = {"temperature": 1.7, "unsure_below": 0.5}


def _tiny_classifier(tmp_path):
    """(a tiny untrained VAE bundle with a head, the dataset of its three classes, loaded)."""
    from sampletool.data.dataset import load_dataset, make_dataset
    from sampletool.features import AudioConfig
    from sampletool.models.kinds import build_model
    from sampletool.models.vae import VAEConfig

    data = make_class_folders(tmp_path / "data", per_class=10)
    ds_dir = make_dataset([data], "three", out=tmp_path / "ds", classes_from_subfolders=True,
                          train_ratio=0.7, workers=0)  # fmt: skip
    ds = load_dataset(ds_dir)
    torch.manual_seed(0)
    cfg = VAEConfig(**{**TINY_VAE, "num_classes": 3})
    bundle = save_bundle(tmp_path / "b", build_model(cfg, AudioConfig()), cfg, AudioConfig(),
                         ds.class_names, {"calibration": HEAD_CAL, "name": "tiny"})  # fmt: skip
    return bundle, ds_dir, ds


def test_add_neighbours_gives_a_bundle_its_training_split_and_calibrates_both_readings(
    tmp_path,
):
    from sampletool.training.neighbours import add_neighbours, main

    bundle, ds_dir, ds = _tiny_classifier(tmp_path)
    head_cal = HEAD_CAL
    summary = add_neighbours(bundle, ds_dir)
    train = len(ds.indices("train"))
    assert train < 25  # so 25 and more become all of them
    candidates = summary.pop("candidates")
    assert {(r["k"], r["head_share"]) for r in candidates} == {
        (k, s) for k in (5, 10, train) for s in (0.0, 0.25, 0.5, 0.75, 1.0)}  # fmt: skip
    # the lowest NLL; among equals the larger head share, then the smaller k
    best = min(candidates, key=lambda r: (r["nll"], -r["head_share"], r["k"]))
    assert summary["head_share"] == best["head_share"]
    doc = json.loads((bundle / CONFIG_FILE).read_text())
    # the head's calibration is fitted afresh on the clips the choice was judged on
    assert doc["metadata"]["head_calibration"]["temperature"] != head_cal["temperature"]
    assert "ece_after" in doc["metadata"]["head_calibration"]
    if summary["head_share"] < 1:  # neighbours chosen: stored, and the runtime votes
        assert summary["k"] == best["k"] and summary["count"] == train
        assert doc[CONFIG_KEY] == {"k": best["k"], "count": train, "head_share": best["head_share"]}
        assert len(load_runtime(bundle, "cpu").neighbours.labels) == train
    else:  # the head alone reads best: nothing stored
        assert CONFIG_KEY not in doc and load_runtime(bundle, "cpu").neighbours is None
    # given k and the share, through the command line: stored whatever the figures say, and
    # the head's calibration stays the head's
    assert main([str(bundle), "--dataset", str(ds_dir), "--k", "3", "--head-share", "0.5"]) == 0
    doc = json.loads((bundle / CONFIG_FILE).read_text())
    assert doc[CONFIG_KEY] == {"k": 3, "count": train, "head_share": 0.5}
    runtime = load_runtime(bundle, "cpu")
    assert runtime.neighbours.k == 3 and runtime.neighbours.head_share == 0.5
    assert main([str(tmp_path / "nothing")]) == 2  # one line, no traceback
    for bad in (["--k", "0"], ["--k", "5000"], ["--head-share", "-0.5"]):
        assert main([str(bundle), "--dataset", str(ds_dir), *bad]) == 2
    assert json.loads((bundle / CONFIG_FILE).read_text())[CONFIG_KEY]["k"] == 3  # untouched
    # calibration fits what the runtime reads (head and votes), not the head alone
    from sampletool.models.calibration import calibration_summary
    from sampletool.training.calibrate import validation_probs
    from sampletool.training.neighbours import split_readings

    probs, labels = validation_probs(runtime, ds_dir)
    vectors, _labels, head = split_readings(runtime, ds_dir, "val", head_only=True)
    votes = runtime.neighbours.votes(torch.from_numpy(vectors)).numpy()
    assert np.allclose(probs, 0.5 * head + 0.5 * votes, atol=1e-5)
    assert runtime.neighbours is not None and runtime.calibration.temperature > 0  # restored
    # and add_neighbours wrote both: what the runtime reads, and the head's alone
    meta = json.loads((bundle / CONFIG_FILE).read_text())["metadata"]
    for key, p in (("calibration", probs), ("head_calibration", head)):
        fitted = calibration_summary(p, labels)
        assert meta[key]["temperature"] == pytest.approx(fitted["temperature"], rel=1e-3)
        assert meta[key]["fitted_on"].startswith("the validation split (")


def test_neighbours_can_be_judged_on_recordings_from_elsewhere(tmp_path):
    """Every clip of another dataset, both its splits, of the classes the model has: the
    recipe judges on recordings from a sampler the model never trained on."""
    from sampletool.data.dataset import make_dataset
    from sampletool.errors import SampleToolError
    from sampletool.training.neighbours import add_neighbours, main

    bundle, ds_dir, _ds = _tiny_classifier(tmp_path)
    other = make_class_folders(tmp_path / "other", per_class=4,
                               classes=("low", "high", "unknown"))  # fmt: skip
    judge = make_dataset([other], "elsewhere", out=tmp_path / "elsewhere",
                         classes_from_subfolders=True, train_ratio=0.5, workers=0)  # fmt: skip
    summary = add_neighbours(bundle, ds_dir, judge=judge)
    assert summary["judged_on"] == "every clip of elsewhere"
    meta = json.loads((bundle / CONFIG_FILE).read_text())["metadata"]
    for key in ("calibration", "head_calibration"):  # 4 low and 4 high; no "unknown"
        assert meta[key]["fitted_on"] == "every clip of elsewhere (8 clips)"
    # the same choice as judging those clips by hand
    from sampletool.training.neighbours import choose, split_readings

    runtime = load_runtime(bundle, "cpu")
    ref = split_readings(runtime, ds_dir, "train")[:2]
    val = split_readings(runtime, judge, None, head_only=True)
    k, share, _rows = choose(ref, val, 3)
    assert (summary["k"], summary["head_share"]) == (k if share < 1 else None, share)
    # a dataset of none of the model's classes: one line
    nothing = make_class_folders(tmp_path / "nothing", per_class=3, classes=("x", "y"))
    none = make_dataset([nothing], "nothing", out=tmp_path / "none",
                        classes_from_subfolders=True, train_ratio=0.5, workers=0)  # fmt: skip
    with pytest.raises(SampleToolError, match="none has no clip of the model's classes"):
        add_neighbours(bundle, ds_dir, judge=none)
    assert main([str(bundle), "--dataset", str(ds_dir), "--judge", str(none)]) == 2


def test_a_model_fine_tuned_from_one_with_neighbours_reads_with_its_head(tmp_path):
    """Its vectors moved, so the old neighbours would vote on the wrong sounds: the trainer
    saves none, and keeps the head's calibration when asked to keep the source's."""
    from sampletool.data.dataset import make_dataset
    from sampletool.training.trainer import TrainConfig, Trainer

    _plain, bundle, _clips = _bundle_with_neighbours(tmp_path)
    doc = json.loads((bundle / CONFIG_FILE).read_text())
    doc["metadata"]["head_calibration"] = {"temperature": 1.5, "unsure_below": 0.5}
    (bundle / CONFIG_FILE).write_text(json.dumps(doc))
    data = make_class_folders(tmp_path / "data", per_class=6, classes=("a", "b", "c"))
    ds = make_dataset([data], "abc", out=tmp_path / "ds", classes_from_subfolders=True,
                      train_ratio=0.7, workers=0)  # fmt: skip
    run = tmp_path / "run"
    cfg = TrainConfig(dataset=str(ds), model=json.loads((bundle / CONFIG_FILE).read_text())[
        "model"], batch_size=4, max_steps=2, eval_every=1, init_from=str(bundle),
        calibration="keep")  # fmt: skip
    Trainer(run, cfg, device="cpu").run()
    out = json.loads((run / CONFIG_FILE).read_text())
    assert CONFIG_KEY not in out and out["format_version"] == 1
    assert out["metadata"]["calibration"]["temperature"] == 1.5
    assert load_runtime(run, "cpu").neighbours is None
