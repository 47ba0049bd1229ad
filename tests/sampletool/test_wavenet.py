"""The NSynth WaveNet kinds: the modules, fast generation, training through the shared Trainer,
the runtime, and the wavenet-embed / wavenet-generate commands (tiny configs, short clips)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sampletool.cli import main
from sampletool.data.dataset import make_dataset
from sampletool.errors import ModelError
from sampletool.features import AudioConfig
from sampletool.models.kinds import get_kind
from sampletool.models.runtime import load_runtime
from sampletool.models.wavenet import (
    AUTOENCODER,
    ENCODER,
    WaveNetAutoencoder,
    WaveNetConfig,
    level_to_audio,
    quantize,
)
from sampletool.progress import Cancelled
from sampletool.training.trainer import TrainConfig, Trainer, TrainingError
from tests.helpers import class_sound, make_class_folders, tone

TINY = dict(enc_channels=8, enc_layers=4, enc_block=2, latent=4, hop=64, dec_channels=8,
            dec_layers=4, dec_block=2, skip_channels=8, train_crop=512,
            classifier_hidden=16)  # fmt: skip
AUDIO = AudioConfig(seconds=0.5).to_dict()


def tiny(kind: str = AUTOENCODER, **kw) -> WaveNetAutoencoder:
    torch.manual_seed(0)
    return WaveNetAutoencoder(WaveNetConfig(kind=kind, **(TINY | kw)))


# -- the modules -------------------------------------------------------------------------------


def test_shapes_and_mu_law():
    m = tiny(num_classes=3).eval()
    x = torch.rand(2, 1000) - 0.5
    emb = m.embed(x)
    assert emb.shape == (2, 4, 16)  # ceil(1000 / 64) frames
    assert m.decoder(m.decoder.shift(x), emb).shape == (2, 256, 1000)
    assert m.class_logits(emb).shape == (2, 3)
    q = quantize(torch.linspace(-1, 1, 9))
    assert q[0] == 0 and q[-1] == 255 and q[4] == 128
    back = level_to_audio(quantize(x))
    assert (back - x).abs().max() < 0.02  # 8-bit mu-law: fine near 0, coarse near full scale


def test_the_decoder_is_causal():
    m = tiny().eval()
    x = torch.rand(1, 600) - 0.5
    emb = m.embed(x)
    inputs = m.decoder.shift(x)
    changed = inputs.clone()
    changed[:, 300:] = 0.9
    a, b = m.decoder(inputs, emb), m.decoder(changed, emb)
    assert torch.equal(a[..., :300], b[..., :300])  # a future sample never changes the past
    assert not torch.equal(a[..., 300:], b[..., 300:])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_fast_generation_equals_naive_generation(temperature):
    m = tiny().double().eval()
    for p in m.decoder.parameters():  # larger weights: outputs that are far from uniform
        p.data.mul_(3)
    emb = 3 * torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fast = m.decoder.generate(emb, 300, temperature, torch.Generator().manual_seed(1))
    naive = m.decoder.generate_naive(emb, 300, temperature, torch.Generator().manual_seed(1))
    assert torch.equal(fast, naive)
    assert len(torch.unique(fast)) > 5  # not a constant output, which would prove little


def test_the_loss_falls():
    m = tiny().train()
    x = torch.from_numpy(np.stack([tone(220, 0.25), tone(330, 0.25)]))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        out = m.loss(x, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        out.total.backward()
        opt.step()
        losses.append(out.parts["recon"])
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_config_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="learns from classes only"):
        WaveNetConfig(kind=ENCODER)
    with pytest.raises(ValueError, match="multiple of hop"):
        WaveNetConfig(train_crop=1000, hop=512)
    with pytest.raises(ValueError, match="unknown WaveNet settings: latnet"):
        WaveNetConfig.from_dict({"kind": AUTOENCODER, "latnet": 3})
    for kind in (ENCODER, AUTOENCODER):
        k = get_kind(kind)
        assert k.input == "waveform"
        assert WaveNetConfig.from_dict(k.preset("large") | {"num_classes": 2}).dec_channels == 512


# -- training, bundles, the runtime ------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    data = make_class_folders(tmp_path_factory.mktemp("data") / "drums", per_class=12)
    return make_dataset([data], "three", out=tmp_path_factory.mktemp("ds") / "three",
                        train_ratio=0.75, classes_from_subfolders=True, workers=0)  # fmt: skip


def config(dataset: Path, kind: str, **kw) -> TrainConfig:
    defaults = dict(dataset=str(dataset), model={"kind": kind, **TINY}, audio=AUDIO,
                    batch_size=8, lr=1e-2, max_steps=60, eval_every=20, workers=0)  # fmt: skip
    return TrainConfig(**(defaults | kw))


def accuracy(runtime) -> float:
    rng = np.random.default_rng(7)
    classes = ("high", "low", "noise")
    right = [
        runtime.class_names[int(runtime.read(class_sound(c, rng)).probs[0].argmax())] == c
        for c in classes
        for _ in range(6)
    ]
    return float(np.mean(right))


@pytest.fixture(scope="module")
def encoder(dataset, tmp_path_factory) -> Path:
    log = tmp_path_factory.mktemp("runs") / "enc"
    Trainer(log, config(dataset, ENCODER), device="cpu").run()
    return log


@pytest.fixture(scope="module")
def autoencoder(dataset, tmp_path_factory) -> Path:
    log = tmp_path_factory.mktemp("runs") / "ae"
    Trainer(log, config(dataset, AUTOENCODER, max_steps=40), device="cpu").run()
    return log


def test_the_fine_tuned_encoder_classifies(encoder):
    runtime = load_runtime(encoder, device="cpu")
    assert runtime.kind == ENCODER and runtime.class_names == ["high", "low", "noise"]
    assert accuracy(runtime) >= 0.8  # of 18 sounds it never saw (chance: 1/3; seeds 0-3 got 1)
    conf = json.loads((encoder / "confusion_matrix.json").read_text())
    assert np.array(conf["matrix"]).sum() == 9  # the validation split
    assert not runtime.can_generate
    with pytest.raises(ModelError, match="no decoder to make audio"):
        runtime.decode(np.zeros(runtime.latent_shape, np.float32))


def test_the_fine_tuned_autoencoder_trains_both_heads_and_generates(autoencoder):
    rows = [json.loads(line) for line in (autoencoder / "metrics.jsonl").read_text().splitlines()]
    assert {"val_recon", "val_ce", "val_accuracy"} <= rows[-1].keys()
    runtime = load_runtime(autoencoder, device="cpu")
    enc = runtime.read(class_sound("low", np.random.default_rng(0)))
    assert enc.vectors.shape == (1, 4) and enc.probs.shape == (1, 3)
    assert enc.latents.shape == (1, 4, 125)  # 0.5 s at 16 kHz, a frame every 64 samples
    steps = []
    audio = runtime.decode(enc.latents, seed=3, progress=lambda d, t, m: steps.append((d, t)))
    assert audio.shape == (1, 8000) and np.isfinite(audio).all() and np.abs(audio).max() <= 1
    assert steps and steps[-1][1] == 8000
    again = runtime.decode(enc.latents, seed=3)
    assert np.array_equal(audio, again)  # the seed decides the draws
    cancel = __import__("threading").Event()
    cancel.set()
    with pytest.raises(Cancelled):
        runtime.decode(enc.latents, cancel=cancel)


def test_a_saved_model_loads_identical(autoencoder, tmp_path):
    runtime = load_runtime(autoencoder, device="cpu")
    saved = {k: v for k, v in runtime.module.state_dict().items()}
    x = torch.from_numpy(class_sound("high", np.random.default_rng(1))[:8000].copy())[None]
    reloaded = load_runtime(autoencoder, device="cpu")
    assert all(torch.equal(saved[k], v) for k, v in reloaded.module.state_dict().items())
    a = runtime.module.embed(x)
    b = reloaded.module.embed(x)
    assert torch.equal(a, b)


def test_waveform_models_refuse_feature_augmentation(dataset, tmp_path):
    aug = {"mode": "none", "mel_shift": 2}
    with pytest.raises(TrainingError, match="reads the waveform"):
        Trainer(tmp_path / "x", config(dataset, ENCODER, augment=aug), device="cpu")


def test_noise_augmentation_trains_a_waveform_model(dataset, tmp_path):
    aug = {"mode": "both", "noise": "laplace", "snr_db": [10.0, 20.0]}
    result = Trainer(tmp_path / "x", config(dataset, ENCODER, augment=aug, max_steps=4,
                                            eval_every=4), device="cpu").run()  # fmt: skip
    assert result.step == 4


def test_cli_trains_a_size_preset(dataset, tmp_path, capsys):
    args = ["train", "--logdir", str(tmp_path / "run"), "--dataset", str(dataset), "--model",
            ENCODER, "--size", "small", "--model-options", json.dumps({"enc_layers": 2}),
            "--batch-size", "2", "--max-steps", "1", "--eval-every", "1",
            "--workers", "0"]  # fmt: skip
    assert main(args) == 0
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())["model"]
    assert saved["kind"] == ENCODER and saved["enc_channels"] == 32 and saved["enc_layers"] == 2
    args[2] = str(tmp_path / "r2")
    assert main([*args, "--init-from", "x"]) == 2
    assert "--size and --init-from" in capsys.readouterr().err


# -- the embedding commands --------------------------------------------------------------------


def test_embed_then_generate_files_and_a_mix(autoencoder, encoder, tmp_path, capsys):
    from tests.helpers import write

    a = write(tmp_path / "in" / "a.wav", tone(200, 0.3))
    b = write(tmp_path / "in" / "b.wav", tone(900, 0.6))
    bad = tmp_path / "in" / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    emb = tmp_path / "emb"
    assert main(["wavenet-embed", str(a), str(bad), str(b), "--model", str(autoencoder),
                 "-o", str(emb)]) == 1  # fmt: skip
    assert "bad.wav" in capsys.readouterr().err
    ea, eb = np.load(emb / "a.npy"), np.load(emb / "b.npy")
    assert ea.shape == (75, 4) and eb.shape == (150, 4)  # [frames, dims], the whole file
    runtime = load_runtime(autoencoder, device="cpu")
    assert np.allclose(eb.mean(0), runtime.read(str(b)).vectors[0], atol=1e-5)
    out = tmp_path / "gen"
    args = ["wavenet-generate", str(emb / "a.npy"), str(emb / "b.npy"), "--model",
            str(autoencoder), "-o", str(out), "--seed", "1"]  # fmt: skip
    assert main(args) == 0
    import soundfile as sf

    assert sf.info(str(out / "a.wav")).frames == 75 * 64
    assert sf.info(str(out / "b.wav")).frames == 150 * 64
    assert main([*args, "--mix", "--weights", "0.8", "0.2"]) == 0
    assert sf.info(str(out / "mix.wav")).frames == 150 * 64
    # An encoder has no decoder; a file that is not an embedding is reported and skipped.
    capsys.readouterr()
    assert main(["wavenet-generate", str(emb / "a.npy"), "--model", str(encoder), "-o",
                 str(out)]) == 2  # fmt: skip
    assert "no decoder" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((5, 7), np.float32))
    assert main(["wavenet-generate", str(tmp_path / "wrong.npy"), str(emb / "a.npy"),
                 "--model", str(autoencoder), "-o", str(out)]) == 1  # fmt: skip
    assert "not an embedding [frames, 4]" in capsys.readouterr().err
    assert main(["wavenet-embed", str(a), "--model", "default", "-o", str(emb)]) == 2
    assert "not a WaveNet" in capsys.readouterr().err


def test_the_wizard_can_time_a_waveform_kind(dataset):
    """The train wizard's estimate runs real steps of the kind it offers, waveform ones too."""
    from sampletool.data.dataset import load_dataset
    from sampletool.training.estimate import measure

    files = load_dataset(dataset).paths[:4]
    for kind in (ENCODER, AUTOENCODER):
        m = measure(config(dataset, kind, batch_size=2), 3, files, steps=1, device="cpu")
        assert m.step > 0 and m.val_file > 0 and m.parameters > 0
