"""Every model configuration at tiny capacity, and bundle I/O with its failure modes."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from sampletool.errors import BundleError, ModelError
from sampletool.features import AudioConfig
from sampletool.models.bundle import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    find_bundles,
    resolve_model,
    save_bundle,
)
from sampletool.models.kinds import build_model, config_from_dict, kind_names
from sampletool.models.runtime import load_runtime
from sampletool.models.vae import VAEConfig


def load_bundle(path):
    return load_runtime(path, device="cpu")


TINY = dict(conv_channels=(4, 8), pool_sizes=((4, 4), (4, 4)), hidden=32, latent=8, flow_hidden=16)

CONFIGS = {
    "flows+classifier": VAEConfig(**TINY, flow_length=2, num_classes=3),
    "flows, no classifier": VAEConfig(**TINY, flow_length=3, num_classes=0),
    "no flows": VAEConfig(**TINY, flow_length=0, num_classes=2),
    "latent 1": VAEConfig(**{**TINY, "latent": 1}, flow_length=2),
    "sampleVAE layout": VAEConfig(
        conv_channels=(4, 8, 4, 4), hidden=32, latent=8, flow_length=5, flow_hidden=8
    ),
}
AUDIO = {
    "default": AudioConfig(),
    "short 64 mels": AudioConfig(seconds=1.0, n_mels=64),
    "22k odd": AudioConfig(sample_rate=22050, seconds=1.5, n_fft=512, hop_length=128, n_mels=48),
}


@pytest.mark.parametrize("audio_name", list(AUDIO))
@pytest.mark.parametrize("cfg_name", list(CONFIGS))
def test_encode_sample_flows_decode_shapes(cfg_name, audio_name):
    cfg, audio = CONFIGS[cfg_name], AUDIO[audio_name]
    if cfg_name == "sampleVAE layout" and audio_name != "default":
        cfg = VAEConfig(**TINY, flow_length=5)  # its pooling needs 128 mel bands
    torch.manual_seed(0)
    model = build_model(cfg, audio).train()
    x = torch.rand(3, audio.n_mels, audio.num_frames)
    post = model.encode(x)
    assert post.mean.shape == post.logvar.shape == (3, cfg.latent)
    z, kl = model.sample_posterior(post)
    assert z.shape == (3, cfg.latent) and kl.shape == (3,)
    assert torch.isfinite(kl).all()
    recon = model.decode(z)
    assert recon.shape == x.shape
    assert (recon >= 0).all() and (recon <= 1).all()
    labels = torch.tensor([0, 1, -1]) if cfg.num_classes else None
    out = model.loss(x, labels)
    loss, parts = out.total, out.parts
    assert torch.isfinite(loss) and parts["loss"] == pytest.approx(float(loss.detach()))
    assert (out.class_logits is None) == (not cfg.num_classes)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert ("ce" in parts) == bool(cfg.num_classes)


def test_sampleVAE_sizes_at_full_scale():
    model = build_model(VAEConfig(num_classes=9), AudioConfig())
    x = torch.rand(2, 128, 125)
    assert model.conv(x.unsqueeze(1)).shape == (2, 32, 4, 1)
    assert model.embed(x).shape == (2, 64)
    assert len(model.flows) == 5
    assert model.decode(torch.zeros(2, 64)).shape == (2, 128, 125)
    assert model.classify(x).shape == (2, 9)


def test_flows_are_autoregressive():
    """Output i of an IAF step depends on inputs < i only: the Jacobian is triangular."""
    from sampletool.models.vae import IAFStep

    torch.manual_seed(0)
    step = IAFStep(latent=6, hidden=16, context=4)
    z, h = torch.randn(1, 6), torch.randn(1, 4)
    jac = torch.autograd.functional.jacobian(lambda v: step(v, h)[0], z)[0, :, 0, :]
    assert torch.allclose(jac.triu(1), torch.zeros(6, 6))
    # its log-determinant is the sum of the log diagonal
    _, logdet = step(z, h)
    assert torch.allclose(logdet, jac.diagonal().abs().log().sum(), atol=1e-5)


def test_kl_is_zero_mean_for_prior_posterior_without_flows():
    """With q = N(0, I) and no flows the Monte-Carlo KL averages to ~0."""
    from sampletool.models.vae import Posterior

    model = build_model(VAEConfig(**TINY, flow_length=0), AudioConfig())
    n = 20000
    post = Posterior(torch.zeros(n, 8), torch.zeros(n, 8), torch.zeros(n, 32))
    _, kl = model.sample_posterior(post, torch.Generator().manual_seed(0))
    assert abs(float(kl.mean())) < 0.1


def test_embed_is_deterministic_posterior_mean():
    model = build_model(CONFIGS["flows+classifier"], AudioConfig()).eval()
    x = torch.rand(2, 128, 125)
    assert torch.equal(model.embed(x), model.embed(x))
    assert torch.equal(model.embed(x), model.encode(x).mean)


def test_decoder_latent_is_the_mean_through_the_flows_without_noise():
    """What training decodes (z after the flows), with the noise taken away."""
    from sampletool.models.vae import Posterior

    torch.manual_seed(0)
    model = build_model(CONFIGS["flows+classifier"], AudioConfig()).eval()
    with torch.no_grad():
        post = model.encode(torch.rand(3, 128, 125))
        latent = model.decoder_latent(post)
        quiet = Posterior(post.mean, torch.full_like(post.logvar, -16.0), post.hidden)
        z, _ = model.sample_posterior(quiet, torch.Generator().manual_seed(1))
    assert torch.allclose(latent, z, atol=1e-2)
    assert (latent - post.mean).abs().max() > 0.1  # the flows move it: not the search vector


def test_decoder_latent_is_the_mean_without_flows():
    model = build_model(VAEConfig(**TINY, flow_length=0), AudioConfig()).eval()
    with torch.no_grad():
        post = model.encode(torch.rand(2, 128, 125))
        assert torch.equal(model.decoder_latent(post), post.mean)


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
def test_save_load_gives_identical_outputs(tmp_path, cfg_name):
    cfg = CONFIGS[cfg_name]
    audio = AudioConfig()
    torch.manual_seed(1)
    model = build_model(cfg, audio).eval()
    names = [f"c{i}" for i in range(cfg.num_classes)]
    save_bundle(tmp_path / "b", model, cfg, audio, names, {"description": "x", "name": "mine"})
    b = load_bundle(tmp_path / "b")
    assert b.name == "mine" and b.class_names == names and b.config == cfg and b.audio == audio
    x = torch.rand(2, 128, 125)
    z = torch.randn(2, cfg.latent)
    with torch.no_grad():
        assert torch.equal(model.embed(x), b.module.embed(x))
        assert torch.equal(model.decode(z), b.module.decode(z))
        if cfg.num_classes:
            assert torch.equal(model.classify(x), b.module.classify(x))
    assert not b.module.training


def test_config_round_trip_and_validation():
    cfg = VAEConfig(num_classes=4)
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="same, non-zero length"):
        VAEConfig(conv_channels=(4,), pool_sizes=((2, 2), (2, 2)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        VAEConfig(num_classes=1)
    with pytest.raises(ValueError, match="unknown model kind"):
        config_from_dict({"kind": "wavenet-9000"})
    with pytest.raises(ValueError, match="below 1x1"):
        build_model(VAEConfig(pool_sizes=((4, 4),) * 4), AudioConfig())


# -- bundle failures: each one clear BundleError ---------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")


def test_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"tensorflow checkpoint")
    with pytest.raises(BundleError, match=r"not a Sample Tool model: no config.json .*model.ckpt"):
        load_bundle(tmp_path)


def test_an_exported_archive_instead_of_a_folder_says_how_to_use_it(tmp_path):
    f = tmp_path / "drums.zip"
    f.write_bytes(b"PK\x03\x04")
    with pytest.raises(
        BundleError,
        match=r"is a file, not a model folder: an exported model; "
        r"unpack it, or import it in the app \(Tools > Models > Import archive\)",
    ):
        load_bundle(f)


def test_a_file_instead_of_a_folder(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"1234")
    with pytest.raises(BundleError, match="is a file"):
        load_bundle(f)


def test_config_that_is_not_json_or_not_ours(tmp_path, tiny_bundle):
    d = tmp_path / "b"
    d.mkdir()
    (d / CONFIG_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="cannot be read as JSON"):
        load_bundle(d)
    (d / CONFIG_FILE).write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(BundleError, match="not a Sample Tool model config"):
        load_bundle(d)


def _copy(src, dst):
    dst.mkdir(parents=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_newer_format_version(tmp_path, tiny_bundle):
    d = _copy(tiny_bundle, tmp_path / "b")
    doc = json.loads((d / CONFIG_FILE).read_text())
    doc["format_version"] = 99
    (d / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="newer Sample Tool.*format 99.*update"):
        load_bundle(d)


def test_weights_that_do_not_match_the_config(tmp_path, tiny_bundle):
    d = _copy(tiny_bundle, tmp_path / "b")
    doc = json.loads((d / CONFIG_FILE).read_text())
    doc["model"]["hidden"] = 64
    (d / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="do not match its config: .* wrong shape"):
        load_bundle(d)
    doc["model"]["hidden"] = 32
    doc["model"]["flow_length"] = 5
    (d / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="do not match its config: .* missing"):
        load_bundle(d)


def test_class_names_must_match_classifier(tmp_path, tiny_bundle):
    d = _copy(tiny_bundle, tmp_path / "b")
    doc = json.loads((d / CONFIG_FILE).read_text())
    doc["class_names"] = ["only-one"]
    (d / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="names 1 classes for a model with 3"):
        load_bundle(d)


def test_missing_or_damaged_weights(tmp_path, tiny_bundle):
    d = _copy(tiny_bundle, tmp_path / "b")
    (d / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match="no weights.safetensors"):
        load_bundle(d)
    (d / WEIGHTS_FILE).write_bytes(b"\x00" * 100)
    with pytest.raises(BundleError, match="damaged or not a safetensors file"):
        load_bundle(d)


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle code ran')",))


def test_a_pickle_in_place_of_the_weights_is_never_unpickled(tmp_path, tiny_bundle):
    d = _copy(tiny_bundle, tmp_path / "b")
    (d / WEIGHTS_FILE).write_bytes(pickle.dumps({"w": _Boom()}))
    with pytest.raises(BundleError, match="damaged or not a safetensors file"):
        load_bundle(d)


def test_bad_model_settings_in_config(tmp_path, tiny_bundle):
    d = _copy(tiny_bundle, tmp_path / "b")
    doc = json.loads((d / CONFIG_FILE).read_text())
    doc["model"]["dropout"] = 7
    (d / CONFIG_FILE).write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="describes no valid model.*dropout"):
        load_bundle(d)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    cfg = VAEConfig(**TINY, flow_length=1)
    model = build_model(cfg, AudioConfig())
    save_bundle(tmp_path / "b", model, cfg, AudioConfig())
    save_bundle(tmp_path / "b", model, cfg, AudioConfig())  # overwrite in place
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    with pytest.raises(ValueError, match="class names"):
        save_bundle(tmp_path / "c", model, cfg, AudioConfig(), ["a", "b"])


def test_find_and_resolve_bundles(tmp_path, monkeypatch, tiny_bundle):
    root = tmp_path / "models"
    _copy(tiny_bundle, root / "drums")
    (root / "junk").mkdir()
    (root / "junk" / "readme.txt").write_text("not a model")
    monkeypatch.setenv("SAMPLETOOL_MODEL_PATH", str(root))
    infos = {i.name: i for i in find_bundles()}
    assert "drums" in infos and "junk" not in infos
    assert infos["drums"].class_names == ("class0", "class1", "class2")
    assert resolve_model("drums") == root / "drums"
    assert resolve_model(str(tiny_bundle)) == tiny_bundle
    with pytest.raises(BundleError, match="no model folder or installed model named 'nope'"):
        resolve_model("nope")


def test_weights_file_has_no_mask_buffers(tiny_bundle):
    """The MADE masks are derived from the sizes; the weights file holds parameters only."""
    from safetensors.numpy import load_file

    keys = load_file(str(tiny_bundle / WEIGHTS_FILE)).keys()
    assert keys and not any(k.endswith(".mask") for k in keys)
    assert all(
        np.dtype("float32") == v.dtype for v in load_file(str(tiny_bundle / WEIGHTS_FILE)).values()
    )


def test_class_prior_pulls_each_class_to_its_centre():
    cfg = VAEConfig(conv_channels=(4, 4), pool_sizes=((4, 4), (4, 4)), hidden=16, latent=8,
                    flow_length=1, flow_hidden=8, num_classes=3, prior="class",
                    prior_scale=2.0, classifier_input="latent", class_weight=1.0)  # fmt: skip
    model = build_model(cfg, AudioConfig())
    assert torch.equal(model.class_centres[1], torch.tensor([0, 2.0, 0, 0, 0, 0, 0, 0]))
    x = torch.rand(4, 128, 125)
    post = model.encode(x)
    gen = torch.Generator().manual_seed(0)
    z, kl_std = model.sample_posterior(post, torch.Generator().manual_seed(0))
    z2, kl_cls = model.sample_posterior(post, gen, torch.tensor([0, 1, 2, -1]))
    assert torch.equal(z, z2)
    # log p under N(c, I) vs N(0, I): KL differs by 0.5(|z-c|^2 - |z|^2) for labelled clips only.
    c = model.class_centres[torch.tensor([0, 1, 2])]
    expected = 0.5 * ((z[:3] - c).square().sum(-1) - z[:3].square().sum(-1))
    assert torch.allclose(kl_cls[:3] - kl_std[:3], expected, atol=1e-4)
    assert torch.allclose(kl_cls[3], kl_std[3])
    out = model.loss(x, torch.tensor([0, 1, 2, -1]))
    out.total.backward()
    assert torch.isfinite(out.total) and "ce" in out.parts
    with pytest.raises(ValueError, match="latent dimensions"):
        VAEConfig(latent=2, num_classes=3, prior="class")


def test_soft_nearest_neighbour_loss_rewards_class_clusters_and_trains_the_means():
    from sampletool.models.vae import soft_nearest_neighbour

    gen = torch.Generator().manual_seed(0)
    v = torch.randn(48, 8, generator=gen)
    y = torch.arange(48) % 3
    mixed = soft_nearest_neighbour(v, y)
    clustered = soft_nearest_neighbour(v + 6 * torch.nn.functional.one_hot(y, 8), y)
    assert clustered < 0.05 < mixed  # near 0 when every neighbour shares the class
    assert float(soft_nearest_neighbour(v[:3], torch.tensor([0, 1, 2]))) == 0.0  # no partner
    assert float(soft_nearest_neighbour(v[:4], torch.tensor([0, -1, -1, 0]))) == 0.0
    cfg = VAEConfig(**TINY, num_classes=3, classifier_input="latent", neighbour_weight=5.0)
    model = build_model(cfg, AudioConfig())
    x = torch.rand(6, 128, 125)
    labels = torch.tensor([0, 0, 1, 1, 2, -1])
    out = model.loss(x, labels)
    out.total.backward()
    assert out.parts["nn"] > 0 and model.mean.weight.grad.abs().sum() > 0
    default = build_model(VAEConfig(**TINY, num_classes=3), AudioConfig())
    assert "nn" not in default.loss(x, labels).parts  # off by default
    assert config_from_dict(cfg.to_dict()).neighbour_weight == 5.0
    with pytest.raises(ValueError, match="neighbour_weight"):
        VAEConfig(neighbour_weight=-1.0)


def test_atomic_writes_get_the_usual_permissions_not_private_ones(tmp_path):
    import os
    import stat

    from sampletool.fileio import atomic_write_text

    mask = os.umask(0o022)
    os.umask(mask)
    path = atomic_write_text(tmp_path / "x.json", "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_failed_atomic_write_names_the_users_file_not_its_temporary_one(tmp_path):
    import errno
    from pathlib import Path

    from sampletool.fileio import atomic_write

    def disk_full(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(OSError, match="No space left") as e:
        atomic_write(tmp_path / "v.npy", disk_full)
    assert e.value.filename == str(tmp_path / "v.npy") and e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # the half-written temporary file is gone
    with pytest.raises(ValueError, match="bad"):  # any other error passes as it is
        atomic_write(tmp_path / "w.npy", lambda tmp: (_ for _ in ()).throw(ValueError("bad")))


# -- every registered kind, and the shipped model's own settings, at tiny capacity ------------

# A kind added to the registry without tiny settings here fails the test below.
TINY_VAE_SETTINGS = dict(conv_channels=[4, 8], pool_sizes=[[4, 4], [4, 4]], hidden=32,
                         latent=16, flow_length=2, flow_hidden=8)  # fmt: skip
_TINY_WAVENET = {"enc_channels": 4, "enc_layers": 2, "enc_block": 2, "latent": 4, "hop": 512,
                 "dec_channels": 4, "dec_layers": 2, "dec_block": 2, "skip_channels": 4,
                 "train_crop": 1024}  # fmt: skip
TINY_SETTINGS = {"vae": TINY_VAE_SETTINGS, "wavenet-encoder": _TINY_WAVENET,
                 "wavenet-autoencoder": _TINY_WAVENET}  # fmt: skip


def _shipped_settings_shrunk() -> dict:
    """The built-in model's config (class prior, classifier on the latent, neighbour loss...)
    with every size made tiny."""
    from sampletool.models.bundle import read_bundle_config

    model = dict(read_bundle_config(resolve_model(None))["model"])
    model.pop("extra", None)
    model.update(conv_channels=[4] * len(model["conv_channels"]), hidden=32, latent=16,
                 flow_hidden=8)  # fmt: skip
    return model


def _exercise(settings: dict, num_classes: int, tmp_path) -> dict:
    """Build, take a training step, save, load through the registry, encode, blend, decode."""
    from sampletool.models.kinds import get_kind

    config = config_from_dict(settings | {"num_classes": num_classes})
    kind = get_kind(config.kind)
    audio = AudioConfig()
    torch.manual_seed(0)
    module = kind.build(config, audio).train()
    if kind.input == "waveform":
        x = torch.rand(6, audio.num_samples) - 0.5
    else:
        x = torch.rand(6, audio.n_mels, audio.num_frames)
    labels = torch.tensor([0, 1, 2, 0, 1, -1]) if num_classes else None
    out = module.loss(x, labels)
    out.total.backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert torch.isfinite(out.total) and grads and all(torch.isfinite(g).all() for g in grads)
    assert (out.class_logits is not None) == bool(num_classes)
    names = [f"c{i}" for i in range(num_classes)]
    save_bundle(tmp_path / config.kind, module, config, audio, names)
    runtime = load_bundle(tmp_path / config.kind)
    assert type(runtime) is kind.runtime_type and runtime.class_names == names
    enc = runtime.encode(x.numpy())
    assert enc.vectors.shape == (6, runtime.vector_dim)
    assert enc.latents.shape == (6, *runtime.latent_shape)
    if num_classes:
        assert enc.probs.shape == (6, num_classes) and np.allclose(enc.probs.sum(1), 1, atol=1e-5)
    else:
        assert enc.probs is None
    clip = np.sin(np.linspace(0, 2000, audio.num_samples)).astype(np.float32)
    reading = runtime.read(clip)
    np.testing.assert_allclose(reading.vectors, runtime.encode_clips(clip[None]).vectors, atol=1e-6)
    z = runtime.blend(enc.latents, [1, 2, 0, 0, 0, 1])
    if not runtime.can_generate:
        with pytest.raises(ModelError, match="no decoder"):
            runtime.decode(z)
        return out.parts
    sound = runtime.decode(z, iterations=2)
    assert sound.shape == (1, audio.num_samples) and np.isfinite(sound).all()
    assert np.abs(sound).max() <= 1.0
    return out.parts


@pytest.mark.parametrize("kind", kind_names())
@pytest.mark.parametrize("num_classes", [0, 3])
def test_every_registered_kind_builds_trains_and_runs(kind, num_classes, tmp_path):
    assert kind in TINY_SETTINGS, f"give the {kind!r} kind tiny settings in TINY_SETTINGS"
    if kind == "wavenet-encoder" and not num_classes:
        with pytest.raises(ValueError, match="learns from classes only"):
            config_from_dict({"kind": kind, **TINY_SETTINGS[kind]})
        return
    _exercise({"kind": kind, **TINY_SETTINGS[kind]}, num_classes, tmp_path)


def test_the_shipped_models_own_settings_at_tiny_capacity(tmp_path):
    settings = _shipped_settings_shrunk()
    assert settings["prior"] == "class" and settings["classifier_input"] == "latent"
    assert settings["neighbour_weight"] > 0
    parts = _exercise(settings, 9, tmp_path)
    assert {"recon", "kl", "ce", "nn", "loss"} <= set(parts)
