"""The installed models: the model manager."""

from ui.models.manager import ModelManager

__all__ = ["ModelManager"]
