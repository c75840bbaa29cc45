"""Errors the CLI turns into one clear line and exit status 2 (never a traceback)."""


class LemlabError(Exception):
    """A user-facing failure: bad input, missing files, wrong adapter. The message is one line."""

    exit_code = 2


class DataError(LemlabError):
    """Malformed user data (JSON, TOML, JSONL) with the file and line where known."""
