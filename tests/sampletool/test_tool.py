"""SoundSampleTool, the facade: embed, latent, predict and generate through one model runtime."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from sampletool import AudioError, BundleError, ModelError, SoundSampleTool
from tests.helpers import make_bundle, tone


@pytest.fixture(scope="module")
def tool(tiny_bundle):
    return SoundSampleTool(tiny_bundle, device="cpu")


def test_embed_file_and_array_agree(tool, sounds):
    v = tool.embed(sounds[0])
    assert v.shape == (tool.latent_dim,) and v.dtype == np.float32
    clip = sf.read(sounds[0], dtype="float32")[0]
    assert np.allclose(tool.embed(clip), v, atol=1e-5)
    assert np.array_equal(tool.embed(sounds[0]), v)  # deterministic
    assert not np.allclose(tool.embed(sounds[2]), v)
    stereo = np.stack([clip, clip])
    assert np.allclose(tool.embed(stereo), v, atol=1e-5)


def test_embed_offset_and_bad_file(tool, tmp_path):
    a = np.concatenate([np.zeros(16000, np.float32), tone(300, 1.0)])
    assert not np.allclose(tool.embed(a), tool.embed(a, offset=1.0))
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage garbage")
    with pytest.raises(AudioError, match="bad.wav"):
        tool.embed(tmp_path / "bad.wav")


def test_embed_files_skips_bad_ones(tool, sounds, tmp_path):
    bad = tmp_path / "empty.wav"
    bad.touch()
    vecs, rows, failures = tool.embed_files([sounds[0], bad, sounds[1]], workers=0)
    assert rows == [0, 2] and vecs.shape == (2, tool.latent_dim)
    assert failures == [(1, str(bad), "empty file (0 bytes)")]
    assert np.allclose(vecs[1], tool.embed(sounds[1]), atol=1e-5)


def test_predict(tool, sounds):
    probs, cls = tool.predict(sounds[0])
    assert tool.class_names == ["class0", "class1", "class2"]
    assert probs.shape == (3,) and abs(probs.sum() - 1) < 1e-5
    assert cls == tool.class_names[int(probs.argmax())]


def test_predict_without_classifier_is_a_clear_error(tiny_bundle_no_classes, sounds):
    t = SoundSampleTool(tiny_bundle_no_classes)
    assert t.class_names == []
    with pytest.raises(ModelError, match="has no classifier"):
        t.predict(sounds[0])
    reading = t.runtime.read(sounds[0])
    assert reading.probs is None and np.array_equal(reading.vectors[0], t.embed(sounds[0]))


def test_one_read_gives_vector_class_and_latent(tool, sounds):
    reading = tool.runtime.read(sounds[1], offset=0.1)
    assert len(reading) == 1
    assert np.allclose(reading.vectors[0], tool.embed(sounds[1], 0.1), atol=1e-6)
    assert np.allclose(reading.probs[0], tool.predict(sounds[1], 0.1)[0], atol=1e-6)
    assert np.allclose(reading.latents[0], tool.latent(sounds[1], 0.1), atol=1e-6)


def test_several_instances_in_one_process(tmp_path, sounds, tool):
    other = SoundSampleTool(make_bundle(tmp_path / "other", num_classes=2, seed=5))
    assert len(other.class_names) == 2 and len(tool.class_names) == 3
    assert not np.allclose(other.embed(sounds[0]), tool.embed(sounds[0]))


def test_not_a_model(tmp_path):
    with pytest.raises(BundleError):
        SoundSampleTool(tmp_path)


def test_no_default_model_named_clearly(monkeypatch, tmp_path):
    import sampletool.models.bundle as bundle

    monkeypatch.setattr(bundle, "BUILTIN_MODELS_DIR", tmp_path)
    with pytest.raises(BundleError, match="built-in default model is missing"):
        SoundSampleTool()


# -- generate --------------------------------------------------------------------------------------


def _lat(tool, k=3, seed=0):
    return np.random.default_rng(seed).standard_normal((k, tool.latent_dim)).astype(np.float32)


def test_generate_writes_a_peak_normalised_wav(tool, sounds, tmp_path):
    out = tmp_path / "deep" / "g.wav"
    y = tool.generate(out, audio_files=sounds[:2], seed=1)
    data, sr = sf.read(out, dtype="float32")
    assert sr == tool.sample_rate and data.shape == y.shape == (tool.runtime.audio.num_samples,)
    assert np.isfinite(y).all() and 0.9 < np.abs(y).max() <= 1.0
    assert np.allclose(data, y, atol=1 / 16000)
    assert sf.info(out).subtype == "PCM_16"


def test_generate_is_reproducible_with_a_seed(tool):
    lat = _lat(tool)
    a = tool.generate(None, latents=lat, variance=0.5, seed=3)
    b = tool.generate(None, latents=lat, variance=0.5, seed=3)
    c = tool.generate(None, latents=lat, variance=0.5, seed=4)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_blend_weights_semantics():
    from sampletool.models.runtime import effective_weights as bw

    def weights(*args):
        w, note = bw(*args)
        assert note is None
        return w

    assert np.allclose(weights(3, [1, 1, 2], True), [0.25, 0.25, 0.5])
    assert np.allclose(weights(3, [1, 1, 2], False), [1, 1, 2])
    w, note = bw(3, [1, 2], True)
    assert np.allclose(w, [1 / 3] * 3) and "equal weights" in note
    assert np.allclose(weights(3, (), True), [1 / 3] * 3)  # no weights: equal, silently
    w, note = bw(2, [1, -1], True)
    assert np.allclose(w, [0.5, 0.5]) and "sum to zero" in note
    assert np.allclose(weights(2, [1, -1], False), [1, -1])
    assert np.allclose(weights(2, [2, -1], True), [2, -1])  # a positive sum keeps the signs
    for given, used in (([-1, -1], [0.5, 0.5]), ([1, -2], [-1, 2])):
        w, note = bw(2, given, True)
        assert np.allclose(w, used) and "flips their signs" in note
    with pytest.raises(ValueError, match="finite"):
        bw(2, [1, float("nan")], False)


def test_wrong_weight_count_means_equal_weights(tool):
    lat = _lat(tool)
    equal = tool.generate(None, latents=lat, seed=0)
    with pytest.warns(UserWarning, match="equal weights"):
        wrong = tool.generate(None, latents=lat, weights=[5, 1], seed=0)
    assert np.array_equal(equal, wrong)
    assert np.allclose(tool.runtime.blend(lat), lat.mean(0), atol=1e-6)


def test_zero_sum_weights_fall_back_with_a_warning(tool):
    lat = _lat(tool, 2)
    with pytest.warns(UserWarning, match="sum to zero"):
        y = tool.generate(None, latents=lat, weights=[1, -1], seed=0)
    assert np.array_equal(y, tool.generate(None, latents=lat, seed=0))


def test_unnormalised_arithmetic_never_nan_or_clipping(tool):
    lat = _lat(tool, 3)
    for weights in ([1, -1, 0], [50, -70, 3], [1e6, -1e6, 1e6], [0, 0, 0], [-2, -2, -2]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warnings from the arithmetic either
            y = tool.generate(None, latents=lat, weights=weights, normalize_weights=False)
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    z = tool.runtime.blend(lat, [1, -1, 0], normalize=False)
    assert np.allclose(z, lat[0] - lat[1], atol=1e-6)


def test_no_inputs_gives_a_random_latent(tool):
    a = tool.runtime.blend(np.empty((0, tool.latent_dim)), seed=1)
    b = tool.runtime.blend(np.empty((0, tool.latent_dim)), seed=2)
    assert a.shape == (tool.latent_dim,) and not np.allclose(a, b)
    assert np.isfinite(tool.generate(None, seed=1)).all()


def test_variance_adds_noise(tool):
    lat = _lat(tool, 2)
    base = tool.runtime.blend(lat)
    noisy = np.stack([tool.runtime.blend(lat, variance=4.0, seed=s) for s in range(400)])
    assert np.allclose(noisy.mean(0), base, atol=0.5)
    assert abs(float(noisy.std(0).mean()) - 2.0) < 0.2
    with pytest.raises(ValueError, match="variance"):
        tool.runtime.blend(lat, variance=-1)


def test_latent_file_and_array_agree_and_differ_from_the_search_vector(tool, sounds):
    v = tool.latent(sounds[0])
    assert v.shape == (tool.latent_dim,) and v.dtype == np.float32
    assert np.allclose(tool.latent(sf.read(sounds[0], dtype="float32")[0]), v, atol=1e-5)
    assert np.array_equal(tool.latent(sounds[0]), v)  # deterministic: no noise
    assert np.abs(v - tool.embed(sounds[0])).max() > 1e-3  # carried through the flows


def test_files_are_blended_like_their_latents(tool, sounds):
    lat = np.stack([tool.latent(s) for s in sounds[:2]])
    from_files = tool.generate(None, audio_files=sounds[:2], weights=[2, 1], seed=0)
    from_latents = tool.generate(None, latents=lat, weights=[2, 1], seed=0)
    assert np.allclose(from_files, from_latents, atol=1e-5)


def test_decode_of_extreme_latents_is_finite(tool):
    z = np.array(
        [[np.inf] * tool.latent_dim, [np.nan] * tool.latent_dim, [-1e30] * tool.latent_dim]
    )
    y = tool.runtime.decode(z.astype(np.float32))
    assert y.shape == (3, tool.runtime.audio.num_samples) and np.isfinite(y).all()
    assert np.abs(y).max() <= 1.0
