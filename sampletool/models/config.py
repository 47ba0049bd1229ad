"""Typed model configurations. A config is plain data (JSON in a bundle); builders make modules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


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
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # JSON gives lists; normalise to tuples so configs compare and hash as values.
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        object.__setattr__(self, "pool_sizes", tuple((int(a), int(b)) for a, b in self.pool_sizes))
        if self.kind != "vae":
            raise ValueError(f"VAEConfig is for kind 'vae', not {self.kind!r}")
        if len(self.conv_channels) != len(self.pool_sizes) or not self.conv_channels:
            raise ValueError("conv_channels and pool_sizes need the same, non-zero length")
        for name in ("kernel_size", "hidden", "latent", "flow_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.flow_length < 0 or self.num_classes < 0:
            raise ValueError("flow_length and num_classes must be >= 0")
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
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown VAE settings: {', '.join(sorted(unknown))}")
        return cls(**d)


ModelConfig = VAEConfig
CONFIGS: dict[str, type[VAEConfig]] = {"vae": VAEConfig}


def config_from_dict(d: dict) -> ModelConfig:
    """The config for a stored dict, by its `kind`."""
    kind = d.get("kind")
    if kind not in CONFIGS:
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(CONFIGS)})")
    return CONFIGS[kind].from_dict(d)
