"""LoRA training without mlx: configs, data checks, the events file and its
watcher, summaries, resume, curricula, per-stage evals and loss charts."""
