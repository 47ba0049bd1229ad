"""A model kind defined outside the engine (tests/second_kind.py) works through the registry
with no change anywhere else: trained by the CLI's `train`, then classify, embed, generate,
index (in worker processes too), similar and the library's stored latents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from sampletool.cli import main
from sampletool.library import Library
from sampletool.models import kinds
from sampletool.models.runtime import load_runtime
from tests import second_kind
from tests.helpers import make_class_folders


@pytest.fixture
def registered():
    kinds.register(second_kind.KIND)
    yield second_kind.NAME
    kinds.unregister(second_kind.NAME)


def test_unknown_until_registered():
    with pytest.raises(ValueError, match="unknown model kind"):
        kinds.get_kind(second_kind.NAME)
    kinds.register(second_kind.KIND)
    try:
        assert second_kind.NAME in kinds.kind_names()
        assert kinds.get_kind(second_kind.NAME) is second_kind.KIND
    finally:
        kinds.unregister(second_kind.NAME)
    assert second_kind.NAME not in kinds.kind_names()


def test_a_second_kind_through_the_cli_the_trainer_and_the_library(registered, tmp_path, capsys):
    data = make_class_folders(tmp_path / "data", per_class=8)
    ds, log = tmp_path / "ds", tmp_path / "run"
    assert main(["make-dataset", str(data), "--name", "three", "--out", str(ds),
                 "--classes-from-subfolders", "--workers", "0"]) == 0  # fmt: skip
    train = ["train", "--model", registered, "--dataset", str(ds), "--logdir", str(log),
             "--max-steps", "40", "--eval-every", "20", "--batch-size", "8", "--lr", "0.05",
             "--workers", "0", "--device", "cpu"]  # fmt: skip
    assert main(train) == 0
    rows = [json.loads(x) for x in (log / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40] and "val_accuracy" in rows[-1]
    assert (log / "confusion_matrix.png").is_file()
    resume = ["train", "--logdir", str(log), "--max-steps", "50", "--device", "cpu"]
    assert main(resume) == 0
    assert "resuming at step 40" in capsys.readouterr().err
    runtime = load_runtime(log, device="cpu")
    assert type(runtime) is second_kind.MeanLinearRuntime
    assert runtime.class_names == ["high", "low", "noise"]

    files = sorted(map(str, data.rglob("*.wav")))
    capsys.readouterr()
    assert main(["classify", files[0], files[-1], "--model", str(log), "--json"]) == 0
    classified = json.loads(capsys.readouterr().out)
    assert [c["class"] in runtime.class_names for c in classified] == [True, True]
    out = tmp_path / "v.npy"
    assert main(["embed", *files[:5], "--model", str(log), "-o", str(out), "--workers", "0"]) == 0
    vectors = np.load(out)
    assert vectors.shape == (5, 6)
    np.testing.assert_allclose(vectors[0], runtime.read(files[0]).vectors[0], atol=1e-5)
    wav = tmp_path / "g.wav"
    assert main(["generate", files[0], files[-1], "--model", str(log), "-o", str(wav),
                 "--rate", "model"]) == 0  # fmt: skip
    audio, rate = sf.read(wav)
    assert rate == runtime.sample_rate and np.isfinite(audio).all() and np.abs(audio).max() > 0

    db = tmp_path / "db" / "c.sqlite"
    common = ["--model", str(log), "--db", str(db)]
    capsys.readouterr()
    # Two worker processes encode: the kind, registered here, is registered in them too.
    assert main(["index", str(data), *common, "--workers", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["indexed"] == len(files) and not report["failed"]
    assert main(["similar", files[0], "--library", str(data), *common, "-k", "3", "--json",
                 "--same-kind"]) == 0  # fmt: skip
    found = json.loads(capsys.readouterr().out)
    assert 0 < len(found) <= 3 and files[0] not in [f["path"] for f in found]
    lib = Library(data, runtime, db_path=db)
    try:
        np.testing.assert_allclose(lib.latent(files[3]), runtime.read(files[3]).latents[0],
                                   atol=1e-5)  # fmt: skip
        assert lib.find_similar(files[3], 2).query_class in runtime.class_names
    finally:
        lib.close()
