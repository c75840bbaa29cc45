"""The Textual TUI. Imported only when `lemlab` runs with no command (textual is not core)."""
