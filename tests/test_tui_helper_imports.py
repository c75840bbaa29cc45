"""Helpers that a pane holds (slash commands, the curriculum flow) do not import that pane, not
even under TYPE_CHECKING, and call none of its private members: no cycle between the two."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lemlab

ROOT = Path(lemlab.__file__).parent
HELPERS = {
    "tui/chat/actions.py": "lemlab.tui.panes.chat",
    "tui/training/curriculum_flow.py": "lemlab.tui.panes.training",
}


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_helper_does_not_import_its_pane(helper: str) -> None:
    tree = ast.parse((ROOT / helper).read_text())
    assert HELPERS[helper] not in _imported(tree)
    private = [
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "pane"
        and n.attr.startswith("_")
    ]
    assert private == []  # e.g. self.pane._saved()
