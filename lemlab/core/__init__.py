"""Headless core: plain functions and dataclasses. Never imports textual or mlx (a test checks)."""
