"""The headless core must never pull in textual or mlx; `lemlab --help` must not load mlx_lm."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import lemlab.core

# Every module and package under lemlab.core, at any depth (the prefix lets walk_packages import
# the subpackages it descends into).
CORE_MODULES = sorted(m.name for m in pkgutil.walk_packages(lemlab.core.__path__, "lemlab.core."))
FORBIDDEN = ("textual", "mlx", "mlx_lm", "transformers")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_core_modules_exist() -> None:
    assert "lemlab.core.engine_api" in CORE_MODULES
    assert "lemlab.core.training.events" in CORE_MODULES  # subpackages are walked too
    assert len(CORE_MODULES) >= 60


def test_each_core_module_imports_without_ui_or_mlx() -> None:
    for mod in CORE_MODULES:
        loaded = _loaded_after(f"import {mod}")
        bad = loaded.intersection(FORBIDDEN)
        assert not bad, f"{mod} imported {sorted(bad)}"


def test_cli_help_does_not_import_mlx_or_textual() -> None:
    loaded = _loaded_after(
        "import contextlib, io\nfrom lemlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert not loaded.intersection(FORBIDDEN), sorted(loaded.intersection(FORBIDDEN))
