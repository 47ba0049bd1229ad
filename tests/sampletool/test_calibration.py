"""Honest confidence: temperature scaling, its error measure, and reading a class as unsure."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sampletool.models.bundle import CONFIG_FILE
from sampletool.models.calibration import (
    Calibration,
    calibration_summary,
    expected_calibration_error,
    fit_temperature,
    read_class,
    scale,
)
from sampletool.models.runtime import load_runtime
from tests.helpers import tone


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _overconfident(n: int = 4000, temperature: float = 3.0, seed: int = 0):
    """Labels drawn from softmax(z), and the probabilities a model `temperature` times too
    sure of itself would give: softmax(temperature * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, 5))
    true = _softmax(z)
    labels = np.array([rng.choice(5, p=p) for p in true])
    return true, _softmax(temperature * z), labels


def test_temperature_scaling_finds_the_overconfidence_and_removes_the_error():
    true, said, labels = _overconfident()
    t = fit_temperature(said, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    fixed = scale(said, t)
    assert (fixed.argmax(1) == said.argmax(1)).all()  # the likeliest class never changes
    before, after = (expected_calibration_error(p, labels) for p in (said, fixed))
    assert before > 0.1 and after < 0.03
    assert expected_calibration_error(true, labels) < 0.03  # the truth is calibrated
    summary = calibration_summary(said, labels)
    assert summary["ece_after"] < summary["ece_before"] and summary["nll_after"] < summary[
        "nll_before"
    ]  # fmt: skip


def test_ece_is_the_weighted_gap_between_confidence_and_accuracy():
    probs = np.array([[0.9, 0.1]] * 10)  # 90 % sure, right 5 times in 10
    labels = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    assert expected_calibration_error(np.empty((0, 2)), []) == 0.0


def test_a_class_reads_unsure_below_the_threshold_and_a_users_class_wins():
    names = ["kick", "snare", "tonal"]
    sure = read_class([0.8, 0.15, 0.05], names)
    assert (sure.name, sure.unsure, sure.text(), sure.kind) == ("kick", False, "kick", "kick")
    unsure = read_class([0.2, 0.45, 0.35], names)
    assert unsure.unsure and unsure.kind is None and unsure.text() == "? snare (or tonal)"
    assert unsure.as_dict()["runner_up"] == "tonal" and unsure.as_dict()["unsure"] is True
    user = read_class([0.2, 0.45, 0.35], names, user_label="kick")
    assert user.by_user and user.kind == "kick" and user.model == "snare"
    assert user.text() == "kick (set by you)"
    assert Calibration.from_metadata({"calibration": {"temperature": "hot"}}) == Calibration()
    assert Calibration.from_metadata({}) == Calibration()


def test_the_runtime_applies_the_bundles_temperature_and_hears_nothing_in_silence(
    tmp_path, tiny_bundle
):
    bundle = tmp_path / "hot"
    shutil.copytree(tiny_bundle, bundle)
    clips = np.zeros((2, 32000), np.float32)
    clips[0, :12800] = tone(110, 0.8, decay=4)
    raw = load_runtime(bundle, "cpu").encode_clips(clips).probs
    assert np.allclose(raw[1], 1 / raw.shape[1])  # silence: every class equally likely
    silent = load_runtime(bundle, "cpu").read_class(raw[1])
    assert silent.name == "" and silent.unsure and silent.text() == "?"
    doc = json.loads((bundle / CONFIG_FILE).read_text())
    doc["metadata"]["calibration"] = {"temperature": 4.0, "unsure_below": 0.6}
    (bundle / CONFIG_FILE).write_text(json.dumps(doc))
    runtime = load_runtime(bundle, "cpu")
    assert runtime.calibration == Calibration(4.0, 0.6)
    hot = runtime.encode_clips(clips).probs
    assert np.allclose(hot[0], scale(raw[:1], 4.0)[0], atol=1e-5)
    assert hot[0].max() < raw[0].max() and hot[0].argmax() == raw[0].argmax()
    assert runtime.read_class(hot[0]).unsure == (hot[0].max() < 0.6)
