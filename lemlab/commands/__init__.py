"""One module per CLI command: `add_arguments(parser)` and `run(args) -> int`.
Modules import heavy things (mlx_lm, textual) inside run(), never at module level."""
