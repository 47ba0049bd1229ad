"""Training: the Trainer (CLI, GUI wizard and torchrun share it) and its reports."""
