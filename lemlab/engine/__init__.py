"""The engine layer: the only code that imports mlx / mlx_lm (lazily, inside functions or
modules that the CLI and TUI import only when they need a model)."""
