"""SampleVAE's variational autoencoder in PyTorch, with an inverse autoregressive flow posterior.

Shapes: features are Float tensors [B, n_mels, T] in [0, 1] (see `sampletool.features`);
latents are Float tensors [B, latent].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sampletool.features import AudioConfig, features_to_audio
from sampletool.models.kinds import Loss, ModelKind
from sampletool.models.runtime import ModelRuntime

_LOG_2PI = math.log(2 * math.pi)


# The largest sizes a VAE config may ask for.
MAX_CONV_BLOCKS = 16
MAX_WIDTH = 4096  # conv channels, flow_hidden (each flow step keeps flow_hidden^2 masks)
MAX_POOL = 64
MAX_KERNEL = 31
MAX_HIDDEN = 16384
MAX_LATENT = 4096
MAX_FLOWS = 64
MAX_CLASSES = 10000


@dataclass(frozen=True)
class VAEConfig:
    """SampleVAE's VAE: conv encoder, dense hidden layer, IAF posterior, deconv decoder.

    Sizes default to SampleVAE's. Every field is stored in the bundle's config.json.
    """

    kind: str = "vae"
    conv_channels: tuple[int, ...] = (32, 64, 32, 32)
    pool_sizes: tuple[tuple[int, int], ...] = ((4, 4), (2, 2), (2, 4), (2, 2))
    kernel_size: int = 3
    hidden: int = 512
    latent: int = 64
    flow_length: int = 5
    flow_hidden: int = 64
    dropout: float = 0.2
    num_classes: int = 0
    classifier_input: str = "hidden"  # or "latent": see VAE
    prior: str = "standard"  # or "class": see VAE
    prior_scale: float = 3.0
    # Loss weights: loss = recon + kl_weight * KL + class_weight * cross-entropy
    # + neighbour_weight * soft-nearest-neighbour loss of the latent means (see VAE.loss).
    kl_weight: float = 1.0
    class_weight: float = 100.0
    neighbour_weight: float = 0.0

    def __post_init__(self) -> None:
        # JSON gives lists; normalise to tuples so configs compare and hash as values.
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        object.__setattr__(self, "pool_sizes", tuple((int(a), int(b)) for a, b in self.pool_sizes))
        if self.kind != "vae":
            raise ValueError(f"VAEConfig is for kind 'vae', not {self.kind!r}")
        if len(self.conv_channels) != len(self.pool_sizes) or not self.conv_channels:
            raise ValueError("conv_channels and pool_sizes need the same, non-zero length")
        # Far beyond any model worth training here, and small enough that a config from a
        # stranger cannot ask for endless layers (see sampletool.models.limits).
        if len(self.conv_channels) > MAX_CONV_BLOCKS:
            raise ValueError(f"conv_channels lists {len(self.conv_channels)} blocks; at most "
                             f"{MAX_CONV_BLOCKS}")  # fmt: skip
        if not all(1 <= c <= MAX_WIDTH for c in self.conv_channels):
            raise ValueError(f"conv_channels must each be in [1, {MAX_WIDTH}]")
        if not all(1 <= p <= MAX_POOL for pair in self.pool_sizes for p in pair):
            raise ValueError(f"pool_sizes must each be in [1, {MAX_POOL}]")
        for name, high in (("kernel_size", MAX_KERNEL), ("hidden", MAX_HIDDEN),
                           ("latent", MAX_LATENT), ("flow_hidden", MAX_WIDTH)):  # fmt: skip
            if not 1 <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be in [1, {high}]")
        if not 0 <= self.flow_length <= MAX_FLOWS:
            raise ValueError(f"flow_length must be in [0, {MAX_FLOWS}]")
        if not 0 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be in [0, {MAX_CLASSES}]")
        if self.num_classes == 1:
            raise ValueError("a classifier needs at least 2 classes")
        if self.prior not in ("standard", "class"):
            raise ValueError("prior must be 'standard' or 'class'")
        if self.prior == "class" and self.num_classes > self.latent:
            raise ValueError("a class prior needs at least as many latent dimensions as classes")
        if self.classifier_input not in ("hidden", "latent"):
            raise ValueError("classifier_input must be 'hidden' or 'latent'")
        if self.neighbour_weight < 0:
            raise ValueError("neighbour_weight must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["conv_channels"] = list(self.conv_channels)
        d["pool_sizes"] = [list(p) for p in self.pool_sizes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        d = dict(d)
        # Bundles written before 0.2 (the built-in one among them) carry an always-empty
        # "extra" setting that no code ever read.
        if d.get("extra") == {}:
            del d["extra"]
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown VAE settings: {', '.join(sorted(unknown))}")
        return cls(**d)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE)."""

    mask: torch.Tensor

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        # Derived from the sizes, so not part of the saved weights.
        self.register_buffer("mask", mask.to(torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    """One inverse autoregressive flow step (Kingma et al. 2016), MADE-style, with context.

    z' = sigma * z + (1 - sigma) * m, where (m, sigma) of dimension i depend only on z[:i] and
    on the encoder context h; log|det dz'/dz| = sum(log sigma).
    """

    def __init__(self, latent: int, hidden: int, context: int) -> None:
        super().__init__()
        in_deg = torch.arange(1, latent + 1)
        hid_deg = torch.arange(hidden) % max(1, latent - 1) + 1
        self.inp = MaskedLinear(latent, hidden, hid_deg[:, None] >= in_deg[None, :])
        self.ctx = nn.Linear(context, hidden)
        self.mid = MaskedLinear(hidden, hidden, hid_deg[:, None] >= hid_deg[None, :])
        out_mask = in_deg[:, None] > hid_deg[None, :]
        self.shift = MaskedLinear(hidden, latent, out_mask)
        self.gate = MaskedLinear(hidden, latent, out_mask)

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, D], h [B, C] -> (z' [B, D], log-determinant [B])."""
        z, s = self._step(z, h)
        return z, F.logsigmoid(s).sum(-1)

    def transform(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """z' alone (no log-determinant: decoding needs none)."""
        return self._step(z, h)[0]

    def _step(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.elu(self.inp(z) + self.ctx(h))
        a = F.elu(self.mid(a))
        # The +1.5 bias starts each step close to the identity (sigma ~ 0.82), as in the paper.
        s = self.gate(a) + 1.5
        sigma = torch.sigmoid(s)
        return sigma * z + (1 - sigma) * self.shift(a), s


@dataclass
class Posterior:
    """The encoder's output for a batch.

    Attributes:
        mean: Float [B, latent], the posterior mean before the flows; the vector used for search
            (`VAE.decoder_latent` carries it through the flows for decoding).
        logvar: Float [B, latent], log-variance of the initial Gaussian.
        hidden: Float [B, hidden], the dense hidden state (flow context, classifier input).
    """

    mean: torch.Tensor
    logvar: torch.Tensor
    hidden: torch.Tensor


@dataclass
class VAEOutput:
    """What a training forward pass produces (all per-batch tensors)."""

    recon: torch.Tensor  # Float [B, n_mels, T] in [0, 1]
    posterior: Posterior
    z: torch.Tensor  # Float [B, latent], after the flows
    kl: torch.Tensor  # Float [B], Monte-Carlo KL(q(z|x) || N(0, I)) with the flows' log-dets
    class_logits: torch.Tensor | None  # Float [B, num_classes]


class VAE(nn.Module):
    """Conv encoder -> dense hidden -> Gaussian + IAF posterior -> deconv decoder; optional
    classifier head on the dense hidden state.

    Args:
        n_mels, n_frames: feature size, [n_mels, n_frames] per clip.
        conv_channels: channels of each encoder conv block (the decoder mirrors them).
        pool_sizes: max-pooling (mel, time) after each encoder conv block.
        kernel_size: conv kernel size.
        hidden: size of the dense hidden layer.
        latent: size of the latent vector.
        flow_length: number of IAF steps (0 for a plain Gaussian posterior).
        flow_hidden: hidden size of each IAF step's MADE network.
        dropout: dropout after the hidden layer (training only).
        num_classes: classifier outputs; 0 for no classifier.
        classifier_input: "hidden" (the dense hidden state, as in SampleVAE) or "latent" (the
            posterior mean: the cross-entropy then shapes the search space itself, so
            neighbours and the map group by class).
        prior: "standard" (N(0, I)) or "class": a labelled clip's prior is N(c_y, I), with
            class centres c_y = prior_scale * (unit vector y): the KL term then pulls each
            class's posterior means around its own centre, so Euclidean neighbours share a
            class. Unlabelled clips keep N(0, I).
        prior_scale: distance of each class centre from the origin.
        kl_weight, class_weight, neighbour_weight: the loss's weights (see `loss`).
    """

    class_centres: torch.Tensor
    classifier: nn.Module | None

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        conv_channels: tuple[int, ...] = (32, 64, 32, 32),
        pool_sizes: tuple[tuple[int, int], ...] = ((4, 4), (2, 2), (2, 4), (2, 2)),
        kernel_size: int = 3,
        hidden: int = 512,
        latent: int = 64,
        flow_length: int = 5,
        flow_hidden: int = 64,
        dropout: float = 0.2,
        num_classes: int = 0,
        classifier_input: str = "hidden",
        prior: str = "standard",
        prior_scale: float = 3.0,
        kl_weight: float = 1.0,
        class_weight: float = 100.0,
        neighbour_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.kl_weight, self.class_weight = kl_weight, class_weight
        self.neighbour_weight = neighbour_weight
        if prior not in ("standard", "class"):
            raise ValueError(f"prior must be 'standard' or 'class', not {prior!r}")
        if prior == "class" and num_classes > latent:
            raise ValueError("a class prior needs at least as many latent dimensions as classes")
        centres = torch.zeros(max(num_classes, 1), latent)
        if prior == "class":
            centres[:num_classes, :num_classes] = prior_scale * torch.eye(num_classes)
        # Derived from the config, so not part of the saved weights.
        self.register_buffer("class_centres", centres, persistent=False)
        self.prior = prior
        if classifier_input not in ("hidden", "latent"):
            raise ValueError(
                f"classifier_input must be 'hidden' or 'latent', not {classifier_input!r}"
            )
        self.classifier_input = classifier_input
        self.n_mels, self.n_frames = n_mels, n_frames
        self.latent_dim = latent
        self.num_classes = num_classes
        pad = kernel_size // 2

        h, w = n_mels, n_frames
        for ph, pw in pool_sizes:
            h, w = h // ph, w // pw
        if h < 1 or w < 1:
            raise ValueError(
                f"pooling {list(pool_sizes)} shrinks {n_mels}x{n_frames} features below 1x1"
            )
        blocks: list[nn.Module] = []
        c_in = 1
        for c, p in zip(conv_channels, pool_sizes, strict=True):
            # Pool before the activation: ELU is increasing, so max-pool then ELU equals ELU then
            # max-pool, with the ELU on 1/16 of the values at full resolution (2x faster).
            blocks += [nn.Conv2d(c_in, c, kernel_size, padding=pad), nn.MaxPool2d(p), nn.ELU()]
            c_in = c
        self.conv = nn.Sequential(*blocks)
        self.dense = nn.Linear(conv_channels[-1] * h * w, hidden)
        self.drop = nn.Dropout(dropout)
        self.mean = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.flows = nn.ModuleList(IAFStep(latent, flow_hidden, hidden) for _ in range(flow_length))
        self.classifier = (
            nn.Sequential(
                nn.Linear(hidden if classifier_input == "hidden" else latent, 128),
                nn.ELU(),
                nn.Dropout(dropout),
                nn.Linear(128, num_classes),
            )
            if num_classes
            else None
        )

        # Decoder: start from a grid that upsamples to at least [n_mels, n_frames], then crop.
        ph_total = math.prod(p[0] for p in pool_sizes)
        pw_total = math.prod(p[1] for p in pool_sizes)
        self._start = (conv_channels[-1], -(-n_mels // ph_total), -(-n_frames // pw_total))
        self.dec_in = nn.Sequential(
            nn.Linear(latent, hidden), nn.ELU(), nn.Linear(hidden, math.prod(self._start)), nn.ELU()
        )
        up: list[nn.Module] = []
        # The last stage works at full resolution, where memory traffic dominates the cost:
        # it gets a quarter of the channels and no extra conv (3x faster training on a CPU).
        chans = [*conv_channels[::-1], max(4, conv_channels[0] // 4)]
        for i, p in enumerate(pool_sizes[::-1]):
            c_in, c_out = chans[i], chans[i + 1]
            up += [nn.ConvTranspose2d(c_in, c_out, p, stride=p), nn.ELU()]
            if i < len(pool_sizes) - 1:
                up += [nn.Conv2d(c_out, c_out, kernel_size, padding=pad), nn.ELU()]
        up.append(nn.Conv2d(chans[-1], 1, kernel_size, padding=pad))
        self.deconv = nn.Sequential(*up)

    # -- encoder --------------------------------------------------------------------------------

    def encode(self, features: torch.Tensor) -> Posterior:
        """Features [B, n_mels, T] -> the posterior's parameters."""
        x = self.conv(features.unsqueeze(1)).flatten(1)
        hidden = self.drop(F.elu(self.dense(x)))
        logvar = self.logvar(hidden).clamp(-16.0, 8.0)
        return Posterior(self.mean(hidden), logvar, hidden)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The search vector: the posterior mean of the initial Gaussian, Float [B, latent].

        It is deterministic (no sampling, no flows) so the same clip always gets the same
        vector. It is not what the decoder reads: for that see `decoder_latent`.
        """
        return self.encode(features).mean

    def decoder_latent(self, post: Posterior) -> torch.Tensor:
        """The clip's point in the decoder's space, Float [B, latent]: the posterior mean carried
        through the flows with the clip's own context (no noise).

        The decoder is trained on z after the flows, and the (class) prior sits there too, so
        this is the vector to decode, blend and add noise to. The pre-flow mean is far from it
        (the shipped model's means have norm ~31, its flowed means ~5) and decodes badly.
        """
        z = post.mean
        steps: list[IAFStep] = list(self.flows)  # type: ignore[arg-type]  # a ModuleList of them
        for i, step in enumerate(steps):
            if i:
                z = z.flip(-1)  # as in _flow
            z = step.transform(z, post.hidden)
        return z

    def _flow(self, z: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z through the IAF steps with context `hidden` -> (z [B, latent], sum of log-dets [B])."""
        logdet = torch.zeros(z.shape[0], device=z.device, dtype=z.dtype)
        for i, step in enumerate(self.flows):
            if i:
                z = z.flip(-1)  # alternate the autoregressive order; a permutation has det 1
            z, ld = step(z, hidden)
            logdet = logdet + ld
        return z, logdet

    def prior_mean(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor | float:
        """The prior's mean for each clip: its class centre (class prior, labelled), else 0."""
        if self.prior != "class" or labels is None:
            return 0.0
        centres = self.class_centres[labels.clamp_min(0)]
        return torch.where((labels >= 0)[:, None], centres, torch.zeros_like(centres))

    def sample_posterior(
        self,
        post: Posterior,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw z through the flows. Returns (z [B, latent], KL estimate [B]); `labels` (-1 for
        none) choose each clip's prior under a class prior."""
        eps = torch.randn(post.mean.shape, generator=generator, device=post.mean.device)
        z = post.mean + torch.exp(0.5 * post.logvar) * eps
        log_q = -0.5 * (eps.square() + _LOG_2PI + post.logvar).sum(-1)
        z, logdet = self._flow(z, post.hidden)
        log_q = log_q - logdet
        log_p = -0.5 * ((z - self.prior_mean(labels, len(z))).square() + _LOG_2PI).sum(-1)
        return z, log_q - log_p

    # -- decoder and heads ----------------------------------------------------------------------

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [B, latent] -> feature logits [B, n_mels, n_frames]."""
        x = self.dec_in(z).view(-1, *self._start)
        return self.deconv(x)[:, 0, : self.n_mels, : self.n_frames]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [B, latent] -> features [B, n_mels, n_frames] in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def class_logits(self, post: Posterior) -> torch.Tensor:
        """The classifier head on a posterior -> class logits [B, num_classes]."""
        if self.classifier is None:
            raise RuntimeError("this model has no classifier head")
        return self.classifier(post.hidden if self.classifier_input == "hidden" else post.mean)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Features [B, n_mels, T] -> class logits [B, num_classes]."""
        return self.class_logits(self.encode(features))

    def forward(
        self,
        features: torch.Tensor,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> VAEOutput:
        post = self.encode(features)
        z, kl = self.sample_posterior(post, generator, labels)
        logits = self.class_logits(post) if self.classifier is not None else None
        return VAEOutput(self.decode(z), post, z, kl, logits)

    def loss(
        self,
        features: torch.Tensor,
        labels: torch.Tensor | None = None,
        class_balance: torch.Tensor | None = None,
        forward: Callable[..., VAEOutput] | None = None,
        generator: torch.Generator | None = None,
    ) -> Loss:
        """Reconstruction + kl_weight * KL (with flows) + class_weight * cross-entropy when
        labels are given, and neighbour_weight * the soft-nearest-neighbour loss of the
        posterior means (the search vectors): each clip's near neighbours in the batch should
        share its class.

        Reconstruction is the squared error summed over the feature bins (a unit-variance
        Gaussian likelihood up to a constant), averaged over the batch. `labels` may hold -1 for
        clips without a class; `class_balance` weights the cross-entropy per class. `forward`
        replaces `self.forward` (DistributedDataParallel's wrapper, so gradients are
        synchronised); `generator` seeds the posterior draw (validation uses the same draws
        each time).
        """
        out = (forward or self.forward)(features, generator, labels)
        recon = (out.recon - features).square().sum((1, 2)).mean()
        kl = out.kl.mean()
        total = recon + self.kl_weight * kl
        parts = {"recon": float(recon.detach()), "kl": float(kl.detach())}
        if out.class_logits is not None and labels is not None and (labels >= 0).any():
            ce = F.cross_entropy(out.class_logits, labels, weight=class_balance, ignore_index=-1)
            total = total + self.class_weight * ce
            parts["ce"] = float(ce.detach())
            if self.neighbour_weight > 0:
                nn = soft_nearest_neighbour(out.posterior.mean, labels)
                total = total + self.neighbour_weight * nn
                parts["nn"] = float(nn.detach())
        parts["loss"] = float(total.detach())
        return Loss(total, parts, out.class_logits)


def soft_nearest_neighbour(vectors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Soft-nearest-neighbour loss (Frosst et al. 2019) of Float [B, D] vectors: the mean over
    labelled clips with a same-class partner of -log(share of their neighbour weight,
    exp(-squared distance / 2D), that falls on same-class clips). 0 when no clip has a partner.
    The temperature 2D is the expected squared distance of two draws of a unit Gaussian."""
    keep = labels >= 0
    v, y = vectors[keep], labels[keep]
    d = torch.cdist(v, v).square() / (2 * v.shape[1])
    eye = torch.eye(len(v), dtype=torch.bool, device=v.device)
    logits = (-d).masked_fill(eye, float("-inf"))
    same = (y[:, None] == y[None, :]) & ~eye
    has = same.any(1)
    if not has.any():
        return vectors.sum() * 0.0
    log_all = torch.logsumexp(logits, 1)
    log_same = torch.logsumexp(logits.masked_fill(~same, float("-inf")), 1)
    return (log_all - log_same)[has].mean()


def build_vae(config: VAEConfig, audio: AudioConfig) -> VAE:
    """The (untrained) VAE a config describes, for features of `audio`'s size."""
    return VAE(
        n_mels=audio.n_mels,
        n_frames=audio.num_frames,
        conv_channels=config.conv_channels,
        pool_sizes=config.pool_sizes,
        kernel_size=config.kernel_size,
        hidden=config.hidden,
        latent=config.latent,
        flow_length=config.flow_length,
        flow_hidden=config.flow_hidden,
        dropout=config.dropout,
        num_classes=config.num_classes,
        classifier_input=config.classifier_input,
        prior=config.prior,
        prior_scale=config.prior_scale,
        kl_weight=config.kl_weight,
        class_weight=config.class_weight,
        neighbour_weight=config.neighbour_weight,
    )


class VAERuntime(ModelRuntime):
    """The VAE at work: log-mel in; the posterior mean (before the flows) as the search vector,
    the mean carried through the flows as the decoder latent; log-mel out, then Griffin-Lim."""

    module: VAE

    @property
    def vector_dim(self) -> int:
        return self.module.latent_dim

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.module.latent_dim,)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        post = self.module.encode(x)
        probs = None
        if self.module.classifier is not None:
            probs = torch.softmax(self.module.class_logits(post), -1)
        return post.mean, probs, self.module.decoder_latent(post)

    def _decode(
        self, z: torch.Tensor, *, seed: int | None, iterations: int, progress, cancel
    ) -> torch.Tensor:
        return features_to_audio(self.module.decode(z), self.audio, n_iter=iterations, seed=seed)

    def _prior_latent(self, rng: np.random.Generator) -> np.ndarray:
        """A standard normal draw; under a class prior, around a random class's centre."""
        z = rng.standard_normal(self.module.latent_dim)
        if self.module.prior == "class" and self.class_names:
            centres = self.module.class_centres.cpu().numpy()
            z = z + centres[rng.integers(len(self.class_names))]
        return z


KIND = ModelKind(
    name="vae",
    description="SampleVAE's VAE with inverse autoregressive flows, on log-mel spectrograms",
    config_type=VAEConfig,
    build=build_vae,
    runtime_type=VAERuntime,
    presets={
        # Half SampleVAE's widths: about twice as fast to train on a CPU.
        "small": {
            "conv_channels": [16, 32, 16, 16],
            "hidden": 256,
            "latent": 32,
            "flow_length": 3,
            "flow_hidden": 32,
        },
        "medium": {},  # SampleVAE's sizes (the built-in model's)
        "large": {
            "conv_channels": [64, 128, 64, 64],
            "hidden": 1024,
            "latent": 128,
            "flow_length": 8,
            "flow_hidden": 128,
        },
    },
)
