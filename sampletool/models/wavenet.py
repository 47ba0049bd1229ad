"""The NSynth WaveNet autoencoder (Engel et al. 2017) in PyTorch, as two model kinds.

- `wavenet-encoder` (the "fine-tuned encoder" experiment): NSynth's encoder and a classifier on
  its time-pooled embedding, trained with cross-entropy. It classifies and finds similar
  sounds; it has no decoder, so it generates nothing.
- `wavenet-autoencoder` (the "fine-tuned autoencoder" experiment): the whole autoencoder with
  the classifier on the encoder; loss = reconstruction + class_weight x cross-entropy.

Shapes: audio is Float [B, T] in [-1, 1] at the bundle's sample rate (the model reads the
waveform, not log-mel: see `WaveNetRuntime.features`); the embedding is Float
[B, latent, frames], one frame every `hop` samples (NSynth: 16 numbers every 512 samples at
16 kHz); the search vector is the embedding averaged over time, Float [B, latent].

Encoder: a non-causal dilated residual stack (kernel 3, dilations doubling within blocks),
a 1x1 bottleneck and average pooling over each hop. Decoder: a causal WaveNet (kernel 2, gated
units, residual and skip paths) conditioned on the embedding, upsampled by repetition, in
every layer and at the output; it predicts each sample as one of 256 mu-law levels.

Generation is incremental (`WaveNetDecoder.generate`): each dilated layer keeps a queue of its
last `dilation` inputs, so a new sample costs one step per layer instead of a pass over the
whole receptive field (Paine et al. 2016, "Fast Wavenet Generation Algorithm").
`WaveNetDecoder.generate_naive` recomputes the receptive field for every sample: the reference
the fast path is tested and benchmarked against.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sampletool.errors import ModelError
from sampletool.features import AudioConfig
from sampletool.models.kinds import Loss, ModelKind
from sampletool.models.runtime import ModelRuntime
from sampletool.progress import Cancelled, Progress

ENCODER = "wavenet-encoder"
AUTOENCODER = "wavenet-autoencoder"


# The largest sizes a WaveNet config may ask for; a block of 16 layers dilates up to 2 ** 15.
_MAX = {"enc_channels": 4096, "enc_layers": 256, "enc_block": 16, "latent": 1024, "hop": 65536,
        "dec_channels": 4096, "dec_layers": 256, "dec_block": 16, "skip_channels": 4096,
        "classifier_hidden": 16384}  # fmt: skip
MAX_TRAIN_CROP = 1 << 24
MAX_CLASSES = 10000


@dataclass(frozen=True)
class WaveNetConfig:
    """Sizes default to NSynth's published model (a GPU model: see the kinds' presets for ones
    that train on a laptop's CPU). Every field is stored in the bundle's config.json."""

    kind: str = AUTOENCODER
    # Encoder: enc_layers residual layers of enc_channels, dilation 2 ** (i % enc_block).
    enc_channels: int = 128
    enc_layers: int = 30
    enc_block: int = 10
    latent: int = 16
    hop: int = 512
    # Decoder (wavenet-autoencoder only): dec_layers gated layers, dilation 2 ** (i % dec_block).
    dec_channels: int = 512
    dec_layers: int = 30
    dec_block: int = 10
    skip_channels: int = 256
    levels: int = 256  # mu-law levels the decoder predicts
    # The decoder trains (and is validated) on a crop of this many samples (a multiple of hop;
    # 0: the whole clip), conditioned on the embedding's frames over it, as NSynth trained on
    # crops; the encoder always reads the whole clip.
    train_crop: int = 6144
    num_classes: int = 0
    classifier_hidden: int = 64
    class_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in (ENCODER, AUTOENCODER):
            raise ValueError(f"WaveNetConfig is for {ENCODER} or {AUTOENCODER}, not {self.kind!r}")
        # Far beyond NSynth's sizes, and small enough that a config from a stranger cannot ask
        # for endless layers or dilations (see sampletool.models.limits).
        for name, high in _MAX.items():
            if not 1 <= int(getattr(self, name)) <= high:
                raise ValueError(f"{name} must be in [1, {high}]")
        if not 2 <= self.levels <= 65536:
            raise ValueError("levels must be in [2, 65536]")
        if not 0 <= self.train_crop <= MAX_TRAIN_CROP or self.train_crop % self.hop:
            raise ValueError(
                f"train_crop must be 0 or a multiple of hop ({self.hop}), at most {MAX_TRAIN_CROP}"
            )
        if self.num_classes < 0 or self.num_classes == 1:
            raise ValueError("a classifier needs at least 2 classes (num_classes 0: none)")
        if self.num_classes > MAX_CLASSES:
            raise ValueError(f"num_classes must be at most {MAX_CLASSES}")
        if self.kind == ENCODER and self.num_classes == 0:
            raise ValueError(
                "the fine-tuned encoder learns from classes only; give it classes (sub-folders "
                f"as classes) or train a {AUTOENCODER}, which also learns from unlabelled audio"
            )
        if self.class_weight < 0:
            raise ValueError("class_weight must be >= 0")

    @property
    def has_decoder(self) -> bool:
        return self.kind == AUTOENCODER

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WaveNetConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown WaveNet settings: {', '.join(sorted(unknown))}")
        return cls(**d)


# -- mu-law ------------------------------------------------------------------------------------


def mu_law(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] -> mu-law companded, in [-1, 1]."""
    mu = levels - 1
    x = x.clamp(-1.0, 1.0)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def quantize(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] -> mu-law level, Long in [0, levels)."""
    y = (mu_law(x, levels) + 1) / 2 * (levels - 1)
    return (y + 0.5).floor().clamp(0, levels - 1).long()


def level_value(q: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """A mu-law level -> its companded value in [-1, 1] (what the decoder reads back)."""
    return q.to(torch.get_default_dtype()) / (levels - 1) * 2 - 1


def level_to_audio(q: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """A mu-law level -> audio in [-1, 1]."""
    y = level_value(q, levels)
    mu = levels - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


# -- modules -----------------------------------------------------------------------------------


class WaveNetEncoder(nn.Module):
    """Audio [B, T] -> embedding [B, latent, ceil(T / hop)] (NSynth's encoder)."""

    def __init__(self, channels: int, layers: int, block: int, latent: int, hop: int) -> None:
        super().__init__()
        self.hop = hop
        self.front = nn.Conv1d(1, channels, 3, padding=1)
        self.dilated = nn.ModuleList()
        self.res = nn.ModuleList()
        for i in range(layers):
            d = 2 ** (i % block)
            self.dilated.append(nn.Conv1d(channels, channels, 3, dilation=d, padding=d))
            self.res.append(nn.Conv1d(channels, channels, 1))
        self.bottleneck = nn.Conv1d(channels, latent, 1)

    def forward(self, audio: torch.Tensor, levels: int) -> torch.Tensor:
        pad = (-audio.shape[-1]) % self.hop
        x = F.pad(mu_law(audio, levels), (0, pad))[:, None]
        h = self.front(x)
        for dilated, res in zip(self.dilated, self.res, strict=True):
            h = h + res(F.relu(dilated(F.relu(h))))
        return F.avg_pool1d(self.bottleneck(h), self.hop)


class _GatedLayer(nn.Module):
    dilation: int

    def __init__(self, channels: int, skip: int, latent: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.dilated = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        self.cond = nn.Conv1d(latent, 2 * channels, 1)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip, 1)


def _bias(conv: nn.Conv1d) -> torch.Tensor:
    return cast(torch.Tensor, conv.bias)


def _upsample(frames: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """[B, C, F] -> [B, C, length], each frame repeated over its hop."""
    return frames.repeat_interleave(hop, dim=-1)[..., :length]


class WaveNetDecoder(nn.Module):
    """Causal WaveNet: the previous samples (as mu-law values) and the embedding -> logits over
    the mu-law levels of each sample."""

    def __init__(
        self, channels: int, layers: int, block: int, skip: int, latent: int, hop: int, levels: int
    ) -> None:
        super().__init__()
        self.hop, self.levels, self.channels = hop, levels, channels
        self.front = nn.Conv1d(1, channels, 2)  # causal: padded by one on the left
        self.skip0 = nn.Conv1d(channels, skip, 1)
        self.layers = nn.ModuleList(
            _GatedLayer(channels, skip, latent, 2 ** (i % block)) for i in range(layers)
        )
        self.out1 = nn.Conv1d(skip, skip, 1)
        self.out_cond = nn.Conv1d(latent, skip, 1)
        self.out2 = nn.Conv1d(skip, levels, 1)

    @property
    def gated(self) -> list[_GatedLayer]:
        return cast(list[_GatedLayer], list(self.layers))

    @property
    def receptive_field(self) -> int:
        """How many past inputs one output sees (the front conv's two and each layer's reach)."""
        return 2 + sum(layer.dilation for layer in self.gated)

    def forward(self, inputs: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Inputs Float [B, T] (sample t-1's mu-law value at t: see `shift`), embedding
        [B, latent, >= ceil(T / hop)] -> logits [B, levels, T]. Output t depends on inputs up to
        t only."""
        t = inputs.shape[-1]
        h = self.front(F.pad(inputs[:, None], (1, 0)))
        s = self.skip0(h)
        for layer in self.gated:
            z = layer.dilated(F.pad(h, (layer.dilation, 0)))
            z = z + _upsample(layer.cond(embedding), self.hop, t)
            m = torch.sigmoid(z[:, : self.channels]) * torch.tanh(z[:, self.channels :])
            h = h + layer.res(m)
            s = s + layer.skip(m)
        s = F.relu(self.out1(F.relu(s)) + _upsample(self.out_cond(embedding), self.hop, t))
        return self.out2(s)

    def shift(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [B, T] -> the decoder's inputs for it: each sample's predecessor, quantised
        to its mu-law level's value (0 before the first)."""
        values = level_value(quantize(audio, self.levels), self.levels).to(audio.dtype)
        return F.pad(values, (1, 0))[:, :-1]

    @torch.no_grad()
    def generate(
        self,
        embedding: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        progress: Callable[[int], None] | None = None,
        every: int = 1000,
    ) -> torch.Tensor:
        """Embedding [B, latent, frames] -> mu-law levels Long [B, length], one sample at a time
        with a queue of past activations per layer (each sample: one step per layer).

        The steps are tiny matrix products, so the loop runs in numpy on the CPU, whose calls
        cost a quarter of torch's (the float type is the embedding's). temperature: 0 picks the
        likeliest level (greedy); 1 samples the predicted distribution, with uniform draws
        from `generator`. `progress(done)` is called every `every` samples (it may raise to
        stop).
        """
        b = embedding.shape[0]
        dt = np.float64 if embedding.dtype == torch.float64 else np.float32

        def npy(x: torch.Tensor) -> np.ndarray:
            return x.detach().cpu().numpy().astype(dt)

        c, c2, layers = self.channels, 2 * self.channels, self.gated
        # The gate's sigmoid half is scaled by 1/2 so that one tanh serves both halves:
        # sigmoid(a) * tanh(b) = (tanh(a / 2) + 1) * tanh(b) / 2 (the 1/2 goes in res and skip).
        half = torch.ones(c2, dtype=embedding.dtype, device=embedding.device)
        half[:c] = 0.5
        now_future, cond, res_w, res_b, rings = [], [], [], [], []
        for layer in layers:
            w = layer.dilated.weight * half[:, None, None]  # [2C, C, 2]: tap 1 reads t
            now_future.append(npy(torch.cat([w[:, :, 1], w[:, :, 0]], 0).t()))  # [C, 4C]
            bias = (_bias(layer.dilated) + _bias(layer.cond)) * half
            frames = F.conv1d(embedding, layer.cond.weight * half[:, None, None], bias)
            cond.append(npy(frames.permute(2, 0, 1)))  # [F, B, 2C]
            res_w.append(npy(layer.res.weight[:, :, 0].t() * 0.5))
            res_b.append(npy(_bias(layer.res)))
            rings.append([np.zeros((b, c2), dt)] * layer.dilation)  # tap-0 terms, t-d .. t-1
        skip_w = npy(torch.cat([la.skip.weight[:, :, 0] for la in layers], 1).t() * 0.5)
        skip_b = npy(_bias(self.skip0) + sum((_bias(la.skip) for la in layers),
                                             torch.zeros_like(_bias(self.skip0))))  # fmt: skip
        skip0_w = npy(self.skip0.weight[:, :, 0].t())
        front_w, front_b = npy(self.front.weight[:, 0, :].t()), npy(_bias(self.front))  # [2, C]
        out1_w, out1_b = npy(self.out1.weight[:, :, 0].t()), npy(_bias(self.out1))
        out2_w, out2_b = npy(self.out2.weight[:, :, 0].t()), npy(_bias(self.out2))
        out_cond = npy(self.out_cond(embedding).permute(2, 0, 1))  # [F, B, S]
        dilations = [layer.dilation for layer in layers]
        inputs = np.zeros((b, 2), dt)  # the front conv's taps: samples t-2 and t-1, as values
        out = np.empty((b, length), np.int64)
        for t in range(length):
            frame = t // self.hop
            h = inputs @ front_w + front_b
            s = h @ skip0_w + skip_b
            ms = []
            for i, d in enumerate(dilations):
                hw = h @ now_future[i]
                ring, slot = rings[i], t % d
                g = np.tanh(hw[:, :c2] + ring[slot] + cond[i][frame])
                ring[slot] = hw[:, c2:]
                m = (g[:, :c] + 1) * g[:, c:]
                ms.append(m)
                h = h + m @ res_w[i] + res_b[i]
            s = s + np.concatenate(ms, 1) @ skip_w
            s = np.maximum(np.maximum(s, 0) @ out1_w + out1_b + out_cond[frame], 0)
            q = pick_level(s @ out2_w + out2_b, temperature, generator)
            out[:, t] = q
            inputs = np.stack([inputs[:, 1], q / (self.levels - 1) * 2 - 1], 1).astype(dt)
            if progress is not None and (t + 1) % every == 0:
                progress(t + 1)
        return torch.from_numpy(out).to(embedding.device)

    @torch.no_grad()
    def generate_naive(
        self,
        embedding: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """What `generate` computes, by running the whole network over each sample's receptive
        field: the slow reference."""
        b = embedding.shape[0]
        r = self.receptive_field
        inputs = torch.zeros(b, length, device=embedding.device, dtype=embedding.dtype)
        out = torch.empty(b, length, dtype=torch.long, device=embedding.device)
        for t in range(length):
            # From a hop boundary at least r inputs back: the padding before it is out of reach.
            first = max(0, t + 1 - r) // self.hop
            logits = self.forward(inputs[:, first * self.hop : t + 1], embedding[..., first:])
            q = torch.from_numpy(pick_level(logits[:, :, -1].cpu().numpy(), temperature, generator))
            out[:, t] = q
            if t + 1 < length:
                inputs[:, t + 1] = level_value(q, self.levels).to(inputs.dtype)
        return out


def pick_level(logits: np.ndarray, temperature: float, gen: torch.Generator | None) -> np.ndarray:
    """Logits [B, levels] -> a level per row: the likeliest (temperature 0), else a draw from
    softmax(logits / temperature) by inverting its distribution at a uniform from `gen`."""
    if temperature <= 0:
        return logits.argmax(-1)
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max(-1, keepdims=True))
    cdf = np.cumsum(p, -1)
    u = torch.rand(len(z), generator=gen, dtype=torch.float64).numpy() * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(-1), z.shape[-1] - 1)


@dataclass
class WaveNetOutput:
    embedding: torch.Tensor  # [B, latent, frames]
    class_logits: torch.Tensor | None
    recon_logits: torch.Tensor | None  # [B, levels, crop]
    targets: torch.Tensor | None  # [B, crop] mu-law levels


class WaveNetAutoencoder(nn.Module):
    """NSynth's autoencoder (or its encoder alone) with a classifier on the pooled embedding.

    Besides its weights it keeps the mean and spread of the embeddings it was trained on
    (buffers, updated as batch norm's are): a random latent drawn from them is what a blend of
    no sounds decodes.
    """

    embedding_mean: torch.Tensor
    embedding_std: torch.Tensor

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        c = config
        self.levels, self.hop, self.latent = c.levels, c.hop, c.latent
        self.train_crop, self.class_weight = c.train_crop, c.class_weight
        self.encoder = WaveNetEncoder(c.enc_channels, c.enc_layers, c.enc_block, c.latent, c.hop)
        self.decoder = (
            WaveNetDecoder(
                c.dec_channels,
                c.dec_layers,
                c.dec_block,
                c.skip_channels,
                c.latent,
                c.hop,
                c.levels,
            )
            if c.has_decoder
            else None
        )
        self.classifier = (
            nn.Sequential(
                nn.Linear(c.latent, c.classifier_hidden),
                nn.ReLU(),
                nn.Linear(c.classifier_hidden, c.num_classes),
            )
            if c.num_classes
            else None
        )
        self.register_buffer("embedding_mean", torch.zeros(c.latent))
        self.register_buffer("embedding_std", torch.ones(c.latent))

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [B, T] -> embedding [B, latent, frames]."""
        return self.encoder(audio, self.levels)

    @staticmethod
    def pooled(embedding: torch.Tensor) -> torch.Tensor:
        """The search vector: the embedding averaged over time, [B, latent]."""
        return embedding.mean(-1)

    def class_logits(self, embedding: torch.Tensor) -> torch.Tensor | None:
        return None if self.classifier is None else self.classifier(self.pooled(embedding))

    def forward(
        self,
        audio: torch.Tensor,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> WaveNetOutput:
        emb = self.embed(audio)
        if self.training:
            with torch.no_grad():
                flat = emb.detach().transpose(1, 2).reshape(-1, self.latent)
                self.embedding_mean.lerp_(flat.mean(0), 0.01)
                self.embedding_std.lerp_(flat.std(0, unbiased=False) if len(flat) > 1
                                         else self.embedding_std, 0.01)  # fmt: skip
        logits = self.class_logits(emb)
        if self.decoder is None:
            return WaveNetOutput(emb, logits, None, None)
        t = audio.shape[-1]
        crop = self.train_crop
        if crop and crop < t:
            # A random crop in training (and where validation passes its seeded generator),
            # else the clip's start, where a one-shot's sound is.
            first = 0
            if self.training or generator is not None:
                frames = (t - crop) // self.hop + 1
                first = int(torch.randint(frames, (1,), generator=generator))
            start = first * self.hop
            clip, cond = audio[:, start : start + crop], emb[..., first:]
        else:
            clip, cond = audio, emb
        recon = self.decoder(self.decoder.shift(clip), cond)
        return WaveNetOutput(emb, logits, recon, quantize(clip, self.levels))

    def loss(
        self,
        features: torch.Tensor,
        labels: torch.Tensor | None = None,
        class_balance: torch.Tensor | None = None,
        forward: Callable[..., WaveNetOutput] | None = None,
        generator: torch.Generator | None = None,
    ) -> Loss:
        """Reconstruction (the decoder's cross-entropy over mu-law levels, in nats per sample)
        + class_weight * the classifier's cross-entropy; the encoder kind has the second only.
        `features` is audio [B, T]; the rest is as `sampletool.models.kinds.Trainable`."""
        out = (forward or self.forward)(features, generator, labels)
        total = features.new_zeros(())
        parts: dict[str, float] = {}
        if out.recon_logits is not None and out.targets is not None:
            recon = F.cross_entropy(out.recon_logits, out.targets)
            total = total + recon
            parts["recon"] = float(recon.detach())
        if out.class_logits is not None and labels is not None and (labels >= 0).any():
            ce = F.cross_entropy(out.class_logits, labels, weight=class_balance, ignore_index=-1)
            total = total + self.class_weight * ce
            parts["ce"] = float(ce.detach())
        parts["loss"] = float(total.detach())
        return Loss(total, parts, out.class_logits)


def build_wavenet(config: WaveNetConfig, audio: AudioConfig) -> WaveNetAutoencoder:
    """The (untrained) model a config describes (the audio parameters set nothing here: the
    model reads any length at the bundle's sample rate)."""
    return WaveNetAutoencoder(config)


# -- runtime -----------------------------------------------------------------------------------


class WaveformTransform:
    """Clip float32 [num_samples] -> the same clip as float16, for loader workers (the WaveNet
    reads the waveform itself; float16 keeps 11 bits, finer than the 8-bit mu-law it predicts)."""

    @staticmethod
    def init_worker() -> None:
        torch.set_num_threads(1)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        return np.asarray(clip, np.float16)


class WaveNetRuntime(ModelRuntime):
    """A WaveNet at work: audio in; the time-averaged embedding as the search vector; the whole
    embedding [latent, frames] as the decoder latent; audio out by incremental generation (the
    autoencoder only)."""

    module: WaveNetAutoencoder

    @property
    def vector_dim(self) -> int:
        return self.module.latent

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.module.latent, math.ceil(self.audio.num_samples / self.module.hop))

    @property
    def can_generate(self) -> bool:
        return self.module.decoder is not None

    @property
    def realtime_decode(self) -> bool:
        return False  # a sample at a time: seconds per second of audio on a CPU

    @property
    def batch_size(self) -> int:
        return 8 if self.device.type == "cpu" else 64

    def frontend(self) -> WaveformTransform:
        return WaveformTransform()

    @torch.inference_mode()
    def features(self, clips: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(clips, np.float32)).to(self.device)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        emb = self.module.embed(x)
        logits = self.module.class_logits(emb)
        probs = None if logits is None else torch.softmax(logits, -1)
        return self.module.pooled(emb), probs, emb

    def _decode(
        self, z: torch.Tensor, *, seed: int | None, iterations: int, progress, cancel
    ) -> torch.Tensor:
        return generate_audio(self._decoder(), z, self.audio.num_samples, seed=seed,
                              progress=progress, cancel=cancel)  # fmt: skip

    @torch.inference_mode()
    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        """Mono audio float32 [samples] of any length, at the model's rate -> its embedding,
        float32 [latent, ceil(samples / hop)]."""
        x = torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None].to(self.device)
        return self.module.embed(x)[0].float().cpu().numpy()

    @torch.inference_mode()
    def generate(
        self,
        embeddings: list[np.ndarray],
        *,
        seed: int | None = 0,
        temperature: float = 1.0,
        progress: Progress | None = None,
        cancel=None,
    ) -> list[np.ndarray]:
        """Embeddings float32 [frames, latent] (as `sampletool wavenet-embed` writes them; any
        number of frames each) -> audio float32 [frames * hop] each, generated together.

        Raises:
            ModelError: the model has no decoder.
            Cancelled: `cancel` was set.
        """
        decoder = self._decoder()
        batch = stack_frames(embeddings)
        z = torch.from_numpy(batch).transpose(1, 2).to(self.device)
        audio = generate_audio(decoder, z, batch.shape[1] * decoder.hop, seed=seed,
                               temperature=temperature, progress=progress,
                               cancel=cancel).cpu().numpy()  # fmt: skip
        return [audio[i, : len(e) * decoder.hop].copy() for i, e in enumerate(embeddings)]

    def _decoder(self) -> WaveNetDecoder:
        if self.module.decoder is None:
            raise ModelError(
                f"model {self.name!r} is a fine-tuned WaveNet encoder: it classifies and finds "
                f"similar sounds but has no decoder to make audio (a {AUTOENCODER} or vae "
                "model does)"
            )
        return self.module.decoder

    def _prior_latent(self, rng: np.random.Generator) -> np.ndarray:
        """Each frame drawn from the training embeddings' mean and spread."""
        mean = self.module.embedding_mean.cpu().numpy()[:, None]
        std = self.module.embedding_std.cpu().numpy()[:, None]
        return mean + std * rng.standard_normal(self.latent_shape)


def stack_frames(embeddings: list[np.ndarray]) -> np.ndarray:
    """Embeddings [frames, latent] of any lengths -> float32 [B, longest, latent], each shorter
    one held at its last frame."""
    frames = max(len(e) for e in embeddings)
    return np.stack([np.pad(np.asarray(e, np.float32), ((0, frames - len(e)), (0, 0)),
                            mode="edge") for e in embeddings])  # fmt: skip


def generate_audio(
    decoder: WaveNetDecoder,
    embedding: torch.Tensor,
    length: int,
    *,
    seed: int | None = 0,
    temperature: float = 1.0,
    progress: Progress | None = None,
    cancel=None,
) -> torch.Tensor:
    """Embeddings [B, latent, frames] -> audio Float [B, length] by fast generation, reporting
    `progress(done, length, message)` and stopping with `Cancelled` once `cancel` is set."""
    gen = None
    if seed is not None:
        gen = torch.Generator().manual_seed(int(seed))  # the draws are made on the CPU

    def report(done: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("generation cancelled")
        if progress is not None:
            progress(done, length, "generating")

    frames = math.ceil(length / decoder.hop)
    emb = embedding[..., :frames]
    if emb.shape[-1] < frames:
        emb = F.pad(emb, (0, frames - emb.shape[-1]), mode="replicate")
    q = decoder.generate(emb, length, temperature, gen, report, every=max(1, decoder.hop))
    return level_to_audio(q, decoder.levels).float()


_SMALL = {"enc_channels": 32, "enc_layers": 10, "dec_channels": 32, "dec_layers": 10,
          "skip_channels": 32, "train_crop": 2048}  # fmt: skip
_MEDIUM = {"enc_channels": 64, "enc_layers": 20, "dec_channels": 64, "dec_layers": 20,
           "skip_channels": 64, "train_crop": 4096}  # fmt: skip


def _kind(name: str, description: str) -> ModelKind:
    return ModelKind(
        name=name,
        description=description,
        config_type=WaveNetConfig,
        build=build_wavenet,
        runtime_type=WaveNetRuntime,
        presets={"small": _SMALL, "medium": _MEDIUM, "large": {}},  # large: NSynth's sizes
        input="waveform",
    )


KINDS = (
    _kind(ENCODER, "NSynth's WaveNet encoder with a classifier (fine-tuned encoder; no audio out)"),
    _kind(AUTOENCODER, "NSynth's WaveNet autoencoder with a classifier (fine-tuned autoencoder)"),
)
