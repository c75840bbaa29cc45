"""Model folders, adapters and their discovery, read from files alone (no mlx):
headers, configs, the embedded demo models and the recently opened list."""
