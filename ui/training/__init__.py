"""Training a model from the app: the train wizard, its training process and live charts."""

from ui.training.wizard import TrainWizard

__all__ = ["TrainWizard"]
