"""lemlab: a keyboard-driven terminal lab for evaluating and fine-tuning local models with MLX."""

__version__ = "0.1.0"
