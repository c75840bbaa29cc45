"""The Models pane's parts: rows for models, adapters and endpoints, opening
a folder, and the embedded demo model's first-run setup."""
