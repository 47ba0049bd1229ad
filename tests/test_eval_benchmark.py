"""The measuring functions of benchmarks/eval_default_model.py: a wrong ruler is worse."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from sampletool.features import AudioConfig, log_mel

spec = importlib.util.spec_from_file_location(
    "eval_default_model", Path(__file__).parents[1] / "benchmarks" / "eval_default_model.py"
)
ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)
CFG = AudioConfig()


def test_precision_at_k_and_its_ceiling():
    rng = np.random.default_rng(0)
    labels = ["a"] * 12 + ["b"] * 12 + ["c"] * 3
    centres = {"a": 0.0, "b": 100.0, "c": 200.0}
    v = np.stack([rng.normal(centres[c], 1.0, 4) for c in labels])
    p, ceiling, per = ev.precision_at_k(v, labels, k=10)
    # a and b: all 10 neighbours share the class; c has only 2 others, so at most 2/10.
    assert p == pytest.approx(ceiling) and ceiling == pytest.approx((24 * 1.0 + 3 * 0.2) / 27)
    assert per == {"a": (1.0, 1.0), "b": (1.0, 1.0), "c": (pytest.approx(0.2), 0.2)}
    shuffled = list(np.random.default_rng(1).permutation(labels))
    assert ev.precision_at_k(v, shuffled, k=10)[0] < 0.6


def test_same_kind_precision_keeps_to_the_predicted_class_and_counts_empty_places():
    labels = ["a"] * 4 + ["b"] * 4
    v = np.array([[0.0], [1], [2], [3], [3.5], [10], [11], [12]])
    # the classifier calls a's last clip (3) a "b"; the rest as they are
    kinds = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    q = ev.query_precision(v, labels, k=4, kinds=kinds)
    # a's first three: only each other (2 hits of 4 places); clip 3: the four b's (0 hits);
    # the b's: three other b's and clip 3 (3 of 4)
    assert q.tolist() == [0.5, 0.5, 0.5, 0.0, 0.75, 0.75, 0.75, 0.75]
    assert ev.query_precision(v, labels, k=4).tolist()[:3] == [0.75, 0.75, 0.75]


def test_balanced_accuracy_weights_classes_equally():
    bal, per = ev.balanced_accuracy(["kick"] * 9 + ["snare"], ["kick"] * 9 + ["kick"])
    assert per == {"kick": 1.0, "snare": 0.0} and bal == 0.5


def test_lsd_is_zero_for_the_same_audio_and_grows_with_noise():
    rng = np.random.default_rng(0)
    t = np.arange(CFG.num_samples) / CFG.sample_rate
    x = (np.sin(2 * np.pi * 220 * t) * np.exp(-t * 3)).astype(np.float32)[None]
    assert ev.lsd_db(x, x, CFG)[0] == pytest.approx(0.0, abs=1e-4)
    small = ev.lsd_db(x, x + 0.001 * rng.standard_normal(x.shape).astype(np.float32), CFG)[0]
    large = ev.lsd_db(x, x + 0.1 * rng.standard_normal(x.shape).astype(np.float32), CFG)[0]
    assert 0 < small < large


def test_mfcc_stats_and_band_shares():
    t = np.arange(CFG.num_samples) / CFG.sample_rate
    low = np.sin(2 * np.pi * 60 * t).astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(CFG.num_samples).astype(np.float32)
    feats = log_mel(torch.from_numpy(np.stack([low, noise])), CFG).numpy()
    stats = ev.mfcc_stats(feats, CFG)
    assert stats.shape == (2, 80) and np.isfinite(stats).all()
    assert not np.allclose(stats[0], stats[1])
    lo_share, hi_share = ev.band_shares(low, CFG)
    assert lo_share > 0.99 and hi_share < 0.01
    lo_share, hi_share = ev.band_shares(noise, CFG)
    assert lo_share < 0.05 and hi_share > 0.7


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_queries():
    rng = np.random.default_rng(0)
    few, many = rng.random(20), rng.random(2000)
    lo, hi = ev.bootstrap_interval(few)
    assert lo < few.mean() < hi
    lo2, hi2 = ev.bootstrap_interval(many)
    assert lo2 < many.mean() < hi2 and hi2 - lo2 < (hi - lo) / 5
    assert ev.bootstrap_interval(np.full(50, 0.7)) == (pytest.approx(0.7), pytest.approx(0.7))


def test_heard_counts_drums_tonal_and_unsure_and_silence_is_no_drum():
    names = ["kick", "percussion", "tonal", "fx"]
    probs = np.array(
        [
            [0.9, 0.05, 0.03, 0.02],  # a kick, sure
            [0.1, 0.4, 0.3, 0.2],  # percussion, unsure: a drum all the same
            [0.0, 0.1, 0.9, 0.0],  # tonal
            [0.25, 0.25, 0.25, 0.25],
        ]
    )  # silence: nothing heard, not a drum
    got = ev.heard(probs, names, unsure_below=0.5)
    assert got == {"tonal": 0.25, "drum": 0.5, "drum_confident": 0.25, "unsure": 0.5}


def test_melodic_families_and_test_signals():
    assert ev.family_of(Path("lmms/instruments/violin_pizzicato01.ogg")) == "strings-pads"
    assert ev.family_of(Path("lmms/basses/rave_bass01.ogg")) == "bass"
    assert ev.family_of(Path("lmms/basses/synth_acid01.ogg")) == "bass"  # by its folder
    assert ev.family_of(Path("lmms/stringsnpads/rave_choir01.ogg")) == "vocal"
    assert ev.family_of(Path("sonic-pi/guit_em9.flac")) == "plucked"
    clips, names = ev.test_signals(CFG)
    assert clips.shape == (len(names), CFG.num_samples) and not clips[0].any()  # silence first
    assert np.abs(clips).max() <= 0.5 + 1e-6
    assert sum(n.startswith("sine") for n in names) == 6


def test_ece_floor_is_what_a_calibrated_model_shows_on_few_clips():
    from sampletool.models.calibration import expected_calibration_error

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 175)
    probs = np.stack([conf, 1 - conf], 1)
    floor = ev.ece_floor(probs, draws=500)
    # the same thing measured by hand: labels drawn from the confidences, the real ECE
    by_hand = [
        expected_calibration_error(probs, (rng.random(175) >= conf).astype(np.int64))
        for _ in range(300)
    ]
    assert 0.02 < floor < 0.08
    assert abs(floor - float(np.mean(by_hand))) < 0.01
    # more clips, less noise
    assert ev.ece_floor(np.tile(probs, (20, 1)), draws=100) < floor / 2
