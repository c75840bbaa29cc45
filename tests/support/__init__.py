"""Helpers shared by tests (not collected: no test_ prefix)."""
