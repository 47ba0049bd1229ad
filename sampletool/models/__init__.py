"""Models: typed configs, builders that turn a config into a plain nn.Module, and bundle I/O."""

from __future__ import annotations

from sampletool.features import AudioConfig
from sampletool.models.config import CONFIGS, ModelConfig, VAEConfig, config_from_dict
from sampletool.models.vae import VAE

__all__ = ["CONFIGS", "VAE", "ModelConfig", "VAEConfig", "build_model", "config_from_dict"]


def build_model(config: ModelConfig, audio: AudioConfig) -> VAE:
    """Build the (untrained) module a config describes, for features of `audio`'s size."""
    if isinstance(config, VAEConfig):
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
        )
    raise ValueError(f"no builder for model kind {getattr(config, 'kind', config)!r}")
